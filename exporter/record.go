// Package exporter sends the application's records to an external API: local → external.
//
// An [Exporter] handles one record, in the order of OCA's exporter: hold the binding's
// lease (renewed while the export runs), skip records marked no-export or unchanged since
// the last export, map it to a payload, create it remotely (POST)
// when it has no external ID yet or update it (PUT/PATCH) when it has, take the new
// external ID from the response, bind, and mark the binding successful or failed.
//
// Creates carry an idempotency key derived from the backend, model, local ID and binding,
// so a create retried after a timeout or a crash — even by another process — reuses the
// key and never makes two remote records on an API that honours Idempotency-Key. Such an
// API answers a retried create with the first create's record, which may be an older
// version of the local record: before each create the exporter notes on the binding the
// hash of the body it sends, and a retried create whose earlier attempts sent another
// body is followed by an update with the current one, so the remote never stays stale.
//
// Every write to the binding names the exporter's lease; if the lease is lost (another
// worker took the record over after it expired) the export stops with an error matching
// binding.ErrLeaseLost and leaves the record to the new holder.
//
// A [Batch] exporter exports many records in chunks with bounded concurrency and returns
// a [Summary].
package exporter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/bindingkit"
	"github.com/connkit/connkit/internal/ctxerr"
	"github.com/connkit/connkit/internal/depchain"
	"github.com/connkit/connkit/internal/jsontime"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
)

// EncodeFunc turns a local record into the request body sent to the API: a value encoded as
// JSON, or a string, []byte or json.RawMessage holding JSON, sent as is. A nil payload is
// an error (return report.ErrSkip to send nothing). b is the record's binding (its
// ExternalID is empty on create); create tells which request will be sent. Returning an
// error matching report.ErrSkip skips the record. A panic is recovered and fails the
// record with ErrPanic.
type EncodeFunc[T any] func(ctx context.Context, v T, b binding.Binding, create bool) (any, error)

// Errors matched with errors.Is.
var (
	// ErrRemoteGone: an update answered 404 and the exporter is set to FailOnNotFound.
	ErrRemoteGone = errors.New("exporter: remote record no longer exists")
	// ErrPanic: an EncodeFunc panicked. The record fails (its lease
	// released, its binding marked failed) instead of the process; the stack is logged.
	ErrPanic = errors.New("exporter: callback panicked")
)

type config struct {
	updatePath   func(externalID string) string
	updateMethod string
	idPath       string
	updatedPath  string
	failGone     bool
	claimer      *binding.Claimer
	maxRetries   int
	logger       *slog.Logger
}

// Option configures an Exporter.
type Option func(*config)

// WithUpdatePath sets the path of one remote record (default: the create path + "/" + ID).
func WithUpdatePath(f func(externalID string) string) Option {
	return func(c *config) { c.updatePath = f }
}

// WithUpdateMethod sets the update method, "PUT" (default) or "PATCH".
func WithUpdateMethod(m string) Option {
	return func(c *config) { c.updateMethod = strings.ToUpper(m) }
}

// WithIDPath sets the gjson path of the new external ID in a create response (default
// "id"; e.g. "product.id" or "data.id").
func WithIDPath(path string) Option { return func(c *config) { c.idPath = path } }

// WithUpdatedAtPath sets the gjson path of the remote record's modification time in
// create and update responses (default "updated_at"; "" turns it off). The time, an
// RFC 3339 string or a Unix time (seconds, or ms/µs/ns told apart by size, as the importer
// reads it), is stored as the binding's ExternalUpdatedAt, so that an
// importer syncing the same model sees the change this export made as already synced
// instead of importing its own echo — which, in a two-way sync, would trigger the next
// export and so on. A response without a readable time leaves the stored time as it was.
func WithUpdatedAtPath(path string) Option { return func(c *config) { c.updatedPath = path } }

// FailOnNotFound makes an update answering 404 fail the export with ErrRemoteGone. By
// default the exporter drops the stale binding and creates the record again.
func FailOnNotFound() Option { return func(c *config) { c.failGone = true } }

// WithClaimer sets how the exporter holds each record's lease: its TTL (renewed every
// TTL/3 while the export runs), how long to wait for another worker's lease before failing
// with an error matching binding.ErrLocked, the backoff between attempts and the owner
// prefix. Its Store must be the exporter's binding store. Default:
// &binding.Claimer{Store: bindings} (5 min leases, 30 s wait).
func WithClaimer(c *binding.Claimer) Option { return func(cfg *config) { cfg.claimer = c } }

