package importer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/batchhint"
	"github.com/connkit/connkit/internal/bindingkit"
	"github.com/connkit/connkit/internal/ctxerr"
	"github.com/connkit/connkit/internal/depchain"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/state"
)

// Summary is the outcome of a batch run (or of RetryFailed).
type Summary struct {
	// Counts has one entry per record listed: Total equals the records the listing
	// yielded, except those a shutdown cut short (the run then returns ctx's error; they
	// are listed again by the next run). A record listed twice in a run is counted once
	// as what its import did and then as Duplicates.
	report.Counts
	// Pages counts committed pages.
	Pages int
	// Errors holds the per-record errors (the first MaxErrors of them).
	Errors []error
	// Watermark is the committed watermark after the run (zero without one).
	Watermark time.Time
	Elapsed   time.Duration
}

const defaultMaxErrors = 1000

// add counts one record's outcome.
func (s *Summary) add(a report.Action, err error, maxErrors int) {
	switch a {
	case report.Created:
		s.Created++
	case report.Updated:
		s.Updated++
	case report.Skipped:
		s.Skipped++
	case duplicate:
		s.Duplicates++
	case report.Enqueued:
		s.Enqueued++
	default:
		s.Failed++
		if err != nil && len(s.Errors) < maxErrors {
			s.Errors = append(s.Errors, err)
		}
	}
}

type batchConfig struct {
	commitSize  int
	concurrency int
	progress    func(Summary)
	state       state.Store
	stateName   string
	lookback    time.Duration
	enqueue     func(context.Context, gjson.Result) error
	perRecord   bool
	maxErrors   int
	force       bool
}

// BatchOption configures a Batch importer.
type BatchOption func(*batchConfig)

// WithCommitSize sets how many listed records are committed together (default 100):
// bindings are written once per commit batch and the watermark saved after each. It is
// not the API's page size, which the listing sets.
func WithCommitSize(n int) BatchOption { return func(c *batchConfig) { c.commitSize = n } }

// WithConcurrency sets how many records of a commit batch are imported at once (default 4).
func WithConcurrency(n int) BatchOption { return func(c *batchConfig) { c.concurrency = n } }

// WithProgress sets a callback called after each committed batch with the summary so far.
func WithProgress(f func(Summary)) BatchOption { return func(c *batchConfig) { c.progress = f } }

// maxHeldRuns bounds how many consecutive runs transient failures may hold the watermark.
const maxHeldRuns = 3

// WithWatermark persists the incremental-sync watermark in st under (backend, name), e.g.
// "products.updated_at". A run lists records updated at or after the watermark minus
// lookback (late-arriving data), and moves the watermark forward only past records that
// were committed: imported, skipped, or failed for good.
//
// The rule for failures: a record whose failure may pass by itself — a server error, a
// timeout, a rate limit, a transport error, rejected credentials, a lease held by another
// worker, an error of the local or binding store — holds the watermark at its updated-at, so the next run
// lists it again; but only for 3 consecutive runs (counted in st under name+".held_runs"):
// the fourth run moves past it. A failure that will not pass by itself — the decoder
// rejected the record, the API answered with a client error (4xx), the record's retries
// are used up (WithMaxRetries) — never holds it. Either way the record stays a failed
// binding, with its error and retry count, for Importer.RetryFailed. Records a shutdown
// cut short always hold it.
//
// The listing must be sorted by updated-at, oldest first. Prefer cursor or keyset paging:
// with offset or page-number paging, a record updated during the run moves to the end of
// the listing and shifts the others back, so one of them can slip between two pages; a
// lookback at least as long as a run brings such a record back on the next run.
func WithWatermark(st state.Store, name string, lookback time.Duration) BatchOption {
	return func(c *batchConfig) { c.state, c.stateName, c.lookback = st, name, lookback }
}

// WithEnqueue hands each record to f (a durable queue) instead of importing it; the
// watermark then advances past enqueued records. A record listed twice in one commit
// batch is enqueued once, in its newest version.
func WithEnqueue(f func(ctx context.Context, rec gjson.Result) error) BatchOption {
	return func(c *batchConfig) { c.enqueue = f }
}

