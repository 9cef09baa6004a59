// Package backend is one configured connection to one external system, with its
// orchestration: test the connection, run named sync operations, route exports to the
// exporter registered for a model, and keep statistics. It is the Go counterpart of
// generic_connector's backend model.
//
// The template methods of the Odoo original (_test_connection_implementation,
// _sync_orders_implementation, export_<model>) become small interfaces and functions a
// connector registers: [ConnectionTester], [Operation], [Exporter].
package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/state"
)

// ConnectionTester is implemented by connectors that can check their credentials and
// reachability cheaply (a GET on a small endpoint).
type ConnectionTester interface {
	TestConnection(ctx context.Context, b *Backend) error
}

// ConnectionTesterFunc adapts a function to ConnectionTester.
type ConnectionTesterFunc func(ctx context.Context, b *Backend) error

// TestConnection calls f.
func (f ConnectionTesterFunc) TestConnection(ctx context.Context, b *Backend) error { return f(ctx, b) }

// Operation is one named sync a connector offers: "orders", "products", "inventory".
type Operation struct {
	// Name identifies the operation in SyncAll reports and statistics.
	Name string
	// Run performs the sync. A non-nil error with partial counts still records the counts.
	Run func(ctx context.Context, b *Backend) (report.Counts, error)
}

// Exporter exports local records of one model to the external system. An
// *exporter.Batch is one; any func can be, through ExporterFunc. Records that fail are
// counted in Counts.Failed and reported with a *report.PartialError.
type Exporter interface {
	ExportRecords(ctx context.Context, localIDs []string) (report.Counts, error)
}

// ExporterFunc adapts a function to Exporter.
type ExporterFunc func(ctx context.Context, localIDs []string) (report.Counts, error)

// ExportRecords calls f.
func (f ExporterFunc) ExportRecords(ctx context.Context, ids []string) (report.Counts, error) {
	return f(ctx, ids)
}

// ErrExportNotImplemented is matched by the error ExportRecords returns for a model no
// exporter was registered for.
var ErrExportNotImplemented = errors.New("export not implemented")

// ErrUnknownOperation is matched by the error Sync returns for an unregistered name.
var ErrUnknownOperation = errors.New("unknown sync operation")

// Backend is a configured connection with its hooks. It is safe for concurrent use.
type Backend struct {
	cfg       Config
	tester    ConnectionTester
	ops       []Operation
	exporters map[string]Exporter
	state     state.Store
	logger    *slog.Logger
	now       func() time.Time

	mu    sync.Mutex // guards local stats when no state store is configured
	local Stats
}

// Option configures a Backend.
type Option func(*Backend) error

// WithConnectionTester sets the hook TestConnection runs.
func WithConnectionTester(t ConnectionTester) Option {
	return func(b *Backend) error { b.tester = t; return nil }
}

// WithOperation registers a named sync operation. Operations run in registration order
// in SyncAll; names must be unique.
func WithOperation(name string, run func(ctx context.Context, b *Backend) (report.Counts, error)) Option {
	return func(b *Backend) error {
		if name == "" || run == nil {
			return errors.New("backend: WithOperation needs a name and a function")
		}
		if slices.ContainsFunc(b.ops, func(o Operation) bool { return o.Name == name }) {
			return fmt.Errorf("backend: operation %q registered twice", name)
		}
		b.ops = append(b.ops, Operation{Name: name, Run: run})
		return nil
	}
}

// WithExporter routes ExportRecords for model to e (the export_<model> method of the
// Odoo original). A model may have one exporter.
func WithExporter(model string, e Exporter) Option {
	return func(b *Backend) error {
		if model == "" || e == nil {
			return errors.New("backend: WithExporter needs a model and an exporter")
		}
		if _, dup := b.exporters[model]; dup {
			return fmt.Errorf("backend: exporter for model %q registered twice", model)
		}
		b.exporters[model] = e
		return nil
	}
}

// WithStateStore persists statistics in s (a SQL store from package sqlstore survives
// restarts and is shared by every process of the backend). Without it statistics live in
// memory only.
func WithStateStore(s state.Store) Option {
	return func(b *Backend) error { b.state = s; return nil }
}

// WithLogger sets the logger for orchestration events (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(b *Backend) error { b.logger = l; return nil }
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(b *Backend) error { b.now = now; return nil }
}

// New validates cfg and builds a Backend.
func New(cfg Config, opts ...Option) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg, exporters: map[string]Exporter{}, logger: slog.Default(), now: time.Now}
	for _, opt := range opts {
		if err := opt(b); err != nil {
			return nil, err
		}
	}
	b.logger = b.logger.With("backend", cfg.Name)
	return b, nil
}