// WithMaxRetries stops exporting a record that failed n times in a row (0: never stop).
func WithMaxRetries(n int) Option { return func(c *config) { c.maxRetries = n } }

// WithLogger sets the logger (default: none; the exporter logs nothing unless given one).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// ExportOption changes one export.
type ExportOption func(*exportConfig)

type exportConfig struct{ force bool }

// Force exports even an unchanged or too-often-failed record.
func Force() ExportOption { return func(c *exportConfig) { c.force = true } }

// Exporter exports records of one model to one backend.
type Exporter[T any] struct {
	cfg      config
	doer     adapter.Doer
	bindings binding.Store
	store    local.Store[T]
	backend  string
	model    string
	path     string
	encode   EncodeFunc[T]
	claimer  *binding.Claimer
}

// New returns an Exporter for model on backend that reads from store, creates with POST
// path and updates path/{external ID}, through doer (an *adapter.Client).
func New[T any](doer adapter.Doer, bindings binding.Store, store local.Store[T], backend, model, path string, encode EncodeFunc[T], opts ...Option) (*Exporter[T], error) {
	switch {
	case doer == nil:
		return nil, errors.New("exporter: New needs an adapter.Doer (an *adapter.Client)")
	case bindings == nil:
		return nil, errors.New("exporter: New needs a binding.Store")
	case store == nil:
		return nil, errors.New("exporter: New needs the local.Store to read records from")
	case encode == nil:
		return nil, errors.New("exporter: New needs an EncodeFunc to build request bodies")
	case backend == "" || model == "" || path == "":
		return nil, fmt.Errorf("exporter: New needs a backend, a model and a path (got %q, %q, %q)", backend, model, path)
	}
	c := config{
		updateMethod: http.MethodPut,
		idPath:       "id",
		updatedPath:  "updated_at",
		logger:       slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&c)
	}
	if c.updatePath == nil {
		base := strings.TrimRight(path, "/")
		c.updatePath = func(id string) string { return base + "/" + id }
	}
	if c.updateMethod != http.MethodPut && c.updateMethod != http.MethodPatch {
		return nil, fmt.Errorf("exporter: update method %q: use PUT or PATCH", c.updateMethod)
	}
	if c.idPath == "" {
		return nil, errors.New("exporter: the response ID path may not be empty")
	}
	if c.claimer == nil {
		c.claimer = &binding.Claimer{Store: bindings}
	}
	if c.claimer.Store == nil || c.claimer.TTL < 0 || c.claimer.MaxWait < 0 {
		return nil, errors.New("exporter: WithClaimer needs a Claimer whose Store is the exporter's binding store, with no negative TTL or MaxWait")
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return &Exporter[T]{cfg: c, doer: doer, bindings: bindings, store: store, backend: backend, model: model, path: path, encode: encode,
		claimer: c.claimer}, nil
}

// idempotencyKey returns the key sent with the create of binding b: a hash of backend,
// model, local ID and binding ID. It is the same in every process and after a restart, and
// changes only when the binding is replaced (after a remote 404, unless FailOnNotFound). It relies
// on the binding store never reusing an ID, as the SQL stores (AUTOINCREMENT, identity
// columns) and a MemoryStore within one process guarantee: a reused ID would replay an
// earlier create on APIs that keep keys, binding a record that may be deleted.
func idempotencyKey(b binding.Binding) string {
	sum := sha256.Sum256([]byte(b.Backend + "\x00" + b.Model + "\x00" + b.LocalID + "\x00" + strconv.FormatInt(b.ID, 10)))
	return "connkit-" + hex.EncodeToString(sum[:16])
}

func (r *Exporter[T]) fail(localID, step string, err error) error {
	return &report.RecordError{Op: "export", Backend: r.backend, Model: r.model, LocalID: localID, Step: step, Err: err}
}

// Export exports the local record with the given ID: it holds the binding's lease
// (renewed while the export runs), skips a no-export binding,
// maps the record and creates or updates it remotely, then marks the binding. An error is
// a *report.RecordError naming the step that failed; the binding is then marked failed (its
// RetryCount grows), except when ctx ended the export (an interruption is not the record's
// failure) or the lease was lost (step "lease", matching binding.ErrLeaseLost: the worker
// that took the record over writes its outcome).
func (r *Exporter[T]) Export(ctx context.Context, localID string, opts ...ExportOption) (report.Result, error) {
	var owner string
	res, err := r.exportOne(ctx, localID, &owner, opts)
	return released(res, owner), err
}

