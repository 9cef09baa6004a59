package importer_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/state"
)

// sliceList lists the given raw records, in order, whatever the watermark.
func sliceList(raws ...string) importer.ListFunc {
	return func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error] {
		return func(yield func(gjson.Result, error) bool) {
			for _, raw := range raws {
				if !yield(gjson.Parse(raw), nil) {
					return
				}
			}
		}
	}
}

// sinceList lists the records updated at or after since, like an API with updated_at_min.
func sinceList(raws func() []string) importer.ListFunc {
	return func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error] {
		return func(yield func(gjson.Result, error) bool) {
			for _, raw := range raws() {
				rec := gjson.Parse(raw)
				if !since.IsZero() && rec.Get("updated_at").Time().Before(since) {
					continue
				}
				if !yield(rec, nil) {
					return
				}
			}
		}
	}
}

func rec(id int, name string, minute int) string {
	return fmt.Sprintf(`{"id":%d,"name":%q,"updated_at":"2024-01-01T00:%02d:00Z"}`, id, name, minute)
}

func minute(m int) time.Time { return time.Date(2024, 1, 1, 0, m, 0, 0, time.UTC) }

func localName(t *testing.T, bs binding.Store, store *local.Memory[product], ext string) string {
	t.Helper()
	b, err := bs.GetByExternal(context.Background(), "shop", "product", ext)
	require.NoError(t, err, "binding of %s", ext)
	v, err := store.Get(context.Background(), b.LocalID)
	require.NoError(t, err, "local record of %s", ext)
	return v.Name
}

var modes = []string{"bulk", "per-record"}

func modeOpts(mode string, opts ...importer.BatchOption) []importer.BatchOption {
	if mode == "per-record" {
		opts = append(opts, importer.PerRecord())
	}
	return opts
}

// Defect 3: a record listed twice in one commit batch keeps its newest version, by
// updated-at then by position, and the repeat is a duplicate, not a skip.
func TestBatchRepeatInOnePageNewestWins(t *testing.T) {
	for _, mode := range modes {
		for name, tc := range map[string]struct {
			list []string
			want string
		}{
			"older first":   {[]string{rec(1, "old", 1), rec(2, "B", 2), rec(1, "new", 3)}, "new"},
			"newer first":   {[]string{rec(1, "new", 3), rec(2, "B", 2), rec(1, "old", 1)}, "new"},
			"same time":     {[]string{rec(1, "first", 3), rec(2, "B", 2), rec(1, "second", 3)}, "second"},
			"exact repeats": {[]string{rec(1, "new", 3), rec(2, "B", 2), rec(1, "new", 3)}, "new"},
		} {
			t.Run(mode+"/"+name, func(t *testing.T) {
				ctx := context.Background()
				bs := binding.NewMemory()
				st := state.NewMemory()
				imp, store := newProducts(t, bs, &source{})
				batch, err := importer.NewBatch(imp, sliceList(tc.list...), modeOpts(mode, importer.WithWatermark(st, "wm", 0))...)
				require.NoError(t, err)
				sum, err := batch.Run(ctx)
				require.NoError(t, err)
				assert.Equal(t, 2, sum.Created)
				assert.Equal(t, 0, sum.Updated)
				assert.Equal(t, 0, sum.Skipped)
				assert.Equal(t, 1, sum.Duplicates)
				assert.Equal(t, 3, sum.Total())
				assert.Equal(t, tc.want, localName(t, bs, store, "1"))
				assert.True(t, minute(3).Equal(sum.Watermark), "watermark %s", sum.Watermark)
				assert.Equal(t, 2, store.Creates())
				assert.Equal(t, 0, store.Updates())
			})
		}
	}
}

