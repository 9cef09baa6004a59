package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/report"
)

// The prefixes of the operations every model gets: "import_product" runs the model's
// batch import, "retry_product" retries its failed records.
const (
	importOp = "import_"
	retryOp  = "retry_"
	// fetchStats prefixes the statistics of single-record imports (Backend.Import, deferred
	// imports, webhooks): "fetch_product". It is not an operation Sync runs.
	fetchStats = "fetch_"
	// SyncAllOperation names SyncAll where an operation name is asked for: in schedules
	// and in Later().Sync.
	SyncAllOperation = "sync_all"
)

func (b *Backend) builtin(name string) bool {
	if name == SyncAllOperation {
		return true
	}
	for _, p := range []string{importOp, retryOp} {
		if m, ok := strings.CutPrefix(name, p); ok {
			if _, ok := b.models[m]; ok {
				return true
			}
		}
	}
	return false
}

// Sync runs one operation by name — a model's "import_<model>" or "retry_<model>", one
// registered with WithOperation, or SyncAllOperation — and records its statistics.
// Records that failed while the run went through are counted and returned as a *report.PartialError.
func (b *Backend) Sync(ctx context.Context, name string) (report.Counts, error) {
	if name == SyncAllOperation { // each operation records its own statistics
		rep, err := b.SyncAll(ctx)
		return rep.Total, err
	}
	run, err := b.operation(name)
	if err != nil {
		return report.Counts{}, err
	}
	return b.run(ctx, name, run)
}

func (b *Backend) operation(name string) (operationFunc, error) {
	if name == SyncAllOperation {
		return func(ctx context.Context, b *Backend) (report.Counts, error) {
			rep, err := b.SyncAll(ctx)
			return rep.Total, err
		}, nil
	}
	if m, ok := strings.CutPrefix(name, importOp); ok {
		if mod, ok := b.models[m]; ok && mod.importer() {
			return func(ctx context.Context, _ *Backend) (report.Counts, error) { return mod.importAll(ctx) }, nil
		}
	}
	if m, ok := strings.CutPrefix(name, retryOp); ok {
		if mod, ok := b.models[m]; ok {
			return func(ctx context.Context, _ *Backend) (report.Counts, error) { return mod.retryFailed(ctx) }, nil
		}
	}
	if i := slices.IndexFunc(b.ops, func(o operation) bool { return o.name == name }); i >= 0 {
		return b.ops[i].run, nil
	}
	return nil, fmt.Errorf("backend %q: %w %q (registered: %v)", b.cfg.Name, ErrUnknownOperation, name, b.Operations())
}

func (b *Backend) run(ctx context.Context, name string, run operationFunc) (res report.Counts, err error) {
	start := b.now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("backend %q: sync %q panicked: %v", b.cfg.Name, name, p)
		}
		b.logger.LogAttrs(ctx, levelFor(err), "sync finished", slog.String("operation", name),
			slog.Int("created", res.Created), slog.Int("updated", res.Updated), slog.Int("skipped", res.Skipped),
			slog.Int("duplicates", res.Duplicates), slog.Int("failed", res.Failed), slog.Duration("took", b.now().Sub(start)), errAttr(err))
		if serr := b.record(ctx, func(s *Stats) { s.addSync(name, start, res, err) }); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	res, err = run(ctx, b)
	if err != nil {
		err = fmt.Errorf("backend %q: sync %q: %w", b.cfg.Name, name, err)
	}
	return res, err
}

// SyncReport is what SyncAll did, operation by operation.
type SyncReport struct {
	// Results holds one entry per operation, in the order they ran (or were skipped).
	Results []OperationResult
	// Total sums every operation's counts.
	Total report.Counts
}

