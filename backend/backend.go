// Package backend is the hub of a connector: one configured connection to one external
// system, with everything its models share, and the orchestration on top. It is the Go
// counterpart of generic_connector's backend model.
//
// A connector is one [Backend] plus one [Model] declaration per model:
//
//	b, err := backend.New(cfg, // base URL, auth, timeouts, rate limit: from a file or a struct
//		backend.WithDB(db),    // bindings, watermarks, statistics and the audit log in one database
//		backend.WithModel(backend.Model[Customer]{Name: "customer", Local: customers, Import: ...}),
//		backend.WithModel(backend.Model[Order]{Name: "order", Local: orders, Import: ..., Export: ...}),
//	)
//	report, err := b.SyncAll(ctx)                         // customers before orders
//	err = b.Later().Export(ctx, "order", "17")            // with_delay: a queued job
//
// The backend owns the adapter client (built from [Config]), the binding and state stores,
// the audit recorder, the job queue (an in-process pool unless [WithQueue] gives a durable
// one), the schedules, the logger and the clock. It builds each model's importer and
// exporter, runs models in dependency order, routes exports and single-record imports by
// model, defers work as built-in queue jobs ([Backend.Later]), and keeps statistics.
//
// The template methods of the Odoo original become small hooks: a connection test
// ([WithConnectionTest]) and named operations ([WithOperation]) for what a model
// declaration does not cover.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/schedule"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/state"
	"github.com/connkit/connkit/synclog"
)

// operationFunc is the work of a named operation (see WithOperation).
type operationFunc = func(ctx context.Context, b *Backend) (report.Counts, error)

// Errors matched with errors.Is.
var (
	// ErrUnknownOperation: Sync or a job named an operation that is not registered.
	ErrUnknownOperation = errors.New("unknown sync operation")
	// ErrUnknownModel: a call named a model that is not registered.
	ErrUnknownModel = errors.New("unknown model")
	// ErrNotSupported: the model does not declare what was asked (an export of an
	// import-only model, a single-record import without Import.Fetch).
	ErrNotSupported = errors.New("not supported by the model's declaration")
)

// Backend is a configured connector. It is safe for concurrent use.
type Backend struct {
	cfg        Config
	client     *adapter.Client
	clientOpts []adapter.Option
	bindings   binding.Store
	state      state.Store
	recorder   synclog.Recorder
	binder     *binding.Binder
	resolver   resolver
	tester     func(ctx context.Context, b *Backend) error
	claimer    *binding.Claimer
	logger     *slog.Logger
	now        func() time.Time

	models     map[string]model
	modelOrder []string // registration order
	syncOrder  []string // dependency order of the imported models
	ops        []operation

	workers  *queue.Workers
	newQueue func(context.Context, *queue.Workers) (queue.Queue, error)
	queue    queue.Queue

	schedStore schedule.Store
	scheduler  *schedule.Scheduler
	schedules  []scheduleDecl

	hooks *webhookHub // webhook endpoints (webhooks.go)

	progress func(model string, s importer.Summary)

	mu      sync.Mutex // guards the run state below
	running context.CancelFunc
	done    chan struct{}
}

type operation struct {
	name string
	run  operationFunc
}

// Option configures a Backend.
type Option func(*Backend) error

// WithDB keeps the backend's bindings, state (watermarks, statistics, schedules) and audit
// log in db, a SQLite file or a Postgres database opened with sqlstore.Open. Without it
// they live in memory, which suits tests.
func WithDB(db *sqlstore.DB) Option {
	return func(b *Backend) error {
		if db == nil {
			return errors.New("backend: WithDB(nil)")
		}
		b.bindings, b.state, b.recorder, b.schedStore = db.Bindings(), db.State(), db.Log(), db.Schedules()
		b.webhookHub().store = db.Webhooks()
		return nil
	}
}

// WithStores keeps bindings and state (watermarks, statistics) in the given stores instead
// of memory; a nil store keeps the default. WithDB is the usual way; this one is for tests
// and stores of the app's own.
func WithStores(bindings binding.Store, st state.Store) Option {
	return func(b *Backend) error {
		if bindings != nil {
			b.bindings = bindings
		}
		if st != nil {
			b.state = st
		}
		return nil
	}
}

