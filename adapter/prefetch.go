package adapter

// Prefetching: with WithPrefetch, Pages and Records keep several page requests in flight
// for paginators whose next request is known before the previous page arrives (Offset,
// PageNumber). The walk itself stays the sequential one: every page is still checked and
// handed to Paginator.Next in order, and the stop rules are Next's; the prefetcher only
// answers the walk's requests from responses it asked for in advance.

import (
	"context"
	"strconv"
	"sync"
)

// maxPrefetch caps WithPrefetch.
const maxPrefetch = 64

// WithPrefetch keeps up to n page requests in flight, to hide the API's latency, for
// paginators whose next request does not depend on the previous response: PageNumber, and
// Offset with a limit > 0. Pages are still yielded strictly in order and the walk stops
// exactly where it stops without prefetching (an empty or short page, a reported total,
// WithMaxPages); pages requested past the end are discarded, never yielded, so a walk sends
// up to n-1 requests more than the pages it yields. An error on a page is yielded after
// the pages before it and ends the walk; requests for later pages are cancelled through
// their context. At most n pages are requested or held at once, the one being yielded
// included. When the consumer stops or ctx ends, the requests in flight are cancelled and
// waited for: no goroutine outlives the iterator.
//
// With prefetching the Doer is called from several goroutines at once (*Client is safe for
// that, and its rate limit applies to every request). If a page's next request turns out
// to differ from the predicted one (an API that ignores the limit and sends more records),
// the requests in flight are discarded and the rest of the walk is sequential.
//
// n <= 1 (the default) means one request at a time; n is capped at 64. The option has no
// effect with other paginators (Cursor, LinkHeader, NextURL, custom ones), whose next
// request is only known from the previous response.
func WithPrefetch(n int) PageOption {
	return func(c *pageConfig) { c.prefetch = min(n, maxPrefetch) }
}

// pagePredictor is implemented by paginators whose next request can be built without the
// previous response (PageNumber, Offset).
type pagePredictor interface {
	// predictNext turns req into the request Next would build after a full page, or
	// returns false when it cannot tell.
	predictNext(req *Request) bool
}

func (p *pageNumberPaginator) predictNext(req *Request) bool {
	q := pageQuery(req)
	page, err := strconv.Atoi(q.Get(p.pageParam))
	if err != nil {
		return false
	}
	q.Set(p.pageParam, strconv.Itoa(page+1))
	return true
}

func (o *offsetPaginator) predictNext(req *Request) bool {
	if o.limit <= 0 { // the next offset is only known from the records received
		return false
	}
	q := pageQuery(req)
	off, err := strconv.Atoi(q.Get(o.offsetParam))
	if err != nil {
		return false
	}
	q.Set(o.offsetParam, strconv.Itoa(off+o.limit))
	return true
}

// pageFetcher sends the walk's requests: directly, or through a prefetcher.
type pageFetcher interface {
	// fetch returns the response to send, the request for page number page.
	fetch(page int, send *Request) (*Response, error)
	// close cancels whatever is in flight and waits for it.
	close()
}

type directFetcher struct {
	ctx context.Context
	d   Doer
}

func (f directFetcher) fetch(_ int, send *Request) (*Response, error) { return f.d.Do(f.ctx, send) }
func (directFetcher) close()                                          {}

// newPageFetcher returns the fetcher for a walk: a prefetcher when cfg asks for one and p
// can predict its requests.
func newPageFetcher(ctx context.Context, d Doer, p Paginator, cfg pageConfig) pageFetcher {
	pred, ok := p.(pagePredictor)
	if !ok || cfg.prefetch <= 1 {
		return directFetcher{ctx, d}
	}
	return &prefetcher{ctx: ctx, d: d, pred: pred, n: cfg.prefetch, maxPages: cfg.maxPages}
}

// prefetcher keeps up to n requests in flight for the pages following the one the walk
// asks for. Only the walk's goroutine calls fetch and close; the request goroutines only
// fill their slot and, on error, cancel the slots after theirs.
type prefetcher struct {
	ctx      context.Context
	d        Doer
	pred     pagePredictor
	n        int
	maxPages int
	off      bool // a prediction missed: the rest of the walk is sequential
	wg       sync.WaitGroup

	mu       sync.Mutex
	slots    []*prefetchSlot // in page order; slots[0] is the next page the walk needs
	failedAt int             // lowest page whose request failed; 0: none
}

// prefetchSlot is one request in flight (or answered) for a page.
type prefetchSlot struct {
	page   int
	key    string  // pageRequestKey of req
	req    Request // as sent; the next prediction starts from it
	cancel context.CancelFunc
	done   chan struct{} // closed when resp and err are set
	resp   *Response
	err    error
}

func (f *prefetcher) fetch(page int, send *Request) (*Response, error) {
	if f.off {
		return f.d.Do(f.ctx, send)
	}
	key := pageRequestKey(send)
	f.mu.Lock()
	if len(f.slots) > 0 && (f.slots[0].page != page || f.slots[0].key != key) {
		// Next built another request than predicted: nothing in flight is of use.
		f.cancelLocked(0)
		f.slots = nil
		f.off = true
		f.mu.Unlock()
		return f.d.Do(f.ctx, send)
	}
	if len(f.slots) == 0 {
		f.launchLocked(page, pageCloneRequest(send), key)
	}
	for len(f.slots) < f.n {
		last := f.slots[len(f.slots)-1]
		next := last.page + 1
		if (f.maxPages > 0 && next > f.maxPages) || (f.failedAt > 0 && next > f.failedAt) {
			break
		}
		req := pageCloneRequest(&last.req)
		if !f.pred.predictNext(&req) {
			break
		}
		f.launchLocked(next, req, pageRequestKey(&req))
	}
	head := f.slots[0]
	f.slots[0] = nil
	f.slots = f.slots[1:]
	f.mu.Unlock()

	<-head.done
	head.cancel()
	return head.resp, head.err
}

// launchLocked sends req for page in a new goroutine and appends its slot.
func (f *prefetcher) launchLocked(page int, req Request, key string) {
	ctx, cancel := context.WithCancel(f.ctx)
	s := &prefetchSlot{page: page, key: key, req: req, cancel: cancel, done: make(chan struct{})}
	f.slots = append(f.slots, s)
	send := pageCloneRequest(&req) // the Doer gets its own copy
	f.wg.Go(func() {
		resp, err := f.d.Do(ctx, &send)
		if err != nil {
			f.failed(page)
		}
		s.resp, s.err = resp, err
		close(s.done)
	})
}

// failed records that page's request failed and cancels the requests after it: the walk
// ends at that page at the latest.
func (f *prefetcher) failed(page int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failedAt == 0 || page < f.failedAt {
		f.failedAt = page
	}
	for _, s := range f.slots {
		if s.page > page {
			s.cancel()
		}
	}
}

// cancelLocked cancels the slots from index i on.
func (f *prefetcher) cancelLocked(i int) {
	for _, s := range f.slots[i:] {
		s.cancel()
	}
}

func (f *prefetcher) close() {
	f.mu.Lock()
	f.cancelLocked(0)
	f.slots = nil
	f.mu.Unlock()
	f.wg.Wait()
}