// PerRecord imports every record through Importer.ImportRecord, taking its lease, instead
// of the bulk path. Bulk (the default when the local store implements local.KeyedCreator)
// reads a commit batch's bindings in one GetManyByExternal and writes them in one
// UpsertBatch. It is safe against duplicates because local creates are keyed, and records
// leased by another worker when the batch's bindings are read are imported through their
// lease. It takes no lease itself: a worker that starts syncing one of the batch's records
// while it is imported (a webhook import, an exporter) is not waited for; that record's
// binding is then left to it. Choose PerRecord when such overlaps matter more than speed.
// Without a KeyedCreator the batch is always per record.
//
// Both paths check once per commit batch, with local.ExistenceChecker when the store has
// it, that the local records of bound external records still exist, and recreate those
// the app deleted; without it, each record that would be skipped as unchanged is read
// with Get.
func PerRecord() BatchOption { return func(c *batchConfig) { c.perRecord = true } }

// WithMaxErrors caps how many per-record errors the Summary keeps (default 1000).
func WithMaxErrors(n int) BatchOption { return func(c *batchConfig) { c.maxErrors = n } }

// Force imports records even when they are unchanged or failed too often
// (WithMaxRetries). It applies to a Batch and, as their option, to Importer.Import,
// Importer.ImportRecord and Importer.RetryFailed.
func Force() BatchOption { return func(c *batchConfig) { c.force = true } }

// batchOptions applies opts to the defaults.
func batchOptions(opts []BatchOption) batchConfig {
	c := batchConfig{commitSize: 100, concurrency: 4, maxErrors: defaultMaxErrors}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// Batch imports every record of a listing through an Importer.
type Batch[T any] struct {
	rec  *Importer[T]
	list func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error]
	cfg  batchConfig
}

// NewBatch returns a Batch importer that walks list and imports through rec. list walks
// the external listing of records updated at or after since (zero: all), in ascending
// updated-at order when the watermark is used; ListFrom makes one from adapter.Records
// with a query parameter such as updated_at_min.
func NewBatch[T any](rec *Importer[T], list func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error], opts ...BatchOption) (*Batch[T], error) {
	if rec == nil || list == nil {
		return nil, errors.New("importer: NewBatch needs an Importer and a listing function")
	}
	c := batchOptions(opts)
	if c.commitSize <= 0 || c.concurrency <= 0 {
		return nil, fmt.Errorf("importer: commit size (%d) and concurrency (%d) must be positive", c.commitSize, c.concurrency)
	}
	if c.state != nil && c.stateName == "" {
		return nil, errors.New("importer: WithWatermark needs a name, e.g. \"products.updated_at\"")
	}
	if rec.keyed == nil && !c.perRecord {
		// Said once, here: the fallback is slower, and the app can fix it.
		rec.cfg.logger.Info("importer: the local store has no keyed create (local.KeyedCreator), so batches import record by record, each under its lease; implement CreateKeyed for the bulk path",
			"backend", rec.backend, "model", rec.model)
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

func (b *Batch[T]) heldRunsName() string { return b.cfg.stateName + ".held_runs" }

// heldRuns reads how many consecutive runs transient failures held the watermark.
func (b *Batch[T]) heldRuns(ctx context.Context) (int, error) {
	if b.cfg.state == nil {
		return 0, nil
	}
	v, err := b.cfg.state.Get(ctx, b.rec.backend, b.heldRunsName())
	if errors.Is(err, state.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("importer: reading %q of %s: %w", b.heldRunsName(), b.rec.backend, err)
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("importer: %q of %s holds %q, not a count; delete it to start over", b.heldRunsName(), b.rec.backend, v)
	}
	return n, nil
}

// itemResult is the outcome of one record of a page.
type itemResult struct {
	action  report.Action // "" while undecided, and for a record a shutdown cut short
	updated time.Time
	err     error
}

// page is one commit batch of the listing on its way through a run: cut from the listing
// and parsed before the run imports it.
type page struct {
	recs []parsed
	res  []itemResult // res[i].action is set once recs[i] is decided (failed parse, repeat)
	// index maps each external ID of the page to the position of its newest copy, and
	// ids lists them in listing order.
	index map[string]int
	ids   []string
	// ups is the bulk import's buffer of bindings to write (see bulkPage).
	ups []binding.Binding
	// err stops the run: a listing failure. recs is empty then.
	err error
}

// freePages is how many finished pages a run keeps for the next ones to reuse: a page is
// finished two pages after it was imported, while the producer prepares up to two more.
const freePages = 3

// resize returns s with length n, reusing its array when it is large enough.
func resize[E any](s []E, n int) []E {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]E, n)
}