// Defect 3, across pages: a repeat in a later commit batch of the same run never brings an
// older version back, and counts as a duplicate unless it is newer.
func TestBatchRepeatAcrossPages(t *testing.T) {
	for _, mode := range modes {
		for name, tc := range map[string]struct {
			list              []string
			want              string
			updated, dup      int
			creates, updates_ int
		}{
			"same copy":  {[]string{rec(1, "A", 1), rec(2, "B", 2), rec(2, "B", 2), rec(3, "C", 3)}, "B", 0, 1, 3, 0},
			"older copy": {[]string{rec(1, "A", 1), rec(2, "B", 2), rec(2, "B-old", 1), rec(3, "C", 3)}, "B", 0, 1, 3, 0},
			"newer copy": {[]string{rec(1, "A", 1), rec(2, "B", 2), rec(3, "C", 3), rec(2, "B-new", 4)}, "B-new", 1, 0, 3, 1},
			"far apart":  {[]string{rec(1, "A", 1), rec(2, "B", 2), rec(3, "C", 3), rec(4, "D", 4), rec(5, "E", 5), rec(2, "B", 2)}, "B", 0, 1, 5, 0},
		} {
			t.Run(mode+"/"+name, func(t *testing.T) {
				ctx := context.Background()
				bs := binding.NewMemory()
				imp, store := newProducts(t, bs, &source{}, importer.WithClock(tick()))
				batch, err := importer.NewBatch(imp, sliceList(tc.list...), modeOpts(mode, importer.WithCommitSize(2))...)
				require.NoError(t, err)
				sum, err := batch.Run(ctx)
				require.NoError(t, err)
				assert.Equal(t, tc.creates, sum.Created)
				assert.Equal(t, tc.updated, sum.Updated)
				assert.Equal(t, tc.dup, sum.Duplicates)
				assert.Equal(t, 0, sum.Skipped)
				assert.Equal(t, len(tc.list), sum.Total())
				assert.Equal(t, tc.want, localName(t, bs, store, "2"))
				assert.Equal(t, tc.creates, store.Creates())
				assert.Equal(t, tc.updates_, store.Updates())
			})
		}
	}
}

// countingList counts the records a listing yields.
func countingList(inner importer.ListFunc, n *atomic.Int64) importer.ListFunc {
	return func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error] {
		return func(yield func(gjson.Result, error) bool) {
			for r, err := range inner(ctx, since) {
				if err == nil {
					n.Add(1)
				}
				if !yield(r, err) {
					return
				}
			}
		}
	}
}

// Defect 8: a fresh import whose commit batch equals the API page size, over an API that
// repeats the last record of a page at the start of the next, updates nothing.
func TestBatchFreshImportCountsWithRepeatsAtPageEdges(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			s := fakeapi.New(fakeapi.WithClock(tick()))
			defer s.Close()
			seedProducts(s, 95)
			s.Inject(fakeapi.Fault{Kind: fakeapi.FaultRepeatRecord, Every: 1})
			bs := binding.NewMemory()
			imp, store := newProducts(t, bs, &source{})
			var listed atomic.Int64
			batch, err := importer.NewBatch(imp, countingList(httpList(s.URL, "products", 10), &listed), modeOpts(mode, importer.WithCommitSize(10))...)
			require.NoError(t, err)
			sum, err := batch.Run(ctx)
			require.NoError(t, err)
			assert.Equal(t, 95, sum.Created)
			assert.Equal(t, 0, sum.Updated, "a fresh import updates nothing")
			assert.Equal(t, 0, sum.Skipped)
			assert.Positive(t, sum.Duplicates)
			assert.Equal(t, int(listed.Load()), sum.Total(), "every listed record is counted once: %+v", sum.Counts)
			assertSame(t, ctx, s, bs, store)
		})
	}
}

// Defect 4: a record whose mapping fails does not pin the watermark; it stays a failed
// binding and RetryFailed imports it once the mapping is fixed.
func TestBatchPermanentFailureDoesNotPinWatermark(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			var broken atomic.Bool
			broken.Store(true)
			bs := binding.NewMemory()
			st := state.NewMemory()
			src := &source{}
			var raws []string
			for i := 1; i <= 30; i++ {
				raws = append(raws, rec(i, fmt.Sprintf("P%d", i), i))
				src.put(fmt.Sprint(i), rec(i, fmt.Sprintf("P%d", i), i))
			}
			store := local.NewMemory[product]()
			imp, err := importer.New(bs, store, "shop", "product", func(ctx context.Context, r gjson.Result, create bool) (product, error) {
				if broken.Load() && r.Get("id").Int() == 12 {
					return product{}, errors.New("sku is invalid")
				}
				return mapProduct(ctx, r, create)
			}, importer.WithFetch(src.fetch))
			require.NoError(t, err)
			batch, err := importer.NewBatch(imp, sinceList(func() []string { return raws }), modeOpts(mode, importer.WithWatermark(st, "wm", 0), importer.WithCommitSize(10))...)
			require.NoError(t, err)

			sum, err := batch.Run(ctx)
			require.NoError(t, err)
			assert.Equal(t, 29, sum.Created)
			assert.Equal(t, 1, sum.Failed)
			assert.True(t, minute(30).Equal(sum.Watermark), "the watermark moved past the failed record: %s", sum.Watermark)
			b, err := bs.GetByExternal(ctx, "shop", "product", "12")
			require.NoError(t, err)
			assert.Equal(t, binding.StatusFailed, b.Status)
			assert.Equal(t, 1, b.RetryCount)
			assert.Contains(t, b.LastError, "sku is invalid")

			// The next run lists only what is at the watermark.
			sum, err = batch.Run(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, sum.Total())

			broken.Store(false)
			sum, err = imp.RetryFailed(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, sum.Created)
			assert.Equal(t, 1, sum.Total())
			b, _ = bs.GetByExternal(ctx, "shop", "product", "12")
			assert.Equal(t, binding.StatusSuccess, b.Status)
			assert.Equal(t, 0, b.RetryCount)
			assert.Equal(t, "P12", localName(t, bs, store, "12"))
		})
	}
}

