package importer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/depchain"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/state"
)

// httpList walks a fakeapi listing by cursor with plain net/http (no retries).
func httpList(base, resource string, limit int) importer.ListFunc {
	return func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error] {
		return func(yield func(gjson.Result, error) bool) {
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if !since.IsZero() {
				q.Set("updated_at_min", since.Format(time.RFC3339Nano))
			}
			next := base + "/" + resource + "?" + q.Encode()
			for next != "" {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					yield(gjson.Result{}, err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("listing: status %d", resp.StatusCode)
				}
				if err != nil {
					yield(gjson.Result{}, err)
					return
				}
				page := gjson.ParseBytes(b)
				for _, r := range page.Get("items").Array() {
					if !yield(r, nil) {
						return
					}
				}
				next = page.Get("next").String()
			}
		}
	}
}

func tick() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func seedProducts(s *fakeapi.Server, n int) {
	s.Seed("products", n, func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("P%d", i), "sku": fmt.Sprintf("S%d", i)}
	})
}

// assertSame checks that the local store holds exactly the remote records, once each.
func assertSame(t *testing.T, ctx context.Context, s *fakeapi.Server, bs binding.Store, store *local.Memory[product]) {
	t.Helper()
	remote := s.Records("products")
	require.Equal(t, len(remote), store.Len(), "local count == remote count")
	seenLocal := map[string]bool{}
	for _, r := range remote {
		b, err := bs.GetByExternal(ctx, "shop", "product", r.Get("id").String())
		require.NoError(t, err, "binding of %s", r.Get("id"))
		require.Equal(t, binding.StatusSuccess, b.Status)
		require.False(t, seenLocal[b.LocalID], "local %s bound twice", b.LocalID)
		seenLocal[b.LocalID] = true
		v, err := store.Get(ctx, b.LocalID)
		require.NoError(t, err)
		require.Equal(t, r.Get("name").String(), v.Name)
	}
}

func TestBatchFullThenIncremental(t *testing.T) {
	for _, mode := range []string{"bulk", "per-record"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			s := fakeapi.New(fakeapi.WithClock(tick()))
			defer s.Close()
			seedProducts(s, 250)
			bs := binding.NewMemory()
			st := state.NewMemory()
			imp, store := newProducts(t, bs, &source{})
			opts := []importer.BatchOption{importer.WithWatermark(st, "products.updated_at", 0), importer.WithCommitSize(40)}
			if mode == "per-record" {
				opts = append(opts, importer.PerRecord())
			}
			var progress []importer.Summary
			opts = append(opts, importer.WithProgress(func(p importer.Summary) { progress = append(progress, p) }))
			batch, err := importer.NewBatch(imp, httpList(s.URL, "products", 50), opts...)
			require.NoError(t, err)

			sum, err := batch.Run(ctx)
			require.NoError(t, err)
			assert.Equal(t, 250, sum.Created)
			assert.Equal(t, 0, sum.Failed)
			assert.Equal(t, 7, sum.Pages)
			require.Len(t, progress, 7)
			assert.Equal(t, 250, progress[6].Total())
			assertSame(t, ctx, s, bs, store)
			last := s.Records("products")[249].Get("updated_at").String()
			assert.Equal(t, last, sum.Watermark.Format(time.RFC3339Nano))

			// Incremental: only what changed since the watermark is listed.
			s.Touch("products", 3, map[string]any{"name": "P3 renamed"})
			s.Touch("products", 100, map[string]any{"name": "P100 renamed"})
			s.Add("products", map[string]any{"name": "new"})
			sum, err = batch.Run(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, sum.Created)
			assert.Equal(t, 2, sum.Updated)
			assert.Equal(t, 1, sum.Skipped, "the record at the watermark is listed again and skipped")
			assertSame(t, ctx, s, bs, store)
			assert.Equal(t, 251, store.Creates())
		})
	}
}

// cutList yields an error after n records: a run that dies mid-listing.
func cutList(inner importer.ListFunc, n int) importer.ListFunc {
	return func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error] {
		return func(yield func(gjson.Result, error) bool) {
			i := 0
			for r, err := range inner(ctx, since) {
				if err == nil && i == n {
					yield(gjson.Result{}, errors.New("connection lost"))
					return
				}
				i++
				if !yield(r, err) || err != nil {
					return
				}
			}
		}
	}
}

