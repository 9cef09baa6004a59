// Package importer brings external records into the application: external → local.
//
// An [Importer] handles one record: fetch it (or take one already fetched), skip it when
// it did not change since the last sync and its local record still exists, decode it into
// the app's type (a mapper's relation rules import the records it refers to first, see
// mapper.WithImportMissing), create or update it through the app's [local.Store], bind the two IDs and mark the binding successful — or failed,
// with the error and a retry count. Concurrent imports of one external ID never create two
// local records: each import ensures the binding, then holds its lease while it writes.
// [Importer.RetryFailed] imports the failed ones again.
//
// A [Batch] importer walks a paginated listing and imports every record, with bounded
// concurrency, a progress callback and a [Summary] whose counts add up to the records
// listed. It keeps a persisted watermark (the newest updated-at it has fully committed)
// for incremental syncs, and commits it page by page, so a run that is killed resumes
// where it stopped without creating anything twice.
package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/bindingkit"
	"github.com/connkit/connkit/internal/ctxerr"
	"github.com/connkit/connkit/internal/depchain"
	"github.com/connkit/connkit/internal/jsontime"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
)

// DecodeFunc turns an external record into the app's type. create tells whether the
// result will be created (true) or will replace an existing local record (false), so a
// decoder can set fields only on create. Returning an error matching report.ErrSkip skips
// the record. mapper.ImportFunc adapts a declarative mapper to it.
type DecodeFunc[T any] func(ctx context.Context, rec gjson.Result, create bool) (T, error)

// Errors matched with errors.Is.
var (
	// ErrBadUpdatedAt: the record's updated-at value is not a time the importer can read.
	ErrBadUpdatedAt = errors.New("importer: unreadable updated-at")
)

// errNoFetch: Import or RetryFailed was called but New was given no WithFetch (a
// programming error, so no exported sentinel).
var errNoFetch = errors.New("importer: no fetch function configured")

// errPrefix starts the text of every import's report.RecordError, so RetryFailed tells
// the importer's failed bindings from the exporter's.
const errPrefix = "importing "

// duplicate is a batch record that repeats one already seen in the run.
const duplicate report.Action = "duplicate"

type config struct {
	fetch         func(ctx context.Context, externalID string) (gjson.Result, error)
	idPath        string
	updatedAtPath string
	claimer       *binding.Claimer
	maxRetries    int
	now           func() time.Time
	logger        *slog.Logger
}

// Option configures an Importer.
type Option func(*config)

// WithFetch sets how Import reads one external record by its external ID (FetchFrom makes
// such a function from an adapter.Doer).
func WithFetch(f func(ctx context.Context, externalID string) (gjson.Result, error)) Option {
	return func(c *config) { c.fetch = f }
}

// WithIDPath sets the gjson path of the external ID in a record (default "id").
func WithIDPath(path string) Option { return func(c *config) { c.idPath = path } }

// WithUpdatedAtPath sets the gjson path of the record's modification time (default
// "updated_at"). Values may be RFC 3339 strings or Unix seconds. "" disables the
// updated-at check.
func WithUpdatedAtPath(path string) Option { return func(c *config) { c.updatedAtPath = path } }

// WithClaimer sets how an import takes its binding's lease: how long a lease lasts, how
// long to wait for another worker's lease before failing with an error matching
// binding.ErrLocked, the backoff between attempts and the owner names (see
// binding.Claimer). Its Store must be the binding store
// given to New. By default the importer uses a Claimer with binding's defaults.
func WithClaimer(c *binding.Claimer) Option { return func(cfg *config) { cfg.claimer = c } }

// WithMaxRetries stops importing a record whose binding failed n times in a row (it
// fails with report.ErrTooManyRetries until forced). 0, the default, never stops.
func WithMaxRetries(n int) Option { return func(c *config) { c.maxRetries = n } }

