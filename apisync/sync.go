package apisync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

// Record is one local record of a config's model: field name → value, as stored in the
// model's table (sqlstore.Records). Numbers read back from the table are json.Number.
// The field "id" is the record's local ID: it is added when a record is read for
// mapping and never stored in the values.
type Record = map[string]any

// Errors matched with errors.Is.
var (
	// ErrUnknownConfig: a call named a config that was not opened.
	ErrUnknownConfig = errors.New("unknown apisync config")
	// ErrUnknownModel: a call named a model no config uses.
	ErrUnknownModel = errors.New("unknown apisync model")
	// ErrWrongDirection: Push named an in config, or a schedule call a config without one.
	ErrWrongDirection = errors.New("operation does not apply to this config")
)

// AuditBackend is the backend name of inbound audit entries (outbound entries carry the
// out config's name).
const AuditBackend = "apisync"

// scheduleOperation is the backend operation a schedule trigger runs.
const scheduleOperation = "push"

// Option configures Open.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	clientOpts []adapter.Option
	queueOpts  []queue.Option
	recorder   synclog.Recorder
}

// WithLogger sets where the configs' backends, queue and inbound handler log (silent by
// default). Secrets never reach it.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClientOptions adds adapter options to every out config's client (a test
// transport, a user agent, a clock for retries).
func WithClientOptions(opts ...adapter.Option) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithQueueOptions adds options to the durable job queue (River on the database) that
// runs trigger and schedule jobs: workers, backoff, riverqueue.WithRiverConfig.
func WithQueueOptions(opts ...queue.Option) Option {
	return func(o *options) { o.queueOpts = append(o.queueOpts, opts...) }
}

// WithRecorder sends every audit entry (inbound and outbound) to r instead of the
// database's log (sqlstore DB.Log).
func WithRecorder(r synclog.Recorder) Option { return func(o *options) { o.recorder = r } }

// Sync is a set of configs compiled onto connkit's parts: each out config is a backend
// (client, bindings, audit log, queue, schedule) with one model whose export rules are
// the config's lines; every model's records live in its sqlstore table; in configs are
// served by Handler. It is safe for concurrent use.
type Sync struct {
	db       *sqlstore.DB
	opts     options
	logger   *slog.Logger
	recorder synclog.Recorder
	configs  []*compiled
	byName   map[string]*compiled
	stores   map[string]*sqlstore.RecordStore[Record]
	routes   map[string][]*compiled // in configs by path
	q        *sharedQueue

	mu      sync.Mutex // guards started
	started bool
}

// compiled is one config built onto the parts.
type compiled struct {
	cfg     Config
	filter  *filter
	maps    *mappings
	backend *backend.Backend           // out
	deleter *exporter.Exporter[Record] // out: the on_delete trigger
	client  *adapter.Client            // out
	inAuth  *inboundAuth               // in
}

func (c *compiled) method() string { return c.cfg.Methods[0] }

// hub reports whether the config's pushes go through the hub's exporter (POST, one
// request per record): everything else is sent with the backend's client directly.
func (c *compiled) hub() bool {
	return c.cfg.Direction == Out && c.method() == http.MethodPost && !c.cfg.Paginated
}

func (c *compiled) pageSize() int {
	if c.cfg.PageSize > 0 {
		return c.cfg.PageSize
	}
	return DefaultPageSize
}

