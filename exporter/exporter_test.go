package exporter_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
)

type product struct {
	Name  string
	Price int
	Tags  []string
}

func mapProduct(_ context.Context, p product, _ binding.Binding, _ bool) (any, error) {
	return map[string]any{"name": p.Name, "price": p.Price}, nil
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func newClient(t testing.TB, url string, opts ...adapter.Option) *adapter.Client {
	t.Helper()
	c, err := adapter.New(url, append([]adapter.Option{adapter.WithClock(nil, noSleep), adapter.WithRetries(8), adapter.WithRetryWait(time.Millisecond, time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	return c
}

type env struct {
	srv   *fakeapi.Server
	bs    binding.Store
	store *local.Memory[product]
	exp   *exporter.Exporter[product]
}

func setup(t *testing.T, opts ...exporter.Option) *env {
	t.Helper()
	srv := fakeapi.New()
	t.Cleanup(srv.Close)
	e := &env{srv: srv, bs: binding.NewMemory(), store: local.NewMemory[product]()}
	var err error
	opts = append([]exporter.Option{exporter.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	e.exp, err = exporter.New(newClient(t, srv.URL), e.bs, e.store, "shop", "product", "/products", mapProduct, opts...)
	require.NoError(t, err)
	return e
}

func TestExportCreateUpdateSkip(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	e.store.Put("1", product{Name: "Mug", Price: 5})

	res, err := e.exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	require.NotEmpty(t, res.ExternalID)
	assert.Equal(t, binding.StatusSuccess, res.Binding.Status)
	id, _ := strconv.ParseInt(res.ExternalID, 10, 64)
	remote, ok := e.srv.Record("products", id)
	require.True(t, ok)
	assert.Equal(t, "Mug", remote.Get("name").String())
	key := exporter.IdempotencyKey(res.Binding)
	assert.Equal(t, map[string]int{key: 1}, e.srv.CreateRequestsByKey())

	res, err = e.exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action, "unchanged payload is not sent again")

	e.store.Put("1", product{Name: "Mug", Price: 6})
	res, err = e.exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Updated, res.Action)
	remote, _ = e.srv.Record("products", id)
	assert.Equal(t, int64(6), remote.Get("price").Int())

	res, err = e.exp.Export(ctx, "1", exporter.Force())
	require.NoError(t, err)
	assert.Equal(t, report.Updated, res.Action)
	assert.Equal(t, 1, e.srv.Stats().Creates)
	assert.Equal(t, 2, e.srv.Stats().Updates)
}

func TestExportNoExport(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	e.store.Put("1", product{Name: "Secret"})
	_, err := e.bs.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", LocalID: "1", NoExport: true, Status: binding.StatusPending})
	require.NoError(t, err)
	res, err := e.exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)
	assert.Equal(t, 0, e.srv.Stats().Requests)
}

func TestExportRemote404(t *testing.T) {
	ctx := context.Background()
	t.Run("recreate", func(t *testing.T) {
		e := setup(t)
		e.store.Put("1", product{Name: "A"})
		r1, err := e.exp.Export(ctx, "1")
		require.NoError(t, err)
		ext, _ := strconv.ParseInt(r1.ExternalID, 10, 64)
		deleteRemote(t, e, ext)
		e.store.Put("1", product{Name: "A2"})
		r2, err := e.exp.Export(ctx, "1")
		require.NoError(t, err)
		assert.Equal(t, report.Created, r2.Action)
		assert.NotEqual(t, r1.ExternalID, r2.ExternalID)
		assert.NotEqual(t, exporter.IdempotencyKey(r1.Binding), exporter.IdempotencyKey(r2.Binding), "a new binding, a new key")
		b, err := e.bs.GetByLocal(ctx, "shop", "product", "1")
		require.NoError(t, err)
		assert.Equal(t, r2.ExternalID, b.ExternalID)
		assert.Equal(t, 1, e.srv.Count("products"))
	})
	t.Run("fail", func(t *testing.T) {
		e := setup(t, exporter.FailOnNotFound())
		e.store.Put("1", product{Name: "A"})
		r1, err := e.exp.Export(ctx, "1")
		require.NoError(t, err)
		ext, _ := strconv.ParseInt(r1.ExternalID, 10, 64)
		deleteRemote(t, e, ext)
		e.store.Put("1", product{Name: "A2"})
		res, err := e.exp.Export(ctx, "1")
		require.ErrorIs(t, err, exporter.ErrRemoteGone)
		require.ErrorIs(t, err, adapter.ErrNotFound)
		assert.Equal(t, binding.StatusFailed, res.Binding.Status)
		assert.Equal(t, 1, res.Binding.RetryCount)
	})
}

func deleteRemote(t *testing.T, e *env, id int64) {
	t.Helper()
	c := newClient(t, e.srv.URL)
	_, err := c.Do(context.Background(), &adapter.Request{Method: http.MethodDelete, Path: fmt.Sprintf("/products/%d", id)})
	require.NoError(t, err)
}

// lossyDoer loses the response of the first n POSTs: the remote record exists but the
// caller sees an error — a timeout, or a crash before the binding was written.
type lossyDoer struct {
	adapter.Doer
	mu   sync.Mutex
	lose int
}

func (d *lossyDoer) Do(ctx context.Context, req *adapter.Request) (*adapter.Response, error) {
	resp, err := d.Doer.Do(ctx, req)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil && req.Method == "POST" && d.lose > 0 {
		d.lose--
		return nil, errors.New("connection lost after the request was sent")
	}
	return resp, err
}

func TestExportRetriedCreateReusesKey(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "A"})
	doer := &lossyDoer{Doer: newClient(t, srv.URL), lose: 1}
	exp, err := exporter.New(doer, bs, store, "shop", "product", "/products", mapProduct)
	require.NoError(t, err)
	res, err := exp.Export(ctx, "1")
	require.Error(t, err)
	assert.Equal(t, binding.StatusFailed, res.Binding.Status)
	assert.Equal(t, 1, srv.Count("products"), "created remotely, unknown locally")

	// "Another process after a crash": a fresh exporter over the same bindings.
	exp2, err := exporter.New[product](newClient(t, srv.URL), bs, store, "shop", "product", "/products", mapProduct)
	require.NoError(t, err)
	res, err = exp2.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	assert.Equal(t, 1, srv.Count("products"), "the retried create reused the key")
	assert.Equal(t, 1, srv.Stats().Replays)
	assert.Equal(t, 0, res.Binding.RetryCount)
}

func TestExportResetAfterWriteIsRetriedSafely(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	e.srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultResetAfterWrite, Method: "POST", Burst: 2})
	e.store.Put("1", product{Name: "A"})
	res, err := e.exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	assert.Equal(t, 1, e.srv.Count("products"))
	assert.Equal(t, 3, e.srv.Stats().CreateRequests)
}