// transientStore fails creates of one record with a server error until healed.
type transientStore struct {
	*local.Memory[product]
	bad    string
	healed atomic.Bool
}

func (s *transientStore) CreateKeyed(ctx context.Context, key string, v product) (string, bool, error) {
	if !s.healed.Load() && v.Name == s.bad {
		return "", false, fmt.Errorf("writing %s: %w", v.Name, adapter.ErrServer)
	}
	return s.Memory.CreateKeyed(ctx, key, v)
}

// Defect 4: a transient failure holds the watermark for three consecutive runs at most.
func TestBatchTransientFailureHoldsWatermarkThreeRuns(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	st := state.NewMemory()
	var raws []string
	for i := 1; i <= 20; i++ {
		raws = append(raws, rec(i, fmt.Sprintf("P%d", i), i))
	}
	store := &transientStore{Memory: local.NewMemory[product](), bad: "P7"}
	imp, err := importer.New(bs, store, "shop", "product", mapProduct)
	require.NoError(t, err)
	for run := 1; run <= 4; run++ {
		// A new Batch each run: what bounds the hold must be persisted.
		batch, err := importer.NewBatch(imp, sinceList(func() []string { return raws }), importer.WithWatermark(st, "wm", 0), importer.WithCommitSize(5))
		require.NoError(t, err)
		sum, err := batch.Run(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, sum.Failed, "run %d", run)
		if run <= 3 {
			assert.True(t, minute(7).Equal(sum.Watermark), "run %d holds at the failed record: %s", run, sum.Watermark)
		} else {
			assert.True(t, minute(20).Equal(sum.Watermark), "run %d moves past it: %s", run, sum.Watermark)
		}
	}
	b, err := bs.GetByExternal(ctx, "shop", "product", "7")
	require.NoError(t, err)
	assert.Equal(t, binding.StatusFailed, b.Status)
	assert.Equal(t, 4, b.RetryCount)

	// The hold count starts again after a run that was not held: a new transient failure
	// holds again.
	store.healed.Store(true)
	raws = append(raws, rec(21, "P21", 21), rec(22, "P22", 22))
	store.bad = "P21"
	store.healed.Store(false)
	batch, err := importer.NewBatch(imp, sinceList(func() []string { return raws }), importer.WithWatermark(st, "wm", 0))
	require.NoError(t, err)
	sum, err := batch.Run(ctx)
	require.NoError(t, err)
	assert.True(t, minute(21).Equal(sum.Watermark), "held again: %s", sum.Watermark)
}

// Defect 4: RetryFailed respects the retry limit unless forced and leaves export failures
// to the exporter.
func TestRetryFailed(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	src := &source{}
	src.put("1", rec(1, "A", 1))
	src.put("2", rec(2, "B", 2))
	var broken atomic.Bool
	broken.Store(true)
	store := local.NewMemory[product]()
	imp, err := importer.New(bs, store, "shop", "product", func(ctx context.Context, r gjson.Result, create bool) (product, error) {
		if broken.Load() {
			return product{}, errors.New("mapping is broken")
		}
		return mapProduct(ctx, r, create)
	}, importer.WithFetch(src.fetch), importer.WithMaxRetries(2))
	require.NoError(t, err)
	for range 2 {
		_, err = imp.Import(ctx, "1")
		require.Error(t, err)
	}
	_, err = imp.Import(ctx, "2")
	require.Error(t, err)
	// A failed export of the same model: not the importer's to retry.
	eb, _, err := bs.Ensure(ctx, binding.Binding{Backend: "shop", Model: "product", LocalID: "99", ExternalID: "3"})
	require.NoError(t, err)
	_, err = bs.MarkFailed(ctx, eb.ID, binding.Failure{Error: `exporting shop product local "99" (create): 500`})
	require.NoError(t, err)

	broken.Store(false)
	sum, err := imp.RetryFailed(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Created, "record 1 used its retries")
	assert.Equal(t, 1, sum.Total())
	sum, err = imp.RetryFailed(ctx, importer.Force())
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Created)
	assert.Equal(t, 1, sum.Total())
	assert.Equal(t, "A", localName(t, bs, store, "1"))
	eb, _ = bs.Get(ctx, eb.ID)
	assert.Equal(t, binding.StatusFailed, eb.Status, "the export failure is left alone")
}