// Open compiles configs onto the database db: a record table per model (configs naming
// the same model share it), a backend per out config (with the hub's bindings, audit log
// and schedules in db), one durable River queue in db for triggers and schedules, and the
// inbound routes. The configs are validated together first (ValidateAll). Nothing runs
// in the background until Start; Push and Handler work without it.
//
// db is a SQLite file or a Postgres database (a private ":memory:" SQLite database has
// one connection, which the queue's workers would contend for with every write). Every
// process that opens the same configs on the same database shares the trigger and
// schedule jobs.
func Open(ctx context.Context, db *sqlstore.DB, cfgs []Config, opts ...Option) (*Sync, error) {
	if db == nil {
		return nil, errors.New("apisync: Open needs a database (sqlstore.Open)")
	}
	if err := ValidateAll(cfgs); err != nil {
		return nil, err
	}
	s := &Sync{db: db, byName: map[string]*compiled{}, stores: map[string]*sqlstore.RecordStore[Record]{}, routes: map[string][]*compiled{}}
	for _, o := range opts {
		o(&s.opts)
	}
	s.logger = s.opts.logger
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.recorder = s.opts.recorder
	if s.recorder == nil {
		s.recorder = db.Log()
	}
	for _, c := range cfgs {
		models := []string{c.Model}
		for _, l := range c.Lines {
			models = append(models, l.Through...)
		}
		for _, m := range models {
			if _, ok := s.stores[m]; ok {
				continue
			}
			st, err := sqlstore.Records[Record](ctx, db, m)
			if err != nil {
				return nil, fmt.Errorf("apisync: config %q: the records of %s: %w", c.Name, m, err)
			}
			s.stores[m] = st
		}
	}
	if err := s.openQueue(ctx); err != nil {
		return nil, err
	}
	for _, cfg := range cfgs {
		c := &compiled{cfg: cfg}
		var err error
		if c.filter, err = newFilter(cfg.Filter, cfg.FilterExpression); err != nil {
			return nil, fmt.Errorf("apisync: config %q: filter_expression: %w", cfg.Name, err)
		}
		if c.maps, err = s.buildMappings(&c.cfg, c.filter); err != nil {
			return nil, err
		}
		switch cfg.Direction {
		case Out:
			if err := s.buildOut(c); err != nil {
				return nil, err
			}
		case In:
			c.inAuth = newInboundAuth(cfg.Auth)
			s.routes[cfg.Path] = append(s.routes[cfg.Path], c)
		}
		s.configs = append(s.configs, c)
		s.byName[cfg.Name] = c
	}
	return s, nil
}

// splitURL returns the base (scheme://host) and the rest (path and query) of an out URL.
func splitURL(raw string) (base, rest string) {
	u, _ := url.Parse(raw)
	base = u.Scheme + "://" + u.Host
	rest = strings.TrimPrefix(raw, base)
	if rest == "" {
		rest = "/"
	}
	return base, rest
}

