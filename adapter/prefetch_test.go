package adapter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// pfDoer serves a listing from memory through serve, counting the requests and how many
// are in flight at once. delay, when set, is waited (or ctx) before serve is called.
type pfDoer struct {
	serve func(ctx context.Context, q url.Values) (*Response, error)
	delay func() time.Duration

	active, maxActive atomic.Int32
	mu                sync.Mutex
	reqs              []string // query of each request, in arrival order
}

func (m *pfDoer) Do(ctx context.Context, req *Request) (*Response, error) {
	a := m.active.Add(1)
	defer m.active.Add(-1)
	for {
		mx := m.maxActive.Load()
		if a <= mx || m.maxActive.CompareAndSwap(mx, a) {
			break
		}
	}
	m.mu.Lock()
	m.reqs = append(m.reqs, req.Query.Encode())
	m.mu.Unlock()
	if m.delay != nil {
		t := time.NewTimer(m.delay())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	return m.serve(ctx, req.Query)
}

func (m *pfDoer) requests() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reqs)
}

func pfJSON(body string) (*Response, error) {
	return &Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: []byte(body), URL: &url.URL{Scheme: "http", Host: "api.test", Path: "/items"}}, nil
}

// pageNumberList serves total records, size per page (per_page, default size), page
// numbers from 1, as {"items": [...], "total": total}.
func pageNumberList(total, size int) func(context.Context, url.Values) (*Response, error) {
	return func(_ context.Context, q url.Values) (*Response, error) {
		page, err := strconv.Atoi(q.Get("page"))
		if err != nil {
			return nil, fmt.Errorf("bad page %q", q.Get("page"))
		}
		n := size
		if s, err := strconv.Atoi(q.Get("per_page")); err == nil {
			n = s
		}
		from := (page-1)*n + 1
		return pfJSON(fmt.Sprintf(`{"items":%s,"total":%d}`, pgItems(min(from, total+1), min(from+n, total+1)), total))
	}
}

// offsetList serves total records at offset, n per page whatever the limit asked.
func offsetList(total, n int) func(context.Context, url.Values) (*Response, error) {
	return func(_ context.Context, q url.Values) (*Response, error) {
		off, _ := strconv.Atoi(q.Get("offset"))
		return pfJSON(fmt.Sprintf(`{"items":%s}`, pgItems(min(off+1, total+1), min(off+n+1, total+1))))
	}
}

// pfResult is what a walk yielded: the record IDs, then the error if any.
type pfResult struct {
	ids []int
	err string
}

func pfWalk(t *testing.T, d Doer, p Paginator, opts ...PageOption) pfResult {
	t.Helper()
	var r pfResult
	for rec, err := range Records(t.Context(), d, Request{Path: "/items"}, p, append([]PageOption{WithRecordsPath("items")}, opts...)...) {
		if r.err != "" {
			t.Fatalf("yielded after the error %s", r.err)
		}
		if err != nil {
			r.err = err.Error()
			continue
		}
		r.ids = append(r.ids, int(rec.Get("id").Int()))
	}
	return r
}