func TestBatchResumesAfterInterruption(t *testing.T) {
	ctx := context.Background()
	s := fakeapi.New(fakeapi.WithClock(tick()))
	defer s.Close()
	seedProducts(s, 100)
	bs := binding.NewMemory()
	st := state.NewMemory()
	imp, store := newProducts(t, bs, &source{})
	cut, err := importer.NewBatch(imp, cutList(httpList(s.URL, "products", 25), 55), importer.WithWatermark(st, "wm", time.Minute), importer.WithCommitSize(20))
	require.NoError(t, err)
	sum, err := cut.Run(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection lost")
	assert.Equal(t, 55, sum.Created, "the partial page is committed too")
	assert.Equal(t, 3, sum.Pages)

	full, err := importer.NewBatch(imp, httpList(s.URL, "products", 25), importer.WithWatermark(st, "wm", time.Minute), importer.WithCommitSize(20))
	require.NoError(t, err)
	sum, err = full.Run(ctx)
	require.NoError(t, err)
	assert.Equal(t, 45, sum.Created)
	assert.Equal(t, 0, sum.Failed)
	assert.Positive(t, sum.Skipped, "the lookback re-lists committed records, which are skipped")
	assertSame(t, ctx, s, bs, store)
	assert.Equal(t, 100, store.Creates())
}

func TestBatchRepeatedRecordsAndConcurrentRuns(t *testing.T) {
	ctx := context.Background()
	s := fakeapi.New(fakeapi.WithClock(tick()))
	defer s.Close()
	seedProducts(s, 200)
	s.Inject(fakeapi.Fault{Kind: fakeapi.FaultRepeatRecord, Every: 2})
	bs := binding.NewMemory()
	imp, store := newProducts(t, bs, &source{}, importer.WithClaimer(&binding.Claimer{Store: bs, Backoff: time.Microsecond, MaxBackoff: time.Millisecond}))
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			var opts []importer.BatchOption
			if i == 2 {
				opts = append(opts, importer.PerRecord())
			}
			batch, err := importer.NewBatch(imp, httpList(s.URL, "products", 30), append(opts, importer.WithCommitSize(17))...)
			if !assert.NoError(t, err) {
				return
			}
			sum, err := batch.Run(ctx)
			assert.NoError(t, err)
			assert.Equal(t, 0, sum.Failed, "%v", sum.Errors)
		})
	}
	wg.Wait()
	assertSame(t, ctx, s, bs, store)
	assert.Equal(t, 200, store.Creates(), "three concurrent runs created each record once")
}

func TestBatchEnqueue(t *testing.T) {
	ctx := context.Background()
	s := fakeapi.New(fakeapi.WithClock(tick()))
	defer s.Close()
	seedProducts(s, 30)
	imp, store := newProducts(t, binding.NewMemory(), &source{})
	var mu sync.Mutex
	var queued []string
	batch, err := importer.NewBatch(imp, httpList(s.URL, "products", 10), importer.WithEnqueue(func(_ context.Context, rec gjson.Result) error {
		mu.Lock()
		defer mu.Unlock()
		if rec.Get("id").Int() == 7 {
			return errors.New("queue full")
		}
		queued = append(queued, rec.Get("id").String())
		return nil
	}))
	require.NoError(t, err)
	sum, err := batch.Run(ctx)
	require.NoError(t, err)
	assert.Equal(t, 29, sum.Enqueued)
	assert.Equal(t, 1, sum.Failed)
	assert.Len(t, queued, 29)
	assert.Equal(t, 0, store.Len())
}

func TestBatchBadOptions(t *testing.T) {
	imp, _ := newProducts(t, binding.NewMemory(), &source{})
	list := httpList("http://127.0.0.1:1", "x", 1)
	for name, opts := range map[string][]importer.BatchOption{
		"page size":      {importer.WithCommitSize(0)},
		"concurrency":    {importer.WithConcurrency(-1)},
		"watermark name": {importer.WithWatermark(state.NewMemory(), "", 0)},
	} {
		_, err := importer.NewBatch(imp, list, opts...)
		assert.Error(t, err, name)
	}
	_, err := importer.NewBatch[product](nil, list)
	assert.Error(t, err)

	st := state.NewMemory()
	require.NoError(t, st.Put(context.Background(), "shop", "wm", []byte("garbage")))
	b, err := importer.NewBatch(imp, list, importer.WithWatermark(st, "wm", 0))
	require.NoError(t, err)
	_, err = b.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "delete it to start over")
}