// recordPath is the path of one remote record: the URL with {id}, or URL/{id}.
func recordPath(rest string) string {
	if strings.Contains(rest, "{id}") {
		return rest
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	p := strings.TrimSuffix(path, "/") + "/{id}"
	if hasQuery {
		p += "?" + query
	}
	return p
}

func (s *Sync) buildOut(c *compiled) error {
	cfg := &c.cfg
	base, rest := splitURL(cfg.URL)
	bcfg := backend.Config{
		Name: cfg.Name, Kind: "apisync", BaseURL: base,
		Auth: backend.AuthConfig{Type: cfg.Auth.Type, Username: cfg.Auth.Username, Password: cfg.Auth.Password,
			Token: cfg.Auth.Token, APIKey: cfg.Auth.APIKey, In: cfg.Auth.In, Name: cfg.Auth.Name},
		ConnectTimeout: cfg.ConnectTimeout, ReadTimeout: cfg.ReadTimeout,
		Retry: cfg.Retry, Headers: maps.Clone(cfg.Headers),
	}
	if bcfg.Auth.Type == "api_key" && bcfg.Auth.In == "query" && bcfg.Auth.Name == "" {
		bcfg.Auth.Name = "api_key"
	}
	if bcfg.ConnectTimeout == 0 {
		bcfg.ConnectTimeout = backend.Duration(DefaultConnectTimeout)
	}
	if bcfg.ReadTimeout == 0 {
		bcfg.ReadTimeout = backend.Duration(DefaultReadTimeout)
	}
	store := s.stores[cfg.Model]
	view := recordView{store}
	model := backend.Model[Record]{
		Name: cfg.Model, Local: view, IDPath: cfg.IDPath,
		MapperOptions: c.maps.exportOptions,
	}
	// The hub's exporter sends POST, then PUT (or update_method) url/{id}, per record; PUT,
	// DELETE, GET and batches are sent by Push with the backend's client and bindings.
	// Every out config declares the export, so Backend.Export and its jobs work for each.
	model.Export = &backend.Export{Create: rest, Update: recordPath(rest), Method: cfg.UpdateMethod, Rules: c.maps.exportRules}
	bopts := []backend.Option{
		backend.WithDB(s.db),
		backend.WithLogger(s.logger),
		backend.WithQueue(func(context.Context, *queue.Workers) (queue.Queue, error) { return s.q, nil }),
		backend.WithModel(model),
		backend.WithClientOptions(s.opts.clientOpts...),
		backend.WithOperation(scheduleOperation, func(ctx context.Context, _ *backend.Backend) (report.Counts, error) {
			return s.Push(ctx, cfg.Name)
		}),
	}
	if s.opts.recorder != nil {
		bopts = append(bopts, backend.WithRecorder(s.opts.recorder))
	}
	if cfg.Triggers.Schedule != "" {
		bcfg.Schedules = append(bcfg.Schedules, backend.ScheduleConfig{Name: scheduleOperation, Spec: cfg.Triggers.Schedule, Operation: scheduleOperation})
	}
	b, err := backend.New(bcfg, bopts...)
	if err != nil {
		return fmt.Errorf("apisync: config %q: %w", cfg.Name, err)
	}
	c.backend, c.client = b, b.Client()
	del, err := exporter.New(b.Client(), s.db.Bindings(), local.Store[Record](view), cfg.Name, cfg.Model, rest,
		func(context.Context, Record, binding.Binding, bool) (any, error) { return nil, report.ErrSkip },
		exporter.WithUpdatePath(func(id string) string { return strings.ReplaceAll(recordPath(rest), "{id}", url.PathEscape(id)) }),
		exporter.WithLogger(s.logger))
	if err != nil {
		return fmt.Errorf("apisync: config %q: %w", cfg.Name, err)
	}
	c.deleter = del
	return nil
}

// recordView is a model's store as the hub's exporter reads it: with the local ID in
// the values as "id", which is never written back.
type recordView struct{ s *sqlstore.RecordStore[Record] }

func (v recordView) Get(ctx context.Context, id string) (Record, error) {
	r, err := v.s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return withID(r, id), nil
}
func (v recordView) Create(ctx context.Context, r Record) (string, error) {
	return v.s.Create(ctx, withoutID(r))
}
func (v recordView) Update(ctx context.Context, id string, r Record) error {
	return v.s.Update(ctx, id, withoutID(r))
}
func (v recordView) Delete(ctx context.Context, id string) error { return v.s.Delete(ctx, id) }

func withID(r Record, id string) Record {
	if r == nil {
		r = Record{}
	}
	r["id"] = id
	return r
}

func withoutID(r Record) Record {
	if _, ok := r["id"]; !ok {
		return r
	}
	out := maps.Clone(r)
	delete(out, "id")
	return out
}

// Configs returns the opened configs, in the order given to Open.
func (s *Sync) Configs() []Config {
	out := make([]Config, len(s.configs))
	for i, c := range s.configs {
		out[i] = c.cfg
	}
	return out
}

func (s *Sync) config(name string) (*compiled, error) {
	c, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("apisync: %w %q", ErrUnknownConfig, name)
	}
	return c, nil
}

// Backend returns the backend an out config was compiled onto: its bindings, client
// statistics, schedules and job queue.
func (s *Sync) Backend(config string) (*backend.Backend, error) {
	c, err := s.config(config)
	if err != nil {
		return nil, err
	}
	if c.backend == nil {
		return nil, fmt.Errorf("apisync: config %q is an in config: %w", config, ErrWrongDirection)
	}
	return c.backend, nil
}

// Records returns the store of a model's records (the table configs naming it share),
// for reads. Writes through it fire no trigger: use Create, Update and Delete.
func (s *Sync) Records(model string) (*sqlstore.RecordStore[Record], error) {
	st, ok := s.stores[model]
	if !ok {
		return nil, fmt.Errorf("apisync: %w %q", ErrUnknownModel, model)
	}
	return st, nil
}

// EnableSchedule enables the schedule trigger of an out config (schedules are disabled
// until enabled; the state is kept in the database, for every process).
func (s *Sync) EnableSchedule(ctx context.Context, config string) error {
	return s.setSchedule(ctx, config, true)
}

// DisableSchedule disables the schedule trigger of an out config.
func (s *Sync) DisableSchedule(ctx context.Context, config string) error {
	return s.setSchedule(ctx, config, false)
}

func (s *Sync) setSchedule(ctx context.Context, config string, on bool) error {
	c, err := s.config(config)
	if err != nil {
		return err
	}
	if c.backend == nil || c.cfg.Triggers.Schedule == "" {
		return fmt.Errorf("apisync: config %q has no schedule trigger: %w", config, ErrWrongDirection)
	}
	name := config + "/" + scheduleOperation
	if on {
		return c.backend.Schedules().Enable(ctx, name)
	}
	return c.backend.Schedules().Disable(ctx, name)
}

