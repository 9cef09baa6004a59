package backend_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/report"
)

type customer struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type order struct {
	Number     string `json:"number"`
	CustomerID string `json:"customer_id"`
}

// crm is a two-model connector declared on one backend: customers, and orders that refer
// to their customer.
type crm struct {
	api       *fakeapi.Server
	customers *local.Memory[customer]
	orders    *local.Memory[order]
	b         *backend.Backend
}

func customerModel(store local.Store[customer]) backend.Model[customer] {
	return backend.Model[customer]{
		Name:  "customer",
		Local: store,
		Import: &backend.Import{
			List: adapter.Request{Path: "/customers", Query: map[string][]string{"limit": {"10"}}}, Records: "items",
			Since: "updated_at_min", Fetch: "/customers/{id}", MaxRetries: 1,
			Rules: []mapper.Rule{mapper.Direct("name", "name", mapper.Required()), mapper.Direct("email", "email")},
		},
		Export: &backend.Export{
			Create: "/customers",
			Rules:  []mapper.Rule{mapper.Direct("name", "name"), mapper.Direct("email", "email")},
		},
	}
}

func orderModel(store local.Store[order]) backend.Model[order] {
	return backend.Model[order]{
		Name:  "order",
		Local: store,
		Import: &backend.Import{
			List: adapter.Request{Path: "/orders", Query: map[string][]string{"limit": {"10"}}}, Records: "items",
			Fetch: "/orders/{id}",
			Rules: []mapper.Rule{mapper.Direct("number", "number"), mapper.Relation("customer_id", "customer_id", "customer")},
		},
		Export: &backend.Export{
			Create: "/orders",
			Rules:  []mapper.Rule{mapper.Direct("number", "number"), mapper.Relation("customer_id", "customer_id", "customer")},
		},
	}
}

func newCRM(t *testing.T, opts ...backend.Option) *crm {
	t.Helper()
	c := &crm{api: fakeapi.New(), customers: local.NewMemory[customer](), orders: local.NewMemory[order]()}
	t.Cleanup(c.api.Close)
	// Orders are registered first: SyncAll must still import customers before them.
	all := append([]backend.Option{
		backend.WithModel(orderModel(c.orders)),
		backend.WithModel(customerModel(c.customers)),
		backend.WithClientOptions(adapter.WithRetries(0)),
	}, opts...)
	var err error
	c.b, err = backend.New(backend.Config{Name: "crm", BaseURL: c.api.URL}, all...)
	require.NoError(t, err)
	return c
}

func (c *crm) seed(customers, ordersPerCustomer int) {
	for i := range customers {
		id := c.api.Add("customers", map[string]any{"name": fmt.Sprintf("Customer %d", i), "email": fmt.Sprintf("c%d@example.com", i)})
		for j := range ordersPerCustomer {
			c.api.Add("orders", map[string]any{"number": fmt.Sprintf("SO%d-%d", i, j), "customer_id": id})
		}
	}
}

func TestSyncAllRunsModelsInDependencyOrder(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t)
	c.seed(12, 2)

	assert.Equal(t, []string{"customer", "order"}, c.b.Models())
	assert.Equal(t, []string{"import_customer", "import_order"}, c.b.Operations())
	rep, err := c.b.SyncAll(ctx)
	require.NoError(t, err)
	require.Len(t, rep.Results, 2)
	assert.Equal(t, "import_customer", rep.Results[0].Name)
	assert.Equal(t, report.Counts{Created: 12}, rep.Results[0].Counts)
	assert.Equal(t, report.Counts{Created: 24}, rep.Results[1].Counts)
	assert.Equal(t, report.Counts{Created: 36}, rep.Total)

	// Every order points at the local ID of its own customer.
	for _, rec := range c.api.Records("orders") {
		localOrder, err := c.b.Bindings().GetByExternal(ctx, "crm", "order", rec.Get("id").String())
		require.NoError(t, err)
		o, err := c.orders.Get(ctx, localOrder.LocalID)
		require.NoError(t, err)
		cust, err := c.b.Bindings().GetByExternal(ctx, "crm", "customer", rec.Get("customer_id").String())
		require.NoError(t, err)
		assert.Equal(t, cust.LocalID, o.CustomerID, "order %s", o.Number)
	}

	// A second run creates nothing and counts every record once.
	rep, err = c.b.SyncAll(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, rep.Total.Created+rep.Total.Updated)
	stats, err := c.b.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, 36, stats.Syncs.Created)
}

