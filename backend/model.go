package backend

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/depchain"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/report"
)

// Model declares one model of a connector, once: its name, where the app keeps its
// records, and how they move in each direction. Register it with [WithModel]; the backend
// builds the importer and exporter from it, with the backend's client, bindings, state
// and queue.
//
// Relations in the mapping rules ([mapper.Relation]) are the model's dependencies: they
// decide the order SyncAll runs models in, and a related record that is not synced yet is
// imported (or exported) first, so nothing has to be declared twice.
type Model[T any] struct {
	// Name identifies the model in bindings, jobs and statistics ("product"). Required.
	Name string
	// Local is the app's store of the model's records (sqlstore.Records, local.Memory, or
	// the app's own implementation). Required.
	Local local.Store[T]
	// IDPath and UpdatedAtPath locate the external ID and the modification time in an
	// external record (gjson paths; defaults "id" and "updated_at"). The same paths are
	// read in import listings, fetches, and export responses.
	IDPath        string
	UpdatedAtPath string
	// Import declares how the model is imported; nil means it is not.
	Import *Import
	// Export declares how the model is exported; nil means it is not.
	Export *Export
	// DependsOn names models that must be synced first beyond those the relational rules
	// already imply.
	DependsOn []string
	// MapperOptions are passed to the mappers built from the rules (converters, Go
	// functions, related-record lookups, expression limits).
	MapperOptions []mapper.Option
}

// Import declares how a model is read from the external API.
type Import struct {
	// List is the listing request; Pages says how it is paginated (default: the Link
	// header, RFC 8288); Records is the gjson path of the records in a page ("" when the
	// page is a JSON array).
	List    adapter.Request
	Pages   adapter.Paginator
	Records string
	// Since names the query parameter that asks for records updated at or after a time
	// ("updated_at_min"). When set, imports are incremental: a watermark is kept in the
	// backend's state store and moves only past committed records. The listing must be
	// ordered by updated-at, oldest first. Lookback re-reads that much before the
	// watermark to catch records committed late by the API (default 1 minute).
	Since    string
	Lookback time.Duration
	// Fetch is the path of one record, with {id} standing for its external ID
	// ("/products/{id}.json"); Record is the gjson path of the record in that response
	// ("product"; "" when the response is the record). Without Fetch, single-record
	// imports (deferred imports, webhooks, missing dependencies) are not possible.
	Fetch  string
	Record string
	// Rules map an external record to the local one (see package mapper).
	Rules []mapper.Rule
	// CommitSize is how many records are committed together (default 100); Concurrency
	// how many records of a page are imported at once (default 4).
	CommitSize  int
	Concurrency int
	// Prefetch is how many page requests of the listing are kept in flight, to hide
	// the API's latency, when Pages is adapter.PageNumber or adapter.Offset (their next
	// request does not depend on the last page; other paginators ignore it). Pages are
	// still imported and committed in order, so the watermark covers the same records.
	// Default 1: one page at a time. See adapter.WithPrefetch.
	Prefetch int
	// MaxRetries stops importing a record that failed that many times in a row, until it
	// is retried on purpose (the "retry_<model>" operation); 0 keeps the importer's default.
	MaxRetries int
}

// Export declares how a model is written to the external API.
type Export struct {
	// Create is the path new records are POSTed to ("/products.json"). Required.
	Create string
	// Update is the path of one remote record, with {id} standing for its external ID
	// (default: Create + "/{id}"). Method is the update method, PUT (default) or PATCH.
	Update string
	Method string
	// Record is the gjson path of the record in create and update responses ("product";
	// "" when the response is the record): the new external ID and the remote updated-at
	// are read at the model's IDPath and UpdatedAtPath inside it.
	Record string
	// Rules map a local record to the request body (see package mapper).
	Rules []mapper.Rule
	// MaxRetries stops exporting a record that failed that many times in a row; 0 keeps
	// the exporter's default.
	MaxRetries int
}

// model is what the backend needs of a registered Model[T], whatever T is.
type model interface {
	name() string
	dependsOn() []string
	importer() bool
	fetcher() bool
	exporter() bool
	build(b *Backend) error
	importAll(ctx context.Context) (report.Counts, error)
	importOne(ctx context.Context, externalIDs []string) (report.Counts, error)
	exportSome(ctx context.Context, localIDs []string) (report.Counts, error)
	retryFailed(ctx context.Context) (report.Counts, error)
	exists(ctx context.Context, localID string) (bool, error)
}