func TestBatchCancelled(t *testing.T) {
	s := fakeapi.New(fakeapi.WithClock(tick()))
	defer s.Close()
	seedProducts(s, 100)
	st := state.NewMemory()
	imp, store := newProducts(t, binding.NewMemory(), &source{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batch, err := importer.NewBatch(imp, httpList(s.URL, "products", 10), importer.WithCommitSize(10),
		importer.WithWatermark(st, "wm", 0),
		importer.WithProgress(func(p importer.Summary) {
			if p.Total() >= 30 {
				cancel()
			}
		}))
	require.NoError(t, err)
	sum, err := batch.Run(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.GreaterOrEqual(t, sum.Created, 30)
	assert.Less(t, sum.Created, 100)
	wm, err := batch.Watermark(context.Background())
	require.NoError(t, err)
	assert.Equal(t, sum.Watermark, wm)

	// Local records of a page prepared but not committed when the run stopped are bound
	// by the next run, not created again.
	sum, err = batch.Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 100, store.Len())
	assert.Equal(t, 100, store.Creates())
	assert.Zero(t, sum.Failed)
}

// A store without keyed creates makes the batch fall back to the per-record path; that is
// logged once, when the batch is built, not once per page or record.
func TestBatchFallbackLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	imp, err := importer.New(binding.NewMemory(), unkeyed[product]{local.NewMemory[product]()}, "shop", "product", mapProduct,
		importer.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	s := fakeapi.New(fakeapi.WithClock(tick()))
	defer s.Close()
	seedProducts(s, 25)
	batch, err := importer.NewBatch(imp, httpList(s.URL, "products", 10))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := batch.Run(context.Background())
	if err != nil || sum.Created != 25 {
		t.Fatalf("run: %+v, %v", sum, err)
	}
	if n := strings.Count(buf.String(), "no keyed create"); n != 1 {
		t.Fatalf("fallback logged %d times, want once:\n%s", n, buf.String())
	}
}

// unkeyed hides the store's CreateKeyed.
type unkeyed[T any] struct{ local.Store[T] }

// A decoder may keep the context it was given (to finish related work later): the
// dependency chain it carries still names that decoder's record after the run, whatever
// the later pages imported.
func TestBatchKeptDecodeContextKeepsItsChain(t *testing.T) {
	var mu sync.Mutex
	kept := map[string]context.Context{}
	imp, err := importer.New(binding.NewMemory(), local.NewMemory[product](), "shop", "product",
		func(ctx context.Context, rec gjson.Result, create bool) (product, error) {
			mu.Lock()
			kept[rec.Get("id").String()] = ctx
			mu.Unlock()
			return mapProduct(ctx, rec, create)
		})
	require.NoError(t, err)
	var raws []string
	for i := 1; i <= 40; i++ {
		raws = append(raws, fmt.Sprintf(`{"id":%d,"name":"P%d","updated_at":"2024-01-01T00:00:%02dZ"}`, i, i, i))
	}
	batch, err := importer.NewBatch(imp, sliceList(raws...), importer.WithCommitSize(4), importer.WithConcurrency(3))
	require.NoError(t, err)
	sum, err := batch.Run(context.Background())
	require.NoError(t, err)
	require.Equal(t, 40, sum.Created)
	require.Len(t, kept, 40)
	for id, ctx := range kept {
		require.True(t, depchain.Has(ctx, depchain.Import, "shop", "product", id), "record %s's context lost its chain", id)
		other := "1"
		if id == "1" {
			other = "2"
		}
		require.False(t, depchain.Has(ctx, depchain.Import, "shop", "product", other), "record %s's context names record %s", id, other)
	}
}

// snapshotBatches is a binding store whose UpsertBatch takes its time and reports a batch
// that changed while it ran.
type snapshotBatches struct {
	binding.Store
	changed atomic.Int64
}

func (s *snapshotBatches) UpsertBatch(ctx context.Context, bs []binding.Binding) ([]binding.Binding, error) {
	snap := slices.Clone(bs)
	time.Sleep(200 * time.Microsecond) // widens the window for a later page to write into bs
	out, err := s.Store.UpsertBatch(ctx, bs)
	if !slices.Equal(snap, bs) {
		s.changed.Add(1)
	}
	return out, err
}

// A run reuses the memory of finished pages for the pages it prepares next: a page's
// commit, still running while later pages are listed and imported, must not see its
// bindings change, and every record ends up bound to its own local record.
func TestBatchCommitKeepsItsBindingsWhilePagesAreReused(t *testing.T) {
	ctx := context.Background()
	bs := &snapshotBatches{Store: binding.NewMemory()}
	store := local.NewMemory[product]()
	imp, err := importer.New(bs, store, "shop", "product", mapProduct)
	require.NoError(t, err)
	const n = 600
	var raws []string
	for i := 1; i <= n; i++ {
		raws = append(raws, fmt.Sprintf(`{"id":%d,"name":"P%d","updated_at":"2024-01-01T00:%02d:%02dZ"}`, i, i, i/60, i%60))
	}
	batch, err := importer.NewBatch(imp, sliceList(raws...), importer.WithCommitSize(7), importer.WithConcurrency(2))
	require.NoError(t, err)
	sum, err := batch.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, n, sum.Created)
	require.Zero(t, bs.changed.Load(), "a commit's bindings changed while it ran")
	for i := 1; i <= n; i++ {
		b, err := bs.GetByExternal(ctx, "shop", "product", strconv.Itoa(i))
		require.NoError(t, err)
		p, err := store.Get(ctx, b.LocalID)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("P", i), p.Name, "record %d is bound to another record's local copy", i)
	}
}