// TestPrefetchYieldsWhatTheSequentialWalkYields runs every stop rule and failure of the
// sequential walk with and without prefetching, under random latency per request: the
// records, their order and the error must be the same, and the extra requests (pages past
// the end, discarded) at most n-1.
func TestPrefetchYieldsWhatTheSequentialWalkYields(t *testing.T) {
	pageNumber := PageNumber("page", 1, "per_page", 10)
	for _, tc := range []struct {
		name  string
		serve func(context.Context, url.Values) (*Response, error)
		p     Paginator
		opts  []PageOption
		want  pfResult // checked for the sequential walk
	}{
		{name: "short last page", serve: pageNumberList(93, 10), p: pageNumber, want: pfResult{ids: seqIDs(1, 94)}},
		{name: "total a multiple of the page size: empty page", serve: pageNumberList(100, 10), p: pageNumber, want: pfResult{ids: seqIDs(1, 101)}},
		{name: "total records reached", serve: pageNumberList(100, 10),
			p: PageNumber("page", 1, "per_page", 10, TotalRecords("total", "")), want: pfResult{ids: seqIDs(1, 101)}},
		{name: "empty listing", serve: pageNumberList(0, 10), p: pageNumber, want: pfResult{}},
		{name: "one short page", serve: pageNumberList(3, 10), p: pageNumber, want: pfResult{ids: seqIDs(1, 4)}},
		{name: "no size: stops on the empty page", serve: pageNumberList(45, 10),
			p: PageNumber("page", 1, "", 0), want: pfResult{ids: seqIDs(1, 46)}},
		{name: "past the end the API fails", serve: func(ctx context.Context, q url.Values) (*Response, error) {
			if p, _ := strconv.Atoi(q.Get("page")); p > 5 {
				return nil, errors.New("404 past the end")
			}
			return pageNumberList(45, 10)(ctx, q)
		}, p: pageNumber, want: pfResult{ids: seqIDs(1, 46)}},
		{name: "past the end the API repeats the last page, total pages said", serve: func(ctx context.Context, q url.Values) (*Response, error) {
			p, _ := strconv.Atoi(q.Get("page"))
			return pfJSON(fmt.Sprintf(`{"items":%s,"meta":{"last_page":3}}`, pgItems((min(p, 3)-1)*10+1, min(p, 3)*10+1)))
		}, p: PageNumber("page", 1, "per_page", 10, TotalPages("meta.last_page", "")), want: pfResult{ids: seqIDs(1, 31)}},
		{name: "past the end the API repeats the last page, no total: loop", serve: func(ctx context.Context, q url.Values) (*Response, error) {
			p, _ := strconv.Atoi(q.Get("page"))
			return pfJSON(fmt.Sprintf(`{"items":%s}`, pgItems((min(p, 3)-1)*10+1, min(p, 3)*10+1)))
		}, p: pageNumber, want: pfResult{ids: seqIDs(1, 31), err: "pagination loop: page 4"}},
		{name: "error on page 5", serve: func(ctx context.Context, q url.Values) (*Response, error) {
			if q.Get("page") == "5" {
				return nil, errors.New("HTTP 500")
			}
			return pageNumberList(200, 10)(ctx, q)
		}, p: pageNumber, want: pfResult{ids: seqIDs(1, 41), err: "fetching page 5 (page=5): HTTP 500"}},
		{name: "bad JSON on page 3", serve: func(ctx context.Context, q url.Values) (*Response, error) {
			if q.Get("page") == "3" {
				return pfJSON(`{"items":[`)
			}
			return pageNumberList(200, 10)(ctx, q)
		}, p: pageNumber, want: pfResult{ids: seqIDs(1, 21), err: "page 3"}},
		{name: "error status without error on page 4", serve: func(ctx context.Context, q url.Values) (*Response, error) {
			if q.Get("page") == "4" {
				return &Response{StatusCode: 503, Body: []byte(`{}`)}, nil
			}
			return pageNumberList(200, 10)(ctx, q)
		}, p: pageNumber, want: pfResult{ids: seqIDs(1, 31), err: "HTTP status 503"}},
		{name: "max pages", serve: pageNumberList(200, 10), p: pageNumber, opts: []PageOption{WithMaxPages(3, false)}, want: pfResult{ids: seqIDs(1, 31)}},
		{name: "max pages, fail if more", serve: pageNumberList(200, 10), p: pageNumber, opts: []PageOption{WithMaxPages(3, true)},
			want: pfResult{ids: seqIDs(1, 31), err: "page limit reached"}},
		{name: "offset", serve: offsetList(95, 10), p: Offset("limit", "offset", 10), want: pfResult{ids: seqIDs(1, 96)}},
		{name: "offset, total a multiple", serve: offsetList(60, 10), p: Offset("limit", "offset", 10), want: pfResult{ids: seqIDs(1, 61)}},
		{name: "offset, API ignores the limit: prediction misses", serve: offsetList(100, 15), p: Offset("limit", "offset", 10), want: pfResult{ids: seqIDs(1, 101)}},
		{name: "offset without limit", serve: offsetList(35, 10), p: Offset("", "offset", 0), want: pfResult{ids: seqIDs(1, 36)}},
		{name: "cursor (no effect)", serve: func(_ context.Context, q url.Values) (*Response, error) {
			c, _ := strconv.Atoi(q.Get("cursor"))
			next := `"` + strconv.Itoa(c+10) + `"`
			if c+10 >= 50 {
				next = "null"
			}
			return pfJSON(fmt.Sprintf(`{"items":%s,"next":%s}`, pgItems(c+1, min(c+11, 51)), next))
		}, p: Cursor("next", "cursor"), want: pfResult{ids: seqIDs(1, 51)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := &pfDoer{serve: tc.serve}
			want := pfWalk(t, seq, tc.p, tc.opts...)
			require.Equal(t, tc.want.ids, want.ids, "sequential walk")
			if tc.want.err == "" {
				require.Empty(t, want.err)
			} else {
				require.Contains(t, want.err, tc.want.err)
			}
			for _, n := range []int{2, 4, 7} {
				rng := rand.New(rand.NewPCG(uint64(n), 42))
				var rmu sync.Mutex
				d := &pfDoer{serve: tc.serve, delay: func() time.Duration {
					rmu.Lock()
					defer rmu.Unlock()
					return time.Duration(rng.IntN(3000)) * time.Microsecond
				}}
				got := pfWalk(t, d, tc.p, append(slices.Clone(tc.opts), WithPrefetch(n))...)
				assert.Equal(t, want, got, "prefetch %d", n)
				extra := len(d.requests()) - len(seq.requests())
				assert.True(t, extra >= 0 && extra <= n-1, "prefetch %d: %d requests, %d without", n, len(d.requests()), len(seq.requests()))
				assert.LessOrEqual(t, int(d.maxActive.Load()), n)
				assert.Zero(t, d.active.Load(), "a request outlived the walk")
				for _, q := range d.requests() {
					v, _ := url.ParseQuery(q)
					if p, err := strconv.Atoi(v.Get("page")); err == nil && len(tc.opts) > 0 {
						assert.LessOrEqual(t, p, 3, "a page past WithMaxPages was requested")
					}
				}
			}
		})
	}
}

