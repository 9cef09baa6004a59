package importer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/state"
)

// ListFunc walks the external listing of records updated at or after since (zero: all),
// in ascending updated-at order when the watermark is used. adapter.Records with a query
// parameter such as updated_at_min is the usual implementation.
type ListFunc func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error]

// EnqueueFunc hands one record to a queue instead of importing it in the run.
type EnqueueFunc func(ctx context.Context, rec gjson.Result) error

// Progress is reported after each page.
type Progress struct {
	// Done counts records handled (created, updated, skipped, enqueued or failed).
	Done   int
	Failed int
	// Rate is Done per second since the run started.
	Rate    float64
	Elapsed time.Duration
}

// Summary is the outcome of a batch run.
type Summary struct {
	// Counts has one entry per record listed: Total equals the records the listing yielded.
	report.Counts
	// Pages counts committed pages.
	Pages int
	// Errors holds the per-record errors (the first MaxErrors of them).
	Errors []error
	// Watermark is the committed watermark after the run (zero without one).
	Watermark time.Time
	Elapsed   time.Duration
}

type batchConfig struct {
	pageSize    int
	concurrency int
	progress    func(Progress)
	state       state.Store
	stateName   string
	lookback    time.Duration
	enqueue     EnqueueFunc
	perRecord   bool
	maxErrors   int
	force       bool
}

// BatchOption configures a Batch importer.
type BatchOption func(*batchConfig)

// WithPageSize sets how many records are committed together (default 100). Bindings are
// written once per page and the watermark saved after each.
func WithPageSize(n int) BatchOption { return func(c *batchConfig) { c.pageSize = n } }

// WithConcurrency sets how many records of a page are imported at once (default 4).
func WithConcurrency(n int) BatchOption { return func(c *batchConfig) { c.concurrency = n } }

// WithProgress sets a callback called after each page.
func WithProgress(f func(Progress)) BatchOption { return func(c *batchConfig) { c.progress = f } }

// WithWatermark persists the incremental-sync watermark in st under (backend, name), e.g.
// "products.updated_at_min". A run lists records updated at or after the watermark minus
// lookback (late-arriving data), and moves the watermark forward only past records that
// were committed: a record that failed holds it back so the next run sees it again.
//
// The listing must be sorted by updated-at, oldest first. Prefer cursor or keyset paging:
// with offset or page-number paging, a record updated during the run moves to the end of
// the listing and shifts the others back, so one of them can slip between two pages; a
// lookback at least as long as a run brings such a record back on the next run.
func WithWatermark(st state.Store, name string, lookback time.Duration) BatchOption {
	return func(c *batchConfig) { c.state, c.stateName, c.lookback = st, name, lookback }
}

// WithEnqueue hands each record to f (a durable queue) instead of importing it; the
// watermark then advances past enqueued records.
func WithEnqueue(f EnqueueFunc) BatchOption { return func(c *batchConfig) { c.enqueue = f } }

// PerRecord imports every record through Record.ImportRecord, taking its lease, instead of
// the bulk path. Bulk (the default when the local store implements local.KeyedCreator)
// reads a page's bindings in one GetManyByExternal and writes them in one UpsertBatch.
// It is safe against duplicates because local creates are keyed, and records leased by
// another worker when the page's bindings are read are imported through their lease. It
// takes no lease itself: a worker that starts syncing one of the page's records while the
// page is imported (a webhook import, an exporter) is not waited for, and the page's
// binding write can overwrite what that worker recorded. Choose PerRecord when such
// overlaps matter more than speed. Without a KeyedCreator the batch is always per record.
func PerRecord() BatchOption { return func(c *batchConfig) { c.perRecord = true } }

// WithMaxErrors caps how many per-record errors the Summary keeps (default 1000).
func WithMaxErrors(n int) BatchOption { return func(c *batchConfig) { c.maxErrors = n } }

// ForceAll imports every record even when unchanged.
func ForceAll() BatchOption { return func(c *batchConfig) { c.force = true } }

// Batch imports every record of a listing through a Record importer.
type Batch[T any] struct {
	rec  *Record[T]
	list ListFunc
	cfg  batchConfig
}

