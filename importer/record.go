// Package importer brings external records into the application: external → local.
//
// A [Record] importer handles one record: fetch it (or take one already fetched), skip it
// when it did not change since the last sync, import the records it depends on first, map
// it to the app's type, create or update it through the app's [local.Store], bind the two
// IDs and mark the binding successful — or failed, with the error and a retry count.
// Concurrent imports of one external ID never create two local records: each import
// ensures the binding, then holds its lease while it writes.
//
// A [Batch] importer walks a paginated listing and imports every record, with bounded
// concurrency, a progress callback and a [Summary]. It keeps a persisted watermark (the
// newest updated_at it has fully committed) for incremental syncs, and commits it page by
// page, so a run that is killed resumes where it stopped without creating anything twice.
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

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/ctxerr"
	"github.com/connkit/connkit/internal/depchain"
	"github.com/connkit/connkit/internal/jsontime"
	"github.com/connkit/connkit/local"
)

// MapFunc turns an external record into the app's type. create tells whether the result
// will be created (true) or will replace an existing local record (false), so a mapping can
// set fields only on create. Returning an error matching ErrSkip skips the record.
type MapFunc[T any] func(ctx context.Context, rec gjson.Result, create bool) (T, error)

// FetchFunc reads one external record by its external ID.
type FetchFunc func(ctx context.Context, externalID string) (gjson.Result, error)

// Errors matched with errors.Is.
var (
	// ErrSkip, returned by a MapFunc, skips the record: its binding is marked skipped.
	ErrSkip = errors.New("importer: record skipped by the mapping")
	// ErrBusy: another worker held the record's lease for longer than the importer's
	// maximum wait. Nothing was written; try again later.
	ErrBusy = errors.New("importer: record is being imported by another worker")
	// ErrNoExternalID: the external record has no value at the ID path.
	ErrNoExternalID = errors.New("importer: record has no external ID")
	// ErrNoFetch: Import was called with an external ID but no FetchFunc was configured.
	ErrNoFetch = errors.New("importer: no fetch function configured")
	// ErrBadUpdatedAt: the record's updated-at value is not a time the importer can read.
	ErrBadUpdatedAt = errors.New("importer: unreadable updated-at")
	// ErrTooManyRetries: the binding failed MaxRetries times in a row; Force to retry it.
	ErrTooManyRetries = errors.New("importer: record failed too many times")
)

// RecordError is the error of one record's import: which record, in which step.
type RecordError struct {
	Backend, Model, ExternalID string
	// Step is what was being done: "fetch", "bind", "claim", "dependency", "map", "create",
	// "update", "mark".
	Step string
	Err  error
}