// pfGate is a Doer whose requests for each page wait until the test releases them, so that
// the tests control the order in which responses arrive.
type pfGate struct {
	serve     func(context.Context, url.Values) (*Response, error)
	mu        sync.Mutex
	arrived   map[int]chan struct{} // closed when the page's request arrives
	release   map[int]chan struct{} // closed by the test to let the page answer
	cancelled map[int]bool
	active    atomic.Int32
}

func newPFGate(serve func(context.Context, url.Values) (*Response, error)) *pfGate {
	return &pfGate{serve: serve, arrived: map[int]chan struct{}{}, release: map[int]chan struct{}{}, cancelled: map[int]bool{}}
}

func (g *pfGate) chans(page int) (arrived, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.arrived[page] == nil {
		g.arrived[page], g.release[page] = make(chan struct{}), make(chan struct{})
	}
	return g.arrived[page], g.release[page]
}

func (g *pfGate) open(page int) { _, r := g.chans(page); close(r) }

func (g *pfGate) waitArrived(t *testing.T, page int) {
	t.Helper()
	a, _ := g.chans(page)
	select {
	case <-a:
	case <-time.After(10 * time.Second):
		t.Fatalf("the request for page %d never came", page)
	}
}

func (g *pfGate) wasCancelled(page int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cancelled[page]
}

func (g *pfGate) Do(ctx context.Context, req *Request) (*Response, error) {
	g.active.Add(1)
	defer g.active.Add(-1)
	page, _ := strconv.Atoi(req.Query.Get("page"))
	a, r := g.chans(page)
	close(a)
	select {
	case <-r:
		return g.serve(ctx, req.Query)
	case <-ctx.Done():
		g.mu.Lock()
		g.cancelled[page] = true
		g.mu.Unlock()
		return nil, ctx.Err()
	}
}

// TestPrefetchKeepsNInFlightAndOrder: page 1 answers last of the first four, and is
// still yielded first; the four requests were all sent before any answered.
func TestPrefetchKeepsNInFlightAndOrder(t *testing.T) {
	g := newPFGate(pageNumberList(35, 10))
	done := make(chan pfResult, 1)
	go func() { done <- pfWalk(t, g, PageNumber("page", 1, "per_page", 10), WithPrefetch(4)) }()
	for p := 1; p <= 4; p++ {
		g.waitArrived(t, p)
	}
	// No fifth request while four are in flight.
	g.mu.Lock()
	_, fifth := g.arrived[5]
	g.mu.Unlock()
	assert.False(t, fifth, "more than 4 requests in flight")
	for _, p := range []int{4, 3, 2, 1} {
		g.open(p)
	}
	g.open(5) // requested once page 2 is asked for; past the end
	g.open(6)
	g.open(7)
	res := <-done
	assert.Equal(t, pfResult{ids: seqIDs(1, 36)}, res)
	assert.Zero(t, g.active.Load())
}

