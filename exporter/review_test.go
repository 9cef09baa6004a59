package exporter_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
)

// hookDoer calls after (when set) once a request of method has been answered, before the
// exporter sees the answer: the place where a shutdown cancels a run.
type hookDoer struct {
	adapter.Doer
	method string
	after  func(n int)
	n      atomic.Int64
}

func (d *hookDoer) Do(ctx context.Context, req *adapter.Request) (*adapter.Response, error) {
	resp, err := d.Doer.Do(ctx, req)
	if err == nil && req.Method == d.method && d.after != nil {
		d.after(int(d.n.Add(1)))
	}
	return resp, err
}

func quiet() exporter.Option { return exporter.WithLogger(slog.New(slog.DiscardHandler)) }

// A create that succeeded remotely is bound even when ctx ends right after it: otherwise
// the next export creates the record again on an API that ignores idempotency keys.
func TestExportCancelAfterCreateStillBinds(t *testing.T) {
	srv := fakeapi.New(fakeapi.WithoutIdempotency())
	defer srv.Close()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "A"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doer := &hookDoer{Doer: newClient(t, srv.URL), method: "POST", after: func(int) { cancel() }}
	exp, err := exporter.New(doer, bs, store, "shop", "product", "/products", mapProduct, quiet())
	require.NoError(t, err)

	res, err := exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	b, err := bs.GetByLocal(context.Background(), "shop", "product", "1")
	require.NoError(t, err)
	assert.NotEmpty(t, b.ExternalID)
	assert.Equal(t, binding.StatusSuccess, b.Status)

	res, err = exp.Export(context.Background(), "1")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)
	assert.Equal(t, 1, srv.Count("products"), "one remote record")
}

// An export cut short by ctx is not the record's failure: no RetryCount, no failed status,
// so shutdowns never push records over WithMaxRetries.
func TestExportInterruptedIsNotAFailure(t *testing.T) {
	srv := fakeapi.New()
	defer srv.Close()
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: time.Second, Every: 1})
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "A"})
	exp, err := exporter.New(newClient(t, srv.URL), bs, store, "shop", "product", "/products", mapProduct,
		exporter.WithMaxRetries(1), quiet())
	require.NoError(t, err)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := exp.Export(ctx, "1")
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var re *report.RecordError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, "create", re.Step)
	}
	b, err := bs.GetByLocal(context.Background(), "shop", "product", "1")
	require.NoError(t, err)
	assert.Equal(t, 0, b.RetryCount)
	assert.NotEqual(t, binding.StatusFailed, b.Status)
	assert.Empty(t, b.LeaseOwner, "lease released")

	srv.ClearFaults()
	res, err := exp.Export(context.Background(), "1")
	require.NoError(t, err, "not ErrTooManyRetries")
	assert.Equal(t, report.Created, res.Action)
}