// OperationResult is one operation's outcome in a SyncReport.
type OperationResult struct {
	Name   string
	Counts report.Counts
	// Err is the operation's error; a *report.PartialError when it went through but some
	// records failed.
	Err error
	// Skipped, when not empty, says why the operation did not run (a model it depends on
	// failed, or an earlier error will repeat for every operation).
	Skipped string
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

// SyncAll imports every model in dependency order (customers before the orders that refer
// to them), then runs the registered operations in registration order.
//
// Failures stay isolated: an operation whose records partly failed does not stop anything.
// An operation that failed as a whole (the listing broke) skips the models that depend on
// it, reported with the reason, and the rest go on. An error that would repeat for every
// operation — the API refusing the credentials (401/403), an invalid configuration —
// stops SyncAll at once. A cancelled context stops before the next operation. The
// returned error joins every operation's error.
func (b *Backend) SyncAll(ctx context.Context) (SyncReport, error) {
	var rep SyncReport
	var errs []error
	failed := map[string]string{} // model → why it did not complete
	stop := ""
	for _, name := range b.Operations() {
		res := OperationResult{Name: name}
		model, isModel := strings.CutPrefix(name, importOp)
		if !isModel || !b.builtin(name) {
			model = ""
		}
		switch {
		case stop != "":
			res.Skipped = stop
		case ctx.Err() != nil:
			res.Skipped = "sync all was cancelled"
			stop = res.Skipped
			errs = append(errs, fmt.Errorf("backend %q: sync all stopped before %q: %w", b.cfg.Name, name, ctx.Err()))
		default:
			if why := b.blockedBy(model, failed); why != "" {
				res.Skipped = why
				failed[model] = why
				break
			}
			res.Counts, res.Err = b.Sync(ctx, name)
			rep.Total = rep.Total.Add(res.Counts)
			if res.Err == nil {
				break
			}
			errs = append(errs, res.Err)
			var partial *report.PartialError
			if model != "" && !errors.As(res.Err, &partial) {
				failed[model] = fmt.Sprintf("%s failed", name)
			}
			if fatal(res.Err) {
				stop = fmt.Sprintf("stopped after %s: %v", name, rootCause(res.Err))
			}
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, errors.Join(errs...)
}

// blockedBy names the failed model that model depends on, if any.
func (b *Backend) blockedBy(model string, failed map[string]string) string {
	if model == "" {
		return ""
	}
	for _, d := range b.models[model].dependsOn() {
		if why, ok := failed[d]; ok {
			return fmt.Sprintf("depends on %s, which did not complete (%s)", d, why)
		}
	}
	return ""
}

// fatal reports errors that every further operation would meet too.
func fatal(err error) bool {
	var partial *report.PartialError
	if errors.As(err, &partial) {
		return false // record errors, even 401s on one record, stay isolated
	}
	return errors.Is(err, adapter.ErrUnauthorized) || errors.Is(err, ErrInvalidConfig)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// Import imports the external records with the given IDs of model now, each fetched
// through the model's Import.Fetch path: the single-record import a webhook or a one-off
// refresh needs. Records that failed are counted and returned in a *report.PartialError.
func (b *Backend) Import(ctx context.Context, model string, externalIDs ...string) (report.Counts, error) {
	m, err := b.model(model)
	if err != nil {
		return report.Counts{}, err
	}
	if !m.fetcher() {
		return report.Counts{}, fmt.Errorf("backend %q: importing single %s records: %w (set Import.Fetch)", b.cfg.Name, model, ErrNotSupported)
	}
	return b.run(ctx, fetchStats+model, func(ctx context.Context, _ *Backend) (report.Counts, error) {
		return m.importOne(ctx, externalIDs)
	})
}

// Export exports the local records of model with the given IDs now, routed to the model's
// exporter (the export_<model> of the Odoo original), and records statistics. Records
// that failed are counted and returned in a *report.PartialError.
func (b *Backend) Export(ctx context.Context, model string, localIDs ...string) (res report.Counts, err error) {
	m, err := b.model(model)
	if err != nil {
		return report.Counts{}, err
	}
	if !m.exporter() {
		return report.Counts{}, fmt.Errorf("backend %q: exporting %s: %w (declare Export)", b.cfg.Name, model, ErrNotSupported)
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
	res, err = m.exportSome(ctx, localIDs)
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