// Run walks the listing once and imports every record. It returns the summary so far and
// the first error that stopped the run (a listing or binding-store error, or ctx); record
// errors do not stop it and are in Summary.Errors. When ctx ends, the records already
// imported are committed (their bindings written, the watermark moved over them) before
// Run returns ctx's error; the records cut short are not counted and are not failures.
//
// A run is a pipeline of three stages, so that two cores both work: one goroutine fetches
// pages and parses their records; the calling goroutine reads a page's bindings and
// imports it (decoding and local writes, on up to WithConcurrency goroutines); a third
// commits the page's bindings while the next page is imported. Commits, tallies and
// watermark moves stay in page order, one commit in flight at a time.
func (b *Batch[T]) Run(ctx context.Context) (Summary, error) {
	start := time.Now()
	runStart := b.rec.cfg.now().UTC().Truncate(time.Microsecond)
	var sum Summary
	wm, err := b.Watermark(ctx)
	if err != nil {
		return sum, err
	}
	held, err := b.heldRuns(ctx)
	if err != nil {
		return sum, err
	}
	sum.Watermark = wm
	since := wm
	if !since.IsZero() {
		since = since.Add(-b.cfg.lookback)
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	pages := make(chan page, 1)
	// Finished pages go back to the producer, whose next pages reuse their memory.
	free := make(chan page, freePages)
	recycle := func(f *inflight) {
		select {
		case free <- f.pg:
		default:
		}
	}
	producerDone := make(chan struct{})
	defer func() {
		cancel()
		<-producerDone // no goroutine outlives Run
	}()
	go func() {
		defer close(producerDone)
		defer close(pages)
		b.produce(ctx, since, pages, free)
	}()

	t := tally[T]{b: b, sum: &sum, wm: wm, start: start, mayHold: held < maxHeldRuns}
	// fl is the page whose commit runs; pend the page imported after it, whose commit
	// starts once the next page's bindings are read (see readPage) or the run ends. At
	// most one commit runs at a time, in page order.
	var fl, pend *inflight
	var pendCommit func() error
	startPending := func() {
		f, commit := pend, pendCommit
		pend, pendCommit = nil, nil
		fl = f
		if commit == nil {
			f.done <- nil
		} else {
			go func() { f.done <- commit() }()
		}
	}
	// drain finishes the running commit, then starts and finishes the pending one.
	drain := func() error {
		for fl != nil || pend != nil {
			if fl != nil {
				err := t.finish(ctx, fl)
				fl = nil // the run ends: nothing to recycle for
				if err != nil {
					pend, pendCommit = nil, nil // its records stay unbound; a rerun binds them by key
					return err
				}
			}
			if pend != nil {
				startPending()
			}
		}
		return nil
	}
	stop := func(err error) (Summary, error) {
		if ferr := drain(); ferr != nil {
			err = errors.Join(err, ferr)
		}
		if t.transientHeld {
			err = errors.Join(err, b.saveHeldRuns(ctx, held+1))
		}
		sum.Elapsed = time.Since(start)
		return sum, err
	}
	for pg := range pages {
		if pg.err != nil {
			return stop(pg.err)
		}
		// The page before the previous one must be committed before this page's
		// bindings are read: a repeat of one of its records is told by its binding.
		if fl != nil {
			err := t.finish(ctx, fl)
			if err != nil {
				fl, pend, pendCommit = nil, nil, nil
				return stop(err)
			}
			recycle(fl) // its commit is done and its results counted
			fl = nil
		}
		rd, rerr := b.readPage(ctx, &pg, runStart)
		if pend != nil {
			startPending()
		}
		if rerr != nil {
			if ctxerr.Interrupted(ctx, rerr) {
				// Commit (count) what was decided of the page before the shutdown.
				pend = &inflight{done: make(chan error, 1), res: pg.res}
			}
			return stop(rerr) // else a store failed before anything of the page was decided
		}
		commit, ierr := b.importPage(ctx, &pg, rd)
		// Commit what the page did even when it was cut short: work already done is kept.
		pend, pendCommit = &inflight{done: make(chan error, 1), res: pg.res, pg: pg}, commit
		if ierr != nil {
			return stop(ierr)
		}
	}
	if err := drain(); err != nil {
		return stop(err)
	}
	if err := parent.Err(); err != nil {
		return stop(err)
	}
	switch {
	case t.transientHeld:
		err = b.saveHeldRuns(ctx, held+1)
	case held > 0:
		err = b.saveHeldRuns(ctx, 0) // a run that completed without a hold
	}
	sum.Elapsed = time.Since(start)
	return sum, err
}

func (b *Batch[T]) saveHeldRuns(ctx context.Context, n int) error {
	if b.cfg.state == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	var err error
	if n == 0 {
		err = b.cfg.state.Delete(ctx, b.rec.backend, b.heldRunsName())
	} else {
		err = b.cfg.state.Put(ctx, b.rec.backend, b.heldRunsName(), []byte(strconv.Itoa(n)))
	}
	if err != nil {
		return fmt.Errorf("importer: saving %q of %s: %w", b.heldRunsName(), b.rec.backend, err)
	}
	return nil
}

// produce walks the listing and sends prepared pages until it ends, fails or ctx ends.
// It prepares pages in the memory of the finished pages it receives on free.
func (b *Batch[T]) produce(ctx context.Context, since time.Time, pages chan<- page, free <-chan page) {
	send := func(pg page) bool {
		select {
		case pages <- pg:
			return true
		case <-ctx.Done():
			return false
		}
	}
	buf := make([]gjson.Result, 0, b.cfg.commitSize)
	var prev page
	flush := func() bool {
		var reuse page
		select {
		case reuse = <-free:
		default:
		}
		pg := b.prepare(buf, &prev, &reuse)
		buf = buf[:0] // the page holds copies of the records, not buf
		prev = pg
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
		if len(buf) == b.cfg.commitSize && !flush() {
			return
		}
	}
	if len(buf) > 0 {
		flush()
	}
}

// prepare parses a page's records and keeps the newest copy of each external ID the page
// lists more than once (by updated-at, then by position); the others are duplicates, as
// are copies of a record of the previous page that do not replace it. (Pages before that
// one are committed by the time this one is imported: a repeat of theirs is told by its
// binding, synced during the run.) The page reuses the memory of reuse, a finished page
// (or a zero page).
func (b *Batch[T]) prepare(recs []gjson.Result, prev, reuse *page) page {
	r := b.rec
	n := len(recs)
	pg := page{recs: resize(reuse.recs, n), res: resize(reuse.res, n), index: reuse.index, ups: reuse.ups}
	clear(pg.res)
	if pg.index == nil {
		pg.index = make(map[string]int, n)
	} else {
		clear(pg.index)
	}
	ids := reuse.ids[:0] // the page's external IDs, once each, in listing order
	if cap(ids) < n {
		ids = make([]string, 0, n)
	}
	for i := range recs {
		p, err := r.parse(recs[i])
		pg.recs[i] = p
		pg.res[i].updated = p.updated
		if err != nil {
			pg.res[i].action, pg.res[i].err = report.Failed, err
			continue
		}
		if k, ok := prev.index[p.extID]; ok && !p.replaces(&prev.recs[k]) {
			pg.res[i].action = duplicate
			continue
		}
		j, seen := pg.index[p.extID]
		switch {
		case !seen:
			pg.index[p.extID] = i
			ids = append(ids, p.extID)
		case p.replaces(&pg.recs[j]):
			pg.res[j].action = duplicate
			pg.index[p.extID] = i
		default:
			pg.res[i].action = duplicate
		}
	}
	pg.ids = ids // kept in enqueue mode too, unread there, so that its memory is reused
	return pg
}

// inflight is a page whose bindings are being committed.
type inflight struct {
	done chan error
	res  []itemResult
	pg   page // its memory, reused once it is finished
}

// tally adds committed pages to the summary and moves the watermark.
type tally[T any] struct {
	b     *Batch[T]
	sum   *Summary
	wm    time.Time
	held  bool // the watermark stopped for this run
	start time.Time
	// mayHold: transient failures may hold the watermark this run (see WithWatermark);
	// transientHeld: one did.
	mayHold, transientHeld bool
}

// holdsWatermark reports whether a record's failure may pass by itself (see WithWatermark).
func holdsWatermark(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, report.ErrTooManyRetries):
		return false
	case errors.Is(err, binding.ErrLocked), errors.Is(err, binding.ErrLeaseLost),
		errors.Is(err, adapter.ErrServer), errors.Is(err, adapter.ErrTimeout), errors.Is(err, adapter.ErrRateLimited),
		errors.Is(err, adapter.ErrTransport), errors.Is(err, adapter.ErrUnauthorized),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return true
	case errors.Is(err, report.ErrNoExternalID), errors.Is(err, ErrBadUpdatedAt), errors.Is(err, report.ErrSkip),
		errors.Is(err, adapter.ErrNotFound), errors.Is(err, adapter.ErrClientError),
		errors.Is(err, adapter.ErrBadResponse), errors.Is(err, adapter.ErrInvalidRequest), errors.Is(err, adapter.ErrResponseTooLarge):
		return false
	}
	var re *report.RecordError
	if errors.As(err, &re) && (re.Step == "map" || re.Step == "parse") {
		return false // the decoder rejected the record
	}
	return true // a store's error, or one we cannot tell: held, for a bounded number of runs
}

