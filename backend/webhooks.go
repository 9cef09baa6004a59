package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/webhook"
)

// WebhookConfig declares one webhook endpoint: a sender that pushes events to the
// connector, how its deliveries are signed, and what each event type does.
//
//	webhooks:
//	  - name: shopify                 # also the URL path segment: POST …/shopify
//	    scheme: hmac_sha256
//	    header: X-Shopify-Hmac-Sha256
//	    encoding: base64
//	    secrets: ["${SHOPIFY_WEBHOOK_SECRET}"]
//	    id_header: X-Shopify-Webhook-Id
//	    event_header: X-Shopify-Topic
//	    events:
//	      products/update: {model: product, action: import}
//	      products/delete: {model: product, action: delete}
type WebhookConfig struct {
	// Name identifies the endpoint: the path segment it is served under by
	// Backend.Webhooks, and Delivery.Endpoint of what it stores. Letters, digits, '-', '_'
	// and '.', at most 64. Required, unique.
	Name string `json:"name"`
	// Scheme is how deliveries are signed: hmac_sha256 (an HMAC of the body in Header:
	// Shopify, GitHub), standard (Standard Webhooks: webhook-id, webhook-timestamp,
	// webhook-signature) or stripe (Stripe-Signature: t=…,v1=…). Required.
	Scheme string `json:"scheme"`
	// Header, Encoding (hex or base64) and Prefix ("sha256=" for GitHub) locate the
	// signature of hmac_sha256; Header and Encoding are required for it.
	Header   string `json:"header,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	// Secrets are the signing secrets; a delivery signed with any of them passes, so list
	// the new and the old one during a rotation. At least one; write "${ENV_VAR}" to keep
	// them out of the file. Standard Webhooks secrets are base64 (a "whsec_" prefix is
	// allowed); Stripe's are used as Stripe shows them.
	Secrets []string `json:"secrets"`
	// IDHeader names the header holding the sender's delivery ID, which deduplicates
	// redeliveries (default webhook-id; a delivery without one is identified by the
	// SHA-256 of its body).
	IDHeader string `json:"id_header,omitempty"`
	// EventHeader or EventPath (a gjson path in the body) gives the event type that
	// selects the entry of Events. Default for standard and stripe: EventPath "type".
	EventHeader string `json:"event_header,omitempty"`
	EventPath   string `json:"event_path,omitempty"`
	// Tolerance is how far a signed timestamp may be from the receiver's clock (standard
	// and stripe only; default 5m).
	Tolerance Duration `json:"tolerance,omitempty"`
	// BodyLimit is the largest body accepted, in bytes (default 1 MiB); larger ones are
	// answered 413.
	BodyLimit int64 `json:"body_limit,omitempty"`
	// MaxAttempts is how many times a delivery's processing is tried before it is left
	// failed (default 10, the queue's default); Backend.Webhook(name).Reprocess retries
	// it on purpose.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Spool is a directory where each delivery is written before the sender is answered;
	// the deliveries are then moved into the store in batches, behind the requests
	// (webhook.WithSpool). On SQLite that takes 2–3× the deliveries per second.
	// Deliveries a crashed process left there are stored when the backend starts; Stop
	// flushes and closes the spool. Empty: each delivery is stored before answering.
	Spool string `json:"spool,omitempty"`
	// Events maps event types to what they do. Types not listed (and without a handler
	// given with WithWebhookHandler) are stored and marked ignored.
	Events map[string]WebhookEvent `json:"events,omitempty"`
}

// WebhookEvent is what one event type does to one model.
type WebhookEvent struct {
	// Model is the model the event is about; it must be registered and, for import,
	// declare Import.Fetch.
	Model string `json:"model"`
	// Action is import (fetch the record through Import.Fetch and import it, as
	// Backend.Import does) or delete (remove the local record and its binding).
	Action string `json:"action"`
	// IDPath is the gjson path of the record's external ID in the delivery's body
	// (default: the model's IDPath, "id" unless declared; "data.object.id" for Stripe
	// events).
	IDPath string `json:"id_path,omitempty"`
}

// Webhook schemes and actions a config can name.
const (
	schemeHMAC     = "hmac_sha256"
	schemeStandard = "standard"
	schemeStripe   = "stripe"

	actionImport = "import"
	actionDelete = "delete"
)

var webhookSchemes = []string{schemeHMAC, schemeStandard, schemeStripe}

// maxWebhookName bounds endpoint names (they are URL path segments and store keys).
const maxWebhookName = 64

func validWebhookName(s string) bool {
	if s == "" || len(s) > maxWebhookName || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		if c != '-' && c != '_' && c != '.' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// validateWebhooks checks what can be checked without the models (New checks the rest).
// No problem text quotes a secret.
func (c *Config) validateWebhooks() []*FieldError {
	var fields []*FieldError
	seen := map[string]bool{}
	for i, w := range c.Webhooks {
		at, before := fmt.Sprintf("webhooks[%d]", i), len(fields)
		bad := func(field, format string, args ...any) {
			fields = append(fields, &FieldError{Field: at + field, Problem: fmt.Sprintf(format, args...)})
		}
		switch {
		case w.Name == "":
			bad(".name", "is required: it names the endpoint and its URL path segment")
		case !validWebhookName(w.Name):
			bad(".name", "%q: use at most %d letters, digits, '-', '_' or '.' (it is a URL path segment)", w.Name, maxWebhookName)
		case seen[w.Name]:
			bad(".name", "%q is used by another webhook endpoint", w.Name)
		}
		seen[w.Name] = true
		switch w.Scheme {
		case schemeHMAC:
			if strings.TrimSpace(w.Header) == "" {
				bad(".header", "is required for scheme %s: the header carrying the signature (X-Shopify-Hmac-Sha256, X-Hub-Signature-256)", schemeHMAC)
			}
			if w.Encoding != "hex" && w.Encoding != "base64" {
				bad(".encoding", "%q: use hex or base64 (scheme %s)", w.Encoding, schemeHMAC)
			}
			if w.Tolerance > 0 {
				bad(".tolerance", "does not apply to scheme %s, which signs no timestamp", schemeHMAC)
			}
		case schemeStandard, schemeStripe:
			for _, f := range []struct {
				field string
				set   bool
			}{{".header", w.Header != ""}, {".encoding", w.Encoding != ""}, {".prefix", w.Prefix != ""}} {
				if f.set {
					bad(f.field, "applies to scheme %s only", schemeHMAC)
				}
			}
		case "":
			bad(".scheme", "is required: use one of %s", strings.Join(webhookSchemes, ", "))
		default:
			bad(".scheme", "unknown scheme %q: use one of %s", w.Scheme, strings.Join(webhookSchemes, ", "))
		}
		if len(w.Secrets) == 0 {
			bad(".secrets", "at least one secret is required (write ${ENV_VAR} to keep it out of the file); deliveries are never accepted unverified")
		}
		for j, s := range w.Secrets {
			if strings.TrimSpace(s) == "" {
				bad(fmt.Sprintf(".secrets[%d]", j), "is empty")
			}
		}
		if w.EventHeader != "" && w.EventPath != "" {
			bad(".event_path", "give event_header or event_path, not both")
		}
		if w.Scheme == schemeHMAC && w.EventHeader == "" && w.EventPath == "" && slices.ContainsFunc(sortedKeys(w.Events), func(ev string) bool { return ev != "" }) {
			bad(".event_header", "is required to tell the events apart (X-Shopify-Topic, X-GitHub-Event), or give event_path (a path in the body)")
		}
		if w.Tolerance < 0 {
			bad(".tolerance", "must not be negative")
		}
		if w.BodyLimit < 0 {
			bad(".body_limit", "must not be negative")
		}
		if w.MaxAttempts < 0 {
			bad(".max_attempts", "must not be negative")
		}
		for _, ev := range sortedKeys(w.Events) {
			e := w.Events[ev]
			if e.Model == "" {
				bad(".events."+ev+".model", "is required: the model the event is about")
			}
			if e.Action != actionImport && e.Action != actionDelete {
				bad(".events."+ev+".action", "%q: use import or delete", e.Action)
			}
		}
		if len(fields) == before {
			// The verifier's own checks (a Standard Webhooks secret that is not base64…);
			// its messages name secrets by position only.
			if _, err := w.verifier(); err != nil {
				bad(".secrets", "%v", err)
			}
		}
	}
	return fields
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// verifier builds the endpoint's signature verifier.
func (w *WebhookConfig) verifier() (webhook.Verifier, error) {
	var opts []webhook.VerifyOption
	if w.Tolerance > 0 {
		opts = append(opts, webhook.WithTolerance(w.Tolerance.Std()))
	}
	switch w.Scheme {
	case schemeHMAC:
		enc := webhook.Hex
		if w.Encoding == "base64" {
			enc = webhook.Base64
		}
		if w.Prefix != "" {
			opts = append(opts, webhook.WithPrefix(w.Prefix))
		}
		return webhook.NewHMAC(w.Header, enc, w.Secrets, opts...)
	case schemeStandard:
		return webhook.NewStandardWebhooks(w.Secrets, opts...)
	case schemeStripe:
		return webhook.NewStripe(w.Secrets, opts...)
	}
	return nil, fmt.Errorf("unknown scheme %q", w.Scheme)
}

// webhookHub is the backend's webhook side: the delivery store, one receiver per
// configured endpoint, and the handlers registered in Go.
type webhookHub struct {
	store     webhook.Store
	handlers  []webhookHandlerDecl
	receivers map[string]*webhook.Receiver
	names     []string // configured order
	mux       *http.ServeMux
	records   recordLocks
}

// recordLocks serializes, in this process, the webhook actions on one record (model and
// external ID): an import that fetched a record just before the record's delete event
// was processed would otherwise write it back after the delete action removed it. (Across
// processes the binding's lease orders the two writes but not the fetch: see the README.)
type recordLocks struct {
	mu    sync.Mutex
	locks map[[2]string]*recordLock
}

type recordLock struct {
	sync.Mutex
	users int // holders and waiters; the entry goes when it drops to 0
}

// lock locks the record's lock and returns its unlock.
func (l *recordLocks) lock(model, externalID string) (unlock func()) {
	k := [2]string{model, externalID}
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[[2]string]*recordLock)
	}
	rl := l.locks[k]
	if rl == nil {
		rl = &recordLock{}
		l.locks[k] = rl
	}
	rl.users++
	l.mu.Unlock()
	rl.Lock()
	return func() {
		rl.Unlock()
		l.mu.Lock()
		if rl.users--; rl.users == 0 {
			delete(l.locks, k)
		}
		l.mu.Unlock()
	}
}

type webhookHandlerDecl struct {
	endpoint, event string
	h               webhook.Handler
}

// webhookHub returns the hub, made on first use (options run before New builds it).
func (b *Backend) webhookHub() *webhookHub {
	if b.hooks == nil {
		b.hooks = &webhookHub{}
	}
	return b.hooks
}

// ErrUnknownWebhook: Backend.Webhook or WithWebhookHandler named an endpoint that is not
// configured.
var ErrUnknownWebhook = errors.New("unknown webhook endpoint")

// WithWebhookHandler handles the event type event of the configured webhook endpoint
// with h instead of a model action: for events a config entry cannot express (several
// models, a status change without a fetch). h runs from the endpoint's queue job, at least
// once per delivery, so it must be idempotent; see webhook.Handler for what its error
// does. An event type is handled one way: by the config's events or by one handler.
func WithWebhookHandler(endpoint, event string, h webhook.Handler) Option {
	return func(b *Backend) error {
		if endpoint == "" || h == nil {
			return errors.New("backend: WithWebhookHandler needs an endpoint name and a handler")
		}
		hub := b.webhookHub()
		for _, d := range hub.handlers {
			if d.endpoint == endpoint && d.event == event {
				return fmt.Errorf("backend: webhook handler for event %q of endpoint %q registered twice", event, endpoint)
			}
		}
		hub.handlers = append(hub.handlers, webhookHandlerDecl{endpoint, event, h})
		return nil
	}
}

// webhookJob processes one stored delivery (Receiver.Process).
type webhookJob struct {
	Backend  string `json:"backend"`
	Endpoint string `json:"endpoint"`
	Delivery string `json:"delivery"`
}

func (webhookJob) Kind() string { return "connkit.webhook" }

// addWebhookWorker registers the worker of webhookJob; buildQueue calls it.
func (b *Backend) addWebhookWorker() {
	queue.AddWorker(b.workers, func(ctx context.Context, j *queue.Job[webhookJob]) error {
		if err := b.ownJob(j.Args.Backend); err != nil {
			return err
		}
		r, err := b.Webhook(j.Args.Endpoint)
		if err != nil {
			return queue.Permanent(err)
		}
		err = r.Process(ctx, j.Args.Delivery)
		if errors.Is(err, webhook.ErrNotFound) { // purged: nothing left to process
			return queue.Permanent(err)
		}
		return err
	})
}

// buildWebhooks makes the receivers of the configured endpoints; New calls it once the
// models are built and before the queue is made.
func (b *Backend) buildWebhooks() error {
	hub := b.webhookHub()
	if hub.store == nil {
		hub.store = webhook.NewMemory()
	}
	hub.receivers, hub.mux = map[string]*webhook.Receiver{}, http.NewServeMux()
	var fields []*FieldError
	bad := func(field, format string, args ...any) {
		fields = append(fields, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	handlers := map[string]map[string]webhook.Handler{}
	for _, d := range hub.handlers {
		if !slices.ContainsFunc(b.cfg.Webhooks, func(w WebhookConfig) bool { return w.Name == d.endpoint }) {
			return fmt.Errorf("backend %q: WithWebhookHandler(%q, %q): %w (configured: %v)", b.cfg.Name, d.endpoint, d.event, ErrUnknownWebhook, b.webhookNames())
		}
		if w := b.cfg.Webhooks[slices.IndexFunc(b.cfg.Webhooks, func(w WebhookConfig) bool { return w.Name == d.endpoint })]; d.event != "" &&
			w.Scheme == schemeHMAC && w.EventHeader == "" && w.EventPath == "" {
			return fmt.Errorf("backend %q: WithWebhookHandler(%q, %q): the endpoint reads no event type (set event_header or event_path); register the handler for \"\" to handle every delivery",
				b.cfg.Name, d.endpoint, d.event)
		}
		if handlers[d.endpoint] == nil {
			handlers[d.endpoint] = map[string]webhook.Handler{}
		}
		handlers[d.endpoint][d.event] = d.h
	}
	for i, w := range b.cfg.Webhooks {
		at := fmt.Sprintf("webhooks[%d]", i)
		opts := []webhook.Option{webhook.WithLogger(b.logger), webhook.WithClock(b.now), webhook.WithNotify(b.notifyWebhook(w.Name, w.MaxAttempts))}
		if w.IDHeader != "" {
			opts = append(opts, webhook.WithIDHeader(w.IDHeader))
		}
		switch {
		case w.EventHeader != "":
			opts = append(opts, webhook.WithEventHeader(w.EventHeader))
		case w.EventPath != "":
			opts = append(opts, webhook.WithEventPath(w.EventPath))
		case w.Scheme == schemeStandard || w.Scheme == schemeStripe:
			opts = append(opts, webhook.WithEventPath("type"))
		}
		if w.BodyLimit > 0 {
			opts = append(opts, webhook.WithBodyLimit(w.BodyLimit))
		}
		if w.Spool != "" {
			opts = append(opts, webhook.WithSpool(w.Spool))
		}
		for _, ev := range sortedKeys(w.Events) {
			e, field := w.Events[ev], at+".events."+ev
			if _, dup := handlers[w.Name][ev]; dup {
				bad(field, "is also handled by WithWebhookHandler; handle an event one way")
				continue
			}
			h, problem := b.webhookAction(e)
			if problem != "" {
				bad(field+".model", "%s", problem)
				continue
			}
			opts = append(opts, webhook.WithHandler(ev, h))
		}
		for _, ev := range sortedKeys(handlers[w.Name]) {
			opts = append(opts, webhook.WithHandler(ev, handlers[w.Name][ev]))
		}
		v, err := w.verifier()
		if err != nil { // Validate checked it; kept for configs changed since
			bad(at+".secrets", "%v", err)
			continue
		}
		r, err := webhook.NewReceiver(b.webhookEndpoint(w.Name), v, hub.store, opts...)
		if err != nil {
			bad(at, "%v", err)
			continue
		}
		hub.receivers[w.Name] = r
		hub.names = append(hub.names, w.Name)
		hub.mux.Handle("/"+w.Name, r)
	}
	if len(fields) > 0 {
		return &ConfigError{Backend: b.cfg.Name, Fields: fields}
	}
	return nil
}

// webhookAction makes the handler of a config event, or says why it cannot.
func (b *Backend) webhookAction(e WebhookEvent) (webhook.Handler, string) {
	m, ok := b.models[e.Model]
	if !ok {
		return nil, fmt.Sprintf("unknown model %q (registered: %v)", e.Model, b.modelOrder)
	}
	path := e.IDPath
	if path == "" {
		path = m.(webhookModel).idPath()
	}
	externalID := func(d webhook.Delivery) (string, error) {
		id := gjson.GetBytes(d.Body, path)
		if id.Type == gjson.Null || id.Type == gjson.JSON || id.String() == "" {
			return "", queue.Permanent(fmt.Errorf("backend %q: webhook event %q: no %s ID at %q in the body", b.cfg.Name, d.Event, e.Model, path))
		}
		return id.String(), nil
	}
	switch e.Action {
	case actionImport:
		if !m.fetcher() {
			return nil, fmt.Sprintf("model %q has no Import.Fetch path, which action import needs to fetch one record", e.Model)
		}
		return func(ctx context.Context, d webhook.Delivery) error {
			id, err := externalID(d)
			if err != nil {
				return err
			}
			defer b.hooks.records.lock(e.Model, id)()
			_, err = b.Import(ctx, e.Model, id)
			return JobError(err)
		}, ""
	case actionDelete:
		return func(ctx context.Context, d webhook.Delivery) error {
			id, err := externalID(d)
			if err != nil {
				return err
			}
			defer b.hooks.records.lock(e.Model, id)()
			return b.deleteByExternal(ctx, e.Model, id)
		}, ""
	}
	return nil, fmt.Sprintf("unknown action %q", e.Action)
}

// webhookModel is what the delete action needs of a registered model; every
// typedModel has it.
type webhookModel interface {
	idPath() string
	deleteLocal(ctx context.Context, localID string) error
}

func (m *typedModel[T]) idPath() string { return m.decl.IDPath }

func (m *typedModel[T]) deleteLocal(ctx context.Context, localID string) error {
	if err := m.decl.Local.Delete(ctx, localID); err != nil && !errors.Is(err, local.ErrNotFound) {
		return err
	}
	return nil
}

// deleteByExternal removes the local record bound to an external record and its
// binding, under the binding's lease so no import or export of the record runs at the
// same time. A record never imported (no binding) or already deleted is not an error.
func (b *Backend) deleteByExternal(ctx context.Context, model, externalID string) error {
	bd, err := b.bindings.GetByExternal(ctx, b.cfg.Name, model, externalID)
	if errors.Is(err, binding.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backend %q: deleting %s %q: %w", b.cfg.Name, model, externalID, err)
	}
	lease, err := b.claimer.Hold(ctx, bd.ID)
	if errors.Is(err, binding.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return fmt.Errorf("backend %q: deleting %s %q: leasing its binding: %w", b.cfg.Name, model, externalID, err)
	}
	defer lease.Release(context.WithoutCancel(ctx))
	bd = lease.Binding()
	lctx := lease.Context()
	if bd.LocalID != "" {
		if err := b.models[model].(webhookModel).deleteLocal(lctx, bd.LocalID); err != nil {
			return fmt.Errorf("backend %q: deleting %s %q: local record %q: %w", b.cfg.Name, model, externalID, bd.LocalID, err)
		}
	}
	if err := lctx.Err(); err != nil {
		return fmt.Errorf("backend %q: deleting %s %q: %w", b.cfg.Name, model, externalID, context.Cause(lctx))
	}
	if err := b.bindings.Delete(lctx, bd.ID); err != nil && !errors.Is(err, binding.ErrNotFound) {
		return fmt.Errorf("backend %q: deleting %s %q: its binding: %w", b.cfg.Name, model, externalID, err)
	}
	b.logger.Info("webhook deleted a record", "model", model, "external_id", externalID, "local_id", bd.LocalID)
	return nil
}

// webhookEndpoint is the name an endpoint's deliveries are stored under: the backend's
// name, a slash and the endpoint's, so backends sharing a database keep theirs apart.
func (b *Backend) webhookEndpoint(name string) string { return b.cfg.Name + "/" + name }

// notifyWebhook returns the notify hook of the endpoint name: it enqueues the delivery's
// job, keyed by the delivery so a redelivery or a restart does not queue it twice.
func (b *Backend) notifyWebhook(name string, maxAttempts int) webhook.Notify {
	return func(ctx context.Context, d webhook.Delivery) error {
		var opts []queue.EnqueueOption
		if maxAttempts > 0 {
			opts = append(opts, queue.WithMaxAttempts(maxAttempts))
		}
		// A replay (Reprocess: a delivery already attempted, set back to pending) whose twin
		// job is running may come after that job's work, so it gets a follow-up. A
		// redelivery of a delivery never attempted needs none: the running job is about to
		// process it.
		_, err := b.enqueueKeyed(ctx, webhookJob{b.cfg.Name, name, d.ID},
			identityKey(b.cfg.Name, "webhook", name, []string{d.ID}), d.Attempts > 0, opts...)
		if err != nil {
			return fmt.Errorf("backend %q: queueing webhook delivery %q of %q: %w", b.cfg.Name, d.ID, name, err)
		}
		return nil
	}
}

// resumeWebhooks queues again the deliveries a stopped process left unfinished; Start
// calls it. Pending ones: stored, but never processed. Failed ones with attempts left: a
// delivery waiting for its next attempt when the process stopped keeps it, which the
// in-process queue's retries, lost with the process, would not give it (a durable queue
// still holds the retry, and the job's identity key makes this a no-op there). A delivery
// that fails for good is so tried once more per start until its attempts are used up.
func (b *Backend) resumeWebhooks(ctx context.Context) error {
	for _, w := range b.cfg.Webhooks {
		n, err := b.hooks.receivers[w.Name].Resume(ctx)
		if err != nil {
			return fmt.Errorf("backend %q: resuming pending webhook deliveries: %w", b.cfg.Name, err)
		}
		maxAttempts := cmp.Or(w.MaxAttempts, defaultWebhookAttempts)
		retried := 0
		for d, err := range b.hooks.store.List(ctx, webhook.Filter{Endpoint: b.webhookEndpoint(w.Name), Status: webhook.StatusFailed}) {
			if err != nil {
				return fmt.Errorf("backend %q: resuming failed webhook deliveries: %w", b.cfg.Name, err)
			}
			if d.Attempts >= maxAttempts {
				continue // left failed on purpose; Reprocess retries it
			}
			if err := b.notifyWebhook(w.Name, maxAttempts-d.Attempts)(ctx, d); err != nil {
				return fmt.Errorf("backend %q: resuming failed webhook deliveries: %w", b.cfg.Name, err)
			}
			retried++
		}
		if n > 0 || retried > 0 {
			b.logger.Info("webhook deliveries resumed", "endpoint", w.Name, "pending", n, "failed_with_attempts_left", retried)
		}
	}
	return nil
}

// closeSpools flushes and closes the endpoints' spools (webhook.Receiver.Close); Stop
// calls it. Deliveries received later are stored before answering.
func (b *Backend) closeSpools(ctx context.Context) error {
	var errs []error
	for _, name := range b.hooks.names {
		if err := b.hooks.receivers[name].Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("backend %q: closing the spool of webhook endpoint %q: %w", b.cfg.Name, name, err))
		}
	}
	return errors.Join(errs...)
}

// defaultWebhookAttempts is a delivery's attempts when its endpoint sets no max_attempts:
// the queue's default.
const defaultWebhookAttempts = 10

func (b *Backend) webhookNames() []string {
	names := make([]string, 0, len(b.cfg.Webhooks))
	for _, w := range b.cfg.Webhooks {
		names = append(names, w.Name)
	}
	return names
}

// Webhooks returns the http.Handler of the configured webhook endpoints: POST /{name}
// reaches the endpoint's receiver, which verifies, stores and queues each delivery (see
// webhook.Receiver for its answers); other paths are 404. Mount it where senders are told
// to deliver:
//
//	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", b.Webhooks()))
//
// Deliveries are processed by queue jobs once the backend is started (Start), which also
// queues again the deliveries a stopped process left pending.
func (b *Backend) Webhooks() http.Handler { return b.hooks.mux }

// Webhook returns the receiver of a configured endpoint, to retry a failed delivery or
// replay one (Reprocess). Deliveries are listed and purged through Deliveries.
func (b *Backend) Webhook(name string) (*webhook.Receiver, error) {
	r, ok := b.hooks.receivers[name]
	if !ok {
		return nil, fmt.Errorf("backend %q: %w %q (configured: %v)", b.cfg.Name, ErrUnknownWebhook, name, b.hooks.names)
	}
	return r, nil
}

// Deliveries returns the store of webhook deliveries (the database of WithDB, else
// memory): list them by endpoint and status (failed ones and their errors), purge old
// ones. A delivery's Endpoint is the backend's name, a slash and the endpoint's
// ("shop-eu/shopify", Webhook(name).Endpoint()), so backends sharing a database keep
// their deliveries apart.
func (b *Backend) Deliveries() webhook.Store { return b.hooks.store }
