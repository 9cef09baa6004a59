package mapper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	yaml "go.yaml.in/yaml/v3"
)

// Spec is a mapper described in a file (JSON or YAML), the BJ API Sync "field mapping
// lines" in connkit's form:
//
//	name: order
//	direction: import            # or export
//	id_path: id
//	rules:
//	  - {field: name, key: title, converter: trim}
//	  - {field: price, key: variants.0.price, converter: float, required: true}
//	  - {field: partner_id, key: customer.id, kind: relational, model: res.partner, on_missing: skip}
//	  - {field: code, kind: expression, expression: 'upper(record.sku)'}
//	  - {field: lines, key: line_items, kind: children, children: {rules: [...]}}
//
// `field` is always the local field and `key` the external path (gjson on import,
// sjson on export), so one list reads the same in both directions.
type Spec struct {
	// Name names the mapper in errors.
	Name string `json:"name" yaml:"name"`
	// Direction is "import" or "export"; empty means "whichever Build asks for".
	Direction string `json:"direction,omitempty" yaml:"direction,omitempty"`
	// IDPath is where the record ID is read for errors (see [WithIDPath]); an option
	// given to Import/Export overrides it.
	IDPath string `json:"id_path,omitempty" yaml:"id_path,omitempty"`
	// Rules are the mapping lines, applied in order.
	Rules []RuleSpec `json:"rules" yaml:"rules"`

	file string
}

// RuleSpec is one mapping line of a [Spec].
type RuleSpec struct {
	// Name names the rule in errors (default "#index kind").
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Field is the local field (a dotted path on export).
	Field string `json:"field,omitempty" yaml:"field,omitempty"`
	// Key is the external path: gjson on import, sjson on export.
	Key string `json:"key,omitempty" yaml:"key,omitempty"`
	// Kind is plain (default), relational, expression, children or function.
	Kind string `json:"kind,omitempty" yaml:"kind,omitempty"`
	// Converter names one converter, or several joined by "|": "trim|lower".
	Converter string `json:"converter,omitempty" yaml:"converter,omitempty"`
	// Converters lists converters, applied after Converter.
	Converters []string `json:"converters,omitempty" yaml:"converters,omitempty"`
	// Layouts are the time layouts of the time / format_time converters (Go layouts).
	Layouts []string `json:"layouts,omitempty" yaml:"layouts,omitempty"`
	// Layout is a single layout, added before Layouts.
	Layout string `json:"layout,omitempty" yaml:"layout,omitempty"`
	// Zone is the IANA zone of the time / format_time converters ("Europe/Paris").
	Zone string `json:"zone,omitempty" yaml:"zone,omitempty"`
	// Enum is the table of the enum converter; EnumDefault its fallback (null: none).
	Enum        map[string]any `json:"enum,omitempty" yaml:"enum,omitempty"`
	EnumDefault any            `json:"enum_default,omitempty" yaml:"enum_default,omitempty"`
	// Default is used for missing or null values (null: no default).
	Default any `json:"default,omitempty" yaml:"default,omitempty"`
	// Required makes a missing or null value an error.
	Required bool `json:"required,omitempty" yaml:"required,omitempty"`
	// OmitEmpty leaves the target out when the value is empty (missing, null, "", [] or {}).
	OmitEmpty bool `json:"omit_empty,omitempty" yaml:"omit_empty,omitempty"`
	// Model is the related model of a relational rule.
	Model string `json:"model,omitempty" yaml:"model,omitempty"`
	// Through lists the models crossed by a dotted local path on export.
	Through []string `json:"through,omitempty" yaml:"through,omitempty"`
	// OnMissing is what a relational rule does on import when the related record is
	// not bound: import it first (import; the default when the mapper is built
	// [WithImportMissing]), fail (the default otherwise) or skip ([SkipMissing]).
	OnMissing string `json:"on_missing,omitempty" yaml:"on_missing,omitempty"`
	// Expression is the code of an expression rule; Mode is evaluate (default) or execute.
	Expression string `json:"expression,omitempty" yaml:"expression,omitempty"`
	Mode       string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Func names a Go func registered with [WithFunc] (kind function).
	Func string `json:"func,omitempty" yaml:"func,omitempty"`
	// OnlyCreate and ChangedBy are the rule's conditions (see [OnlyCreate], [ChangedBy]).
	OnlyCreate bool     `json:"only_create,omitempty" yaml:"only_create,omitempty"`
	ChangedBy  []string `json:"changed_by,omitempty" yaml:"changed_by,omitempty"`
	// Children is the line mapper of a children rule.
	Children *Spec `json:"children,omitempty" yaml:"children,omitempty"`

	line int
}