// Start works trigger and schedule jobs in the background (in this process; several
// processes on one database share them) and runs enabled schedules, until Stop.
func (s *Sync) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("apisync: already started")
	}
	if err := s.q.q.Start(ctx); err != nil {
		return fmt.Errorf("apisync: starting the queue: %w", err)
	}
	for i, c := range s.configs {
		if c.backend == nil {
			continue
		}
		if err := c.backend.Start(ctx); err != nil {
			for _, d := range s.configs[:i] {
				if d.backend != nil {
					_ = d.backend.Stop(ctx)
				}
			}
			_ = s.q.q.Stop(ctx)
			return fmt.Errorf("apisync: %w", err)
		}
	}
	s.started = true
	return nil
}

// Stop stops the schedules, lets running jobs finish (until ctx is done) and stops the
// queue. The database stays open: it is the caller's.
func (s *Sync) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	var errs []error
	for _, c := range s.configs {
		if c.backend != nil {
			errs = append(errs, c.backend.Stop(ctx))
		}
	}
	errs = append(errs, s.q.q.Stop(ctx))
	return errors.Join(errs...)
}

// Create stores a new record of model and, in the same transaction, enqueues the push
// of every out config of the model with an on_create trigger: both commit or neither
// does. It returns the record's ID. A value "id" in v is ignored.
func (s *Sync) Create(ctx context.Context, model string, v Record) (string, error) {
	st, err := s.Records(model)
	if err != nil {
		return "", err
	}
	var id string
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if id, err = st.WithTx(tx).Create(ctx, withoutID(v)); err != nil {
			return err
		}
		return s.trigger(ctx, tx, model, triggerCreate, id)
	})
	if err != nil {
		return "", fmt.Errorf("apisync: creating a %s record: %w", model, err)
	}
	return id, nil
}

// Update replaces the record id of model and enqueues the pushes of its on_update
// triggers in the same transaction.
func (s *Sync) Update(ctx context.Context, model, id string, v Record) error {
	st, err := s.Records(model)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := st.WithTx(tx).Update(ctx, id, withoutID(v)); err != nil {
			return err
		}
		return s.trigger(ctx, tx, model, triggerUpdate, id)
	})
	if err != nil {
		return fmt.Errorf("apisync: updating %s record %s: %w", model, id, err)
	}
	return nil
}

// Delete deletes the record id of model and enqueues the remote deletes of its
// on_delete triggers in the same transaction (a remote delete needs the record's
// binding: a record never pushed has nothing to delete).
func (s *Sync) Delete(ctx context.Context, model, id string) error {
	st, err := s.Records(model)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := st.WithTx(tx).Delete(ctx, id); err != nil {
			return err
		}
		return s.trigger(ctx, tx, model, triggerDelete, id)
	})
	if err != nil {
		return fmt.Errorf("apisync: deleting %s record %s: %w", model, id, err)
	}
	return nil
}

type triggerKind int

const (
	triggerCreate triggerKind = iota
	triggerUpdate
	triggerDelete
)

// fires reports whether config c pushes on a write of kind to model.
func (c *compiled) fires(model string, kind triggerKind) bool {
	if c.cfg.Direction != Out || c.cfg.Model != model {
		return false
	}
	t := c.cfg.Triggers
	switch kind {
	case triggerCreate:
		return t.OnCreate
	case triggerUpdate:
		return t.OnUpdate
	default:
		return t.OnDelete
	}
}

// triggers reports whether a write of kind to model fires any out config's trigger.
func (s *Sync) triggers(model string, kind triggerKind) bool {
	for _, c := range s.configs {
		if c.fires(model, kind) {
			return true
		}
	}
	return false
}

// trigger enqueues, inside tx, the jobs of the out configs of model whose trigger fires.
func (s *Sync) trigger(ctx context.Context, tx *sql.Tx, model string, kind triggerKind, id string) error {
	for _, c := range s.configs {
		if !c.fires(model, kind) {
			continue
		}
		var err error
		switch {
		case kind == triggerDelete:
			_, err = s.q.EnqueueTx(ctx, tx, deleteJob{Config: c.cfg.Name, ID: id})
		case c.hub():
			// ExportTx sets no identity key (a twin may run before this commits); two jobs
			// of one record are serialised by its lease.
			_, err = c.backend.Later().ExportTx(ctx, tx, model, id)
		default:
			_, err = s.q.EnqueueTx(ctx, tx, pushJob{Config: c.cfg.Name, IDs: []string{id}})
		}
		if err != nil {
			return fmt.Errorf("enqueueing the push of config %q: %w", c.cfg.Name, err)
		}
	}
	return nil
}