// An order whose customer was never imported imports the customer first, through the
// model declaration alone: the relation is the dependency.
func TestImportOneImportsMissingRelatedRecordFirst(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t)
	custID := c.api.Add("customers", map[string]any{"name": "Ada", "email": "ada@example.com"})
	orderID := c.api.Add("orders", map[string]any{"number": "SO1", "customer_id": custID})

	counts, err := c.b.Import(ctx, "order", strconv.FormatInt(orderID, 10))
	require.NoError(t, err)
	assert.Equal(t, report.Counts{Created: 1}, counts)
	ids := c.customers.IDs()
	require.Len(t, ids, 1, "the customer was imported on the way")

	// The app deletes the customer; the next order import must not point at the dead ID.
	require.NoError(t, c.customers.Delete(ctx, ids[0]))
	order2 := c.api.Add("orders", map[string]any{"number": "SO2", "customer_id": custID})
	_, err = c.b.Import(ctx, "order", strconv.FormatInt(order2, 10))
	require.NoError(t, err)
	b, err := c.b.Bindings().GetByExternal(ctx, "crm", "order", strconv.FormatInt(order2, 10))
	require.NoError(t, err)
	o, err := c.orders.Get(ctx, b.LocalID)
	require.NoError(t, err)
	_, err = c.customers.Get(ctx, o.CustomerID)
	require.NoError(t, err, "the order refers to a live customer record (recreated), not the deleted one")
}

// 401 stops SyncAll at once: every later operation would meet it too.
func TestSyncAllStopsOnUnauthorized(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t, backend.WithOperation("inventory", func(ctx context.Context, b *backend.Backend) (report.Counts, error) {
		t.Error("inventory ran after a 401")
		return report.Counts{}, nil
	}))
	c.seed(3, 1)
	c.api.Inject(fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: http.StatusUnauthorized, Resource: "customers"})

	rep, err := c.b.SyncAll(ctx)
	require.ErrorIs(t, err, adapter.ErrUnauthorized)
	require.Len(t, rep.Results, 3)
	assert.ErrorIs(t, rep.Results[0].Err, adapter.ErrUnauthorized)
	for _, r := range rep.Results[1:] {
		assert.Contains(t, r.Skipped, "stopped after import_customer", r.Name)
	}
	assert.Equal(t, 0, c.api.Count("orders")-3, "nothing changed remotely")
}

// A model whose listing broke skips the models that depend on it; unrelated operations
// still run.
func TestSyncAllSkipsDependentsOfAFailedOperation(t *testing.T) {
	ctx := context.Background()
	var ran atomic.Bool
	c := newCRM(t, backend.WithOperation("inventory", func(ctx context.Context, b *backend.Backend) (report.Counts, error) {
		ran.Store(true)
		return report.Counts{Updated: 1}, nil
	}))
	c.seed(3, 1)
	c.api.Inject(fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: http.StatusBadGateway, Resource: "customers"})

	rep, err := c.b.SyncAll(ctx)
	require.Error(t, err)
	require.Len(t, rep.Results, 3)
	assert.Error(t, rep.Results[0].Err)
	assert.Contains(t, rep.Results[1].Skipped, "depends on customer")
	assert.Equal(t, report.Counts{}, rep.Results[1].Counts)
	assert.True(t, ran.Load(), "an unrelated operation still ran")
	assert.NoError(t, rep.Results[2].Err)
}