// WithModel registers a model. Names must be unique; the model is built when New has
// applied every option, so models may be registered in any order.
func WithModel[T any](m Model[T]) Option {
	return func(b *Backend) error {
		switch {
		case strings.TrimSpace(m.Name) == "":
			return errors.New("backend: WithModel needs a model Name")
		case m.Local == nil:
			return fmt.Errorf("backend: model %q needs a Local store", m.Name)
		case m.Import == nil && m.Export == nil:
			return fmt.Errorf("backend: model %q declares neither Import nor Export", m.Name)
		}
		if _, dup := b.models[m.Name]; dup {
			return fmt.Errorf("backend: model %q registered twice", m.Name)
		}
		if m.IDPath == "" {
			m.IDPath = "id"
		}
		if m.UpdatedAtPath == "" {
			m.UpdatedAtPath = "updated_at"
		}
		b.models[m.Name] = &typedModel[T]{decl: m}
		b.modelOrder = append(b.modelOrder, m.Name)
		return nil
	}
}

// typedModel is a Model[T] with the runners the backend built for it.
type typedModel[T any] struct {
	b     *Backend
	decl  Model[T]
	deps  []string
	imp   *importer.Importer[T]
	batch *importer.Batch[T]
	exp   *exporter.Exporter[T]
	expB  *exporter.Batch[T]
}

func (m *typedModel[T]) name() string        { return m.decl.Name }
func (m *typedModel[T]) dependsOn() []string { return m.deps }
func (m *typedModel[T]) importer() bool      { return m.batch != nil }
func (m *typedModel[T]) fetcher() bool       { return m.decl.Import != nil && m.decl.Import.Fetch != "" }
func (m *typedModel[T]) exporter() bool      { return m.expB != nil }

func (m *typedModel[T]) build(b *Backend) error {
	m.b = b
	d := m.decl
	mopts := append([]mapper.Option{mapper.WithResolver(b.resolver), mapper.WithImportMissing(b.resolver.importMissing), mapper.WithIDPath(d.IDPath)}, d.MapperOptions...)
	deps := slices.Clone(d.DependsOn)
	if in := d.Import; in != nil {
		im, err := mapper.NewImport(d.Name, in.Rules, mopts...)
		if err != nil {
			return fmt.Errorf("backend %q: model %q: import rules: %w", b.cfg.Name, d.Name, err)
		}
		deps = append(deps, im.Relations()...)
		opts := []importer.Option{importer.WithIDPath(d.IDPath), importer.WithUpdatedAtPath(d.UpdatedAtPath), importer.WithLogger(b.logger),
			importer.WithClaimer(b.claimer)}
		if in.Fetch != "" {
			// {id} becomes the format verb FetchFrom fills with the escaped external ID.
			format := strings.ReplaceAll(strings.ReplaceAll(in.Fetch, "%", "%%"), "{id}", "%s")
			opts = append(opts, importer.WithFetch(importer.FetchFrom(b.client, format, in.Record)))
		}
		if in.MaxRetries > 0 {
			opts = append(opts, importer.WithMaxRetries(in.MaxRetries))
		}
		m.imp, err = importer.New(b.bindings, d.Local, b.cfg.Name, d.Name, mapper.ImportFunc[T](im), opts...)
		if err != nil {
			return fmt.Errorf("backend %q: model %q: %w", b.cfg.Name, d.Name, err)
		}
		pages := in.Pages
		if pages == nil {
			pages = adapter.LinkHeader()
		}
		var popts []adapter.PageOption
		if in.Records != "" {
			popts = append(popts, adapter.WithRecordsPath(in.Records))
		}
		if in.Prefetch > 1 {
			popts = append(popts, adapter.WithPrefetch(in.Prefetch))
		}
		list := importer.ListFrom(b.client, in.List, pages, in.Since, popts...)
		var bopts []importer.BatchOption
		if in.Since != "" {
			lookback := in.Lookback
			if lookback == 0 {
				lookback = time.Minute
			}
			bopts = append(bopts, importer.WithWatermark(b.state, d.Name+".watermark", lookback))
		}
		if in.CommitSize > 0 {
			bopts = append(bopts, importer.WithCommitSize(in.CommitSize))
		}
		if in.Concurrency > 0 {
			bopts = append(bopts, importer.WithConcurrency(in.Concurrency))
		}
		if b.progress != nil {
			name, progress := d.Name, b.progress
			bopts = append(bopts, importer.WithProgress(func(s importer.Summary) { progress(name, s) }))
		}
		if m.batch, err = importer.NewBatch(m.imp, list, bopts...); err != nil {
			return fmt.Errorf("backend %q: model %q: %w", b.cfg.Name, d.Name, err)
		}
	}
	if out := d.Export; out != nil {
		em, err := mapper.NewExport(d.Name, out.Rules, mopts...)
		if err != nil {
			return fmt.Errorf("backend %q: model %q: export rules: %w", b.cfg.Name, d.Name, err)
		}
		deps = append(deps, em.Relations()...)
		update := out.Update
		if update == "" {
			update = strings.TrimRight(out.Create, "/") + "/{id}"
		}
		opts := []exporter.Option{
			exporter.WithUpdatePath(func(id string) string { return strings.ReplaceAll(update, "{id}", url.PathEscape(id)) }),
			exporter.WithIDPath(joinPath(out.Record, d.IDPath)), exporter.WithUpdatedAtPath(joinPath(out.Record, d.UpdatedAtPath)),
			exporter.WithLogger(b.logger), exporter.WithClaimer(b.claimer),
		}
		if out.Method != "" {
			opts = append(opts, exporter.WithUpdateMethod(out.Method))
		}
		if out.MaxRetries > 0 {
			opts = append(opts, exporter.WithMaxRetries(out.MaxRetries))
		}
		m.exp, err = exporter.New(b.client, b.bindings, d.Local, b.cfg.Name, d.Name, out.Create, mapper.ExportFunc[T](em), opts...)
		if err != nil {
			return fmt.Errorf("backend %q: model %q: %w", b.cfg.Name, d.Name, err)
		}
		if m.expB, err = exporter.NewBatch(m.exp); err != nil {
			return fmt.Errorf("backend %q: model %q: %w", b.cfg.Name, d.Name, err)
		}
	}
	slices.Sort(deps)
	m.deps = slices.DeleteFunc(slices.Compact(deps), func(s string) bool { return s == d.Name })
	return nil
}