// Once ctx is done the batch starts no more records, and records it cut short are not
// counted as failed.
func TestBatchStopsStartingRecordsOnCancel(t *testing.T) {
	srv := fakeapi.New()
	defer srv.Close()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	var ids []string
	for i := range 50 {
		id := strconv.Itoa(i + 1)
		store.Put(id, product{Name: "P" + id})
		ids = append(ids, id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doer := &hookDoer{Doer: newClient(t, srv.URL), method: "POST", after: func(n int) {
		if n == 3 {
			cancel()
		}
	}}
	exp, err := exporter.New(doer, bs, store, "shop", "product", "/products", mapProduct, quiet())
	require.NoError(t, err)
	var progress []int
	batch, err := exporter.NewBatch(exp, exporter.WithConcurrency(1), exporter.WithChunkSize(20),
		exporter.WithProgress(func(done, _ int) { progress = append(progress, done) }))
	require.NoError(t, err)

	sum, err := batch.Export(ctx, ids)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 3, sum.Created, "the third create finished remotely and is bound")
	assert.Equal(t, 0, sum.Failed, "records never started are not failures")
	assert.Empty(t, sum.Errors)
	assert.Empty(t, progress, "no chunk finished")
	assert.Equal(t, 3, srv.Stats().CreateRequests, "nothing started after the cancel")
	failed := 0
	for b, err := range bs.List(context.Background(), binding.Filter{Statuses: []binding.Status{binding.StatusFailed}}) {
		require.NoError(t, err)
		failed++
		t.Logf("failed binding %+v", b)
	}
	assert.Zero(t, failed)
}

// The ID path must lead to a string or a number: a path that stops at an object would
// otherwise bind the object's JSON as the external ID.
func TestExportIDPathMustBeScalar(t *testing.T) {
	srv := fakeapi.New()
	defer srv.Close()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "A"})
	mapNested := func(_ context.Context, p product, _ binding.Binding, _ bool) (any, error) {
		return map[string]any{"name": p.Name, "meta": map[string]any{"id": 7}, "tags": []string{"x"}, "ok": true, "blank": ""}, nil
	}
	for _, path := range []string{"meta", "tags", "ok", "blank", "missing"} {
		t.Run(path, func(t *testing.T) {
			bs := binding.NewMemory()
			exp, err := exporter.New(newClient(t, srv.URL), bs, store, "shop", "product", "/products", mapNested,
				exporter.WithIDPath(path), quiet())
			require.NoError(t, err)
			res, err := exp.Export(context.Background(), "1")
			require.ErrorIs(t, err, report.ErrNoExternalID)
			assert.Contains(t, err.Error(), "WithIDPath")
			assert.Empty(t, res.ExternalID)
			b, err := bs.GetByLocal(context.Background(), "shop", "product", "1")
			require.NoError(t, err)
			assert.Empty(t, b.ExternalID)
		})
	}
	exp, err := exporter.New(newClient(t, srv.URL), binding.NewMemory(), store, "shop", "product", "/products", mapNested,
		exporter.WithIDPath("meta.id"), quiet())
	require.NoError(t, err)
	res, err := exp.Export(context.Background(), "1")
	require.NoError(t, err)
	assert.Equal(t, "7", res.ExternalID, "a nested number is fine")
}

// Deleting a no-export record never writes to the remote side.
func TestDeleteNoExportLeavesRemoteAlone(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	e.store.Put("1", product{Name: "A"})
	r, err := e.exp.Export(ctx, "1")
	require.NoError(t, err)
	b := r.Binding
	b.NoExport = true
	_, err = e.bs.Upsert(ctx, b)
	require.NoError(t, err)

	res, err := e.exp.Delete(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)
	assert.Equal(t, 1, e.srv.Count("products"))
	assert.Zero(t, e.srv.Stats().Deletes)
	got, err := e.bs.GetByLocal(ctx, "shop", "product", "1")
	require.NoError(t, err)
	assert.Equal(t, r.ExternalID, got.ExternalID, "binding kept")
}

// A remote DELETE that succeeded removes the binding even if ctx ends right after it.
func TestDeleteCancelAfterRemoteDeleteDropsBinding(t *testing.T) {
	srv := fakeapi.New()
	defer srv.Close()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "A"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doer := &hookDoer{Doer: newClient(t, srv.URL), method: "DELETE", after: func(int) { cancel() }}
	exp, err := exporter.New(doer, bs, store, "shop", "product", "/products", mapProduct, quiet())
	require.NoError(t, err)
	_, err = exp.Export(ctx, "1")
	require.NoError(t, err)

	res, err := exp.Delete(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Deleted, res.Action)
	_, err = bs.GetByLocal(context.Background(), "shop", "product", "1")
	require.ErrorIs(t, err, binding.ErrNotFound)
}

// A binding removed by another worker between the lookup and the claim: nothing to do.
type vanishingStore struct{ binding.Store }

func (s vanishingStore) Claim(ctx context.Context, id int64, owner string, ttl time.Duration) (binding.Binding, error) {
	_ = s.Store.Delete(ctx, id)
	return s.Store.Claim(ctx, id, owner, ttl)
}

func TestDeleteBindingGoneWhileClaiming(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	bs := binding.NewMemory()
	_, err := bs.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", LocalID: "1", ExternalID: "5"})
	require.NoError(t, err)
	exp, err := exporter.New(newClient(t, srv.URL), vanishingStore{bs}, local.NewMemory[product](), "shop", "product", "/products", mapProduct, quiet())
	require.NoError(t, err)
	res, err := exp.Delete(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)
	assert.Zero(t, srv.Stats().Requests)
}

