package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/synclog"
)

// DefaultBodyLimit is the largest body a receiver reads unless [WithBodyLimit] says
// otherwise; a larger one is answered 413.
const DefaultBodyLimit = 1 << 20

// DefaultIDHeader is the header a receiver takes the delivery ID from unless
// [WithIDHeader] says otherwise: Standard Webhooks' webhook-id.
const DefaultIDHeader = "webhook-id"

// maxKeyLen caps the length of a delivery ID and an event type.
const maxKeyLen = 255

// storeTimeout bounds the store write and the notify hook of one request. They run on a
// context that the sender hanging up does not cancel, so a delivery stored is also
// handed on.
const storeTimeout = 15 * time.Second

// ErrIgnore, returned by a [Handler] (possibly wrapped), marks the delivery ignored
// rather than failed: the event is of no interest (an order of another shop). Process
// records the error's text and returns nil, so the queue does not retry it.
var ErrIgnore = errors.New("webhook: delivery ignored by its handler")

// Handler processes one delivery of the event type it is registered for. It runs from a
// queue job, never on the request, and at least once per delivery: a crash after the
// handler returned but before the outcome was stored runs it again, so it must be
// idempotent. Its error fails the attempt (the queue retries it with backoff); wrap the
// error with queue.Permanent to stop retries, or return [ErrIgnore] to mark the delivery
// ignored.
type Handler func(ctx context.Context, d Delivery) error

// Notify is called by the receiver after it stored a new delivery (and again when a
// redelivery finds it still pending), on the request's goroutine and before the sender is
// answered. It must only hand the delivery on — typically enqueue a job that calls
// [Receiver.Process] with d.ID, with an identity key of d.Endpoint and d.ID so a second
// notify is harmless — and return quickly. Its error is answered 503, so the sender
// delivers again and the receiver notifies again.
type Notify func(ctx context.Context, d Delivery) error

// Receiver is an http.Handler that takes webhook deliveries for one endpoint (one
// sender) and processes them through handlers registered per event type. Made by
// [NewReceiver]; safe for concurrent use.
//
// ServeHTTP, in order:
//
//   - answers 405 (with Allow: POST) to anything but POST;
//   - reads the body once, at most [WithBodyLimit] bytes (default [DefaultBodyLimit]),
//     answering 413 above it;
//   - verifies the signature with the Verifier: 401 for any failure, with a body that
//     says nothing more (the detail is logged);
//   - answers 400 when the body is not JSON: every scheme handled here sends JSON, and a
//     sender is better told at once than given a 2xx for a delivery no handler can read;
//     400 too for a delivery ID or event type that is not printable text of at most 255
//     bytes;
//   - takes the delivery ID from the ID header ([WithIDHeader], default
//     [DefaultIDHeader]), or when the sender sends none, "sha256:" and the hex SHA-256 of
//     the body; the event type from [WithEventHeader] or [WithEventPath] (none: "");
//   - stores the delivery pending, with signature, credential and cookie headers
//     redacted, before answering; a delivery already stored (a redelivery) is not stored
//     again, and is answered 200 as a duplicate. With [WithSpool], it writes the delivery
//     to its spool file instead, and answers accepted; the spool's flusher stores it (or
//     finds it a duplicate) and notifies it right after;
//   - calls the [Notify] hook for a new delivery, and for a duplicate that is still
//     pending (repairing a notify lost to a crash);
//   - answers 503 when the store or the hook fails, so the sender delivers again, and
//     200 otherwise, with a small JSON body: {"status":"accepted","id":"…"} or
//     {"status":"duplicate","id":"…"}.
//
// Processing never runs on the request: [Receiver.Process] runs from the queue job the
// hook enqueued. Listing deliveries by status and purging old ones go through the
// [Store] directly (Store.List, Store.Purge); [Receiver.Reprocess] retries or replays one.
type Receiver struct {
	endpoint    string
	verifier    Verifier
	store       Store
	idHeader    string
	eventHeader string
	eventPath   string
	limit       int64
	now         func() time.Time
	log         *slog.Logger
	notify      Notify
	handlers    map[string]Handler
	redactor    *synclog.Redactor
	spoolDir    string
	spool       *spool // nil without WithSpool

	// running holds the IDs Process is working on in this process, so two jobs of one
	// delivery (a double notify) never run its handler at the same time.
	mu      sync.Mutex
	running map[string]struct{}

	err error // the first option error, returned by NewReceiver

	stats struct{ requests, accepted, duplicates, unauthorized, invalid, unavailable atomic.Int64 }
}