func TestExportDelete(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	e.store.Put("1", product{Name: "A"})
	_, err := e.exp.Export(ctx, "1")
	require.NoError(t, err)
	require.NoError(t, e.store.Delete(ctx, "1"))
	res, err := e.exp.Delete(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Deleted, res.Action)
	assert.Equal(t, 0, e.srv.Count("products"))
	_, err = e.bs.GetByLocal(ctx, "shop", "product", "1")
	require.ErrorIs(t, err, binding.ErrNotFound)

	res, err = e.exp.Delete(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action, "nothing bound: nothing to do")

	// Already gone remotely: the binding still goes.
	e.store.Put("2", product{Name: "B"})
	r2, err := e.exp.Export(ctx, "2")
	require.NoError(t, err)
	ext, _ := strconv.ParseInt(r2.ExternalID, 10, 64)
	deleteRemote(t, e, ext)
	res, err = e.exp.Delete(ctx, "2")
	require.NoError(t, err)
	assert.Equal(t, report.Deleted, res.Action)
}

func TestExportFailuresAndSkip(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	srv.RejectWrites(func(_ string, b gjson.Result) string {
		if b.Get("price").Int() < 0 {
			return "price must be positive"
		}
		return ""
	})
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	exp, err := exporter.New(newClient(t, srv.URL), bs, store, "shop", "product", "/products",
		func(ctx context.Context, p product, b binding.Binding, create bool) (any, error) {
			if p.Name == "draft" {
				return nil, report.ErrSkip
			}
			if p.Name == "broken" {
				return nil, errors.New("cannot map")
			}
			return mapProduct(ctx, p, b, create)
		}, exporter.WithMaxRetries(2))
	require.NoError(t, err)
	store.Put("1", product{Name: "neg", Price: -1})
	store.Put("2", product{Name: "draft"})
	store.Put("3", product{Name: "broken"})

	res, err := exp.Export(ctx, "1")
	require.ErrorIs(t, err, adapter.ErrClientError)
	assert.Contains(t, err.Error(), "price must be positive")
	var re *report.RecordError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "create", re.Step)
	assert.Equal(t, 1, res.Binding.RetryCount)
	_, err = exp.Export(ctx, "1")
	require.Error(t, err)
	_, err = exp.Export(ctx, "1")
	require.ErrorIs(t, err, report.ErrTooManyRetries)

	res, err = exp.Export(ctx, "2")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)
	assert.Equal(t, binding.StatusSkipped, res.Binding.Status)

	res, err = exp.Export(ctx, "3")
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "map", re.Step)
	assert.Equal(t, binding.StatusFailed, res.Binding.Status)

	_, err = exp.Export(ctx, "404")
	require.ErrorIs(t, err, local.ErrNotFound)
	_, err = bs.GetByLocal(ctx, "shop", "product", "404")
	require.ErrorIs(t, err, binding.ErrNotFound, "no binding left for a record that does not exist")
	_, err = exp.Export(ctx, "")
	require.Error(t, err)
	assert.Equal(t, 0, srv.Count("products"))
}