// A MapFunc that returns nothing is an error at the map step, before any request.
func TestExportNilPayload(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "A"})
	exp, err := exporter.New(newClient(t, srv.URL), binding.NewMemory(), store, "shop", "product", "/products",
		func(context.Context, product, binding.Binding, bool) (any, error) { return nil, nil }, quiet())
	require.NoError(t, err)
	_, err = exp.Export(ctx, "1")
	var re *report.RecordError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "map", re.Step)
	assert.Contains(t, err.Error(), "ErrSkip")
	assert.Zero(t, srv.Stats().Requests)
}

// A panicking MapFunc fails its record — lease released, binding marked failed — and the
// batch goes on with the others.
func TestExportMapPanic(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	for _, id := range []string{"1", "2", "3"} {
		store.Put(id, product{Name: "P" + id})
	}
	exp, err := exporter.New(newClient(t, srv.URL), bs, store, "shop", "product", "/products",
		func(ctx context.Context, p product, b binding.Binding, create bool) (any, error) {
			if p.Name == "P2" {
				var m map[string]int
				m["boom"]++ // nil map write
			}
			return mapProduct(ctx, p, b, create)
		}, quiet())
	require.NoError(t, err)
	batch, err := exporter.NewBatch(exp)
	require.NoError(t, err)
	sum, err := batch.Export(ctx, []string{"1", "2", "3"})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Created)
	assert.Equal(t, 1, sum.Failed)
	require.Len(t, sum.Errors, 1)
	require.ErrorIs(t, sum.Errors[0], exporter.ErrPanic)
	var re *report.RecordError
	require.ErrorAs(t, sum.Errors[0], &re)
	assert.Equal(t, "2", re.LocalID)
	assert.Equal(t, "map", re.Step)
	b, err := bs.GetByLocal(ctx, "shop", "product", "2")
	require.NoError(t, err)
	assert.Equal(t, binding.StatusFailed, b.Status)
	assert.Empty(t, b.LeaseOwner, "lease released")
}

func TestNewRejectsBadLease(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1")
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	for _, o := range []exporter.Option{
		exporter.WithClaimer(&binding.Claimer{}),
		exporter.WithClaimer(&binding.Claimer{Store: bs, TTL: -time.Second}),
		exporter.WithClaimer(&binding.Claimer{Store: bs, MaxWait: -time.Second}),
	} {
		_, err := exporter.New(c, bs, store, "shop", "product", "/p", mapProduct, o)
		assert.Error(t, err)
	}
	_, err := exporter.New(c, bs, store, "shop", "product", "/p", mapProduct, exporter.WithClaimer(&binding.Claimer{Store: bs, TTL: time.Minute}))
	assert.NoError(t, err, "no wait is allowed")
	_, err = exporter.NewBatch(&exporter.Exporter[product]{}, exporter.WithMaxErrors(-1))
	assert.Error(t, err)
}

// After a remote 404 the record is created again under a new binding — and so a new
// idempotency key: the fake replays a key's first response even for a deleted record, as
// real APIs do, so reusing the old key would bind the deleted record again.
func TestExportRecreateUsesFreshKey(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	e.store.Put("1", product{Name: "A"})
	r1, err := e.exp.Export(ctx, "1")
	require.NoError(t, err)
	ext, _ := strconv.ParseInt(r1.ExternalID, 10, 64)
	deleteRemote(t, e, ext)
	e.store.Put("1", product{Name: "B"})
	r2, err := e.exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Created, r2.Action)
	assert.NotEqual(t, r1.ExternalID, r2.ExternalID)
	assert.Equal(t, 1, e.srv.Count("products"))
	assert.Zero(t, e.srv.Stats().Replays)
	b, err := e.bs.GetByLocal(ctx, "shop", "product", "1")
	require.NoError(t, err)
	assert.Empty(t, b.LeaseOwner, "the new binding's lease is released")
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