// Stats counts what a [Receiver] answered since it was made, in this process.
type Stats struct {
	// Requests is every request served; the fields below split it.
	Requests int64
	// Accepted deliveries were new and stored; Duplicates were redeliveries of stored ones.
	// With [WithSpool], both are counted when the spool's flusher stores a delivery, so
	// for a moment after a request they may not add up to the requests answered 200.
	Accepted, Duplicates int64
	// Unauthorized requests failed verification (401).
	Unauthorized int64
	// Invalid requests had a wrong method, an oversized, unreadable or non-JSON body, or a
	// bad delivery ID or event type (405, 413, 400).
	Invalid int64
	// Unavailable requests could not be stored or handed on (503); the sender retries.
	Unavailable int64
}

// Endpoint returns the endpoint name the receiver stores its deliveries under: the
// Endpoint of their Delivery and of the Filter that lists them.
func (r *Receiver) Endpoint() string { return r.endpoint }

// Stats returns the receiver's counters.
func (r *Receiver) Stats() Stats {
	return Stats{
		Requests:     r.stats.requests.Load(),
		Accepted:     r.stats.accepted.Load(),
		Duplicates:   r.stats.duplicates.Load(),
		Unauthorized: r.stats.unauthorized.Load(),
		Invalid:      r.stats.invalid.Load(),
		Unavailable:  r.stats.unavailable.Load(),
	}
}

// count adds one answer with status code to the counters.
func (r *Receiver) count(code int, inserted bool) {
	r.stats.requests.Add(1)
	switch {
	case code == http.StatusOK && inserted:
		r.stats.accepted.Add(1)
	case code == http.StatusOK:
		r.stats.duplicates.Add(1)
	case code == http.StatusUnauthorized:
		r.stats.unauthorized.Add(1)
	case code == http.StatusServiceUnavailable:
		r.stats.unavailable.Add(1)
	default:
		r.stats.invalid.Add(1)
	}
}

var _ http.Handler = (*Receiver)(nil)

// Option configures a [Receiver].
type Option func(*Receiver)

// WithIDHeader names the header holding the sender's delivery ID: "X-Shopify-Webhook-Id",
// "X-GitHub-Delivery"… (default [DefaultIDHeader]). For HMAC schemes this header is not
// signed: deduplication trusts it.
func WithIDHeader(name string) Option {
	return func(r *Receiver) {
		if name == "" {
			r.fail(errors.New("WithIDHeader: empty header name"))
		}
		r.idHeader = name
	}
}

// WithEventHeader reads the event type from a header: "X-Shopify-Topic",
// "X-GitHub-Event". Not with [WithEventPath].
func WithEventHeader(name string) Option {
	return func(r *Receiver) {
		if name == "" {
			r.fail(errors.New("WithEventHeader: empty header name"))
		}
		r.eventHeader = name
	}
}

// WithEventPath reads the event type from the JSON body at a gjson path: "type" for
// Stripe and Standard Webhooks. Not with [WithEventHeader].
func WithEventPath(path string) Option {
	return func(r *Receiver) {
		if path == "" {
			r.fail(errors.New("WithEventPath: empty path"))
		}
		r.eventPath = path
	}
}