// finish waits for f's commit, tallies its records and moves the watermark up to the
// newest record of the page, or to the oldest record that holds it.
func (t *tally[T]) finish(ctx context.Context, f *inflight) error {
	if err := <-f.done; err != nil {
		return err
	}
	b, sum := t.b, t.sum
	var newest, oldestHold time.Time
	holds := false
	for i := range f.res {
		r := &f.res[i]
		hold := false
		switch r.action {
		case "":
			hold = true // cut short: not counted, listed again
		case report.Failed:
			sum.add(r.action, r.err, b.cfg.maxErrors)
			if t.mayHold && holdsWatermark(r.err) {
				hold, t.transientHeld = true, true
			}
		default:
			sum.add(r.action, r.err, b.cfg.maxErrors)
		}
		if hold {
			if !holds || r.updated.Before(oldestHold) {
				oldestHold = r.updated
			}
			holds = true
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
	case holds:
		// Records older than the oldest held one are committed; it and anything newer
		// are listed again next run (the listing is inclusive of the watermark). A held
		// record without a time: cannot tell how far is safe.
		next, t.held = maxTime(t.wm, oldestHold), true
	default:
		next = maxTime(t.wm, newest)
	}
	if b.cfg.state != nil && next.After(t.wm) {
		if err := b.cfg.state.Put(context.WithoutCancel(ctx), b.rec.backend, b.cfg.stateName, []byte(next.UTC().Format(time.RFC3339Nano))); err != nil {
			return fmt.Errorf("importer: saving watermark %q of %s: %w", b.cfg.stateName, b.rec.backend, err)
		}
		t.wm = next
		sum.Watermark = next
	}
	if b.cfg.progress != nil {
		s := *sum
		s.Elapsed = time.Since(t.start)
		b.cfg.progress(s)
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
	// The calling goroutine takes the first share itself: one goroutine fewer to start,
	// and one fewer to wake.
	for w := 1; w < conc; w++ {
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
	for i := range min(per, n) {
		f(i)
	}
	wg.Wait()
}

// pageRead is what readPage learned about a page before importing it: its bindings and
// which of their local records still exist. nil when there is nothing to import by
// binding (enqueue mode, or no readable record).
type pageRead struct {
	current map[string]binding.Binding
	pc      *pageCtx
}

// readPage records the page's unreadable records as failed and reads the bindings of the
// others (and which of their local records exist). An error is a store's failure, or ctx.
// The run reads a page's bindings after the commit before the previous page finished and
// before the previous page's commit starts: with a store that serializes reads and
// writes (the memory store's lock), that commit then runs alongside this page's import
// instead of delaying its read.
func (b *Batch[T]) readPage(ctx context.Context, pg *page, runStart time.Time) (*pageRead, error) {
	r := b.rec
	if b.cfg.enqueue != nil {
		return nil, nil
	}
	recs, res := pg.recs, pg.res
	for i := range res {
		if res[i].action != report.Failed || recs[i].extID == "" {
			continue
		}
		if _, ok := pg.index[recs[i].extID]; !ok { // no readable copy on the page decides it
			r.parseFailed(ctx, recs[i].extID, res[i].err) // a record that cannot be read shows as failed
		}
	}
	if len(pg.ids) == 0 {
		return nil, nil
	}
	// Read the page's bindings just before importing it, not when it was fetched, so the
	// window in which another worker's change goes unseen stays as short as one page.
	current, err := r.bindings.GetManyByExternal(ctx, r.backend, r.model, pg.ids)
	if err != nil {
		// The store's failure, not a record's: stop the run rather than fail every record.
		return nil, fmt.Errorf("importer: reading the bindings of a page of %d %s %s records: %w", len(pg.ids), r.backend, r.model, err)
	}
	pc := &pageCtx{runStart: runStart}
	if err := b.checkLive(ctx, current, pc); err != nil {
		return nil, err
	}
	return &pageRead{current: current, pc: pc}, nil
}

// importPage imports a page read by readPage, filling pg.res, and returns what is left to
// commit (nil when nothing is). It returns an error when the run must stop: a local store
// failure, or ctx (then the commit holds what was done).
func (b *Batch[T]) importPage(ctx context.Context, pg *page, rd *pageRead) (func() error, error) {
	r := b.rec
	recs, res := pg.recs, pg.res
	if b.cfg.enqueue != nil {
		parallel(len(recs), b.cfg.concurrency, func(i int) {
			if res[i].action != "" {
				return
			}
			err := b.cfg.enqueue(ctx, recs[i].rec)
			switch {
			case err == nil:
				res[i].action = report.Enqueued
			case !ctxerr.Interrupted(ctx, err):
				res[i].action, res[i].err = report.Failed, r.fail(recs[i].extID, "enqueue", err)
			}
		})
		return nil, ctx.Err()
	}
	if rd == nil {
		return nil, ctx.Err()
	}
	if b.cfg.perRecord || r.keyed == nil {
		parallel(len(recs), b.cfg.concurrency, func(i int) {
			if res[i].action != "" {
				return
			}
			out, err := r.importParsed(ctx, recs[i], b.cfg.force, rd.pc)
			res[i].action, res[i].err = out.Action, err
		})
		return nil, ctx.Err()
	}
	return b.bulkPage(ctx, pg, rd.current, rd.pc)
}

// checkLive asks the local store, in one call, which local records of the page's
// successful bindings still exist (nothing when it is no local.ExistenceChecker).
func (b *Batch[T]) checkLive(ctx context.Context, current map[string]binding.Binding, pc *pageCtx) error {
	r := b.rec
	if r.exists == nil || len(current) == 0 {
		return nil
	}
	ids := make([]string, 0, len(current))
	for _, cur := range current {
		if cur.Status == binding.StatusSuccess && cur.LocalID != "" {
			ids = append(ids, cur.LocalID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	live, err := r.exists.Existing(ctx, ids)
	if err != nil {
		return fmt.Errorf("importer: checking which of %d local %s records still exist: %w", len(ids), r.model, err)
	}
	pc.live = make(map[string]bool, len(ids))
	for _, id := range ids {
		_, ok := live[id]
		pc.live[id] = ok
	}
	return nil
}

// bulkPage imports a page, writing local records with keyed creates; the returned commit
// stores the page's bindings in one UpsertBatch.
func (b *Batch[T]) bulkPage(ctx context.Context, pg *page, current map[string]binding.Binding, pc *pageCtx) (func() error, error) {
	r := b.rec
	recs, res := pg.recs, pg.res
	n := len(recs)
	// ups[i] is record i's binding to write; no ExternalID means none.
	ups := resize(pg.ups, n)
	clear(ups)
	pg.ups = ups // reused by a later page once this one is finished
	// links[i] carries record i's place in the dependency chain to its decoder: one
	// allocation per page, not per record. Never reused: a decoder may keep its context.
	links := make([]depchain.Link, n)
	now := r.cfg.now()
	syncedAt := pc.syncTime(now)
	parallel(n, b.cfg.concurrency, func(i int) {
		if res[i].action != "" {
			return
		}
		p := &recs[i]
		cur, ok := current[p.extID]
		if !ok {
			cur = binding.Binding{Backend: r.backend, Model: r.model, ExternalID: p.extID}
		}
		if !b.cfg.force && p.unchanged(&cur) {
			if cur.SyncedAt.After(pc.runStart) {
				res[i].action = duplicate // imported from an earlier page of this run
				return
			}
			live, err := r.live(ctx, cur.LocalID, pc)
			switch {
			case err != nil && ctxerr.Interrupted(ctx, err):
				return
			case err != nil:
				res[i].action, res[i].err = report.Failed, r.fail(p.extID, "check", err)
				return
			case live:
				res[i].action = report.Skipped
				return
			}
			cur.LocalID = "" // the app deleted it: create it again and rebind
		}
		if cur.ID != 0 && bindingkit.Leased(&cur, now) {
			// Someone else is importing it: go through the lease.
			out, err := r.importParsed(ctx, *p, b.cfg.force, pc)
			res[i].action, res[i].err = out.Action, err
			return
		}
		if !b.cfg.force && r.cfg.maxRetries > 0 && !bindingkit.CanRetry(&cur, r.cfg.maxRetries) {
			res[i].action = report.Failed
			res[i].err = r.fail(p.extID, "claim", fmt.Errorf("%w (%d failures, last: %s); import it with importer.Force() or RetryFailed", report.ErrTooManyRetries, cur.RetryCount, cur.LastError))
			return
		}
		action, localID, step, err := r.apply(ctx, p, cur.LocalID, &links[i])
		// Written in place: a Binding is large, and copying it was a measurable cost.
		ups[i] = cur
		u := &ups[i]
		u.LeaseOwner, u.LeaseExpiresAt = "", time.Time{}
		switch {
		case errors.Is(err, report.ErrSkip):
			res[i].action = report.Skipped
			u.Status = binding.StatusSkipped
		case err != nil && ctxerr.Interrupted(ctx, err):
			*u = binding.Binding{}
			return // cut short: nothing to write, not a failure
		case err != nil:
			ferr := r.fail(p.extID, step, err)
			res[i].action, res[i].err = report.Failed, ferr
			u.Status, u.LastError, u.RetryCount = binding.StatusFailed, ferr.Error(), cur.RetryCount+1
		default:
			res[i].action = action
			u.LocalID, u.Status, u.LastError, u.RetryCount = localID, binding.StatusSuccess, "", 0
			u.Hash, u.ExternalUpdatedAt, u.SyncedAt = p.hash, p.updated, syncedAt
		}
	})
	// Keep the bindings to write, in page order, in place (copying only those after the
	// first gap).
	k := 0
	for k < len(ups) && ups[k].ExternalID != "" {
		k++
	}
	batch := ups[:k]
	for i := k; i < len(ups); i++ {
		if ups[i].ExternalID != "" {
			batch = append(batch, ups[i])
		}
	}
	if len(batch) == 0 {
		return nil, ctx.Err()
	}
	return func() error { return b.commit(ctx, batch) }, ctx.Err()
}

// commit writes a page's bindings. The page's local records are written: bind them even
// if ctx ends meanwhile, rather than leave the next run to find them by key. A binding
// another worker leased since the page read it is left to that worker.
func (b *Batch[T]) commit(ctx context.Context, batch []binding.Binding) error {
	r := b.rec
	// Only the error is read: a store may skip copying the written bindings back.
	ctx = batchhint.WithoutResults(context.WithoutCancel(ctx))
	for len(batch) > 0 {
		_, err := r.bindings.UpsertBatch(ctx, batch)
		var be *binding.BatchError
		if err == nil {
			return nil
		}
		if !errors.As(err, &be) || be.Index < 0 || be.Index >= len(batch) ||
			!(errors.Is(be.Err, binding.ErrLocked) || errors.Is(be.Err, binding.ErrLeaseLost)) {
			return fmt.Errorf("importer: writing the bindings of a page of %d %s %s records (the local records are written; a rerun binds them without duplicates): %w", len(batch), r.backend, r.model, err)
		}
		r.cfg.logger.Debug("importer: binding leased by another worker, left to it", "backend", r.backend, "model", r.model, "external_id", batch[be.Index].ExternalID)
		batch = append(batch[:be.Index], batch[be.Index+1:]...)
	}
	return nil
}