// Name returns the configured name.
func (b *Backend) Name() string { return b.cfg.Name }

// Config returns a copy of the configuration.
func (b *Backend) Config() Config { return b.cfg }

// Setting returns a connector-specific value from Config.Settings, typed. ok is false
// when the key is missing or holds another type (numbers from files are float64).
func Setting[T any](b *Backend, key string) (v T, ok bool) {
	v, ok = b.cfg.Settings[key].(T)
	return v, ok
}

// Operations returns the names of the registered sync operations in order.
func (b *Backend) Operations() []string {
	names := make([]string, len(b.ops))
	for i, o := range b.ops {
		names[i] = o.Name
	}
	return names
}

// ExportModels returns the models that have an exporter, sorted.
func (b *Backend) ExportModels() []string {
	models := make([]string, 0, len(b.exporters))
	for m := range b.exporters {
		models = append(models, m)
	}
	slices.Sort(models)
	return models
}

// TestConnection runs the connector's connection test. A backend without one reports
// an error saying so rather than pretending the connection works.
func (b *Backend) TestConnection(ctx context.Context) error {
	if b.tester == nil {
		return fmt.Errorf("backend %q: no connection test registered (use backend.WithConnectionTester)", b.cfg.Name)
	}
	if err := b.tester.TestConnection(ctx, b); err != nil {
		return fmt.Errorf("backend %q: connection test failed: %w", b.cfg.Name, err)
	}
	return nil
}

// Sync runs one named operation and records its statistics.
func (b *Backend) Sync(ctx context.Context, name string) (report.Counts, error) {
	i := slices.IndexFunc(b.ops, func(o Operation) bool { return o.Name == name })
	if i < 0 {
		return report.Counts{}, fmt.Errorf("backend %q: %w %q (registered: %v)", b.cfg.Name, ErrUnknownOperation, name, b.Operations())
	}
	return b.run(ctx, b.ops[i])
}

func (b *Backend) run(ctx context.Context, op Operation) (res report.Counts, err error) {
	start := b.now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("backend %q: sync %q panicked: %v", b.cfg.Name, op.Name, p)
		}
		b.logger.LogAttrs(ctx, levelFor(err), "sync finished", slog.String("operation", op.Name),
			slog.Int("created", res.Created), slog.Int("updated", res.Updated), slog.Int("skipped", res.Skipped),
			slog.Int("failed", res.Failed), slog.Duration("took", b.now().Sub(start)), errAttr(err))
		if serr := b.record(ctx, func(s *Stats) { s.addSync(op.Name, start, res, err) }); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	res, err = op.Run(ctx, b)
	if err != nil {
		err = fmt.Errorf("backend %q: sync %q: %w", b.cfg.Name, op.Name, err)
	}
	return res, err
}

// SyncReport is what SyncAll did, operation by operation.
type SyncReport struct {
	// Results holds one entry per operation, in registration order.
	Results []OperationResult
	// Total sums every operation's counts.
	Total report.Counts
}

// OperationResult is one operation's outcome in a SyncReport.
type OperationResult struct {
	Name   string
	Counts report.Counts
	Err    error
}

// Failed returns the operations that returned an error.
func (r SyncReport) Failed() []OperationResult {
	var failed []OperationResult
	for _, o := range r.Results {
		if o.Err != nil {
			failed = append(failed, o)
		}
	}
	return failed
}

// SyncAll runs every registered operation in order. One failing does not stop the
// others; the returned error joins every failure (nil when all succeeded). A cancelled
// context stops before the next operation starts.
func (b *Backend) SyncAll(ctx context.Context) (SyncReport, error) {
	var rep SyncReport
	var errs []error
	for _, op := range b.ops {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("backend %q: sync all stopped before %q: %w", b.cfg.Name, op.Name, err))
			break
		}
		res, err := b.run(ctx, op)
		rep.Results = append(rep.Results, OperationResult{Name: op.Name, Counts: res, Err: err})
		rep.Total = rep.Total.Add(res)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// ExportRecords routes an export of local records of model to the exporter registered
// for it, and records statistics. A model without an exporter yields an error matching
// ErrExportNotImplemented that names the model and the backend.
func (b *Backend) ExportRecords(ctx context.Context, model string, localIDs []string) (res report.Counts, err error) {
	e, ok := b.exporters[model]
	if !ok {
		return report.Counts{}, fmt.Errorf("%w for model %q on backend %q (exporters registered for: %v)", ErrExportNotImplemented, model, b.cfg.Name, b.ExportModels())
	}
	start := b.now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("backend %q: export of %s panicked: %v", b.cfg.Name, model, p)
		}
		b.logger.LogAttrs(ctx, levelFor(err), "export finished", slog.String("model", model), slog.Int("records", len(localIDs)),
			slog.Int("created", res.Created), slog.Int("updated", res.Updated), slog.Int("skipped", res.Skipped),
			slog.Int("failed", res.Failed), errAttr(err))
		if serr := b.record(ctx, func(s *Stats) { s.addExport(model, start, res, err) }); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	res, err = e.ExportRecords(ctx, localIDs)
	if err != nil {
		err = fmt.Errorf("backend %q: export %d %s record(s): %w", b.cfg.Name, len(localIDs), model, err)
	}
	return res, err
}