// WithBodyLimit sets the largest body read, in bytes (default [DefaultBodyLimit]); a
// larger one is answered 413. It must be positive.
func WithBodyLimit(n int64) Option {
	return func(r *Receiver) {
		if n <= 0 {
			r.fail(fmt.Errorf("WithBodyLimit: %d is not a positive size", n))
		}
		r.limit = n
	}
}

// WithClock makes the receiver read the time from now (default time.Now): the time
// signatures' timestamps are checked against, and deliveries are stamped with.
func WithClock(now func() time.Time) Option {
	return func(r *Receiver) {
		if now != nil {
			r.now = now
		}
	}
}

// WithLogger logs refused deliveries (at Info, with the verification detail), store and
// hook failures (at Error) and handler failures (at Warn). Silent by default.
func WithLogger(l *slog.Logger) Option {
	return func(r *Receiver) {
		if l != nil {
			r.log = l
		}
	}
}

// WithNotify sets the hook that hands stored deliveries on to processing. Without one,
// deliveries are stored and nothing more: the app lists pending ones (Store.List) and
// calls [Receiver.Process] itself.
func WithNotify(fn Notify) Option {
	return func(r *Receiver) { r.notify = fn }
}

// WithHandler registers the handler of one event type (as read by [WithEventHeader] or
// [WithEventPath]; "" when neither is set, so WithHandler("", h) then handles every
// delivery). Deliveries of a type with no handler end ignored. Registering one type
// twice is an error.
func WithHandler(event string, h Handler) Option {
	return func(r *Receiver) {
		if h == nil {
			r.fail(fmt.Errorf("WithHandler(%q): nil handler", event))
			return
		}
		if _, dup := r.handlers[event]; dup {
			r.fail(fmt.Errorf("WithHandler(%q): a handler is already registered for this event type", event))
			return
		}
		r.handlers[event] = h
	}
}

func (r *Receiver) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// NewReceiver returns the receiver of the named endpoint ("shopify"; it is
// Delivery.Endpoint of everything it stores), verifying deliveries with v and storing
// them in s. A missing endpoint, verifier or store, or an invalid option, is an error.
func NewReceiver(endpoint string, v Verifier, s Store, opts ...Option) (*Receiver, error) {
	r := &Receiver{
		endpoint: endpoint,
		verifier: v,
		store:    s,
		idHeader: DefaultIDHeader,
		limit:    DefaultBodyLimit,
		now:      time.Now,
		log:      slog.New(slog.DiscardHandler),
		handlers: make(map[string]Handler),
		running:  make(map[string]struct{}),
	}
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
	switch {
	case endpoint == "":
		r.fail(errors.New("no endpoint name"))
	case v == nil:
		r.fail(errors.New("no verifier: verification is never skipped"))
	case s == nil:
		r.fail(errors.New("no store"))
	case r.eventHeader != "" && r.eventPath != "":
		r.fail(errors.New("WithEventHeader and WithEventPath both given; use one"))
	}
	if r.err != nil {
		return nil, fmt.Errorf("webhook: receiver %q: %w", endpoint, r.err)
	}
	var secret []string
	if sh, ok := v.(interface{ secretHeaders() []string }); ok {
		secret = sh.secretHeaders()
	}
	r.redactor = synclog.NewRedactor(synclog.WithHeaders(secret...))
	if r.spoolDir != "" {
		sp, err := openSpool(r, r.spoolDir)
		if err != nil {
			return nil, fmt.Errorf("webhook: receiver %q: %w", endpoint, err)
		}
		r.spool = sp
	}
	return r, nil
}

// Values of the answer's headers, shared by every answer (net/http copies a header's
// values when it writes them, and never changes them), so setting them allocates nothing.
var (
	jsonType = []string{"application/json"}
	noSniff  = []string{"nosniff"}
)