// NewBatch returns a Batch importer that walks list and imports through rec.
func NewBatch[T any](rec *Record[T], list ListFunc, opts ...BatchOption) (*Batch[T], error) {
	if rec == nil || list == nil {
		return nil, errors.New("importer: NewBatch needs a Record importer and a ListFunc")
	}
	c := batchConfig{pageSize: 100, concurrency: 4, maxErrors: 1000}
	for _, o := range opts {
		o(&c)
	}
	if c.pageSize <= 0 || c.concurrency <= 0 {
		return nil, fmt.Errorf("importer: page size (%d) and concurrency (%d) must be positive", c.pageSize, c.concurrency)
	}
	if c.state != nil && c.stateName == "" {
		return nil, errors.New("importer: WithWatermark needs a name, e.g. \"products.updated_at\"")
	}
	return &Batch[T]{rec: rec, list: list, cfg: c}, nil
}

// Watermark returns the persisted watermark (zero when there is none yet).
func (b *Batch[T]) Watermark(ctx context.Context) (time.Time, error) {
	if b.cfg.state == nil {
		return time.Time{}, nil
	}
	v, err := b.cfg.state.Get(ctx, b.rec.backend, b.cfg.stateName)
	if errors.Is(err, state.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("importer: reading watermark %q of %s: %w", b.cfg.stateName, b.rec.backend, err)
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("importer: watermark %q of %s holds %q, not an RFC 3339 time; delete it to start over: %w", b.cfg.stateName, b.rec.backend, v, err)
	}
	return t, nil
}

// itemResult is the outcome of one record of a page.
type itemResult struct {
	action  Action
	updated time.Time
	err     error
}

// page is one page of the listing on its way through a run: cut from the listing and
// parsed before the run imports it.
type page struct {
	recs []parsed
	res  []itemResult // res[i].action is set once recs[i] is decided (failed parse, repeat)
	// ids are the page's distinct external IDs in bulk mode (nil otherwise).
	ids []string
	// err stops the run: a listing or binding-store failure. recs is empty then.
	err error
}

// Run walks the listing once and imports every record. It returns the summary so far and
// the first error that stopped the run (a listing or binding-store error, or ctx); record
// errors do not stop it and are in Summary.Errors.
//
// A run is a pipeline of three stages, so that two cores both work: one goroutine fetches
// pages and parses their records; the calling goroutine reads a page's bindings and
// imports it (mapping and local writes, on up to WithConcurrency goroutines); a third
// commits the page's bindings while the next page is imported. Commits, tallies and watermark moves
// stay in page order, one commit in flight at a time.
func (b *Batch[T]) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	var sum Summary
	wm, err := b.Watermark(ctx)
	if err != nil {
		return sum, err
	}
	sum.Watermark = wm
	since := wm
	if !since.IsZero() {
		since = since.Add(-b.cfg.lookback)
	}

	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan page, 1)
	producerDone := make(chan struct{})
	defer func() {
		cancel()
		<-producerDone // no goroutine outlives Run
	}()
	go func() {
		defer close(producerDone)
		defer close(pages)
		b.produce(ctx, since, pages)
	}()

	t := tally[T]{b: b, sum: &sum, wm: wm, start: start}
	var fl *inflight
	fail := func(err error) (Summary, error) {
		if fl != nil {
			if ferr := t.finish(ctx, fl); ferr != nil {
				err = errors.Join(err, ferr)
			}
		}
		sum.Elapsed = time.Since(start)
		return sum, err
	}
	for pg := range pages {
		if pg.err != nil {
			return fail(pg.err)
		}
		commit, err := b.importPage(ctx, &pg)
		if err != nil {
			return fail(err)
		}
		if fl != nil {
			err := t.finish(ctx, fl)
			fl = nil
			if err != nil {
				return fail(err)
			}
		}
		fl = &inflight{done: make(chan error, 1), res: pg.res}
		if commit == nil {
			fl.done <- nil
		} else {
			go func(f *inflight) { f.done <- commit() }(fl)
		}
	}
	if fl != nil {
		err := t.finish(ctx, fl)
		fl = nil // finished: fail must not wait for it again
		if err != nil {
			return fail(err)
		}
	}
	sum.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	return sum, nil
}

// produce walks the listing and sends prepared pages until it ends, fails or ctx ends.
func (b *Batch[T]) produce(ctx context.Context, since time.Time, pages chan<- page) {
	send := func(pg page) bool {
		select {
		case pages <- pg:
			return true
		case <-ctx.Done():
			return false
		}
	}
	buf := make([]gjson.Result, 0, b.cfg.pageSize)
	flush := func() bool {
		pg := b.prepare(ctx, buf)
		buf = buf[:0] // the page holds copies of the records, not buf
		return send(pg)
	}
	for rec, err := range b.list(ctx, since) {
		if err != nil {
			if len(buf) > 0 && !flush() {
				return
			}
			send(page{err: fmt.Errorf("importer: listing %s %s: %w", b.rec.backend, b.rec.model, err)})
			return
		}
		buf = append(buf, rec)
		if len(buf) == b.cfg.pageSize && !flush() {
			return
		}
	}
	if len(buf) > 0 {
		flush()
	}
}