// released is res with the lease of owner, released when the export ended, taken off
// its binding.
func released(res report.Result, owner string) report.Result {
	if owner != "" && res.Binding.LeaseOwner == owner {
		res.Binding.LeaseOwner, res.Binding.LeaseExpiresAt = "", time.Time{}
	}
	return res
}

// exportOne is Export; *owner is set to the owner of each lease it holds.
func (r *Exporter[T]) exportOne(ctx context.Context, localID string, owner *string, opts []ExportOption) (report.Result, error) {
	var ec exportConfig
	for _, o := range opts {
		o(&ec)
	}
	res := report.Result{LocalID: localID, Action: report.Failed}
	if localID == "" {
		return res, r.fail(localID, "read", errors.New("empty local ID"))
	}
	b, _, err := r.bindings.Ensure(ctx, binding.Binding{Backend: r.backend, Model: r.model, LocalID: localID, Status: binding.StatusPending})
	if err != nil {
		return res, r.fail(localID, "bind", err)
	}
	res.Binding, res.ExternalID = b, b.ExternalID
	if b.NoExport {
		res.Action = report.Skipped
		return res, nil
	}
	if !ec.force && r.cfg.maxRetries > 0 && !bindingkit.CanRetry(&b, r.cfg.maxRetries) {
		return res, r.fail(localID, "claim", fmt.Errorf("%w (%d failures, last: %s); export it with exporter.Force()", report.ErrTooManyRetries, b.RetryCount, b.LastError))
	}
	lease, err := r.hold(ctx, b.ID)
	if err != nil {
		return res, r.fail(localID, "claim", err)
	}
	// export may move to another binding (and lease) when the remote record is gone.
	held := &lease
	defer func() {
		*owner = (*held).Owner()
		if err := (*held).Release(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, binding.ErrNotFound) {
			r.cfg.logger.Warn("exporter: releasing lease", "backend", r.backend, "model", r.model, "local_id", localID, "err", err)
		}
	}()
	b = lease.Binding()
	res.Binding, res.ExternalID = b, b.ExternalID
	if b.NoExport {
		res.Action = report.Skipped
		return res, nil
	}

	action, nb, step, err := r.export(ctx, held, ec.force)
	res.Binding, res.ExternalID = nb, nb.ExternalID
	lowner := (*held).Owner()
	if err == nil {
		res.Action = action
		return res, nil
	}
	if lost := leaseLost((*held).Context(), err); lost != nil {
		// Not the record's failure either: the new holder exports it.
		return res, r.fail(localID, "lease", lost)
	}
	if errors.Is(err, report.ErrSkip) {
		if serr := r.bindings.SetStatus(context.WithoutCancel(ctx), nb.ID, lowner, binding.StatusSkipped); serr != nil {
			return res, r.fail(localID, "mark", serr)
		}
		res.Binding.Status, res.Action = binding.StatusSkipped, report.Skipped
		return res, nil
	}
	if step == "read" && errors.Is(err, local.ErrNotFound) && nb.ExternalID == "" {
		// No such local record and nothing remote: leave no binding behind.
		if derr := r.bindings.Delete(context.WithoutCancel(ctx), nb.ID); derr != nil && !errors.Is(derr, binding.ErrNotFound) {
			return res, errors.Join(r.fail(localID, step, err), r.fail(localID, "bind", derr))
		}
		res.Binding = binding.Binding{}
		return res, r.fail(localID, step, err)
	}
	ferr := r.fail(localID, step, err)
	if ctxerr.Interrupted(ctx, err) {
		return res, ferr // not the record's fault: no failure counted against it
	}
	if fb, merr := r.bindings.MarkFailed(context.WithoutCancel(ctx), nb.ID, binding.Failure{Owner: lowner, Error: ferr.Error()}); merr == nil {
		res.Binding = fb
	} else {
		ferr = errors.Join(ferr, r.fail(localID, "mark", merr))
	}
	return res, ferr
}

// leaseLost returns the *binding.LeaseLostError behind err when the export stopped
// because its lease was lost: a write refused with ErrLeaseLost, or work cut short by the
// lease's context.
func leaseLost(lctx context.Context, err error) error {
	if errors.Is(err, binding.ErrLeaseLost) {
		return err
	}
	if cause := context.Cause(lctx); errors.Is(cause, binding.ErrLeaseLost) && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w (the export was stopped: %v)", cause, err)
	}
	return nil
}