// reply writes a small JSON answer.
func reply(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// errBusy: the delivery's handler is running in this process.
var errBusy = errors.New("its handler is already running in this process")

// reply answers and counts the answer.
func (r *Receiver) reply(w http.ResponseWriter, code int, inserted bool, body string) {
	r.count(code, inserted)
	reply(w, code, body)
}

// ServeHTTP implements http.Handler; see [Receiver].
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.reply(w, http.StatusMethodNotAllowed, false, `{"error":"method not allowed"}`)
		return
	}
	body, err := r.read(w, req)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			r.reply(w, http.StatusRequestEntityTooLarge, false, `{"error":"body too large"}`)
			return
		}
		r.log.Info("webhook: unreadable body", "endpoint", r.endpoint, "remote", req.RemoteAddr, "error", err)
		r.reply(w, http.StatusBadRequest, false, `{"error":"unreadable body"}`)
		return
	}
	now := r.now()
	if err := r.verifier.Verify(req.Header, body, now); err != nil {
		r.log.Info("webhook: delivery refused", "endpoint", r.endpoint, "remote", req.RemoteAddr, "error", err)
		r.reply(w, http.StatusUnauthorized, false, `{"error":"unauthorized"}`)
		return
	}
	if !gjson.ValidBytes(body) {
		r.reply(w, http.StatusBadRequest, false, `{"error":"body is not JSON"}`)
		return
	}
	id := req.Header.Get(r.idHeader)
	if id == "" {
		sum := sha256.Sum256(body)
		id = "sha256:" + hex.EncodeToString(sum[:])
	} else if !printable(id) {
		r.reply(w, http.StatusBadRequest, false, `{"error":"invalid delivery ID"}`)
		return
	}
	var event string
	switch {
	case r.eventHeader != "":
		event = req.Header.Get(r.eventHeader)
	case r.eventPath != "":
		event = gjson.GetBytes(body, r.eventPath).String()
	}
	if event != "" && !printable(event) {
		r.reply(w, http.StatusBadRequest, false, `{"error":"invalid event type"}`)
		return
	}

	d := Delivery{
		Endpoint:   r.endpoint,
		ID:         id,
		Event:      event,
		Header:     r.redactor.Header(req.Header),
		Body:       body,
		ReceivedAt: now,
		Status:     StatusPending,
	}
	if r.spool != nil {
		err := r.spool.append(d)
		if err == nil {
			r.stats.requests.Add(1) // Accepted or Duplicates is counted once stored
			reply(w, http.StatusOK, `{"status":"accepted","id":`+quote(id)+`}`)
			return
		}
		switch {
		case errors.Is(err, errSpoolClosed):
		case errors.Is(err, errSpoolFull): // the flusher is behind: every request would say so
			r.log.Debug("webhook: spool backlog full; storing the delivery directly", "endpoint", r.endpoint, "id", id)
		default:
			r.log.Warn("webhook: delivery not spooled; storing it directly", "endpoint", r.endpoint, "id", id, "error", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), storeTimeout)
	defer cancel()
	d, inserted, err := r.store.Insert(ctx, d)
	if err != nil {
		r.log.Error("webhook: cannot store delivery", "endpoint", r.endpoint, "id", id, "error", err)
		r.reply(w, http.StatusServiceUnavailable, false, `{"error":"temporarily unavailable"}`)
		return
	}
	if (inserted || d.Status == StatusPending) && r.notify != nil {
		if err := r.notify(ctx, d); err != nil {
			r.log.Error("webhook: cannot hand delivery on", "endpoint", r.endpoint, "id", id, "error", err)
			r.reply(w, http.StatusServiceUnavailable, false, `{"error":"temporarily unavailable"}`)
			return
		}
	}
	status := "accepted"
	if !inserted {
		status = "duplicate"
	}
	r.reply(w, http.StatusOK, inserted, `{"status":"`+status+`","id":`+quote(id)+`}`)
}

// read reads the whole body, at most r.limit bytes.
func (r *Receiver) read(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	if req.ContentLength > r.limit {
		return nil, &http.MaxBytesError{Limit: r.limit}
	}
	if req.Body == nil {
		return []byte{}, nil
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength) + 1) // +1: ReadFrom reads until EOF
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, r.limit))
	return buf.Bytes(), err
}

