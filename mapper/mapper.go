package mapper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
)

// IDResolver turns external IDs into local IDs and back for one model. *binding.Binder
// satisfies it. An unbound ID must yield an error matching binding.ErrNotFound.
//
// ToLocal must never return the ID of a local record that no longer exists: a binding
// whose local record the app deleted is "not bound" for the mapper. *binding.Binder
// reads bindings only, so a resolver that guards against dead IDs checks the app's store
// after the binder and returns an error matching binding.ErrNotFound when the record is
// gone (the backend builds its resolver that way). The mapper then treats the reference
// as a missing dependency: with [WithImportMissing] it imports the record again (which
// recreates and rebinds it) and resolves once more; otherwise the record fails with
// [ErrMissingDependency].
type IDResolver interface {
	ToLocal(ctx context.Context, model, externalID string) (string, error)
	ToExternal(ctx context.Context, model, localID string) (string, error)
}

// Option configures a mapper at build time.
type Option func(*config)

type config struct {
	resolver      IDResolver
	related       func(ctx context.Context, model, localID string) (map[string]any, error)
	importMissing func(ctx context.Context, model, externalID string) error
	idPath        string
	collect       bool
	limits        exprLimits
	file          string
	converters    map[string]Converter
	funcs         map[string]FieldFunc
	request       func(ctx context.Context) map[string]any
	changed       func(ctx context.Context, b binding.Binding) ([]string, error)
}

// WithConverter registers a custom converter by its name for spec files
// (`converter: cents`). Built-in names cannot be replaced.
func WithConverter(c Converter) Option {
	return func(cfg *config) {
		if cfg.converters == nil {
			cfg.converters = map[string]Converter{}
		}
		cfg.converters[c.name] = c
	}
}

// WithFunc registers a [FieldFunc] for spec rules of kind "function" (`func: name`);
// in Go, pass it to [Func] directly.
func WithFunc(name string, fn FieldFunc) Option {
	return func(cfg *config) {
		if cfg.funcs == nil {
			cfg.funcs = map[string]FieldFunc{}
		}
		cfg.funcs[name] = fn
	}
}

// WithResolver sets the resolver (the binder) used by [Relation] rules. A mapper with
// relational rules needs one, its own or, for [Children] lines, its parent's.
func WithResolver(r IDResolver) Option { return func(c *config) { c.resolver = r } }

// WithRelated sets how export rules read related local records, so they can follow
// dotted local paths such as "partner_id.name": the value of partner_id is a local ID of
// model res.partner (see [Through]), lookup returns that record's values and "name" is
// read from them. Implement it over the app's local store. Values that already hold a
// nested map for partner_id need no lookup.
func WithRelated(lookup func(ctx context.Context, model, localID string) (map[string]any, error)) Option {
	return func(c *config) { c.related = lookup }
}

// WithImportMissing sets how an import mapper imports a related record that is not
// bound yet (model, external ID), so that the relation resolves afterwards: pass the
// importer's "import this record now". With it, every [Relation] rule imports its
// missing records first, as generic_connector's _import_dependency does, unless the
// rule says [SkipMissing] (a spec can also say `on_missing: fail`). importOne decides
// which models may be imported on the spot: its error fails the record, naming the
// dependency. The models involved are [ImportMapper.Relations].
func WithImportMissing(importOne func(ctx context.Context, model, externalID string) error) Option {
	return func(c *config) { c.importMissing = importOne }
}

// WithIDPath names where the record's ID is read for error messages when
// [Options].RecordID is empty: a gjson path on import (default for [ImportFunc]: "id"),
// a local field on export. Give it the same path as the importer's.
func WithIDPath(path string) Option { return func(c *config) { c.idPath = path } }

// CollectErrors makes Map (and [ImportFunc] / [ExportFunc]) report every failing rule of
// a record, children lines included (errors.Join of *MappingError), instead of stopping
// at the first.
func CollectErrors() Option { return func(c *config) { c.collect = true } }

// RequestFrom sets Options.Request of every record mapped through [ImportFunc] or
// [ExportFunc] from the call's context, so expression rules see data that is not in the
// record (`request`), e.g. the webhook call that triggered the sync, which the caller put
// in the context. Map itself takes Options.Request as given.
func RequestFrom(fn func(ctx context.Context) map[string]any) Option {
	return func(c *config) { c.request = fn }
}

// ChangedFrom sets Options.Changed on updates (create=false) made through [ExportFunc]
// from fn, which reports the local fields changed since the record's last export
// (b.SyncedAt, b.Hash…), so [ChangedBy] rules run only when needed. nil means unknown
// (every rule runs); an empty slice means nothing changed. An error fails the record as
// a [*MappingError]. Export mappers only.
func ChangedFrom(fn func(ctx context.Context, b binding.Binding) ([]string, error)) Option {
	return func(c *config) { c.changed = fn }
}