// existCounting counts Existing and Get calls on a Memory store.
type existCounting struct {
	*local.Memory[product]
	existing, gets atomic.Int64
}

func (s *existCounting) Get(ctx context.Context, id string) (product, error) {
	s.gets.Add(1)
	return s.Memory.Get(ctx, id)
}

func (s *existCounting) Existing(ctx context.Context, ids []string) (map[string]struct{}, error) {
	s.existing.Add(1)
	return s.Memory.Existing(ctx, ids)
}

// keyedOnly is a store with keyed creates but no batched existence check.
type keyedOnly struct{ *existCounting }

func (k keyedOnly) Existing() {} // shadows the method: keyedOnly is no ExistenceChecker

// Defect 7: a local record the app deleted is recreated and rebound by a full walk that
// would otherwise skip it as unchanged, with one existence check per page.
func TestBatchRecreatesDeletedLocal(t *testing.T) {
	for _, variant := range []string{"checker", "get", "per-record"} {
		t.Run(variant, func(t *testing.T) {
			ctx := context.Background()
			bs := binding.NewMemory()
			mem := &existCounting{Memory: local.NewMemory[product]()}
			var store local.Store[product] = mem
			if variant == "get" {
				store = keyedOnly{mem}
			}
			imp, err := importer.New(bs, store, "shop", "product", mapProduct)
			require.NoError(t, err)
			var raws []string
			for i := 1; i <= 20; i++ {
				raws = append(raws, rec(i, fmt.Sprintf("P%d", i), i))
			}
			batch, err := importer.NewBatch(imp, sliceList(raws...), modeOpts(variant, importer.WithCommitSize(10))...)
			require.NoError(t, err)
			_, err = batch.Run(ctx)
			require.NoError(t, err)
			b3, err := bs.GetByExternal(ctx, "shop", "product", "3")
			require.NoError(t, err)
			require.NoError(t, mem.Delete(ctx, b3.LocalID))
			b15, _ := bs.GetByExternal(ctx, "shop", "product", "15")
			require.NoError(t, mem.Delete(ctx, b15.LocalID))
			mem.existing.Store(0)
			mem.gets.Store(0)

			sum, err := batch.Run(ctx)
			require.NoError(t, err)
			assert.Equal(t, 2, sum.Created)
			assert.Equal(t, 18, sum.Skipped)
			assert.Equal(t, "P3", localName(t, bs, mem.Memory, "3"))
			assert.Equal(t, "P15", localName(t, bs, mem.Memory, "15"))
			assert.Equal(t, 20, mem.Len())
			switch variant {
			case "get":
				assert.Equal(t, int64(20), mem.gets.Load(), "one Get per record that would be skipped")
			default:
				assert.Equal(t, int64(2), mem.existing.Load(), "one existence check per page")
				assert.Zero(t, mem.gets.Load())
			}
		})
	}
}

// Defect 7: one record's import notices the deleted local record.
func TestImportRecreatesDeletedLocalWhenUnchanged(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	src := &source{}
	src.put("c1", `{"id":"c1","name":"Ann","updated_at":"2024-01-01T00:00:00Z"}`)
	customerStore := local.NewMemory[product]()
	customers, err := importer.New(bs, customerStore, "shop", "customer", mapProduct, importer.WithFetch(src.fetch))
	require.NoError(t, err)

	r1, err := customers.Import(ctx, "c1")
	require.NoError(t, err)
	require.NoError(t, customerStore.Delete(ctx, r1.LocalID))
	r2, err := customers.Import(ctx, "c1") // unchanged upstream
	require.NoError(t, err)
	assert.Equal(t, report.Created, r2.Action)
	assert.NotEqual(t, r1.LocalID, r2.LocalID)
	_, err = customerStore.Get(ctx, r2.LocalID)
	require.NoError(t, err)
	assert.Equal(t, 2, customerStore.Creates())
}