// ParseSpec reads a spec from JSON or YAML (YAML is a superset; JSON input is detected
// by its leading '{'). Unknown keys are an error. name is used in errors (a file name).
// The rules are checked when the mapper is built ([Spec.Import], [Spec.Export]).
func ParseSpec(data []byte, name string) (*Spec, error) {
	s := &Spec{file: name}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		dec.UseNumber() // numbers read as from records: int64 when integral
		if err := dec.Decode(s); err != nil {
			return nil, &SpecError{File: name, Index: -1, Err: fmt.Errorf("reading JSON spec: %w", err)}
		}
		setLinesJSON(s, string(data), gjson.Parse(string(data)))
		if err := s.normalizeValues(""); err != nil {
			return nil, err
		}
		return s, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, &SpecError{File: name, Index: -1, Err: fmt.Errorf("reading YAML spec: %w", err)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		setLines(s, &root)
	}
	if err := s.normalizeValues(""); err != nil {
		return nil, err
	}
	return s, nil
}

// normalizeValues gives the values a spec holds (default, enum, enum_default) the types
// a JSON record has, whether the spec was JSON or YAML: int64 for integral numbers,
// float64 otherwise, map[string]any for maps. A value JSON cannot hold (NaN, infinity,
// a number out of range) is an error: the same spec must read the same in both formats.
func (s *Spec) normalizeValues(prefix string) error {
	for i := range s.Rules {
		rs := &s.Rules[i]
		path := prefix + "rules[" + strconv.Itoa(i) + "]"
		fail := func(key string, err error) error {
			return &SpecError{File: s.file, Path: path, Index: i, Line: rs.line, Field: rs.Field, Err: fmt.Errorf("%s: %w", key, err)}
		}
		var err error
		if rs.Default, err = specValue(rs.Default); err != nil {
			return fail("default", err)
		}
		if rs.EnumDefault, err = specValue(rs.EnumDefault); err != nil {
			return fail("enum_default", err)
		}
		for k, v := range rs.Enum {
			if rs.Enum[k], err = specValue(v); err != nil {
				return fail("enum["+strconv.Quote(k)+"]", err)
			}
		}
		if rs.Children != nil {
			rs.Children.file = s.file
			if err := rs.Children.normalizeValues(path + ".children."); err != nil {
				return err
			}
		}
	}
	return nil
}