// exprLimits bound what expression rules may do; zero fields keep the defaults (see
// "Sandbox" in the package doc). connkit's tests lower them.
type exprLimits struct {
	// MaxNodes limits an expression's size at compile time (default 1000 AST nodes).
	MaxNodes uint
	// MemoryBudget is expr's run-time allocation budget, in expr's units (array
	// elements, range sizes…; default 100000, expr's own default is 1e6).
	MemoryBudget uint
	// MaxString is the longest string one operation may produce (default 1 MiB).
	MaxString int
	// MaxBytes bounds the string bytes one evaluation may produce in total (default 8 MiB).
	MaxBytes int
	// Timeout bounds one evaluation (default 50ms); the Map context's cancellation is
	// honoured too.
	Timeout time.Duration
}

// Default expression limits; see exprLimits.
const (
	defaultExprMaxNodes     = 1000
	defaultExprMemoryBudget = 100_000
	defaultExprMaxString    = 1 << 20
	defaultExprMaxBytes     = 8 << 20
	defaultExprTimeout      = 50 * time.Millisecond
)

// withExprLimits sets the limits of expression rules (see exprLimits).
func withExprLimits(l exprLimits) Option {
	return func(c *config) {
		if l.MaxNodes > 0 {
			c.limits.MaxNodes = l.MaxNodes
		}
		if l.MemoryBudget > 0 {
			c.limits.MemoryBudget = l.MemoryBudget
		}
		if l.MaxString > 0 {
			c.limits.MaxString = l.MaxString
		}
		if l.MaxBytes > 0 {
			c.limits.MaxBytes = l.MaxBytes
		}
		if l.Timeout > 0 {
			c.limits.Timeout = l.Timeout
		}
	}
}

