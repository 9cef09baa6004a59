package importer_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/state"
)

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func client(t testing.TB, url string, opts ...adapter.Option) *adapter.Client {
	t.Helper()
	c, err := adapter.New(url, append([]adapter.Option{adapter.WithClock(time.Now, noSleep), adapter.WithRetries(6),
		adapter.WithRetryWait(time.Millisecond, time.Millisecond), adapter.WithTimeouts(0, 2*time.Second)}, opts...)...)
	require.NoError(t, err)
	return c
}

func TestBatchImportUnderFaults(t *testing.T) {
	for _, style := range []struct {
		name string
		p    adapter.Paginator
	}{
		{"cursor", adapter.Cursor("next_cursor", "cursor")},
		{"link", adapter.LinkHeader()},
		{"next-url", adapter.NextURL("next")},
	} {
		t.Run(style.name, func(t *testing.T) {
			ctx := context.Background()
			srv := fakeapi.New(fakeapi.WithClock(tick()))
			defer srv.Close()
			seedProducts(srv, 600)
			srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: 503, Every: 5, Burst: 2})
			srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultRateLimit, Every: 7})
			srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: time.Millisecond, Every: 3})
			srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultReset, Every: 11})
			srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultRepeatRecord, Every: 2})
			c := client(t, srv.URL)

			bs := binding.NewMemory()
			st := state.NewMemory()
			store := local.NewMemory[product]()
			imp, err := importer.New(bs, store, "shop", "product", mapProduct, importer.WithFetch(importer.FetchFrom(c, "/products/%s", "")))
			require.NoError(t, err)
			list := importer.ListFrom(c, adapter.Request{Path: "/products", Query: map[string][]string{"limit": {"50"}}}, style.p, "updated_at_min",
				adapter.WithRecordsPath("items"))
			batch, err := importer.NewBatch(imp, list, importer.WithWatermark(st, "products", time.Second), importer.WithConcurrency(4))
			require.NoError(t, err)

			sum, err := batch.Run(ctx)
			require.NoError(t, err)
			require.Empty(t, sum.Errors)
			assert.Equal(t, 600, sum.Created)
			assert.Positive(t, sum.Duplicates, "repeated records were counted as duplicates")
			assert.Zero(t, sum.Updated)
			assert.Positive(t, srv.Stats().Faults)
			assertSame(t, ctx, srv, bs, store)
			for b, err := range bs.List(ctx, binding.Filter{Backend: "shop"}) {
				require.NoError(t, err)
				assert.Equal(t, 0, b.RetryCount)
			}

			srv.Touch("products", 42, map[string]any{"name": "changed"})
			sum, err = batch.Run(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, sum.Updated)
			assert.Equal(t, 600, store.Creates())
			assertSame(t, ctx, srv, bs, store)
		})
	}
}

func TestRecordImportRetryCountsUnderFaults(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	id := srv.Add("products", map[string]any{"name": "A"})
	c := client(t, srv.URL, adapter.WithRetries(1))
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	imp, err := importer.New(bs, store, "shop", "product", mapProduct, importer.WithFetch(importer.FetchFrom(c, "/products/%s", "")))
	require.NoError(t, err)
	ext := "1"
	require.Equal(t, int64(1), id)

	res, err := imp.Import(ctx, ext)
	require.NoError(t, err)
	require.Equal(t, report.Created, res.Action)

	// Longer outages than the client's retries fail the import and count.
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: 502, Burst: 4})
	res, err = imp.Import(ctx, ext)
	require.ErrorIs(t, err, adapter.ErrServer)
	assert.Equal(t, 1, res.Binding.RetryCount)
	res, err = imp.Import(ctx, ext)
	require.ErrorIs(t, err, adapter.ErrServer)
	assert.Equal(t, 2, res.Binding.RetryCount)
	assert.Equal(t, binding.StatusFailed, res.Binding.Status)

	srv.Touch("products", 1, map[string]any{"name": "B"})
	res, err = imp.Import(ctx, ext)
	require.NoError(t, err)
	assert.Equal(t, report.Updated, res.Action)
	assert.Equal(t, 0, res.Binding.RetryCount)
	assert.Equal(t, binding.StatusSuccess, res.Binding.Status)

	_, err = imp.Import(ctx, "999")
	require.ErrorIs(t, err, adapter.ErrNotFound)
	assert.Equal(t, 1, store.Len())
}