func (m *typedModel[T]) importAll(ctx context.Context) (report.Counts, error) {
	sum, err := m.batch.Run(ctx)
	if err != nil {
		return sum.Counts, err
	}
	return sum.Counts, report.Partial(sum.Failed, sum.Errors)
}

func (m *typedModel[T]) importOne(ctx context.Context, externalIDs []string) (report.Counts, error) {
	var c report.Counts
	var errs []error
	for _, id := range externalIDs {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		res, err := m.imp.Import(ctx, id)
		if res.Action == "" && err != nil {
			return c, err // cut short by ctx: a shutdown, not a failure
		}
		c = c.Add(countAction(res.Action, err))
		if err != nil {
			errs = append(errs, err)
		}
	}
	return c, report.Partial(c.Failed, errs)
}

func (m *typedModel[T]) exportSome(ctx context.Context, localIDs []string) (report.Counts, error) {
	sum, err := m.expB.Export(ctx, localIDs)
	if err != nil {
		return sum.Counts, err
	}
	return sum.Counts, report.Partial(sum.Failed, sum.Errors)
}

// retryFailed retries, on purpose and so past the retry limit, the records whose last sync
// failed: imports are fetched and imported again, exports sent again. The direction is
// the one that failed, told by the error text each runner writes ("importing …",
// "exporting …"), so a failed export is never overwritten by an import and a failed import
// never pushes stale local data.
func (m *typedModel[T]) retryFailed(ctx context.Context) (report.Counts, error) {
	var c report.Counts
	var errs []error
	if m.fetcher() {
		sum, err := m.imp.RetryFailed(ctx, importer.Force())
		c, errs = c.Add(sum.Counts), sum.Errors
		if err != nil {
			return c, err
		}
	}
	if m.expB != nil {
		ec, eerrs, err := m.retryExports(ctx)
		c, errs = c.Add(ec), append(errs, eerrs...)
		if err != nil {
			return c, err
		}
	}
	return c, report.Partial(c.Failed, errs)
}

// retryExports exports again, a chunk at a time, the records whose export failed.
func (m *typedModel[T]) retryExports(ctx context.Context) (report.Counts, []error, error) {
	var c report.Counts
	var errs []error
	ids := make([]string, 0, retryChunk)
	flush := func() error {
		sum, err := m.expB.Export(ctx, ids, exporter.Force())
		c, errs, ids = c.Add(sum.Counts), append(errs, sum.Errors...), ids[:0]
		return err
	}
	f := binding.Filter{Backend: m.b.cfg.Name, Model: m.decl.Name, Statuses: []binding.Status{binding.StatusFailed}}
	for bd, err := range m.b.bindings.List(ctx, f) {
		if err != nil {
			return c, errs, fmt.Errorf("listing the failed bindings of %s: %w", m.decl.Name, err)
		}
		if bd.LocalID == "" || !strings.HasPrefix(bd.LastError, exportErrPrefix) {
			continue
		}
		if ids = append(ids, bd.LocalID); len(ids) == retryChunk {
			if err := flush(); err != nil {
				return c, errs, err
			}
		}
	}
	if len(ids) == 0 {
		return c, errs, nil
	}
	return c, errs, flush()
}