func newConfig(opts []Option) config {
	c := config{limits: exprLimits{MaxNodes: defaultExprMaxNodes, MemoryBudget: defaultExprMemoryBudget,
		MaxString: defaultExprMaxString, MaxBytes: defaultExprMaxBytes, Timeout: defaultExprTimeout}}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// base is what import and export mappers share.
type base struct {
	name    string
	cfg     config
	rules   []Rule
	progs   []*program // per rule, for expression rules
	hasExpr bool       // expression rules: they see `values`
	hasFunc bool       // func rules: they see Record.Mapped
	export  bool
}

// Name returns the mapper's name.
func (b *base) Name() string { return b.name }

// Relations returns the models whose bindings the mapper's [Relation] rules look up,
// children mappers included, sorted and without repeats. These are the mapper's
// dependencies: on import, records of these models must be imported first (the backend
// orders models by them, and [WithImportMissing] imports a missing one on the spot); on
// export, they must be exported first. Models only crossed by [Through] are read through
// [WithRelated], not looked up in bindings, so they are not listed.
func (b *base) Relations() []string {
	var out []string
	b.relations(&out)
	slices.Sort(out)
	return slices.Compact(out)
}

func (b *base) relations(out *[]string) {
	for i := range b.rules {
		switch r := &b.rules[i]; r.kind {
		case kindRelation:
			*out = append(*out, r.model)
		case kindChildren:
			switch c := r.child.(type) {
			case *ImportMapper:
				if c != nil {
					c.relations(out)
				}
			case *ExportMapper:
				if c != nil {
					c.relations(out)
				}
			}
		}
	}
}

func (b *base) build(export bool) error {
	b.export = export
	var errs []error
	if !export && b.cfg.changed != nil {
		errs = append(errs, &SpecError{File: b.cfg.file, Index: -1, Err: errors.New("ChangedFrom applies to export mappers only")})
	}
	b.progs = make([]*program, len(b.rules))
	for i := range b.rules {
		r := &b.rules[i]
		if err := b.check(r, export); err != nil {
			errs = append(errs, b.specErr(i, r, err))
			continue
		}
		if r.kind == kindFunc {
			b.hasFunc = true
		}
		if r.kind == kindChildren {
			r.child = inherit(r.child, b.cfg)
		}
		if r.kind == kindExpr || r.kind == kindExec {
			p, err := compileExpr(r.code, b.cfg.limits)
			if err != nil {
				errs = append(errs, b.specErr(i, r, err))
				continue
			}
			b.progs[i] = p
			b.hasExpr = true
		}
	}
	return errors.Join(errs...)
}

// inherit returns the children mapper child with the parent's resolver, related-record
// lookup and missing-record import where child has none of its own, so relations in
// lines (an order line's product) resolve through the parent's bindings. child itself is
// not changed: it may be shared. Grandchildren inherit in turn.
func inherit(child any, parent config) any {
	fill := func(b *base) bool {
		if parent.resolver == nil && parent.related == nil && parent.importMissing == nil {
			return false
		}
		if b.cfg.resolver != nil && (b.cfg.related != nil || parent.related == nil) && (b.cfg.importMissing != nil || parent.importMissing == nil) {
			return false
		}
		if b.cfg.resolver == nil {
			b.cfg.resolver = parent.resolver
		}
		if b.cfg.related == nil {
			b.cfg.related = parent.related
		}
		if b.cfg.importMissing == nil {
			b.cfg.importMissing = parent.importMissing
		}
		b.rules = slices.Clone(b.rules)
		for i := range b.rules {
			if b.rules[i].kind == kindChildren {
				b.rules[i].child = inherit(b.rules[i].child, b.cfg)
			}
		}
		return true
	}
	switch c := child.(type) {
	case *ImportMapper:
		if c == nil {
			return child
		}
		cp := *c
		if fill(&cp.base) {
			return &cp
		}
	case *ExportMapper:
		if c == nil {
			return child
		}
		cp := *c
		if fill(&cp.base) {
			return &cp
		}
	}
	return child
}

// errNoResolver fails a relational rule of a mapper built without a resolver.
var errNoResolver = errors.New("relational rule needs a resolver: build the mapper WithResolver(binder), or use it for the children lines of one that has it")

func (b *base) specErr(i int, r *Rule, err error) error {
	path := r.path
	if path == "" {
		path = "rules[" + strconv.Itoa(i) + "]"
	} else {
		i = r.index // position in the spec, which may differ when other lines failed
	}
	field := r.to // the local field: target on import, source on export
	if b.export || field == "" {
		field = r.from
	}
	return &SpecError{File: b.cfg.file, Path: path, Index: i, Line: r.line, Field: field, Err: err}
}

func (b *base) check(r *Rule, export bool) error {
	needFrom := func() error {
		if r.from == "" {
			return errors.New("source path is empty")
		}
		if export {
			return checkLocalPath(r.from)
		}
		return checkReadPath(r.from)
	}
	needTo := func() error {
		if r.to == "" {
			return errors.New("target is empty")
		}
		if export {
			return checkWritePath(r.to)
		}
		return checkLocalField(r.to)
	}
	// Options a kind does not use are mistakes, not something to ignore silently.
	if r.onMissing != missingDefault && r.kind != kindRelation {
		return errors.New("SkipMissing and on_missing apply to relational rules only")
	}
	if len(r.through) > 0 && (!export || r.kind == kindFunc || r.kind == kindExec) {
		return errors.New("Through applies to export rules with a dotted local source path only")
	}
	if (r.kind == kindFunc || r.kind == kindExec) && (len(r.convs) > 0 || r.hasDef || r.required) {
		return fmt.Errorf("converters, Default and Required do not apply to %s rules, which return several values", r.kind)
	}
	if r.kind == kindChildren && len(r.convs) > 0 {
		return errors.New("converters do not apply to children rules; the lines have their own mapper")
	}
	switch r.kind {
	case kindDirect:
		if err := needFrom(); err != nil {
			return err
		}
		return needTo()
	case kindRelation:
		if err := needFrom(); err != nil {
			return err
		}
		if err := needTo(); err != nil {
			return err
		}
		if r.model == "" {
			return errors.New("relational rule needs a model")
		}
		// No resolver yet is fine for a mapper of children lines, which takes its parent's
		// (see inherit); a mapper used on its own without one fails each record that needs it.
		if r.onMissing == missingImport && b.cfg.importMissing == nil && !export {
			return errors.New("on_missing: import needs the mapper built WithImportMissing(callback)")
		}
		return nil
	case kindFunc:
		if r.fn == nil {
			return errors.New("func rule has a nil func")
		}
		return nil
	case kindExpr:
		if r.from != "" {
			if err := needFrom(); err != nil {
				return err
			}
		}
		if r.code == "" {
			return errors.New("expression is empty")
		}
		return needTo()
	case kindExec:
		if r.code == "" {
			return errors.New("expression is empty")
		}
		return nil
	case kindChildren:
		if err := needFrom(); err != nil {
			return err
		}
		if err := needTo(); err != nil {
			return err
		}
		switch c := r.child.(type) {
		case *ImportMapper:
			if c == nil {
				return errors.New("children rule has a nil child mapper")
			}
			if export {
				return errors.New("children of an export mapper need an *ExportMapper")
			}
		case *ExportMapper:
			if c == nil {
				return errors.New("children rule has a nil child mapper")
			}
			if !export {
				return errors.New("children of an import mapper need an *ImportMapper")
			}
		default:
			return errors.New("children rule needs a child mapper")
		}
		return nil
	}
	return fmt.Errorf("unknown rule kind %d", r.kind)
}

// mapErr wraps err as a *MappingError unless it already is one from a child mapper.
func (b *base) mapErr(label string, i int, r *Rule, recordID string, err error) error {
	var me *MappingError
	if r.kind == kindChildren && errors.As(err, &me) {
		fillRecordID(err, recordID) // lines name their parent record
		return err
	}
	field := r.to
	if field == "" {
		field = r.from
	}
	return &MappingError{Mapper: label, Rule: r.label(i), Field: field, RecordID: recordID, Cause: err}
}

// fillRecordID sets RecordID on the MappingErrors in err that have none. They were
// created by this Map call, so changing them is safe.
func fillRecordID(err error, id string) {
	if id == "" {
		return
	}
	switch e := err.(type) {
	case *MappingError:
		if e.RecordID == "" {
			e.RecordID = id
		}
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			fillRecordID(x, id)
		}
	}
}