// The same export deferred twice runs once; the job exports through the model's exporter.
func TestLaterExportDedupsAndRuns(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t)
	c.customers.Put("1", customer{Name: "Ada", Email: "ada@example.com"})

	first, err := c.b.Later().Export(ctx, "customer", "1")
	require.NoError(t, err)
	second, err := c.b.Later().Export(ctx, "customer", "1")
	require.NoError(t, err)
	assert.True(t, second.Duplicate, "the second identical job is the first one")
	assert.Equal(t, first.ID, second.ID)

	require.NoError(t, c.b.Start(ctx))
	defer c.b.Stop(context.Background())
	waitJob(t, c.b.Queue(), first.ID)
	assert.Equal(t, 1, c.api.Count("customers"))
	b, err := c.b.Bindings().GetByLocal(ctx, "crm", "customer", "1")
	require.NoError(t, err)
	assert.Equal(t, binding.StatusSuccess, b.Status)
}

// TestLaterEditWhileExportRuns: an edit queued while the record's export is already
// running (it read the record before the edit) is not deduplicated into that job: a
// follow-up exports it, and further requests made meanwhile join the follow-up while it
// waits (or follow it in turn once it runs).
func TestLaterEditWhileExportRuns(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t)
	c.api.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Method: "POST", Delay: 300 * time.Millisecond, Times: 1})
	c.customers.Put("1", customer{Name: "Ada", Email: "ada@example.com"})

	first, err := c.b.Later().Export(ctx, "customer", "1")
	require.NoError(t, err)
	require.NoError(t, c.b.Start(ctx))
	defer c.b.Stop(context.Background())
	require.Eventually(t, func() bool { return c.api.Stats().Faults == 1 }, 10*time.Second, time.Millisecond,
		"the export is in flight, with the record read")

	c.customers.Put("1", customer{Name: "Ada Lovelace", Email: "ada@example.com"})
	second, err := c.b.Later().Export(ctx, "customer", "1")
	require.NoError(t, err)
	require.False(t, second.Duplicate, "the running export read the old record: the edit needs a job of its own")
	require.NotEqual(t, first.ID, second.ID)
	third, err := c.b.Later().Export(ctx, "customer", "1")
	require.NoError(t, err)
	if third.ID != second.ID {
		// The follow-up had started already (it waits for the record's lease while the first
		// runs), so this request got a follow-up of its own: never a dropped duplicate.
		assert.False(t, third.Duplicate, "a request is either the waiting follow-up or a new job")
	}

	waitJob(t, c.b.Queue(), first.ID)
	waitJob(t, c.b.Queue(), second.ID)
	waitJob(t, c.b.Queue(), third.ID)
	require.Equal(t, 1, c.api.Count("customers"), "one remote record")
	assert.Equal(t, "Ada Lovelace", c.api.Records("customers")[0].Get("name").String(), "the edit reached the API")
}

// TestLaterSyncNeverOverlaps: an operation queued while it runs is the running job (what
// keeps a schedule's runs from overlapping); it gets no follow-up.
func TestLaterSyncNeverOverlaps(t *testing.T) {
	ctx := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	var runs atomic.Int32
	c := newCRM(t, backend.WithOperation("slow", func(ctx context.Context, _ *backend.Backend) (report.Counts, error) {
		if runs.Add(1) == 1 {
			close(started)
		}
		<-release
		return report.Counts{}, nil
	}))
	first, err := c.b.Later().Sync(ctx, "slow")
	require.NoError(t, err)
	require.NoError(t, c.b.Start(ctx))
	defer c.b.Stop(context.Background())
	<-started
	again, err := c.b.Later().Sync(ctx, "slow")
	require.NoError(t, err)
	assert.True(t, again.Duplicate, "queued while running: the running job")
	assert.Equal(t, first.ID, again.ID)
	close(release)
	waitJob(t, c.b.Queue(), first.ID)
	assert.EqualValues(t, 1, runs.Load(), "one run")
}