// printable reports whether s is valid UTF-8 of at most maxKeyLen bytes with no control
// characters.
func printable(s string) bool {
	if len(s) > maxKeyLen || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return false
		}
	}
	return true
}

// quote writes s as a JSON string; s is printable, so only '"' and '\\' need escaping.
func quote(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\', c)
		} else {
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// Process processes the delivery with ID id of this receiver's endpoint: the work of the
// queue job the [Notify] hook enqueued. It skips a delivery already processed or ignored
// (a second job of one delivery), and returns an error (to be retried) for one whose
// handler is running in this process;
// otherwise it runs the handler of its event type and records the outcome with
// Store.Finish: processed; ignored when no handler is registered for the type or the
// handler returned [ErrIgnore]; failed, with the error's text, for any other error
// (a panic included), which Process returns so the queue retries it with backoff. The
// queue owns attempts and backoff: "failed" means the last attempt failed; once the queue
// gives up, [Receiver.Reprocess] retries on purpose. A delivery not in the store is an
// error matching [ErrNotFound] (purged: the caller should not retry).
func (r *Receiver) Process(ctx context.Context, id string) error {
	if !r.claim(id) {
		// Another job of this delivery is running here: retry later rather than report a
		// success for work this one did not do (it may be a replay the other has not seen).
		return fmt.Errorf("webhook: process delivery %q of %q: %w", id, r.endpoint, errBusy)
	}
	defer r.release(id)
	// A Reprocess during an attempt makes the attempt's outcome stale (Store.Finish
	// refuses it): the delivery is processed again at once, so the replay is never lost,
	// whether or not it got a job of its own (which then finds it processed).
	var err error
	for range maxStaleAttempts {
		var stale bool
		if stale, err = r.attempt(ctx, id); !stale {
			return err
		}
	}
	return err // reset during each attempt: the queue retries later
}

// maxStaleAttempts bounds the attempts one Process makes when the delivery keeps being
// reset while its handler runs.
const maxStaleAttempts = 3

// attempt runs the handler of the delivery once and records the outcome; stale reports
// that the store refused the outcome because the delivery was reset meanwhile.
func (r *Receiver) attempt(ctx context.Context, id string) (stale bool, err error) {
	d, err := r.store.Get(ctx, r.endpoint, id)
	if err != nil {
		return false, fmt.Errorf("webhook: process delivery %q of %q: %w", id, r.endpoint, err)
	}
	if d.Status == StatusProcessed || d.Status == StatusIgnored {
		return false, nil
	}
	h, ok := r.handlers[d.Event]
	if !ok {
		o := Outcome{Generation: d.Generation, Status: StatusIgnored, At: r.now()}
		if _, err := r.store.Finish(ctx, r.endpoint, id, o); err != nil {
			return errors.Is(err, ErrStale), fmt.Errorf("webhook: process delivery %q of %q: record it ignored (no handler for event %q): %w", id, r.endpoint, d.Event, err)
		}
		return false, nil
	}
	herr := run(ctx, h, d)
	o := Outcome{Generation: d.Generation, Status: StatusProcessed}
	switch {
	case herr == nil:
	case errors.Is(herr, ErrIgnore):
		o.Status, o.Error = StatusIgnored, herr.Error()
	default:
		o.Status, o.Error = StatusFailed, herr.Error()
		r.log.Warn("webhook: handler failed", "endpoint", r.endpoint, "id", id, "event", d.Event, "attempt", d.Attempts+1, "error", herr)
	}
	o.At = r.now()
	if _, err := r.store.Finish(context.WithoutCancel(ctx), r.endpoint, id, o); err != nil {
		return errors.Is(err, ErrStale), errors.Join(herr, fmt.Errorf("webhook: process delivery %q of %q: record it %s: %w", id, r.endpoint, o.Status, err))
	}
	if o.Status == StatusFailed {
		return false, fmt.Errorf("webhook: delivery %q of %q (event %q): %w", id, r.endpoint, d.Event, herr)
	}
	return false, nil
}

// run calls h, turning a panic into an error.
func run(ctx context.Context, h Handler, d Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, d)
}