// export runs under the lease *held (work on its Context, writes name its Owner). It
// returns the action, the binding as it ends up, and on error the step that failed. When
// the remote record is gone it replaces *held with the lease of the new binding.
func (r *Exporter[T]) export(ctx context.Context, held **binding.Lease, force bool) (report.Action, binding.Binding, string, error) {
	lease := *held
	lctx, b := lease.Context(), lease.Binding()
	v, err := r.store.Get(lctx, b.LocalID)
	if err != nil {
		return report.Failed, b, "read", err
	}
	create := b.ExternalID == ""
	body, hash, err := r.mapBody(lctx, v, b, create)
	if err != nil {
		return report.Failed, b, "map", err
	}
	if !force && !create && b.Status == binding.StatusSuccess && b.Hash == hash {
		return report.Skipped, b, "", nil
	}

	action := report.Updated
	var extID string
	var resp *adapter.Response
	if create {
		action = report.Created
		if extID, resp, b, err = r.create(ctx, lease, b, body, hash); err != nil {
			return report.Failed, b, "create", err
		}
	} else {
		extID = b.ExternalID
		resp, err = r.update(lctx, b, extID, body)
		if errors.Is(err, adapter.ErrNotFound) {
			if r.cfg.failGone {
				return report.Failed, b, "update", fmt.Errorf("%w: %s %s (drop exporter.FailOnNotFound() to create it again): %w", ErrRemoteGone, r.model, extID, err)
			}
			r.cfg.logger.Info("exporter: remote record gone, creating it again", "backend", r.backend, "model", r.model, "local_id", b.LocalID, "external_id", extID)
			// A new binding (new ID, so a new idempotency key) replaces the stale one.
			if err := r.bindings.Delete(lctx, b.ID); err != nil {
				return report.Failed, b, "bind", err
			}
			_ = lease.Release(context.WithoutCancel(ctx)) // its binding is gone
			nb, _, err := r.bindings.Ensure(ctx, binding.Binding{Backend: r.backend, Model: r.model, LocalID: b.LocalID, Status: binding.StatusPending, NoExport: b.NoExport})
			if err != nil {
				return report.Failed, b, "bind", err
			}
			// Another worker may have ensured it in between: wait for its lease like any claim.
			if lease, err = r.hold(ctx, nb.ID); err != nil {
				return report.Failed, nb, "claim", err
			}
			*held, lctx, b = lease, lease.Context(), lease.Binding()
			if b.ExternalID != "" { // that worker created it again already
				return report.Skipped, b, "", nil
			}
			if body, hash, err = r.mapBody(lctx, v, b, true); err != nil {
				return report.Failed, b, "map", err
			}
			if extID, resp, b, err = r.create(ctx, lease, b, body, hash); err != nil {
				return report.Failed, b, "create", err
			}
			action = report.Created
		} else if err != nil {
			return report.Failed, b, "update", err
		}
	}
	// The remote write happened: record it even if ctx ends now, or the next export
	// would create the record a second time on an API that ignores idempotency keys.
	sb, err := r.bindings.MarkSuccess(context.WithoutCancel(ctx), b.ID, binding.Success{Owner: lease.Owner(), ExternalID: extID, Hash: hash,
		ExternalUpdatedAt: r.remoteUpdatedAt(resp)}) // At: the store's clock
	if err != nil {
		return report.Failed, b, "mark", err
	}
	return action, sb, "", nil
}

func (r *Exporter[T]) update(ctx context.Context, b binding.Binding, extID string, body []byte) (*adapter.Response, error) {
	return r.doer.Do(ctx, &adapter.Request{Method: r.cfg.updateMethod, Path: r.cfg.updatePath(extID), Body: json.RawMessage(body),
		Operation: "export", Model: r.model, Record: b.LocalID})
}

// createIntent marks, in the Hash of a binding not yet created remotely, the body hash of
// the creates sent with its idempotency key: createPrefix+hash while every attempt sent
// the same body, createMixed once two attempts sent different bodies.
const (
	createPrefix = "create:"
	createMixed  = "create:mixed"
)