// TestLaterRefusedExportIsNotRetried: an export the API refuses (422) would be refused
// again: the job ends after one attempt, and the binding says why.
func TestLaterRefusedExportIsNotRetried(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t)
	c.api.RejectWrites(func(string, gjson.Result) string { return "email is invalid" })
	c.customers.Put("1", customer{Name: "Ada", Email: "not-an-email"})
	job, err := c.b.Later().Export(ctx, "customer", "1")
	require.NoError(t, err)
	require.NoError(t, c.b.Start(ctx))
	defer c.b.Stop(context.Background())
	var got queue.JobInfo
	require.Eventually(t, func() bool {
		got, err = c.b.Queue().GetJob(ctx, job.ID)
		return err == nil && final(got.State)
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, queue.StateCancelled, got.State, "a refusal ends the job")
	assert.Equal(t, 1, got.Attempt, "not retried")
	b, err := c.b.Bindings().GetByLocal(ctx, "crm", "customer", "1")
	require.NoError(t, err)
	assert.Equal(t, binding.StatusFailed, b.Status)
	assert.Contains(t, b.LastError, "422")
}

// Deferring work the model cannot do fails at once, not later in a worker.
func TestLaterRejectsWhatTheModelCannotDo(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t)
	_, err := c.b.Later().Export(ctx, "invoice", "1")
	assert.ErrorIs(t, err, backend.ErrUnknownModel)
	_, err = c.b.Later().Sync(ctx, "import_invoice")
	assert.ErrorIs(t, err, backend.ErrUnknownOperation)
	_, err = c.b.Export(ctx, "invoice", "1")
	assert.ErrorIs(t, err, backend.ErrUnknownModel)
}

func waitJob(t *testing.T, q queue.Queue, id int64) queue.JobInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := q.GetJob(context.Background(), id)
		require.NoError(t, err)
		if final(j.State) {
			require.Equal(t, queue.StateCompleted, j.State, "job errors: %v", j.Errors)
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d still %s", id, j.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A failing record marks its binding failed and leaves the run partial; the error says
// which record.
func TestExportPartialFailure(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t)
	c.customers.Put("1", customer{Name: "Ada"})
	c.orders.Put("1", order{Number: "SO1", CustomerID: "1"})
	c.orders.Put("2", order{Number: "SO2", CustomerID: "404"}) // no such customer
	counts, err := c.b.Export(ctx, "order", "1", "2")
	var partial *report.PartialError
	require.ErrorAs(t, err, &partial)
	assert.Equal(t, report.Counts{Created: 1, Failed: 1}, counts)
	assert.Equal(t, 1, c.api.Count("customers"), "the related customer was exported first")
	assert.True(t, errors.Is(err, local.ErrNotFound) || errors.Is(err, mapper.ErrMissingDependency), "%v", err)
}

func final(s queue.State) bool {
	return s == queue.StateCompleted || s == queue.StateDiscarded || s == queue.StateCancelled
}

// A schedule runs its operation once enabled, through a deferred job; a schedule that is
// never enabled never runs. Both are declared in the config file's terms.
func TestSchedulesRunOnlyWhenEnabled(t *testing.T) {
	ctx := context.Background()
	var enabledRuns, disabledRuns atomic.Int32
	cfg := backend.Config{Name: "crm", BaseURL: "https://crm.example.com", Schedules: []backend.ScheduleConfig{
		{Name: "often", Operation: "tick", Spec: "@every 1s"},
		{Name: "never", Operation: "tock", Spec: "@every 1s"},
	}}
	b, err := backend.New(cfg,
		backend.WithOperation("tick", func(context.Context, *backend.Backend) (report.Counts, error) {
			enabledRuns.Add(1)
			return report.Counts{}, nil
		}),
		backend.WithOperation("tock", func(context.Context, *backend.Backend) (report.Counts, error) {
			disabledRuns.Add(1)
			return report.Counts{}, nil
		}))
	require.NoError(t, err)
	require.NoError(t, b.Start(ctx))
	defer b.Stop(context.Background())
	require.NoError(t, b.Schedules().Enable(ctx, "crm/often"))

	deadline := time.Now().Add(30 * time.Second)
	for enabledRuns.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.GreaterOrEqual(t, enabledRuns.Load(), int32(2), "the enabled schedule ran on two ticks")
	assert.Zero(t, disabledRuns.Load(), "a schedule never enabled never runs")
}