// specValue converts one decoded spec value; see [Spec.normalizeValues].
func specValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return f, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a JSON number", x)
		}
		return x, nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return widen(x), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = specValue(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			var err error
			if out[k], err = specValue(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[any]any: // YAML maps with keys that are not strings
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks := fmt.Sprint(k)
			if _, dup := out[ks]; dup {
				return nil, fmt.Errorf("key %q appears twice", ks)
			}
			var err error
			if out[ks], err = specValue(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// setLinesJSON finds each rule's line in a JSON spec from gjson's byte offsets.
func setLinesJSON(s *Spec, data string, obj gjson.Result) {
	for j, item := range obj.Get("rules").Array() {
		if j >= len(s.Rules) {
			break
		}
		s.Rules[j].line = strings.Count(data[:item.Index], "\n") + 1
		if s.Rules[j].Children != nil {
			setLinesJSON(s.Rules[j].Children, data, item.Get("children"))
		}
	}
}

// setLines copies each rule's line number from the YAML node tree.
func setLines(s *Spec, n *yaml.Node) {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "rules" || n.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range n.Content[i+1].Content {
			if j >= len(s.Rules) {
				break
			}
			s.Rules[j].line = item.Line
			if s.Rules[j].Children == nil || item.Kind != yaml.MappingNode {
				continue
			}
			for k := 0; k+1 < len(item.Content); k += 2 {
				if item.Content[k].Value == "children" {
					setLines(s.Rules[j].Children, item.Content[k+1])
				}
			}
		}
	}
}

// Import builds the spec's import mapper. opts supply what a file cannot: the resolver,
// custom converters and funcs.
func (s *Spec) Import(opts ...Option) (*ImportMapper, error) {
	m, err := s.build(false, "", opts)
	if err != nil {
		return nil, err
	}
	return m.(*ImportMapper), nil
}

// Export builds the spec's export mapper.
func (s *Spec) Export(opts ...Option) (*ExportMapper, error) {
	m, err := s.build(true, "", opts)
	if err != nil {
		return nil, err
	}
	return m.(*ExportMapper), nil
}

func (s *Spec) build(export bool, prefix string, opts []Option) (any, error) {
	want := "import"
	if export {
		want = "export"
	}
	name := s.Name
	if name == "" {
		name = strings.TrimSuffix(s.file, filepath.Ext(s.file))
	}
	if d := strings.ToLower(s.Direction); d != "" && d != want {
		return nil, &SpecError{File: s.file, Path: prefix + "direction", Index: -1,
			Err: fmt.Errorf("spec %q is for %s, not %s", name, d, want)}
	}
	cfg := newConfig(opts)
	var errs []error
	rules := make([]Rule, 0, len(s.Rules))
	for i := range s.Rules {
		rs := &s.Rules[i]
		path := prefix + "rules[" + strconv.Itoa(i) + "]"
		r, err := rs.rule(export, path, s.file, &cfg, opts)
		if err != nil {
			var se *SpecError
			if errors.As(err, &se) {
				errs = append(errs, err)
			} else {
				errs = append(errs, &SpecError{File: s.file, Path: path, Index: i, Line: rs.line, Field: rs.Field, Err: err})
			}
			continue
		}
		r.line, r.path, r.index = rs.line, path, i
		rules = append(rules, r)
	}
	var all []Option
	if s.IDPath != "" {
		all = append(all, WithIDPath(s.IDPath)) // first: the caller's WithIDPath wins
	}
	all = append(all, opts...)
	all = append(all, func(c *config) { c.file = s.file })
	var m any
	var err error
	if len(errs) == 0 {
		if export {
			m, err = NewExport(name, rules, all...)
		} else {
			m, err = NewImport(name, rules, all...)
		}
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	// Check the rules that did convert too, so every problem is reported at once.
	b := base{name: name, cfg: newConfig(all), rules: rules}
	if err := b.build(export); err != nil {
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("building %s mapper %q: %w", want, name, errors.Join(errs...))
}

func (rs *RuleSpec) rule(export bool, path, file string, cfg *config, opts []Option) (Rule, error) {
	if err := rs.checkKeys(); err != nil {
		return Rule{}, err
	}
	var ro []RuleOption
	convs, err := rs.converters(cfg)
	if err != nil {
		return Rule{}, err
	}
	for _, c := range convs {
		ro = append(ro, c)
	}
	if rs.Default != nil {
		ro = append(ro, Default(normalize(rs.Default)))
	}
	if rs.Required {
		ro = append(ro, Required())
	}
	if rs.OmitEmpty {
		ro = append(ro, OmitEmpty())
	}
	if rs.OnlyCreate {
		ro = append(ro, OnlyCreate())
	}
	if len(rs.ChangedBy) > 0 {
		ro = append(ro, ChangedBy(rs.ChangedBy...))
	}
	if rs.Name != "" {
		ro = append(ro, Name(rs.Name))
	}
	if len(rs.Through) > 0 {
		ro = append(ro, Through(rs.Through...))
	}
	from, to := rs.Key, rs.Field
	if export {
		from, to = rs.Field, rs.Key
	}
	switch strings.ToLower(rs.Kind) {
	case "", "plain", "direct":
		return Direct(from, to, ro...), nil
	case "relational", "relation":
		r := Relation(from, to, rs.Model, ro...)
		switch strings.ToLower(rs.OnMissing) {
		case "":
		case "fail":
			r.onMissing = missingFail
		case "skip":
			r.onMissing = missingSkip
		case "import":
			r.onMissing = missingImport
		default:
			return Rule{}, fmt.Errorf("on_missing %q is not fail, skip or import", rs.OnMissing)
		}
		return r, nil
	case "expression", "expr":
		switch strings.ToLower(rs.Mode) {
		case "", "evaluate", "eval":
			return Expr(from, to, rs.Expression, ro...), nil
		case "execute", "exec":
			return Exec(rs.Expression, ro...), nil
		}
		return Rule{}, fmt.Errorf("mode %q is not evaluate or execute", rs.Mode)
	case "function", "func":
		fn := cfg.funcs[rs.Func]
		if fn == nil {
			return Rule{}, fmt.Errorf("func %q is not registered; pass mapper.WithFunc(%q, fn)", rs.Func, rs.Func)
		}
		return Func(rs.Func, fn, ro...), nil
	case "children":
		if rs.Children == nil {
			return Rule{}, errors.New("children rule needs a children spec")
		}
		child := *rs.Children
		child.file = file
		if child.Name == "" {
			child.Name = rs.Field
		}
		m, err := child.build(export, path+".children.", opts)
		if err != nil {
			return Rule{}, err
		}
		if c, ok := m.(*ImportMapper); ok {
			return Children(from, to, c, ro...), nil
		}
		return Children(from, to, m.(*ExportMapper), ro...), nil
	}
	return Rule{}, fmt.Errorf("kind %q is not plain, relational, expression, children or function", rs.Kind)
}

// checkKeys rejects keys the rule's kind or converters do not use: a line with
// `expression:` but no `kind: expression` would otherwise map the key silently.
func (rs *RuleSpec) checkKeys() error {
	kind := strings.ToLower(rs.Kind)
	is := func(kinds ...string) bool { return slices.Contains(kinds, kind) }
	var convs []string
	for _, n := range append(strings.Split(rs.Converter, "|"), rs.Converters...) {
		convs = append(convs, strings.ToLower(strings.TrimSpace(n)))
	}
	uses := func(names ...string) bool {
		return slices.ContainsFunc(convs, func(c string) bool { return slices.Contains(names, c) })
	}
	var bad []string
	if (rs.Model != "" || rs.OnMissing != "") && !is("relational", "relation") {
		bad = append(bad, "model/on_missing (relational rules only)")
	}
	if (rs.Expression != "" || rs.Mode != "") && !is("expression", "expr") {
		bad = append(bad, "expression/mode (kind: expression only)")
	}
	if rs.Func != "" && !is("function", "func") {
		bad = append(bad, "func (kind: function only)")
	}
	if rs.Children != nil && !is("children") {
		bad = append(bad, "children (kind: children only)")
	}
	if (rs.Enum != nil || rs.EnumDefault != nil) && !uses("enum") {
		bad = append(bad, "enum/enum_default (converter enum only)")
	}
	if (rs.Layout != "" || len(rs.Layouts) > 0 || rs.Zone != "") && !uses("time", "datetime", "date", "format_time") {
		bad = append(bad, "layout/layouts/zone (time and format_time converters only)")
	}
	if len(bad) > 0 {
		return fmt.Errorf("keys not used by this rule: %s", strings.Join(bad, ", "))
	}
	return nil
}

func (rs *RuleSpec) converters(cfg *config) ([]Converter, error) {
	var names []string
	if rs.Converter != "" {
		names = strings.Split(rs.Converter, "|")
	}
	names = append(names, rs.Converters...)
	layouts := rs.Layouts
	if rs.Layout != "" {
		layouts = append([]string{rs.Layout}, layouts...)
	}
	var loc *time.Location
	if rs.Zone != "" {
		var err error
		if loc, err = time.LoadLocation(rs.Zone); err != nil {
			return nil, fmt.Errorf("zone %q: %w", rs.Zone, err)
		}
	}
	out := make([]Converter, 0, len(names))
	for _, n := range names {
		n = strings.TrimSpace(n)
		var c Converter
		switch strings.ToLower(n) {
		case "string", "str":
			c = String()
		case "int", "integer":
			c = Int()
		case "float", "number":
			c = Float()
		case "bool", "boolean":
			c = Bool()
		case "trim":
			c = Trim()
		case "lower":
			c = Lower()
		case "upper":
			c = Upper()
		case "time", "datetime", "date":
			c = TimeIn(loc, layouts...)
		case "format_time":
			if len(layouts) == 0 {
				return nil, errors.New("converter format_time needs a layout")
			}
			c = FormatTime(layouts[0], loc)
		case "enum":
			if rs.Enum == nil {
				return nil, errors.New("converter enum needs an enum table")
			}
			table := normalize(rs.Enum).(map[string]any) // YAML ints → int64, as read from JSON
			if rs.EnumDefault != nil {
				c = EnumDefault(table, normalize(rs.EnumDefault))
			} else {
				c = Enum(table)
			}
		default:
			var ok bool
			if c, ok = cfg.converters[n]; !ok {
				return nil, fmt.Errorf("unknown converter %q (built in: string, int, float, bool, time, format_time, enum, trim, lower, upper; register others WithConverter)", n)
			}
		}
		out = append(out, c)
	}
	return out, nil
}