// create POSTs body with b's idempotency key and returns the new external ID. An API
// honouring the key answers a retried create with the record the first create that
// reached it made, whose body may be an older version of the record. So the body's hash
// is noted on the binding before sending, and when an earlier attempt with this key sent
// another body (or the binding holds anything else) the create is followed by an update
// with this body: whichever create the server replays, the remote ends at this version.
// It returns b as the intent note left it.
func (r *Exporter[T]) create(ctx context.Context, lease *binding.Lease, b binding.Binding, body []byte, hash string) (string, *adapter.Response, binding.Binding, error) {
	lctx := lease.Context()
	intent := createPrefix + hash
	replayable := b.Hash != "" && b.Hash != intent // an earlier create may have sent another body
	note := intent
	if replayable {
		note = createMixed
	}
	if b.Hash != note {
		nb := b
		nb.Hash, nb.LeaseOwner = note, lease.Owner()
		written, err := r.bindings.Upsert(lctx, nb)
		if err != nil {
			return "", nil, b, fmt.Errorf("noting the create on the binding before sending it: %w", err)
		}
		b = written
	}
	resp, err := r.doer.Do(lctx, &adapter.Request{Method: http.MethodPost, Path: r.path, Body: json.RawMessage(body),
		IdempotencyKey: idempotencyKey(b), Operation: "export", Model: r.model, Record: b.LocalID})
	if err != nil {
		return "", nil, b, err
	}
	v := gjson.GetBytes(resp.Body, r.cfg.idPath)
	// Only a string or a number is an ID; an object there means the path stops short
	// ("product" for "product.id") and would bind its whole JSON as the external ID.
	if id := v.String(); id == "" || (v.Type != gjson.String && v.Type != gjson.Number) {
		what := "no value"
		if v.Exists() && v.Type != gjson.Null {
			what = jsonKind(v) + ", not an ID,"
		}
		return "", nil, b, fmt.Errorf("%w: %s at path %q (status %d, body %.120s); check exporter.WithIDPath", report.ErrNoExternalID, what, r.cfg.idPath, resp.StatusCode, resp.Body)
	}
	extID := v.String()
	if replayable {
		// Bind the external ID first, so that a failed update leaves an update to retry
		// (no external ID would mean another create, replayed again).
		bound, err := r.bindings.Upsert(context.WithoutCancel(ctx), withExternalID(b, extID, lease.Owner()))
		if err != nil {
			return "", nil, b, err
		}
		b = bound
		uresp, err := r.update(lctx, b, extID, body)
		if err != nil {
			return "", nil, b, fmt.Errorf("updating %s %s after a retried create (the server may have replayed an older version): %w", r.model, extID, err)
		}
		resp = uresp
	}
	return extID, resp, b, nil
}

// withExternalID is b with external ID id, written under owner's lease, and a Hash that
// no body has, so that the next export sends an update.
func withExternalID(b binding.Binding, id, owner string) binding.Binding {
	b.ExternalID, b.LeaseOwner, b.Hash = id, owner, ""
	return b
}

// mapBody maps v and encodes the payload; hash identifies the body for the unchanged check.
func (r *Exporter[T]) mapBody(ctx context.Context, v T, b binding.Binding, create bool) (body []byte, hash string, err error) {
	payload, err := r.mapRecord(ctx, v, b, create)
	if err != nil {
		return nil, "", err
	}
	if body, err = encodeBody(payload); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(body)
	return body, hex.EncodeToString(sum[:16]), nil
}

// mapRecord calls the EncodeFunc, turning a panic into ErrPanic so that one bad record fails
// alone instead of taking the batch (and the process) down.
func (r *Exporter[T]) mapRecord(ctx context.Context, v T, b binding.Binding, create bool) (payload any, err error) {
	defer r.recoverInto(&err, "EncodeFunc", b.LocalID)
	// As on import: related records exported first by the mapping see this one in the
	// chain, so a cycle back to it stops instead of waiting on its own lease.
	return r.encode(depchain.With(ctx, depchain.Export, r.backend, r.model, b.LocalID), v, b, create)
}