func TestScheduleNamesAnUnknownOperation(t *testing.T) {
	_, err := backend.New(backend.Config{Name: "crm", BaseURL: "https://crm.example.com",
		Schedules: []backend.ScheduleConfig{{Name: "nightly", Spec: "@daily", Operation: "import_invoice"}}})
	require.ErrorIs(t, err, backend.ErrUnknownOperation)
	_, err = backend.New(backend.Config{Name: "crm", BaseURL: "https://crm.example.com",
		Schedules: []backend.ScheduleConfig{{Name: "nightly", Spec: "every day", Operation: backend.SyncAllOperation}}})
	require.Error(t, err, "a bad spec fails at New")
}

// A shutdown in the middle of a single-record import is not a failure: nothing is counted,
// and the error is the context's, not a PartialError.
func TestImportCancelledIsNotAFailure(t *testing.T) {
	c := newCRM(t)
	id := c.api.Add("customers", map[string]any{"name": "Ada"})
	ctx, cancel := context.WithCancel(context.Background())
	c.api.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: time.Second, Resource: "customers"})
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	counts, err := c.b.Import(ctx, "customer", strconv.FormatInt(id, 10))
	require.ErrorIs(t, err, context.Canceled)
	var partial *report.PartialError
	assert.False(t, errors.As(err, &partial), "a shutdown is not a record failure: %v", err)
	assert.Equal(t, report.Counts{}, counts)
}

// retry_<model> retries what failed in each direction: imports past their retry limit
// (retrying is on purpose) are fetched again, exports are sent again, and neither is
// retried in the other direction.
func TestRetryOperationRetriesBothDirections(t *testing.T) {
	ctx := context.Background()
	c := newCRM(t)
	// An export the API refuses.
	c.customers.Put("100", customer{Name: "Local Only", Email: "l@example.com"})
	c.api.RejectWrites(func(resource string, body gjson.Result) string {
		if resource == "customers" {
			return "email domain not allowed"
		}
		return ""
	})
	_, err := c.b.Export(ctx, "customer", "100")
	require.Error(t, err)
	// An import that fails its mapping (no name), twice, past a retry limit of 1.
	id := strconv.FormatInt(c.api.Add("customers", map[string]any{"email": "noname@example.com"}), 10)
	for range 2 {
		_, err = c.b.Import(ctx, "customer", id)
		require.Error(t, err)
	}

	// Both causes are fixed; one retry operation sends both again, each its own way.
	c.api.RejectWrites(func(string, gjson.Result) string { return "" })
	require.True(t, c.api.Touch("customers", mustInt(t, id), map[string]any{"name": "Now Named"}))
	counts, err := c.b.Sync(ctx, "retry_customer")
	require.NoError(t, err)
	assert.Equal(t, report.Counts{Created: 2}, counts, "one record imported, one exported")
	b, err := c.b.Bindings().GetByLocal(ctx, "crm", "customer", "100")
	require.NoError(t, err)
	assert.Equal(t, binding.StatusSuccess, b.Status)
	imported, err := c.b.Bindings().GetByExternal(ctx, "crm", "customer", id)
	require.NoError(t, err)
	assert.Equal(t, binding.StatusSuccess, imported.Status)
	assert.Equal(t, 2, c.api.Count("customers"), "the imported record was not exported back as a new one")
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return n
}

// The hub's runners hold leases of the configured TTL (renewed while they work), so a
// process that dies mid-sync blocks its records for that long, not the runners' 5 minutes.
func TestLeaseTTL(t *testing.T) {
	_, err := backend.New(backend.Config{Name: "crm", BaseURL: "https://crm.example.com"}, backend.WithLeaseTTL(time.Second))
	require.Error(t, err, "a lease shorter than 3s is refused")

	ctx := context.Background()
	reading := make(chan struct{})
	release := make(chan struct{})
	store := &blockingGet[customer]{Memory: local.NewMemory[customer](), reading: reading, release: release}
	store.Put("1", customer{Name: "Ada"})
	api := fakeapi.New()
	defer api.Close()
	b, err := backend.New(backend.Config{Name: "crm", BaseURL: api.URL}, backend.WithLeaseTTL(10*time.Second),
		backend.WithModel(backend.Model[customer]{Name: "customer", Local: store,
			Export: &backend.Export{Create: "/customers", Rules: []mapper.Rule{mapper.Direct("name", "name")}}}))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := b.Export(ctx, "customer", "1"); done <- err }()
	<-reading // the exporter holds the lease and reads the record
	bd, err := b.Bindings().GetByLocal(ctx, "crm", "customer", "1")
	require.NoError(t, err)
	assert.NotEmpty(t, bd.LeaseOwner)
	assert.WithinDuration(t, time.Now().Add(10*time.Second), bd.LeaseExpiresAt, 5*time.Second)
	close(release)
	require.NoError(t, <-done)
}