const (
	retryChunk = 100
	// exportErrPrefix starts every export's report.RecordError text, so the failed exports
	// are told from the failed imports ("importing …").
	exportErrPrefix = "exporting "
)

func (m *typedModel[T]) exists(ctx context.Context, localID string) (bool, error) {
	if ec, ok := m.decl.Local.(local.ExistenceChecker); ok {
		got, err := ec.Existing(ctx, []string{localID})
		if err != nil {
			return false, err
		}
		_, ok := got[localID]
		return ok, nil
	}
	_, err := m.decl.Local.Get(ctx, localID)
	if errors.Is(err, local.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// countAction turns one record's outcome into counts.
func countAction(action report.Action, err error) report.Counts {
	switch {
	case err != nil || action == report.Failed:
		return report.Counts{Failed: 1}
	case action == report.Created:
		return report.Counts{Created: 1}
	case action == report.Updated:
		return report.Counts{Updated: 1}
	default:
		return report.Counts{Skipped: 1}
	}
}

// resolver is the IDResolver every mapper of the backend uses. It resolves through the
// bindings, and goes further than a plain Binder: a binding whose local record the app
// deleted counts as missing, so a relation never hands out the ID of a record that is
// gone; a missing record is imported first (importMissing, through the mapper) or, on
// export, exported first when its model is exportable.
type resolver struct{ b *Backend }

func (r resolver) ToLocal(ctx context.Context, model, externalID string) (string, error) {
	id, err := r.b.binder.ToLocal(ctx, model, externalID)
	m := r.b.models[model]
	if err != nil || m == nil {
		return id, err
	}
	ok, err := m.exists(ctx, id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: %s %q is bound to local record %q, which no longer exists", binding.ErrNotFound, model, externalID, id)
	}
	return id, nil
}

// importMissing is the mappers' WithImportMissing: a related record that is not imported
// yet (or whose local record the app deleted) is imported first, when its model can fetch
// one record. A rule marked mapper.SkipMissing never gets here.
func (r resolver) importMissing(ctx context.Context, model, externalID string) error {
	m := r.b.models[model]
	if m == nil || !m.fetcher() || r.inChain(ctx, depchain.Import, model, externalID) {
		return fmt.Errorf("%w: %s %q is not imported, and %s", binding.ErrNotFound, model, externalID, r.why(m, model))
	}
	if _, err := m.importOne(r.chain(ctx, depchain.Import, model, externalID), []string{externalID}); err != nil {
		return fmt.Errorf("importing the related %s %q first: %w", model, externalID, err)
	}
	return nil
}

func (r resolver) why(m model, name string) string {
	switch {
	case m == nil:
		return fmt.Sprintf("no model %q is registered to import it", name)
	case !m.fetcher():
		return fmt.Sprintf("model %q has no Import.Fetch path to import one record", name)
	}
	return "importing it leads back to this record (a cycle)"
}

func (r resolver) ToExternal(ctx context.Context, model, localID string) (string, error) {
	id, err := r.b.binder.ToExternal(ctx, model, localID)
	if err == nil || !errors.Is(err, binding.ErrNotFound) {
		return id, err
	}
	m := r.b.models[model]
	if m == nil || !m.exporter() || r.inChain(ctx, depchain.Export, model, localID) {
		return "", err
	}
	if _, xerr := m.exportSome(r.chain(ctx, depchain.Export, model, localID), []string{localID}); xerr != nil {
		return "", fmt.Errorf("exporting the related %s %q first: %w", model, localID, xerr)
	}
	return r.b.binder.ToExternal(ctx, model, localID)
}

// chain records in ctx which related records are being synced on the way down, so that a
// cycle (a customer whose default address refers back to the customer) stops instead of
// recursing.
//
// The runners put the record they are mapping into the same chain (depchain.Import,
// depchain.Export), so the outer record of a cycle is seen too.
func (r resolver) chain(ctx context.Context, dir, model, id string) context.Context {
	return depchain.With(ctx, dir, r.b.cfg.Name, model, id)
}

func (r resolver) inChain(ctx context.Context, dir, model, id string) bool {
	return depchain.Has(ctx, dir, r.b.cfg.Name, model, id)
}