// WithLogger sets the logger (default: none; the importer is silent).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Importer imports records of one model from one backend into a local.Store[T].
type Importer[T any] struct {
	cfg      config
	backend  string
	model    string
	bindings binding.Store
	store    local.Store[T]
	keyed    local.KeyedCreator[T]
	exists   local.ExistenceChecker
	decode   DecodeFunc[T]
	claimer  *binding.Claimer
	// keyPrefix is "backend/model/", the start of every local idempotency key.
	keyPrefix string
}

// New returns an Importer for model on backend, writing through store and binding
// through bindings. decode turns external records into T.
func New[T any](bindings binding.Store, store local.Store[T], backend, model string, decode DecodeFunc[T], opts ...Option) (*Importer[T], error) {
	switch {
	case bindings == nil:
		return nil, errors.New("importer: New needs a binding.Store (binding.NewMemory() in tests)")
	case store == nil:
		return nil, errors.New("importer: New needs a local.Store to write records to")
	case decode == nil:
		return nil, errors.New("importer: New needs a DecodeFunc to turn external records into local ones")
	case backend == "" || model == "":
		return nil, fmt.Errorf("importer: New needs a backend and a model name (got %q, %q)", backend, model)
	}
	c := config{
		idPath:        "id",
		updatedAtPath: "updated_at",
		now:           time.Now,
		logger:        slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&c)
	}
	if c.idPath == "" {
		return nil, errors.New("importer: the ID path may not be empty")
	}
	if c.claimer == nil {
		c.claimer = &binding.Claimer{Store: bindings}
	} else if c.claimer.Store == nil {
		return nil, errors.New("importer: WithClaimer needs a Claimer whose Store is the binding store given to New")
	}
	if c.now == nil || c.logger == nil {
		return nil, errors.New("importer: WithLogger needs a non-nil logger")
	}
	r := &Importer[T]{cfg: c, backend: backend, model: model, bindings: bindings, store: store, decode: decode,
		claimer: c.claimer, keyPrefix: backend + "/" + model + "/"}
	r.keyed, _ = store.(local.KeyedCreator[T])
	r.exists, _ = store.(local.ExistenceChecker)
	return r, nil
}