// prepare parses a page's records and, in bulk mode, marks repeats within the page and
// lists its distinct external IDs.
func (b *Batch[T]) prepare(ctx context.Context, recs []gjson.Result) page {
	r := b.rec
	pg := page{recs: make([]parsed, len(recs)), res: make([]itemResult, len(recs))}
	bulk := b.cfg.enqueue == nil && !b.cfg.perRecord && r.keyed != nil
	var seen map[string]struct{}
	if bulk {
		seen = make(map[string]struct{}, len(recs))
	}
	for i := range recs {
		p, err := r.parse(recs[i])
		pg.recs[i] = p
		pg.res[i].updated = p.updated
		if err != nil {
			pg.res[i].action, pg.res[i].err = Failed, err
			continue
		}
		if bulk {
			if _, dup := seen[p.extID]; dup { // a page that repeats a record
				pg.res[i].action = Skipped
				continue
			}
			seen[p.extID] = struct{}{}
		}
	}
	if !bulk || len(seen) == 0 {
		return pg
	}
	pg.ids = make([]string, 0, len(seen))
	for id := range seen {
		pg.ids = append(pg.ids, id)
	}
	return pg
}

// inflight is a page whose bindings are being committed.
type inflight struct {
	done chan error
	res  []itemResult
}

// tally adds committed pages to the summary and moves the watermark.
type tally[T any] struct {
	b     *Batch[T]
	sum   *Summary
	wm    time.Time
	held  bool // a failure pinned the watermark for this run
	start time.Time
}

// finish waits for f's commit, tallies its records and moves the watermark up to the
// newest record of the page, or to the oldest failure.
func (t *tally[T]) finish(ctx context.Context, f *inflight) error {
	if err := <-f.done; err != nil {
		return err
	}
	b, sum := t.b, t.sum
	var newest, oldestFail time.Time
	pageFails := 0
	for i := range f.res {
		r := &f.res[i]
		switch r.action {
		case Created:
			sum.Created++
		case Updated:
			sum.Updated++
		case Skipped:
			sum.Skipped++
		case Enqueued:
			sum.Enqueued++
		default:
			sum.Failed++
			pageFails++
			if len(sum.Errors) < b.cfg.maxErrors {
				sum.Errors = append(sum.Errors, r.err)
			}
			if oldestFail.IsZero() || r.updated.Before(oldestFail) {
				oldestFail = r.updated
			}
			continue
		}
		if r.updated.After(newest) {
			newest = r.updated
		}
	}
	sum.Pages++
	next := t.wm
	switch {
	case t.held:
	case pageFails > 0 && !oldestFail.IsZero():
		// Records older than the oldest failure are committed; it and anything newer
		// are listed again next run (the listing is inclusive of the watermark).
		next, t.held = maxTime(t.wm, oldestFail), true
	case pageFails > 0:
		t.held = true // a failed record without a time: cannot tell how far is safe
	default:
		next = maxTime(t.wm, newest)
	}
	if b.cfg.state != nil && next.After(t.wm) {
		if err := b.cfg.state.Put(ctx, b.rec.backend, b.cfg.stateName, []byte(next.UTC().Format(time.RFC3339Nano))); err != nil {
			return fmt.Errorf("importer: saving watermark %q of %s: %w", b.cfg.stateName, b.rec.backend, err)
		}
		t.wm = next
		sum.Watermark = next
	}
	if b.cfg.progress != nil {
		el := time.Since(t.start)
		b.cfg.progress(Progress{Done: sum.Total(), Failed: sum.Failed, Rate: float64(sum.Total()) / el.Seconds(), Elapsed: el})
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// parallel runs f(i) for i in [0, n) on up to conc goroutines.
func parallel(n, conc int, f func(i int)) {
	if conc <= 1 || n <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	conc = min(conc, n)
	var wg sync.WaitGroup
	per := (n + conc - 1) / conc
	for w := range conc {
		lo, hi := w*per, min((w+1)*per, n)
		if lo >= hi {
			break
		}
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				f(i)
			}
		})
	}
	wg.Wait()
}