func (r *Receiver) claim(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, busy := r.running[id]; busy {
		return false
	}
	r.running[id] = struct{}{}
	return true
}

func (r *Receiver) release(id string) {
	r.mu.Lock()
	delete(r.running, id)
	r.mu.Unlock()
}

// Reprocess sets a delivery back to pending (Store.Reset) and notifies it again: a retry
// of a failed delivery once the queue gave up, or a replay of a processed or ignored one.
// Without a [Notify] hook it only resets the delivery. A Reprocess while the delivery is
// being processed is not lost: that attempt's outcome is refused (ErrStale) and
// [Receiver.Process] runs the handler again.
func (r *Receiver) Reprocess(ctx context.Context, id string) error {
	d, err := r.store.Reset(ctx, r.endpoint, id, r.now())
	if err != nil {
		return fmt.Errorf("webhook: reprocess delivery %q of %q: %w", id, r.endpoint, err)
	}
	if r.notify != nil {
		if err := r.notify(ctx, d); err != nil {
			return fmt.Errorf("webhook: reprocess delivery %q of %q: notify: %w", id, r.endpoint, err)
		}
	}
	return nil
}

// Resume notifies every pending delivery of the endpoint again, oldest first, and
// returns how many: call it at start-up, so deliveries whose queue job was lost (an
// in-process queue and a crash) are processed. With a durable queue and identity keys it
// only repeats what is queued already.
//
// With [WithSpool], it first stores the deliveries that processes which stopped without
// [Receiver.Close] (crashed) left in their spool files, and removes the files; those
// deliveries are then notified with the other pending ones. Without a [Notify] hook it
// does only that, and returns 0 (the app lists pending deliveries itself); without a hook
// or a spool it has nothing to do and returns an error.
func (r *Receiver) Resume(ctx context.Context) (int, error) {
	if r.notify == nil && r.spool == nil {
		return 0, fmt.Errorf("webhook: resume %q: no Notify hook to hand deliveries to", r.endpoint)
	}
	if r.spool != nil {
		replayed, err := r.spool.replay(ctx)
		if err != nil {
			return 0, fmt.Errorf("webhook: resume %q: %w", r.endpoint, err)
		}
		if replayed > 0 {
			r.log.Info("webhook: deliveries recovered from spool files", "endpoint", r.endpoint, "deliveries", replayed)
		}
	}
	if r.notify == nil {
		return 0, nil
	}
	n := 0
	for d, err := range r.store.List(ctx, Filter{Endpoint: r.endpoint, Status: StatusPending}) {
		if err != nil {
			return n, fmt.Errorf("webhook: resume %q: %w", r.endpoint, err)
		}
		if err := r.notify(ctx, d); err != nil {
			return n, fmt.Errorf("webhook: resume %q: notify delivery %q: %w", r.endpoint, d.ID, err)
		}
		n++
	}
	return n, nil
}

// Flush waits until every delivery spooled before the call ([WithSpool]) is in the store
// and handed on, or ctx is done. Without a spool it returns nil at once.
func (r *Receiver) Flush(ctx context.Context) error {
	if r.spool == nil {
		return nil
	}
	return r.spool.flushed(ctx)
}

// Close ends spooling ([WithSpool]): it flushes the spool until ctx is done, then closes
// its file, removing it when everything in it is stored; what could not be stored by then
// stays in the file for the next [Receiver.Resume]. Deliveries received after Close are
// stored before answering, as without a spool. Without a spool it does nothing.
func (r *Receiver) Close(ctx context.Context) error {
	if r.spool == nil {
		return nil
	}
	return r.spool.close(ctx)
}