// TestPrefetchErrorCancelsLaterPages: page 2 fails while pages 3 and 4 are in flight;
// their requests are cancelled at once (before page 1 has even answered), and the walk
// yields page 1, then page 2's error, and nothing else.
func TestPrefetchErrorCancelsLaterPages(t *testing.T) {
	g := newPFGate(func(ctx context.Context, q url.Values) (*Response, error) {
		if q.Get("page") == "2" {
			return nil, errors.New("HTTP 500")
		}
		return pageNumberList(100, 10)(ctx, q)
	})
	done := make(chan pfResult, 1)
	go func() { done <- pfWalk(t, g, PageNumber("page", 1, "per_page", 10), WithPrefetch(4)) }()
	for p := 1; p <= 4; p++ {
		g.waitArrived(t, p)
	}
	g.open(2)
	require.Eventually(t, func() bool { return g.wasCancelled(3) && g.wasCancelled(4) }, 10*time.Second, time.Millisecond,
		"the requests after the failed page were not cancelled")
	g.open(1)
	res := <-done
	assert.Equal(t, seqIDs(1, 11), res.ids)
	assert.Contains(t, res.err, "fetching page 2 (page=2): HTTP 500")
	assert.Zero(t, g.active.Load())
	g.mu.Lock()
	_, fifth := g.arrived[5]
	g.mu.Unlock()
	assert.False(t, fifth, "a page after the failed one was requested")
}

// settleGoroutines fails the test unless the goroutine count comes back to at most before.
func settleGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPrefetchConsumerBreak: breaking out after the first page cancels the three requests
// in flight and returns only once they are over.
func TestPrefetchConsumerBreak(t *testing.T) {
	before := runtime.NumGoroutine()
	g := newPFGate(pageNumberList(100, 10))
	g.open(1)
	n := 0
	for _, err := range Pages(t.Context(), g, Request{Path: "/items"}, PageNumber("page", 1, "per_page", 10), WithRecordsPath("items"), WithPrefetch(4)) {
		require.NoError(t, err)
		n++
		for p := 2; p <= 4; p++ {
			g.waitArrived(t, p)
		}
		break
	}
	assert.Equal(t, 1, n)
	assert.Zero(t, g.active.Load(), "requests still running after the loop")
	for p := 2; p <= 4; p++ {
		assert.True(t, g.wasCancelled(p), "page %d not cancelled", p)
	}
	settleGoroutines(t, before)
}

// TestPrefetchContextCancel: cancelling ctx while pages are in flight ends the walk with
// the context's error after the pages already yielded; nothing is left running.
func TestPrefetchContextCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	g := newPFGate(pageNumberList(100, 10))
	g.open(1)
	g.open(2)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var pages int
	var gotErr error
	for _, err := range Pages(ctx, g, Request{Path: "/items"}, PageNumber("page", 1, "per_page", 10), WithRecordsPath("items"), WithPrefetch(4)) {
		if err != nil {
			gotErr = err
			continue
		}
		pages++
		if pages == 2 {
			g.waitArrived(t, 5)
			cancel()
		}
	}
	assert.Equal(t, 2, pages)
	require.ErrorIs(t, gotErr, context.Canceled)
	assert.Zero(t, g.active.Load())
	for p := 3; p <= 5; p++ {
		assert.True(t, g.wasCancelled(p), "page %d not cancelled", p)
	}
	settleGoroutines(t, before)
}

// TestPrefetchOneOrLessIsSequential: WithPrefetch(n <= 1) sends exactly the sequential
// requests, one at a time, and so does any n with a paginator that cannot predict.
func TestPrefetchOneOrLessIsSequential(t *testing.T) {
	delay := func() time.Duration { return 200 * time.Microsecond }
	seq := &pfDoer{serve: pageNumberList(55, 10), delay: delay}
	want := pfWalk(t, seq, PageNumber("page", 1, "per_page", 10))
	for _, n := range []int{1, 0, -3} {
		d := &pfDoer{serve: pageNumberList(55, 10), delay: delay}
		assert.Equal(t, want, pfWalk(t, d, PageNumber("page", 1, "per_page", 10), WithPrefetch(n)))
		assert.Equal(t, seq.requests(), d.requests())
		assert.EqualValues(t, 1, d.maxActive.Load())
	}
	for _, p := range []Paginator{Cursor("next", "cursor"), NextURL("next"), LinkHeader(), Offset("", "offset", 0)} {
		d := &pfDoer{serve: offsetList(25, 10), delay: delay}
		pfWalk(t, d, p, WithPrefetch(4))
		assert.EqualValues(t, 1, d.maxActive.Load(), "%T", p)
	}
}