// live reports whether the local record id exists, from the page's batched answer when it
// has one, else by asking the store.
func (r *Importer[T]) live(ctx context.Context, id string, pc *pageCtx) (bool, error) {
	if pc != nil {
		if v, ok := pc.live[id]; ok {
			return v, nil
		}
	}
	if r.exists != nil {
		m, err := r.exists.Existing(ctx, []string{id})
		_, ok := m[id]
		return ok, err
	}
	_, err := r.store.Get(ctx, id)
	if errors.Is(err, local.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Import fetches the external record with the given ID and imports it. When the fetch
// fails, the binding (if the record has one) is marked failed under its lease; when
// another worker holds that lease, or ctx ended, nothing is written. Of the options only
// Force applies.
func (r *Importer[T]) Import(ctx context.Context, externalID string, opts ...BatchOption) (report.Result, error) {
	if r.cfg.fetch == nil {
		return report.Result{ExternalID: externalID, Action: report.Failed}, r.fail(externalID, "fetch", fmt.Errorf("%w: pass importer.WithFetch to New", errNoFetch))
	}
	if externalID == "" {
		return report.Result{Action: report.Failed}, r.fail("", "fetch", report.ErrNoExternalID)
	}
	rec, err := r.cfg.fetch(ctx, externalID)
	if err != nil {
		ferr := r.fail(externalID, "fetch", err)
		if ctxerr.Interrupted(ctx, err) {
			return report.Result{ExternalID: externalID}, ferr
		}
		res := report.Result{ExternalID: externalID, Action: report.Failed}
		b, gerr := r.bindings.GetByExternal(ctx, r.backend, r.model, externalID)
		if gerr == nil {
			res.Binding = r.markFailed(ctx, b, ferr)
		}
		return res, ferr
	}
	return r.ImportRecord(ctx, rec, opts...)
}

// markFailed records ferr on b under b's lease. When another worker holds the lease, its
// sync decides the binding and nothing is written. It returns the stored binding, or b
// unchanged when nothing was written.
func (r *Importer[T]) markFailed(ctx context.Context, b binding.Binding, ferr error) binding.Binding {
	ctx = context.WithoutCancel(ctx)
	if bindingkit.Leased(&b, r.cfg.now()) {
		return b
	}
	lease, err := r.claimer.Hold(ctx, b.ID)
	if err != nil {
		r.cfg.logger.Debug("importer: failure not recorded, the binding is leased", "backend", r.backend, "model", r.model, "external_id", b.ExternalID, "err", err)
		return b
	}
	defer r.release(ctx, lease, b.ExternalID)
	fb, err := r.bindings.MarkFailed(ctx, b.ID, binding.Failure{Owner: lease.Owner(), Error: ferr.Error()})
	if err != nil {
		r.cfg.logger.Warn("importer: recording a failure", "backend", r.backend, "model", r.model, "external_id", b.ExternalID, "err", err)
		return b
	}
	return fb
}

func (r *Importer[T]) release(ctx context.Context, lease *binding.Lease, extID string) {
	if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
		r.cfg.logger.Warn("importer: releasing lease", "backend", r.backend, "model", r.model, "external_id", extID, "err", err)
	}
}

// ImportRecord imports an external record that was already fetched (from a listing, a
// webhook). Of the options only Force applies.
func (r *Importer[T]) ImportRecord(ctx context.Context, rec gjson.Result, opts ...BatchOption) (report.Result, error) {
	ic := batchOptions(opts)
	p, err := r.parse(rec)
	if err != nil {
		return r.parseFailed(ctx, p.extID, err), err
	}
	return r.importParsed(ctx, p, ic.force, nil)
}

// parseFailed records a record that cannot be read (an unreadable updated-at) as a failed
// binding when its external ID is known, so it shows among the failures.
func (r *Importer[T]) parseFailed(ctx context.Context, extID string, err error) report.Result {
	res := report.Result{ExternalID: extID, Action: report.Failed}
	if extID == "" {
		return res
	}
	b, _, berr := r.bindings.Ensure(context.WithoutCancel(ctx), binding.Binding{Backend: r.backend, Model: r.model, ExternalID: extID, Status: binding.StatusPending})
	if berr == nil {
		res.Binding = r.markFailed(ctx, b, err)
	}
	return res
}

// parsed is what the importer reads from an external record before deciding anything.
type parsed struct {
	rec     gjson.Result
	extID   string
	updated time.Time
	hash    string
}

func (r *Importer[T]) parse(rec gjson.Result) (parsed, error) {
	p := parsed{rec: rec}
	if !rec.IsObject() {
		return p, r.fail("", "parse", fmt.Errorf("%w: the record is not a JSON object: %.80s", report.ErrNoExternalID, rec.Raw))
	}
	id := rec.Get(r.cfg.idPath)
	if id.Type != gjson.String && id.Type != gjson.Number {
		// An object or array would become an "ID" made of raw JSON.
		return p, r.fail("", "parse", fmt.Errorf("%w: the value at path %q is not a string or number in %.80s", report.ErrNoExternalID, r.cfg.idPath, rec.Raw))
	}
	p.extID = id.String()
	if p.extID == "" {
		return p, r.fail("", "parse", fmt.Errorf("%w at path %q in %.80s", report.ErrNoExternalID, r.cfg.idPath, rec.Raw))
	}
	if r.cfg.updatedAtPath != "" {
		t, err := jsontime.Parse(rec.Get(r.cfg.updatedAtPath))
		if err != nil {
			return p, r.fail(p.extID, "parse", fmt.Errorf("%w at path %q: %v", ErrBadUpdatedAt, r.cfg.updatedAtPath, err))
		}
		if !t.IsZero() {
			p.updated = t.UTC().Truncate(time.Microsecond) // stores keep microseconds
		}
	}
	p.hash = contentHash(rec.Raw)
	return p, nil
}

// contentHash is importHashPrefix and the hex of the first 16 bytes of raw's SHA-256:
// one allocation, and raw is hashed in place rather than copied to a []byte first.
func contentHash(raw string) string {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw))) // read only
	var buf [len(importHashPrefix) + 32]byte
	copy(buf[:], importHashPrefix)
	hex.Encode(buf[len(importHashPrefix):], sum[:16])
	return string(buf[:])
}