// finish applies missing/null handling and converters to one value.
// It returns ok=false when nothing is to be written.
func finish(r *Rule, v any, exists bool) (any, bool, error) {
	v, ok, err := convert(r, v, exists)
	if ok && r.omitEmpty && empty(v) {
		return nil, false, err
	}
	return v, ok, err
}

// empty reports whether an OmitEmpty rule leaves v out.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case []string:
		return len(x) == 0
	case []Values:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// convert applies the rule's default, required check and converters to a source value.
func convert(r *Rule, v any, exists bool) (any, bool, error) {
	if !exists || v == nil {
		switch {
		case r.hasDef:
			return r.def, true, nil
		case r.required:
			if !exists {
				return nil, false, ErrRequired
			}
			return nil, false, fmt.Errorf("%w (value is null)", ErrRequired)
		case !exists:
			return nil, false, nil
		}
		return nil, true, nil
	}
	for _, c := range r.convs {
		var err error
		if v, err = c.fn(v); err != nil {
			if !errors.Is(err, ErrConvert) { // a custom converter's own error
				err = fmt.Errorf("%w with %s: %w", ErrConvert, c.name, err)
			}
			return nil, false, err
		}
	}
	return v, true, nil
}

// jsonValue turns a gjson result into a Go value: strings, bools, nil, int64 for
// integral numbers that fit, json.Number for integers beyond int64 (an ID must not be
// rounded), float64 otherwise, and map[string]any / []any for objects and arrays.
func jsonValue(r gjson.Result) any {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.Number:
		raw := r.Raw
		integral := len(raw) > 0
		for i := 0; integral && i < len(raw); i++ {
			c := raw[i]
			integral = (c >= '0' && c <= '9') || (c == '-' && i == 0 && len(raw) > 1)
		}
		if integral {
			if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
				return n
			}
			return json.Number(raw) // out of the int64 range
		}
		return r.Num
	case gjson.JSON:
		return decodeJSON(r)
	}
	return nil
}

// decodeJSON decodes an object or array like gjson's Value but with jsonValue's
// number rule, so a number reads the same at any depth.
func decodeJSON(r gjson.Result) any {
	if r.IsArray() {
		out := make([]any, 0, 4)
		r.ForEach(func(_, v gjson.Result) bool {
			out = append(out, jsonValue(v))
			return true
		})
		return out
	}
	if r.IsObject() {
		out := make(map[string]any, 8)
		r.ForEach(func(k, v gjson.Result) bool {
			out[k.Str] = jsonValue(v)
			return true
		})
		return out
	}
	return jsonValue(r)
}

// noRef reports whether a relational value means "no related record": null, false
// (Odoo's empty many2one) or "" (an unset string ID). None of them is an ID to resolve.
func noRef(v any) bool { return v == nil || v == false || v == "" }

func idString(v any) (string, error) {
	switch x := widen(v).(type) {
	case string:
		return x, nil
	case json.Number:
		return string(x), nil
	case int64, uint64, float64:
		s, err := toString(x)
		if err != nil {
			return "", err
		}
		return s.(string), nil
	}
	return "", fmt.Errorf("%w: %T is not an ID", ErrConvert, v)
}

func merge(dst Values, src map[string]any) {
	for k, v := range src {
		dst[k] = v
	}
}