// TestPrefetchRespectsRateLimit: the client's rate limit spaces the requests of a
// prefetching walk as it spaces sequential ones.
func TestPrefetchRespectsRateLimit(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		page := qint(r, "page", 1)
		fmt.Fprintf(w, `{"items":%s}`, pgItems(min((page-1)*10+1, 76), min(page*10+1, 76)))
	})
	c, err := New(api.URL, WithRateLimit(20, 1)) // one request per 50 ms
	require.NoError(t, err)
	ids, err := collectIDs(t, Records(t.Context(), c, Request{Path: "/items"}, PageNumber("page", 1, "per_page", 10), WithRecordsPath("items"), WithPrefetch(4)))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 76), ids)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(arrivals), 8)
	slices.SortFunc(arrivals, func(a, b time.Time) int { return a.Compare(b) })
	// k requests at 20/s with a burst of 1 span at least (k-1)×50 ms (less the jitter of
	// the first request).
	span := arrivals[len(arrivals)-1].Sub(arrivals[0])
	assert.GreaterOrEqual(t, span, time.Duration(len(arrivals)-1)*50*time.Millisecond-30*time.Millisecond)
}

// TestPrefetchOptionBounds: n is capped, and the prefetcher is only built for paginators
// that can predict their next request.
func TestPrefetchOptionBounds(t *testing.T) {
	assert.Equal(t, maxPrefetch, newPageConfig([]PageOption{WithPrefetch(1 << 20)}).prefetch)
	cfg := newPageConfig([]PageOption{WithPrefetch(4)})
	_, ok := newPageFetcher(t.Context(), &pfDoer{}, PageNumber("page", 1, "", 0), cfg).(*prefetcher)
	assert.True(t, ok)
	_, ok = newPageFetcher(t.Context(), &pfDoer{}, Cursor("next", "cursor"), cfg).(*prefetcher)
	assert.False(t, ok)
	// A page parameter that is not a number: no prediction, and the walk's own error.
	d := &pfDoer{serve: pageNumberList(10, 10)}
	_, err := collectIDs(t, Records(t.Context(), d, Request{Path: "/items", Query: url.Values{"page": {"one"}}}, PageNumber("page", 1, "per_page", 10), WithRecordsPath("items"), WithPrefetch(4)))
	require.Error(t, err)
	assert.Len(t, d.requests(), 1)
}

// BenchmarkPagesPrefetch walks 40 pages over a loopback server that answers each request
// after 5 ms, with WithPrefetch(4) and sequentially; x-sequential is the prefetching
// walk's time over the sequential one's (≈ 0.25 when latency dominates).
//
//	go test -run '^$' -bench PagesPrefetch ./adapter
func BenchmarkPagesPrefetch(b *testing.B) {
	const pages, size, latency = 40, 50, 5 * time.Millisecond
	api := newPGAPI(b, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		page := qint(r, "page", 1)
		total := pages * size
		fmt.Fprintf(w, `{"items":%s}`, pgItems(min((page-1)*size+1, total+1), min(page*size+1, total+1)))
	})
	c, err := New(api.URL)
	if err != nil {
		b.Fatal(err)
	}
	run := func(opts ...PageOption) time.Duration {
		start := time.Now()
		n := 0
		for resp, err := range Pages(context.Background(), c, Request{Path: "/items"}, PageNumber("page", 1, "per_page", size), append(opts, WithRecordsPath("items"))...) {
			if err != nil {
				b.Fatal(err)
			}
			n += int(gjson.GetBytes(resp.Body, "items.#").Int())
		}
		if n != pages*size {
			b.Fatalf("%d records", n)
		}
		return time.Since(start)
	}
	var seq, pre time.Duration
	for b.Loop() {
		seq += run()
		pre += run(WithPrefetch(4))
	}
	b.ReportMetric(float64(pre)/float64(seq), "x-sequential")
}