// importHashPrefix marks the hashes the importer stores in Binding.Hash. The binding is
// shared with the exporter, which stores its payload's hash there: the prefix tells
// whose hash the binding holds.
const importHashPrefix = "import:"

// unchanged reports whether b already holds this version of the record: an older
// updated-at than the one synced, or the same content. An equal updated-at alone is not
// enough when the binding holds the hash of an earlier import: APIs with second precision
// update a record twice within one second. When it holds an export's hash instead, the
// updated-at was read from the API's answer to that export, so an equal time is the
// export's own write coming back, not a change.
func (p *parsed) unchanged(b *binding.Binding) bool {
	if b.Status != binding.StatusSuccess || b.LocalID == "" {
		return false
	}
	timed := !p.updated.IsZero() && !b.ExternalUpdatedAt.IsZero()
	switch {
	case timed && p.updated.Before(b.ExternalUpdatedAt):
		return true // a stale copy (a late page, a lookback window)
	case timed && p.updated.Equal(b.ExternalUpdatedAt) && !strings.HasPrefix(b.Hash, importHashPrefix):
		return true
	case p.hash != "":
		return p.hash == b.Hash
	default:
		return timed && !p.updated.After(b.ExternalUpdatedAt)
	}
}

// replaces reports whether p, listed after q (same external ID), is the version to keep:
// the newest by updated-at, then by position — unless both are the same copy.
func (p *parsed) replaces(q *parsed) bool {
	if !p.updated.IsZero() && !q.updated.IsZero() && !p.updated.Equal(q.updated) {
		return p.updated.After(q.updated)
	}
	return p.rec.Raw != q.rec.Raw
}

func (r *Importer[T]) fail(extID, step string, err error) error {
	return &report.RecordError{Op: "import", Backend: r.backend, Model: r.model, ExternalID: extID, Step: step, Err: err}
}

// key is the local idempotency key of an external record.
func (r *Importer[T]) key(extID string) string { return r.keyPrefix + extID }

// pageCtx is what a batch run knows when it imports one record of a page through
// importParsed.
type pageCtx struct {
	// runStart: a binding synced after it was synced by this run (a repeat). The run's
	// sync times are kept after it (syncTime), however coarse the clock.
	runStart time.Time
	// live holds the page's batched existence answers by local ID.
	live map[string]bool
}

// syncTime is the sync time to record now: in a run, at least a microsecond (what stores
// keep) after its start.
func (pc *pageCtx) syncTime(now time.Time) time.Time {
	if pc == nil {
		return now
	}
	return maxTime(now.UTC().Truncate(time.Microsecond), pc.runStart.Add(time.Microsecond))
}

// importParsed imports p under its binding's lease. A Result with an empty Action and an
// error is an import cut short by ctx.
func (r *Importer[T]) importParsed(ctx context.Context, p parsed, force bool, pc *pageCtx) (report.Result, error) {
	res, err := r.importLeased(ctx, p, force, pc)
	if err != nil && ctxerr.Interrupted(ctx, err) {
		res.Action = ""
	}
	return res, err
}

