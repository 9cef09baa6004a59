package backend_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/state"
)

type pfItem struct {
	Name  string `json:"name"`
	SKU   string `json:"sku"`
	Price string `json:"price"`
}

func pfModel(items *local.Memory[pfItem], in backend.Import) backend.Option {
	in.Rules = []mapper.Rule{mapper.Direct("name", "name"), mapper.Direct("sku", "sku"), mapper.Direct("price", "price")}
	return backend.WithModel(backend.Model[pfItem]{Name: "item", Local: items, Import: &in})
}

func pfContents(t *testing.T, items *local.Memory[pfItem]) []pfItem {
	t.Helper()
	var all []pfItem
	for _, id := range items.IDs() {
		v, err := items.Get(t.Context(), id)
		require.NoError(t, err)
		all = append(all, v)
	}
	slices.SortFunc(all, func(a, b pfItem) int { return strings.Compare(a.SKU, b.SKU) })
	return all
}

// A page-number listing imported with Prefetch 4 gives exactly the records imported with
// Prefetch 1, for a short last page and for a total that is a multiple of the page size.
func TestImportPrefetchSameRecords(t *testing.T) {
	for _, total := range []int{95, 100, 7} {
		t.Run(strconv.Itoa(total), func(t *testing.T) {
			api := fakeapi.New(fakeapi.WithPagination(fakeapi.StylePageNumber), fakeapi.WithPageLimits(10, 10))
			defer api.Close()
			api.Synthetic("items", total)
			var got [][]pfItem
			for _, prefetch := range []int{1, 4} {
				items := local.NewMemory[pfItem]()
				b, err := backend.New(backend.Config{Name: "pf", BaseURL: api.URL}, pfModel(items, backend.Import{
					List: adapter.Request{Path: "/items"}, Records: "items",
					Pages: adapter.PageNumber("page", 1, "per_page", 10), Prefetch: prefetch,
				}))
				require.NoError(t, err)
				n, err := b.Sync(t.Context(), "import_item")
				require.NoError(t, err)
				assert.Equal(t, total, n.Created, "prefetch %d", prefetch)
				assert.Equal(t, total, items.Len())
				assert.Equal(t, total, items.Creates(), "a record created twice")
				got = append(got, pfContents(t, items))
			}
			assert.Equal(t, got[0], got[1])
		})
	}
}

// pfListing serves 100 records, oldest first, updated one second apart, by page number
// (10 per page), filtered by updated_at_min; the page numbered failPage fails with a 400.
// With overlap set, page 1 is answered only once page 2 was asked for (or after 10 s),
// and overlapped records whether that happened: the pages were requested concurrently.
type pfListing struct {
	base       time.Time
	failPage   atomic.Int32
	overlap    atomic.Bool
	page2      chan struct{}
	page2Once  sync.Once
	overlapped atomic.Bool
}

func (l *pfListing) updated(i int) time.Time { return l.base.Add(time.Duration(i) * time.Second) }

func (l *pfListing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	switch {
	case l.overlap.Load() && page == 2:
		l.page2Once.Do(func() { close(l.page2) })
	case l.overlap.Load() && page == 1:
		select {
		case <-l.page2:
			l.overlapped.Store(true)
		case <-time.After(10 * time.Second):
		}
	}
	if page == int(l.failPage.Load()) {
		http.Error(w, `{"error":"bad page"}`, http.StatusBadRequest)
		return
	}
	var since time.Time
	if s := q.Get("updated_at_min"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	var recs []string
	for i := 1; i <= 100; i++ {
		if !l.updated(i).Before(since) {
			recs = append(recs, fmt.Sprintf(`{"id":%d,"name":"item %d","sku":"SKU-%03d","price":"%d.00","updated_at":%q}`,
				i, i, i, i, l.updated(i).Format(time.RFC3339Nano)))
		}
	}
	from, to := min((page-1)*10, len(recs)), min(page*10, len(recs))
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"items":[%s]}`, strings.Join(recs[from:to], ","))
}

// An incremental import with Prefetch 4 whose page 5 fails stops the watermark before
// that page, exactly where a sequential import stops it, though pages after it were
// requested; the next run resumes from there and imports the rest.
func TestImportPrefetchWatermarkStopsBeforeTheFailedPage(t *testing.T) {
	ctx := context.Background()
	type outcome struct {
		wm      time.Time
		created int
		skus    []string
	}
	run := func(prefetch int) outcome {
		l := &pfListing{base: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), page2: make(chan struct{})}
		l.overlap.Store(prefetch > 1)
		l.failPage.Store(5)
		srv := httptest.NewServer(l)
		defer srv.Close()
		items, st := local.NewMemory[pfItem](), state.NewMemory()
		b, err := backend.New(backend.Config{Name: "pf", BaseURL: srv.URL}, backend.WithStores(binding.NewMemory(), st),
			pfModel(items, backend.Import{
				List: adapter.Request{Path: "/items"}, Records: "items", Since: "updated_at_min", Lookback: time.Nanosecond,
				Pages: adapter.PageNumber("page", 1, "per_page", 10), Prefetch: prefetch, CommitSize: 10,
			}))
		require.NoError(t, err)

		n, err := b.Sync(ctx, "import_item")
		require.Error(t, err, "prefetch %d", prefetch)
		assert.ErrorIs(t, err, adapter.ErrClientError)
		v, err := st.Get(ctx, "pf", "item.watermark")
		require.NoError(t, err, "no watermark after 4 good pages")
		wm, err := time.Parse(time.RFC3339Nano, string(v))
		require.NoError(t, err)
		assert.True(t, wm.Before(l.updated(41)), "prefetch %d: the watermark %s passed the failed page (first record %s)", prefetch, wm, l.updated(41))
		out := outcome{wm: wm, created: n.Created}
		for _, it := range pfContents(t, items) {
			out.skus = append(out.skus, it.SKU)
		}
		if prefetch > 1 {
			assert.True(t, l.overlapped.Load(), "pages 1 and 2 were not requested at once: prefetch off?")
		}

		// The next run starts at the watermark and imports the rest.
		l.failPage.Store(0)
		l.overlap.Store(false)
		n, err = b.Sync(ctx, "import_item")
		require.NoError(t, err)
		assert.Equal(t, 100, items.Len(), "prefetch %d", prefetch)
		assert.Equal(t, 100, items.Creates(), "a record created twice")
		v, err = st.Get(ctx, "pf", "item.watermark")
		require.NoError(t, err)
		assert.Equal(t, l.updated(100).Format(time.RFC3339Nano), string(v))
		return out
	}
	seq, pre := run(1), run(4)
	assert.Equal(t, seq, pre, "prefetching changed what the failed run committed")
	var want []string
	for i := 1; i <= 40; i++ {
		want = append(want, fmt.Sprintf("SKU-%03d", i))
	}
	assert.Equal(t, want, pre.skus, "the failed run imported other records than pages 1 to 4")
}