// importPage imports a prepared page, filling pg.res, and returns what is left to commit
// (nil when nothing is). It returns an error only when the run must stop.
func (b *Batch[T]) importPage(ctx context.Context, pg *page) (func() error, error) {
	r := b.rec
	recs, res := pg.recs, pg.res
	if b.cfg.enqueue != nil {
		parallel(len(recs), b.cfg.concurrency, func(i int) {
			if res[i].action != "" {
				return
			}
			err := b.cfg.enqueue(ctx, recs[i].rec)
			res[i].action = Enqueued
			if err != nil {
				res[i].action, res[i].err = Failed, r.fail(recs[i].extID, "enqueue", err)
			}
		})
		return nil, ctx.Err()
	}
	if pg.ids == nil {
		parallel(len(recs), b.cfg.concurrency, func(i int) {
			if res[i].action != "" {
				return
			}
			out, err := r.importParsed(ctx, recs[i], b.cfg.force)
			res[i].action, res[i].err = out.Action, err
		})
		return nil, ctx.Err()
	}
	return b.bulkPage(ctx, pg)
}

// bulkPage imports a page whose bindings were read in prepare, writing local records with
// keyed creates; the returned commit stores the page's bindings in one UpsertBatch.
func (b *Batch[T]) bulkPage(ctx context.Context, pg *page) (func() error, error) {
	r := b.rec
	recs, res := pg.recs, pg.res
	// Read the page's bindings just before importing it, not when it was fetched, so the
	// window in which another worker's change goes unseen stays as short as one page.
	current, err := r.bindings.GetManyByExternal(ctx, r.backend, r.model, pg.ids)
	if err != nil {
		// The store's failure, not a record's: stop the run rather than fail every record.
		return nil, fmt.Errorf("importer: reading the bindings of a page of %d %s %s records: %w", len(pg.ids), r.backend, r.model, err)
	}
	n := len(recs)
	// ups[i] is record i's binding to write; ID 0 with no ExternalID means none.
	ups := make([]binding.Binding, n)
	now := r.cfg.now()
	parallel(n, b.cfg.concurrency, func(i int) {
		if res[i].action != "" {
			return
		}
		p := recs[i]
		cur, ok := current[p.extID]
		if !ok {
			cur = binding.Binding{Backend: r.backend, Model: r.model, ExternalID: p.extID}
		}
		if !b.cfg.force && p.unchanged(&cur) {
			res[i].action = Skipped
			return
		}
		if cur.ID != 0 && cur.Leased(now) {
			// Someone else is importing it: go through the lease.
			out, err := r.importParsed(ctx, p, b.cfg.force)
			res[i].action, res[i].err = out.Action, err
			return
		}
		if !b.cfg.force && r.cfg.maxRetries > 0 && !cur.CanRetry(r.cfg.maxRetries) {
			res[i].action = Failed
			res[i].err = r.fail(p.extID, "claim", fmt.Errorf("%w (%d failures, last: %s)", ErrTooManyRetries, cur.RetryCount, cur.LastError))
			return
		}
		action, localID, step, err := r.apply(ctx, p, cur.LocalID)
		u := cur
		u.LeaseOwner, u.LeaseExpiresAt = "", time.Time{}
		switch {
		case errors.Is(err, ErrSkip):
			res[i].action = Skipped
			u.Status = binding.StatusSkipped
		case err != nil:
			ferr := r.fail(p.extID, step, err)
			res[i].action, res[i].err = Failed, ferr

			u.Status, u.LastError, u.RetryCount = binding.StatusFailed, ferr.Error(), cur.RetryCount+1
		default:
			res[i].action = action
			u.LocalID, u.Status, u.LastError, u.RetryCount = localID, binding.StatusSuccess, "", 0
			u.Hash, u.ExternalUpdatedAt, u.SyncedAt = p.hash, p.updated, now
		}
		ups[i] = u
	})
	// Keep the bindings to write, in page order, in place.
	batch := ups[:0]
	for i := range ups {
		if ups[i].ExternalID != "" {
			batch = append(batch, ups[i])
		}
	}
	if len(batch) == 0 {
		return nil, ctx.Err()
	}
	return func() error {
		// The page's local records are written: bind them even if ctx ends meanwhile,
		// rather than leave the next run to find them by key.
		if _, err := r.bindings.UpsertBatch(context.WithoutCancel(ctx), batch); err != nil {
			return fmt.Errorf("importer: writing the bindings of a page of %d %s %s records (the local records are written; a rerun binds them without duplicates): %w", len(batch), r.backend, r.model, err)
		}
		return nil
	}, ctx.Err()
}