func (r *Importer[T]) importLeased(ctx context.Context, p parsed, force bool, pc *pageCtx) (report.Result, error) {
	res := report.Result{ExternalID: p.extID, Action: report.Failed}
	b, _, err := r.bindings.Ensure(ctx, binding.Binding{Backend: r.backend, Model: r.model, ExternalID: p.extID, Status: binding.StatusPending})
	if err != nil {
		return res, r.fail(p.extID, "bind", err)
	}
	res.Binding, res.LocalID = b, b.LocalID
	gone := ""
	if !force && p.unchanged(&b) {
		if pc != nil && b.SyncedAt.After(pc.runStart) {
			res.Action = duplicate // this run imported it from an earlier page
			return res, nil
		}
		live, err := r.live(ctx, b.LocalID, pc)
		if err != nil {
			return res, r.fail(p.extID, "check", err)
		}
		if live {
			res.Action = report.Skipped
			return res, nil
		}
		gone = b.LocalID // the app deleted it: import it again
	}
	if !force && r.cfg.maxRetries > 0 && !bindingkit.CanRetry(&b, r.cfg.maxRetries) {
		return res, r.fail(p.extID, "claim", fmt.Errorf("%w (%d failures, last: %s); import it with importer.Force() or RetryFailed", report.ErrTooManyRetries, b.RetryCount, b.LastError))
	}
	lease, err := r.claimer.Hold(ctx, b.ID)
	if err != nil {
		if errors.Is(err, binding.ErrLocked) {
			err = fmt.Errorf("another worker is syncing the record (nothing was written; try again later): %w", err)
		}
		return res, r.fail(p.extID, "claim", err)
	}
	defer r.release(ctx, lease, p.extID)
	b = lease.Binding()
	res.Binding, res.LocalID = b, b.LocalID
	if !force && p.unchanged(&b) && (gone == "" || b.LocalID != gone) {
		// Another worker imported it while we waited.
		res.Action = report.Skipped
		return res, nil
	}
	return r.write(ctx, lease, p, b, res, pc)
}

// write does the part of an import that happens under the lease: decoding,
// local write, binding. The work runs under the lease's context, and every binding write
// names the lease: a lease lost meanwhile stops the import and writes nothing.
func (r *Importer[T]) write(ctx context.Context, lease *binding.Lease, p parsed, b binding.Binding, res report.Result, pc *pageCtx) (report.Result, error) {
	owner := lease.Owner()
	lctx := lease.Context()
	action, localID, step, err := r.apply(lctx, &p, b.LocalID, nil)
	if err != nil && lctx.Err() != nil && ctx.Err() == nil {
		// The lease was lost, not ctx: the new holder's sync wins.
		return res, r.fail(p.extID, step, fmt.Errorf("%w (%w)", context.Cause(lctx), err))
	}
	if errors.Is(err, report.ErrSkip) {
		if serr := r.bindings.SetStatus(context.WithoutCancel(ctx), b.ID, owner, binding.StatusSkipped); serr != nil {
			return res, r.fail(p.extID, "mark", serr)
		}
		b.Status = binding.StatusSkipped
		res.Binding, res.Action = b, report.Skipped
		return res, nil
	}
	if err != nil {
		ferr := r.fail(p.extID, step, err)
		if ctxerr.Interrupted(ctx, err) {
			return res, ferr // cut short, not failed: no retry is counted
		}
		if fb, merr := r.bindings.MarkFailed(context.WithoutCancel(ctx), b.ID, binding.Failure{Owner: owner, Error: ferr.Error()}); merr == nil {
			res.Binding = fb
		} else {
			ferr = errors.Join(ferr, r.fail(p.extID, "mark", merr))
		}
		return res, ferr
	}
	// The local record is written: bind it even if ctx ends now, or a store without
	// keyed creates would create it again on the next run.
	sb, err := r.bindings.MarkSuccess(context.WithoutCancel(ctx), b.ID, binding.Success{Owner: owner, LocalID: localID, Hash: p.hash, ExternalUpdatedAt: p.updated, At: pc.syncTime(r.cfg.now())})
	if err != nil {
		return res, r.fail(p.extID, "mark", err)
	}
	res.Binding, res.LocalID, res.Action = sb, localID, action
	return res, nil
}