// The job kinds of the shared queue. The hub's kinds (connkit.export, connkit.sync) are
// worked here too, dispatched to the backend named in their arguments: every out config
// is a backend, and they share one queue in the database.
type (
	hubExportJob struct {
		Backend string   `json:"backend"`
		Model   string   `json:"model"`
		IDs     []string `json:"ids"`
	}
	hubSyncJob struct {
		Backend   string `json:"backend"`
		Operation string `json:"operation"`
	}
	// pushJob pushes local records through a config that the hub's exporter does not
	// cover (PUT, DELETE, batches).
	pushJob struct {
		Config string   `json:"config"`
		IDs    []string `json:"ids"`
	}
	// deleteJob deletes the remote record of a deleted local record (on_delete).
	deleteJob struct {
		Config string `json:"config"`
		ID     string `json:"id"`
	}
)

func (hubExportJob) Kind() string { return "connkit.export" }
func (hubSyncJob) Kind() string   { return "connkit.sync" }
func (pushJob) Kind() string      { return "apisync.push" }
func (deleteJob) Kind() string    { return "apisync.delete" }

// sharedQueue is the River queue every config's backend is given. Backends start and
// stop their queue with themselves; this one is started and stopped by the Sync, once.
type sharedQueue struct {
	riverqueue.Queue[*sql.Tx]
	q riverqueue.Queue[*sql.Tx]
}

func (*sharedQueue) Start(context.Context) error { return nil }
func (*sharedQueue) Stop(context.Context) error  { return nil }

// QueueName is the River queue apisync's jobs go to in its database, so a connector
// sharing the database (whose backend works its own queue) never takes them.
const QueueName = "connkit-apisync"

func (s *Sync) openQueue(ctx context.Context) error {
	w := &queue.Workers{}
	if err := w.SetQueue(QueueName); err != nil {
		return err
	}
	out := func(name string) (*compiled, error) {
		c, ok := s.byName[name]
		if !ok || c.backend == nil {
			return nil, queue.Permanent(fmt.Errorf("apisync: job for unknown out config %q", name))
		}
		return c, nil
	}
	queue.AddWorker(w, func(ctx context.Context, j *queue.Job[hubExportJob]) error {
		c, err := out(j.Args.Backend)
		if err != nil {
			return err
		}
		_, err = c.backend.Export(ctx, j.Args.Model, j.Args.IDs...)
		return jobError(err)
	})
	queue.AddWorker(w, func(ctx context.Context, j *queue.Job[hubSyncJob]) error {
		c, err := out(j.Args.Backend)
		if err != nil {
			return err
		}
		_, err = c.backend.Sync(ctx, j.Args.Operation)
		return jobError(err)
	})
	queue.AddWorker(w, func(ctx context.Context, j *queue.Job[pushJob]) error {
		if _, err := out(j.Args.Config); err != nil {
			return err
		}
		_, err := s.Push(ctx, j.Args.Config, j.Args.IDs...)
		return jobError(err)
	})
	queue.AddWorker(w, func(ctx context.Context, j *queue.Job[deleteJob]) error {
		c, err := out(j.Args.Config)
		if err != nil {
			return err
		}
		_, err = c.deleter.Delete(ctx, j.Args.ID)
		return jobError(err)
	})
	opts := append([]queue.Option{queue.WithLogger(s.logger)}, s.opts.queueOpts...)
	q, err := riverqueue.New(ctx, s.db, w, opts...)
	if err != nil {
		return fmt.Errorf("apisync: opening the job queue: %w", err)
	}
	s.q = &sharedQueue{Queue: q, q: q}
	return nil
}

// jobError makes errors no retry can fix permanent: the backend's (backend.JobError) and
// a config that does not exist or is invalid.
func jobError(err error) error {
	if errors.Is(err, ErrUnknownConfig) || errors.Is(err, ErrInvalidConfig) {
		return queue.Permanent(err)
	}
	return backend.JobError(err)
}

// models returns the names of the models with a record table, sorted.
func (s *Sync) models() []string { return slices.Sorted(maps.Keys(s.stores)) }
