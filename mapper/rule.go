package mapper

import (
	"context"
	"strconv"
)

// Values holds one record's local values: field name → value. On import it is what a
// mapper produces; on export it is what a mapper reads. Values may hold nested Values or
// map[string]any for related records (read by dotted paths like "partner_id.name"),
// and []Values for one-to-many lines.
type Values = map[string]any

// Options are the per-record inputs of a Map call.
type Options struct {
	// Create is true when the record is being created on the target side; rules marked
	// [OnlyCreate] run only then.
	Create bool
	// Changed lists the local fields that changed since the last export. Rules marked
	// [ChangedBy] run only when one of their fields is in it. A nil Changed means
	// "unknown": every rule runs (as on create).
	Changed []string
	// RecordID names the record in errors; when empty, the mapper's [WithIDPath] is read.
	RecordID string
	// Request is extra data given to expression rules as `request` (BJ's request_data:
	// the inbound request's body, query, headers… whatever the caller puts there).
	Request map[string]any

	collect bool // a parent mapper collects every error: so do its children
}

func (o *Options) changed(fields []string) bool {
	if o.Create || o.Changed == nil {
		return true
	}
	for _, f := range fields {
		for _, c := range o.Changed {
			if f == c {
				return true
			}
		}
	}
	return false
}

type ruleKind uint8

const (
	kindDirect ruleKind = iota + 1
	kindFunc
	kindRelation
	kindExpr
	kindExec
	kindChildren
)

func (k ruleKind) String() string {
	switch k {
	case kindDirect:
		return "direct"
	case kindFunc:
		return "func"
	case kindRelation:
		return "relation"
	case kindExpr:
		return "expression"
	case kindExec:
		return "execute"
	case kindChildren:
		return "children"
	}
	return "unknown"
}

// missingPolicy says what a relational rule does on import when the external ID has no
// local counterpart yet.
type missingPolicy uint8

const (
	// missingDefault imports the record first when the mapper has WithImportMissing,
	// else fails.
	missingDefault missingPolicy = iota
	missingFail
	missingSkip
	// missingImport is a spec's explicit "import": missingDefault, and a build error
	// without WithImportMissing.
	missingImport
)

// FieldFunc computes several values at once (OCA's @mapping); [Func] rules run it. On
// import it returns local fields; on export it returns payload paths (sjson syntax).
// Returning nil adds nothing.
type FieldFunc func(ctx context.Context, r *Record) (Values, error)

// Rule is one mapping line. Build rules with [Direct], [Func], [Relation], [Expr],
// [Exec] and [Children] (or load them from a spec file) and pass them to [NewImport] or
// [NewExport]. A Rule's meaning depends on the direction: "from" is a gjson path into the
// external record on import and a local (dotted) path on export; "to" is a local field on
// import and an sjson path into the payload on export.
type Rule struct {
	kind       ruleKind
	from, to   string
	name       string
	convs      []Converter
	def        any
	hasDef     bool
	required   bool
	omitEmpty  bool
	onlyCreate bool
	changedBy  []string
	model      string
	through    []string
	onMissing  missingPolicy
	fn         FieldFunc
	code       string
	child      any // *ImportMapper or *ExportMapper
	line       int // spec line, for build errors
	path       string
	index      int // spec position
}

// RuleOption modifies a rule: a [Converter], [Default], [Required], [OmitEmpty], [OnlyCreate],
// [ChangedBy], [Name], [SkipMissing], [Through].
type RuleOption interface{ applyRule(*Rule) }

type ruleOptionFunc func(*Rule)

func (f ruleOptionFunc) applyRule(r *Rule) { f(r) }

// Default is used when the source value is missing or null (converters are not run on it).
func Default(v any) RuleOption {
	return ruleOptionFunc(func(r *Rule) { r.def, r.hasDef = v, true })
}

// Required makes a missing or null source value an error ([ErrRequired]). An empty
// string or a zero number is a value: a struct given to [MapFrom] or [ExportFunc] has
// every field, so use a pointer field (nil is null) for an optional one.
func Required() RuleOption { return ruleOptionFunc(func(r *Rule) { r.required = true }) }

// OmitEmpty leaves the target out when the rule's value is empty: missing, null, "", or
// an empty array or object (after converters and relation lookups) — for APIs that refuse
// a null or blank field where they accept its absence ("associations" on a contact with no
// company, a new line's "id"). A Default still applies to a missing or null value first.
func OmitEmpty() RuleOption { return ruleOptionFunc(func(r *Rule) { r.omitEmpty = true }) }