func levelFor(err error) slog.Level {
	if err != nil {
		return slog.LevelError
	}
	return slog.LevelInfo
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("error", err.Error())
}

// Stats are a backend's running statistics.
type Stats struct {
	LastSyncAt   time.Time `json:"last_sync_at,omitzero"`
	LastExportAt time.Time `json:"last_export_at,omitzero"`
	// Syncs and Exports total every operation's and model's counts.
	Syncs   report.Counts `json:"syncs"`
	Exports report.Counts `json:"exports"`
	// Operations and Models hold the same per operation name and per exported model.
	Operations map[string]RunStats `json:"operations,omitempty"`
	Models     map[string]RunStats `json:"models,omitempty"`
}

// RunStats are the statistics of one operation or one exported model.
type RunStats struct {
	LastRunAt time.Time     `json:"last_run_at"`
	LastError string        `json:"last_error,omitempty"`
	Runs      int           `json:"runs"`
	Errors    int           `json:"errors"`
	Total     report.Counts `json:"total"`
	Last      report.Counts `json:"last"`
}

func (s *Stats) addSync(name string, at time.Time, r report.Counts, err error) {
	s.LastSyncAt = at
	s.Syncs = s.Syncs.Add(r)
	s.Operations = addRun(s.Operations, name, at, r, err)
}

func (s *Stats) addExport(model string, at time.Time, r report.Counts, err error) {
	s.LastExportAt = at
	s.Exports = s.Exports.Add(r)
	s.Models = addRun(s.Models, model, at, r, err)
}

func addRun(m map[string]RunStats, key string, at time.Time, r report.Counts, err error) map[string]RunStats {
	if m == nil {
		m = map[string]RunStats{}
	}
	rs := m[key]
	rs.LastRunAt, rs.Last, rs.LastError = at, r, ""
	rs.Runs++
	rs.Total = rs.Total.Add(r)
	if err != nil {
		rs.Errors++
		rs.LastError = err.Error()
	}
	m[key] = rs
	return m
}

// statsKey is the state-store name statistics are kept under.
const statsKey = "connkit.backend.stats"

// Stats returns the backend's statistics: from the state store when one is configured
// (so they include every process sharing it), from memory otherwise.
func (b *Backend) Stats(ctx context.Context) (Stats, error) {
	if b.state == nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		return cloneStats(b.local), nil
	}
	s, _, err := b.loadStats(ctx)
	return s, err
}

func (b *Backend) loadStats(ctx context.Context) (Stats, []byte, error) {
	raw, err := b.state.Get(ctx, b.cfg.Name, statsKey)
	if errors.Is(err, state.ErrNotFound) {
		return Stats{}, nil, nil
	}
	if err != nil {
		return Stats{}, nil, fmt.Errorf("backend %q: reading statistics: %w", b.cfg.Name, err)
	}
	var s Stats
	if err := json.Unmarshal(raw, &s); err != nil {
		return Stats{}, nil, fmt.Errorf("backend %q: statistics in the state store are corrupt (%v); delete %q to reset them", b.cfg.Name, err, statsKey)
	}
	return s, raw, nil
}

// record applies update to the statistics. With a state store it retries a
// compare-and-swap so concurrent processes never lose each other's counts.
func (b *Backend) record(ctx context.Context, update func(*Stats)) error {
	if b.state == nil {
		b.mu.Lock()
		update(&b.local)
		b.mu.Unlock()
		return nil
	}
	// Statistics must be written even when the run was cancelled.
	ctx = context.WithoutCancel(ctx)
	for range 100 {
		s, old, err := b.loadStats(ctx)
		if err != nil {
			return err
		}
		update(&s)
		raw, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("backend %q: encoding statistics: %w", b.cfg.Name, err)
		}
		ok, err := b.state.CompareAndSwap(ctx, b.cfg.Name, statsKey, old, raw)
		if err != nil {
			return fmt.Errorf("backend %q: saving statistics: %w", b.cfg.Name, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("backend %q: saving statistics: too much contention on %q", b.cfg.Name, statsKey)
}

func cloneStats(s Stats) Stats {
	s.Operations = maps.Clone(s.Operations)
	s.Models = maps.Clone(s.Models)
	return s
}