// blockingGet signals its first Get and waits for release.
type blockingGet[T any] struct {
	*local.Memory[T]
	reading, release chan struct{}
	once             sync.Once
}

func (s *blockingGet[T]) Get(ctx context.Context, id string) (T, error) {
	s.once.Do(func() { close(s.reading); <-s.release })
	return s.Memory.Get(ctx, id)
}

type node struct {
	Name string `json:"name"`
	Peer string `json:"peer"`
}

// Two records that refer to each other (a relation cycle) stop at once with an error that
// names the cycle, instead of recursing or waiting on a lease their own import holds;
// marking one side SkipMissing breaks the cycle and both import.
func TestRelationCycleTerminates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api := fakeapi.New()
	defer api.Close()
	a1 := api.Add("a", map[string]any{"name": "a1"})
	b1 := api.Add("b", map[string]any{"name": "b1", "peer": a1})
	require.True(t, api.Touch("a", a1, map[string]any{"peer": b1}))
	decl := func(name, peer string, store local.Store[node], opts ...mapper.RuleOption) backend.Option {
		return backend.WithModel(backend.Model[node]{Name: name, Local: store, Import: &backend.Import{
			List: adapter.Request{Path: "/" + name}, Records: "items", Fetch: "/" + name + "/{id}",
			Rules: []mapper.Rule{mapper.Direct("name", "name"), mapper.Relation("peer", "peer", peer, opts...)},
		}})
	}

	as, bs := local.NewMemory[node](), local.NewMemory[node]()
	b, err := backend.New(backend.Config{Name: "g", BaseURL: api.URL}, decl("a", "b", as), decl("b", "a", bs))
	require.NoError(t, err)
	_, err = b.Import(ctx, "a", strconv.FormatInt(a1, 10))
	require.NoError(t, ctx.Err(), "the cycle did not stop (err %v)", err)
	require.ErrorContains(t, err, "a cycle")
	assert.Zero(t, as.Len()+bs.Len(), "nothing half-imported")

	as, bs = local.NewMemory[node](), local.NewMemory[node]()
	b, err = backend.New(backend.Config{Name: "g", BaseURL: api.URL}, decl("a", "b", as), decl("b", "a", bs, mapper.SkipMissing()))
	require.NoError(t, err)
	counts, err := b.Import(ctx, "a", strconv.FormatInt(a1, 10))
	require.NoError(t, err)
	assert.Equal(t, report.Counts{Created: 1}, counts)
	assert.Equal(t, 1, as.Len())
	assert.Equal(t, 1, bs.Len(), "b1 was imported on the way, its reference back left empty")
}

// TestProgressReportsEachCommittedBatch: WithProgress sees every model's import grow batch
// by batch, and its last report equals what the run returned.
func TestProgressReportsEachCommittedBatch(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[string][]importer.Summary{}
	c := newCRM(t, backend.WithProgress(func(model string, s importer.Summary) {
		mu.Lock()
		defer mu.Unlock()
		seen[model] = append(seen[model], s)
	}))
	c.seed(210, 1)
	rep, err := c.b.SyncAll(ctx)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	for i, model := range []string{"customer", "order"} {
		reports := seen[model]
		require.GreaterOrEqual(t, len(reports), 3, "%s: 210 records commit in batches of 100", model)
		for j := 1; j < len(reports); j++ {
			assert.GreaterOrEqual(t, reports[j].Total(), reports[j-1].Total(), "%s: progress never goes back", model)
		}
		assert.Equal(t, rep.Results[i].Counts, reports[len(reports)-1].Counts, "%s: the last report is the run's result", model)
	}
}