func TestExportBadConfig(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1")
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	_, err := exporter.New[product](nil, bs, store, "shop", "product", "/p", mapProduct)
	assert.Error(t, err)
	_, err = exporter.New(c, bs, store, "shop", "product", "", mapProduct)
	assert.Error(t, err)
	_, err = exporter.New(c, bs, store, "shop", "product", "/p", mapProduct, exporter.WithUpdateMethod("POST"))
	assert.Error(t, err)
	_, err = exporter.New(c, bs, store, "shop", "product", "/p", mapProduct, exporter.WithIDPath(""))
	assert.Error(t, err)

	srv := fakeapi.New()
	defer srv.Close()
	exp, err := exporter.New(newClient(t, srv.URL), bs, store, "shop", "product", "/p", mapProduct, exporter.WithIDPath("data.id"))
	require.NoError(t, err)
	store.Put("1", product{Name: "A"})
	_, err = exp.Export(context.Background(), "1")
	require.ErrorIs(t, err, report.ErrNoExternalID)
	assert.Contains(t, err.Error(), "WithIDPath")
}

// The lease alone keeps concurrent exports of one record from creating it twice: the
// server ignores idempotency keys, so they cannot be what saves it.
func TestExportConcurrentSameRecordCreatesOnce(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New(fakeapi.WithoutIdempotency())
	defer srv.Close()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "A"})
	bs := binding.NewMemory()
	exp, err := exporter.New(newClient(t, srv.URL), bs, store, "shop", "product", "/products", mapProduct,
		exporter.WithClaimer(&binding.Claimer{Store: bs, Backoff: time.Microsecond, MaxBackoff: time.Millisecond}),
		exporter.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := exp.Export(ctx, "1", exporter.Force())
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 1, srv.Count("products"))
	assert.Equal(t, 1, srv.Stats().Creates)
	assert.Equal(t, 7, srv.Stats().Updates, "the others waited, then updated the record the first created")
}

func TestBatchExportUnderFaults(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: 503, Every: 7, Burst: 2})
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultRateLimit, Every: 11})
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultReset, Every: 13})
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultResetAfterWrite, Method: "POST", Every: 17})
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: time.Millisecond, Every: 5})
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	var ids []string
	for i := range 250 {
		id := strconv.Itoa(i + 1)
		store.Put(id, product{Name: "P" + id, Price: i})
		ids = append(ids, id)
	}
	exp, err := exporter.New(newClient(t, srv.URL), bs, store, "shop", "product", "/products", mapProduct)
	require.NoError(t, err)
	var progress []int
	batch, err := exporter.NewBatch(exp, exporter.WithConcurrency(8), exporter.WithProgress(func(done, total int) { progress = append(progress, done) }))
	require.NoError(t, err)

	sum, err := batch.Export(ctx, ids)
	require.NoError(t, err)
	require.Empty(t, sum.Errors)
	assert.Equal(t, 250, sum.Created)
	assert.Equal(t, 250, sum.Created+sum.Updated)
	assert.Equal(t, []int{100, 200, 250}, progress)
	assert.Positive(t, srv.Stats().Faults)

	// Remote set == local set, each once.
	assert.Equal(t, 250, srv.Count("products"))
	assert.Equal(t, 250, srv.Stats().Creates)
	for k, n := range srv.CreateRequestsByKey() {
		assert.LessOrEqual(t, n, 8, "key %s", k)
	}
	names := map[string]bool{}
	for _, r := range srv.Records("products") {
		names[r.Get("name").String()] = true
	}
	assert.Len(t, names, 250)
	for _, id := range ids {
		b, err := bs.GetByLocal(ctx, "shop", "product", id)
		require.NoError(t, err)
		assert.Equal(t, binding.StatusSuccess, b.Status)
		assert.Equal(t, 0, b.RetryCount)
	}

	for _, id := range ids[:5] {
		store.Put(id, product{Name: "changed " + id})
	}
	sum, err = batch.Export(ctx, ids)
	require.NoError(t, err)
	assert.Equal(t, 5, sum.Updated)
	assert.Equal(t, 245, sum.Skipped)
	assert.Equal(t, 0, sum.Failed)

	_, err = exporter.NewBatch(exp, exporter.WithChunkSize(0))
	assert.Error(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = batch.Export(cctx, ids)
	assert.ErrorIs(t, err, context.Canceled)
}