// WithRecorder sends the audit entry of every request and response to r instead of the
// default (the database of WithDB, else nothing).
func WithRecorder(r synclog.Recorder) Option {
	return func(b *Backend) error { b.recorder = r; return nil }
}

// WithClientOptions adds adapter options to the client the backend builds from its
// config (a transport for tests, a user agent, extra secrets to redact). They apply
// after the configured ones.
func WithClientOptions(opts ...adapter.Option) Option {
	return func(b *Backend) error { b.clientOpts = append(b.clientOpts, opts...); return nil }
}

// WithQueue makes the backend run its jobs on the queue newQueue returns, for example a
// durable River queue on the backend's database. newQueue receives the backend's workers
// (the built-in job kinds, already registered) and is called once, by New. Without it,
// jobs run on an in-process pool and are lost when the process exits.
func WithQueue(newQueue func(ctx context.Context, w *queue.Workers) (queue.Queue, error)) Option {
	return func(b *Backend) error { b.newQueue = newQueue; return nil }
}

// WithConnectionTest sets the check TestConnection runs: a cheap call that proves the
// credentials and the reachability of the API (a GET on a small endpoint through
// b.Client()).
func WithConnectionTest(test func(ctx context.Context, b *Backend) error) Option {
	return func(b *Backend) error { b.tester = test; return nil }
}

// WithOperation registers a named sync operation beyond the models' imports:
// "inventory", "close_orders". SyncAll runs operations after the models, in registration
// order; names must be unique and must not be a model's built-in operation
// ("import_<model>", "retry_<model>"). A non-nil error with partial counts still records
// the counts.
func WithOperation(name string, run func(ctx context.Context, b *Backend) (report.Counts, error)) Option {
	return func(b *Backend) error {
		if name == "" || run == nil {
			return errors.New("backend: WithOperation needs a name and a function")
		}
		if slices.ContainsFunc(b.ops, func(o operation) bool { return o.name == name }) {
			return fmt.Errorf("backend: operation %q registered twice", name)
		}
		b.ops = append(b.ops, operation{name: name, run: run})
		return nil
	}
}

// WithLeaseTTL sets how long a record's lease lasts without renewal (default 1 minute).
// Importers and exporters renew a held lease every third of it however long a request
// takes, so the TTL only bounds how long a process that dies mid-sync keeps its records
// from other workers.
func WithLeaseTTL(ttl time.Duration) Option {
	return func(b *Backend) error {
		if ttl < 3*time.Second {
			return fmt.Errorf("backend: WithLeaseTTL(%s): a lease must last at least 3s (it is renewed every third of it)", ttl)
		}
		b.claimer.TTL = ttl
		return nil
	}
}

// WithLogger sets the logger for the backend and everything it builds (client, importers,
// exporters, queue). Without it the backend logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(b *Backend) error { b.logger = l; return nil }
}

// WithProgress calls fn after each committed batch of every model's batch import
// (SyncAll, Sync, scheduled and deferred runs alike) with the model's name and the run's
// summary so far, for progress lines and metrics. fn runs on the import's goroutine:
// keep it quick.
func WithProgress(fn func(model string, s importer.Summary)) Option {
	return func(b *Backend) error {
		b.progress = fn
		return nil
	}
}

// withClock replaces time.Now (connkit's own tests).
func withClock(now func() time.Time) Option {
	return func(b *Backend) error { b.now = now; return nil }
}