func (r *Exporter[T]) recoverInto(err *error, what, localID string) {
	p := recover()
	if p == nil {
		return
	}
	r.cfg.logger.Error("exporter: "+what+" panicked", "backend", r.backend, "model", r.model, "local_id", localID,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	*err = fmt.Errorf("%w: %s: %v", ErrPanic, what, p)
}

// remoteUpdatedAt reads the remote record's modification time from a write's response;
// zero (keep the stored one) when there is none or it cannot be read.
func (r *Exporter[T]) remoteUpdatedAt(resp *adapter.Response) time.Time {
	if resp == nil || r.cfg.updatedPath == "" {
		return time.Time{}
	}
	// Read as the importer reads it, so the importer finds the same time on the binding.
	t, err := jsontime.Parse(gjson.GetBytes(resp.Body, r.cfg.updatedPath))
	if err != nil {
		return time.Time{}
	}
	return bindingkit.UTC(t)
}

func jsonKind(v gjson.Result) string {
	switch {
	case v.IsObject():
		return "a JSON object"
	case v.IsArray():
		return "a JSON array"
	case v.IsBool():
		return "a boolean"
	}
	return "an empty string"
}

func encodeBody(payload any) ([]byte, error) {
	var body []byte
	switch p := payload.(type) {
	case nil:
		return nil, errors.New("the EncodeFunc returned no payload (return report.ErrSkip to send nothing)")
	case json.RawMessage:
		body = p
	case []byte:
		body = p
	case string:
		body = []byte(p)
	default:
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("encoding the payload as JSON: %w", err)
		}
		body = b
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("the payload is not valid JSON: %.80s", body)
	}
	return body, nil
}

// Delete propagates the deletion of a local record: it deletes the remote record (a 404
// counts as already deleted) and removes the binding. A record that was never exported
// only loses its binding; one without a binding is a no-op (Action Skipped). A no-export
// binding is left alone, remote record included (Action Skipped): no-export means the
// exporter never writes to the remote side for that record.
func (r *Exporter[T]) Delete(ctx context.Context, localID string) (report.Result, error) {
	var owner string
	res, err := r.deleteOne(ctx, localID, &owner)
	return released(res, owner), err
}

func (r *Exporter[T]) deleteOne(ctx context.Context, localID string, owner *string) (report.Result, error) {
	res := report.Result{LocalID: localID, Action: report.Failed}
	b, err := r.bindings.GetByLocal(ctx, r.backend, r.model, localID)
	if errors.Is(err, binding.ErrNotFound) {
		res.Action = report.Skipped
		return res, nil
	}
	if err != nil {
		return res, r.fail(localID, "bind", err)
	}
	res.Binding, res.ExternalID = b, b.ExternalID
	if b.NoExport {
		res.Action = report.Skipped
		return res, nil
	}
	lease, err := r.hold(ctx, b.ID)
	if err != nil {
		if errors.Is(err, binding.ErrNotFound) { // deleted by another worker meanwhile
			res.Binding, res.Action = binding.Binding{}, report.Skipped
			return res, nil
		}
		return res, r.fail(localID, "claim", err)
	}
	*owner = lease.Owner()
	defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	b = lease.Binding()
	res.Binding, res.ExternalID = b, b.ExternalID
	if b.NoExport { // set while we waited for the lease
		res.Action = report.Skipped
		return res, nil
	}
	if b.ExternalID != "" {
		_, err := r.doer.Do(lease.Context(), &adapter.Request{Method: http.MethodDelete, Path: r.cfg.updatePath(b.ExternalID), Operation: "delete", Model: r.model, Record: localID})
		if err != nil && !errors.Is(err, adapter.ErrNotFound) {
			if lost := leaseLost(lease.Context(), err); lost != nil {
				return res, r.fail(localID, "lease", lost)
			}
			ferr := r.fail(localID, "delete", err)
			if !ctxerr.Interrupted(ctx, err) {
				if fb, merr := r.bindings.MarkFailed(context.WithoutCancel(ctx), b.ID, binding.Failure{Owner: lease.Owner(), Error: ferr.Error()}); merr == nil {
					res.Binding = fb
				}
			}
			return res, ferr
		}
	}
	// The remote record is gone: drop the binding even if ctx ends now.
	if err := r.bindings.Delete(context.WithoutCancel(ctx), b.ID); err != nil && !errors.Is(err, binding.ErrNotFound) {
		return res, r.fail(localID, "bind", err)
	}
	res.Binding, res.Action = binding.Binding{}, report.Deleted
	return res, nil
}

// hold takes the binding's lease, waiting while another worker holds it.
func (r *Exporter[T]) hold(ctx context.Context, id int64) (*binding.Lease, error) {
	l, err := r.claimer.Hold(ctx, id)
	if errors.Is(err, binding.ErrLocked) {
		err = fmt.Errorf("another worker is syncing the record (nothing was written; try again later): %w", err)
	}
	return l, err
}