// OnlyCreate runs the rule only when [Options].Create is true (OCA's @only_create).
func OnlyCreate() RuleOption { return ruleOptionFunc(func(r *Rule) { r.onlyCreate = true }) }

// ChangedBy runs the rule only when one of the local fields changed (OCA's
// @changed_by); see [Options].Changed.
func ChangedBy(fields ...string) RuleOption {
	return ruleOptionFunc(func(r *Rule) { r.changedBy = append(r.changedBy, fields...) })
}

// Name names the rule in errors (default "#index kind").
func Name(name string) RuleOption { return ruleOptionFunc(func(r *Rule) { r.name = name }) }

// SkipMissing makes a [Relation] leave its field out when the related record is not
// bound (on import and on export), instead of importing it first or failing.
func SkipMissing() RuleOption { return ruleOptionFunc(func(r *Rule) { r.onMissing = missingSkip }) }

// Through gives the models of the related records crossed by a dotted local path on
// export: for "partner_id.country_id.code", Through("res.partner", "res.country"). A hop
// whose value is already a nested map needs no model. See [WithRelated].
func Through(models ...string) RuleOption {
	return ruleOptionFunc(func(r *Rule) { r.through = models })
}

func newRule(kind ruleKind, from, to string, opts []RuleOption) Rule {
	r := Rule{kind: kind, from: from, to: to}
	for _, o := range opts {
		if o != nil {
			o.applyRule(&r)
		}
	}
	return r
}

// Direct copies the value at from to to, through the given converters (OCA's `direct`,
// BJ's plain line). Example: Direct("variants.0.price", "price", Float(), Required()).
func Direct(from, to string, opts ...RuleOption) Rule {
	return newRule(kindDirect, from, to, opts)
}

// Func runs fn and merges the values it returns (OCA's @mapping method).
func Func(name string, fn FieldFunc, opts ...RuleOption) Rule {
	r := newRule(kindFunc, "", "", opts)
	r.fn = fn
	if r.name == "" {
		r.name = name
	}
	return r
}

// Relation maps a reference to a record of model through the mapper's [IDResolver]
// (the binder): the external ID at from becomes a local ID on import; the local ID at
// from becomes an external ID on export. Arrays of IDs (many2many) map element-wise.
// Converters act on the external ID: before resolving on import, after on export. On
// import, an unbound ID is imported first when the mapper has [WithImportMissing] and
// fails with [ErrMissingDependency] otherwise ([SkipMissing] leaves the field out; the
// WithImportMissing callback decides which models may be imported on the spot);
// on export it fails with [ErrMissingDependency] naming the local record to export
// first (or is skipped with SkipMissing). model is listed by [ImportMapper.Relations] /
// [ExportMapper.Relations]. A null, false or "" reference means "no related record": it
// maps to null, or nothing when missing; in an array such elements (and, with
// SkipMissing, unbound ones) are left out, so the result holds only local IDs. In the
// mapper of [Children] lines, relations resolve through the parent mapper's resolver
// when the lines' mapper was built without one.
func Relation(from, to, model string, opts ...RuleOption) Rule {
	r := newRule(kindRelation, from, to, opts)
	r.model = model
	return r
}

// Expr is an expression rule in evaluate mode: the expression's value is assigned to
// to (after the rule's converters). from is optional; when set, the value found there is
// available as `value`. See the package documentation for the environment.
func Expr(from, to, code string, opts ...RuleOption) Rule {
	r := newRule(kindExpr, from, to, opts)
	r.code = code
	return r
}

// Exec is an expression rule in execute mode: the expression returns a map (or nil)
// whose entries are merged into the result — a patch for the whole record.
func Exec(code string, opts ...RuleOption) Rule {
	r := newRule(kindExec, "", "", opts)
	r.code = code
	return r
}

// Children maps one-to-many lines with their own mapper, child: on import, the array at
// from is mapped element by element with an *ImportMapper into []Values at to; on
// export, the lines at from ([]Values, []map[string]any or []any of maps) are mapped
// with an *ExportMapper into a JSON array at to. The child's relations count as the
// parent's ([ImportMapper.Relations]).
func Children[M *ImportMapper | *ExportMapper](from, to string, child M, opts ...RuleOption) Rule {
	r := newRule(kindChildren, from, to, opts)
	r.child = child
	return r
}

func (r *Rule) label(i int) string {
	if r.name != "" {
		return r.name
	}
	return "#" + strconv.Itoa(i) + " " + r.kind.String()
}

func (r *Rule) applies(o *Options) bool {
	if r.onlyCreate && !o.Create {
		return false
	}
	if len(r.changedBy) > 0 && !o.changed(r.changedBy) {
		return false
	}
	return true
}