// apply decodes and writes the local record. It returns the action,
// the local ID and, on error, the step that failed. link, when not nil, is the memory of
// the record's link in the dependency chain (a batch keeps a page's links in one slice).
func (r *Importer[T]) apply(ctx context.Context, p *parsed, localID string, link *depchain.Link) (report.Action, string, string, error) {
	// The mapping may import related records first (a relation's WithImportMissing); the
	// chain in ctx tells them this record is being imported, under its lease, so a cycle
	// back to it stops instead of waiting on a lease its own import holds.
	if link == nil {
		link = new(depchain.Link)
	}
	v, err := r.decode(link.With(ctx, depchain.Import, r.backend, r.model, p.extID), p.rec, localID == "")
	if err != nil {
		return report.Failed, localID, "map", err
	}
	if localID != "" {
		err := r.store.Update(ctx, localID, v)
		if err == nil {
			return report.Updated, localID, "", nil
		}
		if !errors.Is(err, local.ErrNotFound) {
			return report.Failed, localID, "update", err
		}
		// The app deleted the local record: create it again and rebind.
		r.cfg.logger.Info("importer: local record gone, creating it again", "backend", r.backend, "model", r.model, "external_id", p.extID, "local_id", localID)
	}
	if r.keyed == nil {
		id, err := r.store.Create(ctx, v)
		if err != nil {
			return report.Failed, "", "create", err
		}
		return report.Created, id, "", nil
	}
	id, created, err := r.keyed.CreateKeyed(ctx, r.key(p.extID), v)
	if err != nil {
		return report.Failed, "", "create", err
	}
	if created {
		return report.Created, id, "", nil
	}
	// Created before, by a run that crashed before binding it or by a concurrent one:
	// bring it up to date.
	if err := r.store.Update(ctx, id, v); err != nil {
		return report.Failed, id, "update", err
	}
	return report.Updated, id, "", nil
}

// RetryFailed imports again, fetched by external ID, every record of the model whose
// import failed: the failed bindings whose error the importer wrote (an export's failure
// is the exporter's to retry). Bindings that failed WithMaxRetries times are left alone
// unless Force is given. It returns the counts (one per binding tried) and stops only when
// the binding store cannot be read or ctx ends; record errors are in Summary.Errors. Of
// the options Force, WithMaxErrors and WithProgress (called once, at the end) apply.
func (r *Importer[T]) RetryFailed(ctx context.Context, opts ...BatchOption) (Summary, error) {
	start := time.Now()
	var sum Summary
	if r.cfg.fetch == nil {
		return sum, fmt.Errorf("importer: retrying failed %s %s: %w: pass importer.WithFetch to New", r.backend, r.model, errNoFetch)
	}
	ic := batchOptions(opts)
	f := binding.Filter{Backend: r.backend, Model: r.model, Statuses: []binding.Status{binding.StatusFailed}}
	if !ic.force && r.cfg.maxRetries > 0 {
		f.RetryableBelow = r.cfg.maxRetries
	}
	for b, err := range r.bindings.List(ctx, f) {
		if err != nil {
			sum.Elapsed = time.Since(start)
			return sum, fmt.Errorf("importer: listing the failed bindings of %s %s: %w", r.backend, r.model, err)
		}
		if b.ExternalID == "" || !strings.HasPrefix(b.LastError, errPrefix) {
			continue
		}
		res, err := r.Import(ctx, b.ExternalID, opts...)
		if res.Action == "" && err != nil {
			break // ctx ended
		}
		sum.add(res.Action, err, ic.maxErrors)
	}
	sum.Elapsed = time.Since(start)
	if ic.progress != nil {
		ic.progress(sum)
	}
	return sum, ctx.Err()
}
