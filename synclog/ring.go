package synclog

import (
	"context"
	"iter"
	"net/http"
	"sync"

	"github.com/connkit/connkit/internal/audit"
)

// defaultRingCapacity is the capacity NewRing uses when given zero or less.
const defaultRingCapacity = 1000

// Ring is a bounded in-memory [Recorder] and [Querier]: it keeps the newest entries up to
// its capacity and drops the oldest. It assigns each entry an increasing ID starting at 1.
// A Ring is safe for concurrent use; Record takes one short lock and does not allocate
// for bodies within the limit.
type Ring struct {
	cfg audit.Config[Entry]

	mu     sync.Mutex
	buf    []Entry // circular; buf[(start+i)%cap] is the i-th oldest entry
	start  int
	n      int
	nextID int64 // entries recorded so far; nextID-n of them were dropped
}

// NewRing returns a Ring that keeps the newest capacity entries (1000 when capacity is
// zero or less). Options: [WithBodyLimit] (default 64 KiB) and [WithRedactor] (by default
// a Ring trusts that entries were redacted when they were built, as the adapter and
// webhook packages do, so recording stays cheap).
func NewRing(capacity int, opts ...Option) *Ring {
	if capacity <= 0 {
		capacity = defaultRingCapacity
	}
	r := &Ring{cfg: audit.Config[Entry]{BodyLimit: audit.DefaultBodyLimit}, buf: make([]Entry, capacity)}
	audit.Apply(&r.cfg, opts)
	return r
}

// Record stores e, assigning it the next ID, and drops the oldest entry when the Ring is
// full. It never fails.
func (r *Ring) Record(_ context.Context, e Entry) error {
	if r.cfg.Redact != nil {
		e = redactCopy(r.cfg.Redact, e)
	}
	var cut1, cut2 bool
	e.RequestBody, cut1 = audit.Body(e.RequestBody, r.cfg.BodyLimit)
	e.ResponseBody, cut2 = audit.Body(e.ResponseBody, r.cfg.BodyLimit)
	e.Truncated = e.Truncated || cut1 || cut2

	r.mu.Lock()
	r.nextID++
	e.ID = r.nextID
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = e
		r.n++
	} else {
		r.buf[r.start] = e
		r.start = (r.start + 1) % len(r.buf)
	}
	r.mu.Unlock()
	return nil
}

// redactCopy applies redact to a copy of e. Taking e's address in Record itself would move
// every recorded entry to the heap, redactor or not.
func redactCopy(redact func(*Entry), e Entry) Entry {
	redact(&e)
	return e
}

// size returns how many entries the Ring holds.
func (r *Ring) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// entries returns the entries matching f, newest first, at most f.Limit of them when
// f.Limit is positive. The returned entries (headers included) are copies the caller may
// modify.
func (r *Ring) entries(f Filter) []Entry {
	r.mu.Lock()
	var out []Entry
	for i := r.n - 1; i >= 0; i-- {
		e := &r.buf[(r.start+i)%len(r.buf)]
		if !f.match(e) {
			continue
		}
		out = append(out, *e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	r.mu.Unlock()
	// Header maps are shared with the stored entry; copy them outside the lock.
	for i := range out {
		out[i].RequestHeader = cloneHeader(out[i].RequestHeader)
		out[i].ResponseHeader = cloneHeader(out[i].ResponseHeader)
	}
	return out
}

func cloneHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	return h.Clone()
}

// Query yields the entries matching f, newest first, at most f.Limit of them when f.Limit
// is positive. The entries (headers included) are copies the caller may modify. The
// matching set is taken when iteration starts; if ctx ends during iteration, Query yields
// ctx's error and stops.
func (r *Ring) Query(ctx context.Context, f Filter) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(Entry{}, err)
			return
		}
		for _, e := range r.entries(f) {
			if err := ctx.Err(); err != nil {
				yield(Entry{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

var (
	_ Recorder = (*Ring)(nil)
	_ Querier  = (*Ring)(nil)
)