// Error implements error.
func (e *RecordError) Error() string {
	return fmt.Sprintf("importing %s %s %q (%s): %v", e.Backend, e.Model, e.ExternalID, e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// Action says what an import did.
type Action string

// Actions.
const (
	Created  Action = "created"
	Updated  Action = "updated"
	Skipped  Action = "skipped"
	Enqueued Action = "enqueued"
	Failed   Action = "failed"
)

// Result describes one import.
type Result struct {
	ExternalID string
	LocalID    string
	Action     Action
	// Binding is the binding as stored after the import (zero when none could be written).
	Binding binding.Binding
}

// Dependent is what a Dependency imports through; every *Record[T] implements it.
type Dependent interface {
	// Import imports one external record.
	Import(ctx context.Context, externalID string, opts ...ImportOption) (Result, error)
	// Bound reports whether the external record already has a local record.
	Bound(ctx context.Context, externalID string) (bool, error)
	// Model names the dependency's model.
	Model() string
}

// Dependency is a record this one refers to and that must exist locally first (an order's
// customer and products), as in generic_connector's _import_dependency.
type Dependency struct {
	// Path is a gjson path yielding the external ID(s): "customer_id",
	// "line_items.#.product_id". Missing, null, empty and 0 values are ignored.
	Path string
	// Importer imports one dependency.
	Importer Dependent
	// Always re-imports the dependency even when it is already bound (it still skips it
	// when unchanged). By default a bound dependency is left alone.
	Always bool
}

type config struct {
	fetch         FetchFunc
	idPath        string
	updatedAtPath string
	hash          bool
	deps          []Dependency
	owner         string
	leaseTTL      time.Duration
	maxWait       time.Duration
	backoff       time.Duration
	maxBackoff    time.Duration
	maxRetries    int
	sleep         func(context.Context, time.Duration) error
	now           func() time.Time
	logger        *slog.Logger
}

func (c *config) claimer(s binding.Store) *binding.Claimer {
	return &binding.Claimer{Store: s, TTL: c.leaseTTL, MaxWait: c.maxWait, Backoff: c.backoff, MaxBackoff: c.maxBackoff,
		Sleep: c.sleep, Now: c.now, Owner: c.owner}
}

// Option configures a Record importer.
type Option func(*config)

// WithFetch sets how Import reads a record by external ID.
func WithFetch(f FetchFunc) Option { return func(c *config) { c.fetch = f } }

// WithIDPath sets the gjson path of the external ID in a record (default "id").
func WithIDPath(path string) Option { return func(c *config) { c.idPath = path } }

// WithUpdatedAtPath sets the gjson path of the record's modification time (default
// "updated_at"). Values may be RFC 3339 strings or Unix seconds. "" disables the
// updated-at check.
func WithUpdatedAtPath(path string) Option { return func(c *config) { c.updatedAtPath = path } }

// WithoutHash disables the content-hash check (by default a record whose raw JSON hashes
// to the binding's Hash is skipped).
func WithoutHash() Option { return func(c *config) { c.hash = false } }

// WithDependency adds a dependency imported before the record.
func WithDependency(d Dependency) Option { return func(c *config) { c.deps = append(c.deps, d) } }

// WithOwner sets the prefix of lease owner names (default host-pid-random), useful to tell
// workers apart in the binding store.
func WithOwner(owner string) Option { return func(c *config) { c.owner = owner } }

// WithLease sets how long a lease is taken for (default 5 min) and how long an import
// waits for another worker's lease on the same record before failing with ErrBusy
// (default 30 s).
func WithLease(ttl, maxWait time.Duration) Option {
	return func(c *config) { c.leaseTTL, c.maxWait = ttl, maxWait }
}

// WithBackoff sets the first and the longest wait between lease claims (default 20 ms
// and 1 s; each wait doubles, with jitter).
func WithBackoff(first, longest time.Duration) Option {
	return func(c *config) { c.backoff, c.maxBackoff = first, longest }
}

// WithMaxRetries stops importing a record whose binding failed n times in a row (it
// fails with ErrTooManyRetries until forced). 0, the default, never stops.
func WithMaxRetries(n int) Option { return func(c *config) { c.maxRetries = n } }

// WithSleep replaces the function that waits between lease claims (tests inject one that
// advances a fake clock).
func WithSleep(sleep func(context.Context, time.Duration) error) Option {
	return func(c *config) { c.sleep = sleep }
}

// WithClock sets the clock used for lease waits and sync times (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// ImportOption changes one import.
type ImportOption func(*importConfig)

type importConfig struct{ force bool }

// Force imports the record even when it is unchanged or failed too often.
func Force() ImportOption { return func(c *importConfig) { c.force = true } }

// Record imports records of one model from one backend into a local.Store[T].
type Record[T any] struct {
	cfg      config
	backend  string
	model    string
	bindings binding.Store
	store    local.Store[T]
	keyed    local.KeyedCreator[T]
	mapFn    MapFunc[T]
	claimer  *binding.Claimer
}

var _ Dependent = (*Record[int])(nil)

// New returns a Record importer for model on backend, writing through store and binding
// through bindings. mapFn turns external records into T.
func New[T any](bindings binding.Store, store local.Store[T], backend, model string, mapFn MapFunc[T], opts ...Option) (*Record[T], error) {
	switch {
	case bindings == nil:
		return nil, errors.New("importer: New needs a binding.Store (binding.NewMemoryStore() in tests)")
	case store == nil:
		return nil, errors.New("importer: New needs a local.Store to write records to")
	case mapFn == nil:
		return nil, errors.New("importer: New needs a MapFunc to turn external records into local ones")
	case backend == "" || model == "":
		return nil, fmt.Errorf("importer: New needs a backend and a model name (got %q, %q)", backend, model)
	}
	c := config{
		idPath:        "id",
		updatedAtPath: "updated_at",
		hash:          true,
		leaseTTL:      5 * time.Minute,
		maxWait:       30 * time.Second,
		backoff:       20 * time.Millisecond,
		maxBackoff:    time.Second,
		now:           time.Now,
		logger:        slog.Default(),
	}
	for _, o := range opts {
		o(&c)
	}
	if c.idPath == "" {
		return nil, errors.New("importer: the ID path may not be empty")
	}
	for i, d := range c.deps {
		if d.Path == "" || d.Importer == nil {
			return nil, fmt.Errorf("importer: dependency %d of %s needs a Path and an Importer", i, model)
		}
	}
	r := &Record[T]{cfg: c, backend: backend, model: model, bindings: bindings, store: store, mapFn: mapFn,
		claimer: c.claimer(bindings)}
	r.keyed, _ = store.(local.KeyedCreator[T])
	return r, nil
}

// Model returns the model name.
func (r *Record[T]) Model() string { return r.model }

// Backend returns the backend name.
func (r *Record[T]) Backend() string { return r.backend }

// Bound reports whether externalID already has a local record.
func (r *Record[T]) Bound(ctx context.Context, externalID string) (bool, error) {
	b, err := r.bindings.GetByExternal(ctx, r.backend, r.model, externalID)
	if errors.Is(err, binding.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("importer: looking up the binding of %s %s %q: %w", r.backend, r.model, externalID, err)
	}
	return b.LocalID != "", nil
}

// Import fetches the external record with the given ID and imports it.
func (r *Record[T]) Import(ctx context.Context, externalID string, opts ...ImportOption) (Result, error) {
	if r.cfg.fetch == nil {
		return Result{ExternalID: externalID, Action: Failed}, r.fail(externalID, "fetch", fmt.Errorf("%w: pass importer.WithFetch to New", ErrNoFetch))
	}
	if externalID == "" {
		return Result{Action: Failed}, r.fail("", "fetch", ErrNoExternalID)
	}
	if depchain.Has(ctx, "import", r.backend, r.model, externalID) {
		// A dependency cycle: an outer import of this very record is in progress.
		return Result{ExternalID: externalID, Action: Skipped}, nil
	}
	rec, err := r.cfg.fetch(ctx, externalID)
	if err != nil {
		// Record the failure on the binding when there is one, so retries are counted.
		b, gerr := r.bindings.GetByExternal(ctx, r.backend, r.model, externalID)
		res := Result{ExternalID: externalID, Action: Failed}
		if gerr == nil {
			if fb, merr := r.bindings.MarkFailed(ctx, b.ID, err.Error()); merr == nil {
				res.Binding = fb
			}
		}
		return res, r.fail(externalID, "fetch", err)
	}
	return r.ImportRecord(ctx, rec, opts...)
}

// ImportRecord imports an external record that was already fetched (from a listing, a
// webhook).
func (r *Record[T]) ImportRecord(ctx context.Context, rec gjson.Result, opts ...ImportOption) (Result, error) {
	var ic importConfig
	for _, o := range opts {
		o(&ic)
	}
	p, err := r.parse(rec)
	if err != nil {
		return Result{ExternalID: p.extID, Action: Failed}, err
	}
	return r.importParsed(ctx, p, ic.force)
}

// parsed is what the importer reads from an external record before deciding anything.
type parsed struct {
	rec     gjson.Result
	extID   string
	updated time.Time
	hash    string
}

func (r *Record[T]) parse(rec gjson.Result) (parsed, error) {
	p := parsed{rec: rec}
	if !rec.IsObject() {
		return p, r.fail("", "parse", fmt.Errorf("%w: the record is not a JSON object: %.80s", ErrNoExternalID, rec.Raw))
	}
	id := rec.Get(r.cfg.idPath)
	if id.Type != gjson.String && id.Type != gjson.Number {
		// An object or array would become an "ID" made of raw JSON.
		return p, r.fail("", "parse", fmt.Errorf("%w: the value at path %q is not a string or number in %.80s", ErrNoExternalID, r.cfg.idPath, rec.Raw))
	}
	p.extID = id.String()
	if p.extID == "" {
		return p, r.fail("", "parse", fmt.Errorf("%w at path %q in %.80s", ErrNoExternalID, r.cfg.idPath, rec.Raw))
	}
	if r.cfg.updatedAtPath != "" {
		t, err := jsontime.Parse(rec.Get(r.cfg.updatedAtPath))
		if err != nil {
			return p, r.fail(p.extID, "parse", fmt.Errorf("%w at path %q: %v", ErrBadUpdatedAt, r.cfg.updatedAtPath, err))
		}
		p.updated = binding.UTC(t) // stores keep microseconds
	}
	if r.cfg.hash {
		sum := sha256.Sum256([]byte(rec.Raw))
		p.hash = importHashPrefix + hex.EncodeToString(sum[:16])
	}
	return p, nil
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

func (r *Record[T]) fail(extID, step string, err error) error {
	return &RecordError{Backend: r.backend, Model: r.model, ExternalID: extID, Step: step, Err: err}
}

// key is the local idempotency key of an external record.
func (r *Record[T]) key(extID string) string { return r.backend + "/" + r.model + "/" + extID }

func (r *Record[T]) importParsed(ctx context.Context, p parsed, force bool) (Result, error) {
	res := Result{ExternalID: p.extID, Action: Failed}
	b, _, err := r.bindings.Ensure(ctx, binding.Binding{Backend: r.backend, Model: r.model, ExternalID: p.extID, Status: binding.StatusPending})
	if err != nil {
		return res, r.fail(p.extID, "bind", err)
	}
	res.Binding, res.LocalID = b, b.LocalID
	if !force && p.unchanged(&b) {
		res.Action = Skipped
		return res, nil
	}
	if !force && r.cfg.maxRetries > 0 && !b.CanRetry(r.cfg.maxRetries) {
		return res, r.fail(p.extID, "claim", fmt.Errorf("%w (%d failures, last: %s); import it with importer.Force()", ErrTooManyRetries, b.RetryCount, b.LastError))
	}
	owner := r.claimer.NewOwner()
	b, err = r.claimLease(ctx, b.ID, owner)
	if err != nil {
		return res, r.fail(p.extID, "claim", err)
	}
	defer func() {
		if err := r.bindings.Release(context.WithoutCancel(ctx), b.ID, owner); err != nil {
			r.cfg.logger.Warn("importer: releasing lease", "backend", r.backend, "model", r.model, "external_id", p.extID, "err", err)
		}
	}()
	res.Binding, res.LocalID = b, b.LocalID
	if !force && p.unchanged(&b) { // another worker imported it while we waited
		res.Action = Skipped
		return res, nil
	}
	return r.write(ctx, p, b, res)
}

// write does the part of an import that happens under the lease (or, in bulk mode, under
// the keyed create): dependencies, mapping, local write, binding.
func (r *Record[T]) write(ctx context.Context, p parsed, b binding.Binding, res Result) (Result, error) {
	action, localID, step, err := r.apply(ctx, p, b.LocalID)
	if errors.Is(err, ErrSkip) {
		if serr := r.bindings.SetStatus(ctx, b.ID, binding.StatusSkipped); serr != nil {
			return res, r.fail(p.extID, "mark", serr)
		}
		b.Status = binding.StatusSkipped
		res.Binding, res.Action = b, Skipped
		return res, nil
	}
	if err != nil {
		ferr := r.fail(p.extID, step, err)
		if ctxerr.Interrupted(ctx, err) {
			return res, ferr // cut short, not failed: no retry is counted
		}
		if fb, merr := r.bindings.MarkFailed(context.WithoutCancel(ctx), b.ID, ferr.Error()); merr == nil {
			res.Binding = fb
		} else {
			ferr = errors.Join(ferr, r.fail(p.extID, "mark", merr))
		}
		return res, ferr
	}
	// The local record is written: bind it even if ctx ends now, or a store without
	// keyed creates would create it again on the next run.
	sb, err := r.bindings.MarkSuccess(context.WithoutCancel(ctx), b.ID, binding.Success{LocalID: localID, Hash: p.hash, ExternalUpdatedAt: p.updated, At: r.cfg.now()})
	if err != nil {
		return res, r.fail(p.extID, "mark", err)
	}
	res.Binding, res.LocalID, res.Action = sb, localID, action
	return res, nil
}

// apply imports dependencies, maps and writes the local record. It returns the action, the
// local ID and, on error, the step that failed.
func (r *Record[T]) apply(ctx context.Context, p parsed, localID string) (Action, string, string, error) {
	if len(r.cfg.deps) > 0 {
		if err := r.importDeps(depchain.With(ctx, "import", r.backend, r.model, p.extID), p.rec); err != nil {
			return Failed, localID, "dependency", err
		}
	}
	v, err := r.mapFn(ctx, p.rec, localID == "")
	if err != nil {
		return Failed, localID, "map", err
	}
	if localID != "" {
		err := r.store.Update(ctx, localID, v)
		if err == nil {
			return Updated, localID, "", nil
		}
		if !errors.Is(err, local.ErrNotFound) {
			return Failed, localID, "update", err
		}
		// The app deleted the local record: create it again and rebind.
		r.cfg.logger.Info("importer: local record gone, creating it again", "backend", r.backend, "model", r.model, "external_id", p.extID, "local_id", localID)
	}
	if r.keyed == nil {
		id, err := r.store.Create(ctx, v)
		if err != nil {
			return Failed, "", "create", err
		}
		return Created, id, "", nil
	}
	id, created, err := r.keyed.CreateKeyed(ctx, r.key(p.extID), v)
	if err != nil {
		return Failed, "", "create", err
	}
	if created {
		return Created, id, "", nil
	}
	// Created before, by a run that crashed before binding it or by a concurrent one:
	// bring it up to date.
	if err := r.store.Update(ctx, id, v); err != nil {
		return Failed, id, "update", err
	}
	return Updated, id, "", nil
}

func (r *Record[T]) importDeps(ctx context.Context, rec gjson.Result) error {
	for _, d := range r.cfg.deps {
		var ids []string
		v := rec.Get(d.Path)
		if v.IsArray() {
			for _, e := range v.Array() {
				ids = append(ids, e.String())
			}
		} else {
			ids = append(ids, v.String())
		}
		for _, id := range ids {
			if id == "" || id == "0" {
				continue
			}
			if !d.Always {
				bound, err := d.Importer.Bound(ctx, id)
				if err != nil {
					return err
				}
				if bound {
					continue
				}
			}
			if _, err := d.Importer.Import(ctx, id); err != nil {
				return fmt.Errorf("importing %s %q first: %w", d.Importer.Model(), id, err)
			}
		}
	}
	return nil
}

// claimLease takes the binding's lease, waiting while another worker holds it.
func (r *Record[T]) claimLease(ctx context.Context, id int64, owner string) (binding.Binding, error) {
	b, err := r.claimer.Claim(ctx, id, owner)
	if errors.Is(err, binding.ErrLocked) {
		err = fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return b, err
}