// New validates cfg, applies the options, and builds the connector: the client, the
// models' importers and exporters, the queue with the built-in job kinds, the schedules.
// Nothing runs until SyncAll, Sync, Export… are called or Start starts the queue and the
// schedules.
func New(cfg Config, opts ...Option) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, models: map[string]model{}, logger: slog.New(slog.DiscardHandler), now: time.Now,
		claimer: &binding.Claimer{TTL: defaultLeaseTTL}}
	for _, sc := range cfg.Schedules {
		opts = append(opts, withSchedule(sc.Name, sc.Spec, sc.Operation))
	}
	for _, opt := range opts {
		if err := opt(b); err != nil {
			return nil, err
		}
	}
	b.logger = b.logger.With("backend", cfg.Name)
	if b.bindings == nil {
		b.bindings = binding.NewMemory()
	}
	if b.state == nil {
		b.state = state.NewMemory()
	}
	if b.schedStore == nil {
		b.schedStore = schedule.NewMemory()
	}
	b.binder = binding.NewBinder(b.bindings, cfg.Name)
	b.claimer.Store = b.bindings
	b.resolver = resolver{b}

	if cfg.Auth.Type == authOAuth2RefreshToken {
		// The server rotates refresh tokens: after the first rotation the one in the
		// config file is dead, and the live one is in the state store.
		tok, err := b.state.Get(context.Background(), cfg.Name, refreshTokenKey)
		switch {
		case err == nil && len(tok) > 0:
			cfg.Auth.RefreshToken = string(tok)
		case err != nil && !errors.Is(err, state.ErrNotFound):
			return nil, fmt.Errorf("backend %q: reading the stored OAuth2 refresh token: %w", cfg.Name, err)
		}
	}
	copts, err := cfg.clientOptions(b.saveRefreshToken)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", cfg.Name, err)
	}
	copts = append(copts, adapter.WithLogger(b.logger))
	if b.recorder != nil {
		copts = append(copts, adapter.WithRecorder(b.recorder))
	}
	if b.client, err = adapter.New(cfg.BaseURL, append(copts, b.clientOpts...)...); err != nil {
		return nil, fmt.Errorf("backend %q: %w", cfg.Name, err)
	}

	for _, name := range b.modelOrder {
		if err := b.models[name].build(b); err != nil {
			return nil, err
		}
	}
	b.syncOrder = b.dependencyOrder()
	if err := b.buildWebhooks(); err != nil {
		return nil, err
	}
	for _, o := range b.ops {
		if b.builtin(o.name) {
			return nil, fmt.Errorf("backend %q: operation %q has the name of a model's built-in operation", cfg.Name, o.name)
		}
	}
	if err := b.buildQueue(); err != nil {
		return nil, err
	}
	if err := b.buildSchedules(); err != nil {
		return nil, err
	}
	return b, nil
}

// saveRefreshToken keeps a rotated OAuth2 refresh token in the state store, so a restart
// does not start from the one in the config file, which the server no longer accepts.
func (b *Backend) saveRefreshToken(ctx context.Context, tok *oauth2.Token) error {
	return b.state.Put(ctx, b.cfg.Name, refreshTokenKey, []byte(tok.RefreshToken))
}

// defaultLeaseTTL is shorter than the runners' own default (5 min): the hub's runners renew
// their leases, so a long request is safe, and a crashed worker blocks its records for a
// minute rather than five.
const defaultLeaseTTL = time.Minute

// refreshTokenKey is the state-store name of the live OAuth2 refresh token.
const refreshTokenKey = "oauth2.refresh_token"

// Name returns the configured name.
func (b *Backend) Name() string { return b.cfg.Name }

// Config returns a copy of the configuration.
func (b *Backend) Config() Config { return b.cfg }

// Client returns the adapter client built from the configuration, for operations and
// connection tests that call the API themselves.
func (b *Backend) Client() *adapter.Client { return b.client }

// Bindings returns the binding store, for inspecting sync status (failed records, their
// errors and retry counts).
func (b *Backend) Bindings() binding.Store { return b.bindings }

// Queue returns the job queue, for listing, retrying or cancelling deferred jobs.
func (b *Backend) Queue() queue.Queue { return b.queue }

// Setting returns a connector-specific value from Config.Settings, typed. ok is false
// when the key is missing or holds another type (numbers from files are float64).
func Setting[T any](b *Backend, key string) (v T, ok bool) {
	v, ok = b.cfg.Settings[key].(T)
	return v, ok
}