// Defect 10: a fetch cut short by ctx is no failure, and a failed fetch is recorded only
// under the binding's lease.
func TestImportFetchCancelledOrLeased(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	src := &source{}
	src.put("5", rec(5, "F", 5))
	var cancel context.CancelFunc
	var failFetch atomic.Bool
	fetch := func(ctx context.Context, id string) (gjson.Result, error) {
		if cancel != nil {
			cancel()
			return gjson.Result{}, fmt.Errorf("fetching %s: %w", id, ctx.Err())
		}
		if failFetch.Load() {
			return gjson.Result{}, fmt.Errorf("fetching %s: %w", id, adapter.ErrServer)
		}
		return src.fetch(ctx, id)
	}
	imp, err := importer.New(bs, local.NewMemory[product](), "shop", "product", mapProduct, importer.WithFetch(fetch))
	require.NoError(t, err)
	_, err = imp.Import(ctx, "5")
	require.NoError(t, err)

	cctx, c := context.WithCancel(ctx)
	cancel = c
	res, err := imp.Import(cctx, "5")
	require.ErrorIs(t, err, context.Canceled)
	assert.NotEqual(t, report.Failed, res.Action, "a shutdown is not a failure")
	b, _ := bs.GetByExternal(ctx, "shop", "product", "5")
	assert.Equal(t, binding.StatusSuccess, b.Status)
	assert.Equal(t, 0, b.RetryCount)
	cancel = nil

	// Someone else holds the lease: the failure is not written over their work.
	_, err = bs.Claim(ctx, b.ID, "someone-else", time.Hour)
	require.NoError(t, err)
	failFetch.Store(true)
	_, err = imp.Import(ctx, "5")
	require.ErrorIs(t, err, adapter.ErrServer)
	b, _ = bs.GetByExternal(ctx, "shop", "product", "5")
	assert.Equal(t, binding.StatusSuccess, b.Status)
	assert.Equal(t, 0, b.RetryCount)
	require.NoError(t, bs.Release(ctx, b.ID, "someone-else"))

	// Without a competing lease the failure is counted, and the lease released.
	res, err = imp.Import(ctx, "5")
	require.ErrorIs(t, err, adapter.ErrServer)
	assert.Equal(t, report.Failed, res.Action)
	b, _ = bs.GetByExternal(ctx, "shop", "product", "5")
	assert.Equal(t, binding.StatusFailed, b.Status)
	assert.Equal(t, 1, b.RetryCount)
	assert.Contains(t, b.LastError, `importing shop product "5" (fetch)`)
	assert.Empty(t, b.LeaseOwner)
}

// Defect 10: records of a page done before a shutdown are committed; the rest are not
// failures, and the watermark stops before them.
func TestBatchCancelCommitsWorkDone(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			bs := binding.NewMemory()
			st := state.NewMemory()
			var raws []string
			for i := 1; i <= 30; i++ {
				raws = append(raws, rec(i, fmt.Sprintf("P%d", i), i))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := local.NewMemory[product]()
			imp, err := importer.New(bs, store, "shop", "product", func(ctx context.Context, r gjson.Result, create bool) (product, error) {
				if r.Get("id").Int() == 15 {
					cancel()
					return product{}, ctx.Err()
				}
				return mapProduct(ctx, r, create)
			})
			require.NoError(t, err)
			batch, err := importer.NewBatch(imp, sliceList(raws...), modeOpts(mode, importer.WithCommitSize(10), importer.WithConcurrency(1),
				importer.WithWatermark(st, "wm", 0))...)
			require.NoError(t, err)
			sum, err := batch.Run(ctx)
			require.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, 0, sum.Failed, "a shutdown is not a failure: %v", sum.Errors)
			assert.Equal(t, 14, sum.Created)
			// Inclusive: the next run lists the record cut short (15) again.
			assert.True(t, minute(15).Equal(sum.Watermark), "watermark %s", sum.Watermark)
			for i := 11; i <= 14; i++ {
				b, err := bs.GetByExternal(context.Background(), "shop", "product", fmt.Sprint(i))
				require.NoError(t, err, "record %d of the cut page is bound", i)
				assert.Equal(t, binding.StatusSuccess, b.Status)
			}
			for b, err := range bs.List(context.Background(), binding.Filter{}) {
				require.NoError(t, err)
				assert.Zero(t, b.RetryCount, "binding %s", b.ExternalID)
				assert.NotEqual(t, binding.StatusFailed, b.Status, "binding %s", b.ExternalID)
			}
			assert.False(t, strings.Contains(fmt.Sprint(sum.Errors), "canceled"))
		})
	}
}