// Models returns the registered models in dependency order (a model after the models it
// depends on), then the export-only ones in registration order.
func (b *Backend) Models() []string {
	out := slices.Clone(b.syncOrder)
	for _, n := range b.modelOrder {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Operations returns the names Sync accepts, in the order SyncAll runs them: the models'
// imports in dependency order ("import_<model>"), then the registered operations. Each
// imported model with a fetch path also has "retry_<model>", which SyncAll does not run.
func (b *Backend) Operations() []string {
	var names []string
	for _, m := range b.syncOrder {
		names = append(names, importOp+m)
	}
	for _, o := range b.ops {
		names = append(names, o.name)
	}
	return names
}

// TestConnection runs the connector's connection test. A backend without one reports
// an error saying so rather than pretending the connection works.
func (b *Backend) TestConnection(ctx context.Context) error {
	if b.tester == nil {
		return fmt.Errorf("backend %q: no connection test registered (use backend.WithConnectionTest)", b.cfg.Name)
	}
	if err := b.tester(ctx, b); err != nil {
		return fmt.Errorf("backend %q: connection test failed: %w", b.cfg.Name, err)
	}
	return nil
}

// Start starts working deferred jobs and running enabled schedules in the background. It
// returns at once; Stop ends both, letting running jobs finish. Cancelling ctx is a hard
// stop instead: running jobs are cut short, and a request in flight may reach the API
// without its answer being recorded (an API that ignores idempotency keys then gets the
// create again on the retry). For a graceful shutdown on a signal, start with a context
// the signal does not cancel (context.WithoutCancel) and call Stop with a deadline.
func (b *Backend) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running != nil {
		return fmt.Errorf("backend %q: already started", b.cfg.Name)
	}
	if err := b.resumeWebhooks(ctx); err != nil {
		return err
	}
	if err := b.queue.Start(ctx); err != nil {
		return fmt.Errorf("backend %q: starting the queue: %w", b.cfg.Name, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	b.running, b.done = cancel, make(chan struct{})
	go func() {
		defer close(b.done)
		if err := b.scheduler.Run(sctx); err != nil && !errors.Is(err, context.Canceled) {
			b.logger.Error("schedules stopped", "error", err)
		}
	}()
	return nil
}

// Stop moves the deliveries waiting in webhook spools into the store and closes the
// spools (later deliveries are stored before answering), stops the schedules, then lets
// running jobs finish (until ctx is done) and stops the queue. The queue is stopped even
// when ctx ends before the rest is done (running jobs are then cut short), so a Stop that
// returns an error still leaves nothing running.
func (b *Backend) Stop(ctx context.Context) error {
	spools := b.closeSpools(ctx)
	b.mu.Lock()
	cancel, done := b.running, b.done
	b.running = nil
	b.mu.Unlock()
	if cancel == nil {
		return spools
	}
	cancel()
	var schedules error
	select {
	case <-done:
	case <-ctx.Done():
		schedules = fmt.Errorf("backend %q: waiting for the schedules to stop: %w", b.cfg.Name, ctx.Err())
	}
	return errors.Join(spools, schedules, b.queue.Stop(ctx))
}

// model returns the registered model, or an error naming the registered ones.
func (b *Backend) model(name string) (model, error) {
	m, ok := b.models[name]
	if !ok {
		return nil, fmt.Errorf("backend %q: %w %q (registered: %v)", b.cfg.Name, ErrUnknownModel, name, b.modelOrder)
	}
	return m, nil
}

// dependencyOrder sorts the imported models so each comes after the registered models it
// depends on. Registration order breaks ties and cycles (a cycle is legal: the resolver
// imports a missing related record on the way).
func (b *Backend) dependencyOrder() []string {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string)
	visit = func(n string) {
		if state[n] != 0 {
			return
		}
		state[n] = 1
		for _, d := range b.models[n].dependsOn() {
			if _, ok := b.models[d]; ok {
				visit(d)
			}
		}
		state[n] = 2
		if b.models[n].importer() {
			order = append(order, n)
		}
	}
	for _, n := range b.modelOrder {
		visit(n)
	}
	return order
}
