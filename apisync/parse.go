package apisync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/internal/envref"
)

// maxConfigSize bounds a config file: configs are small, and a huge one is a mistake.
const maxConfigSize = 4 << 20

// parse reads one config: YAML (JSON is YAML) into a node tree that keeps line numbers,
// strict checks of every field against Config (unknown fields, wrong types, each named
// with its path and line), ${VAR} expansion of string values, then Validate.
func parse(data []byte, source string, lookup func(string) (string, bool)) (Config, error) {
	fail := func(field string, line int, problem string) (Config, error) {
		return Config{}, &ConfigError{File: source, Fields: []*FieldError{{Field: field, Line: line, Problem: problem}}}
	}
	if len(data) > maxConfigSize {
		return fail("(file)", 0, fmt.Sprintf("is larger than %d bytes", maxConfigSize))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fail("(file)", 0, "is not valid JSON or YAML: "+err.Error())
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return fail("(file)", 0, "is empty")
	}
	p := &treeParser{lines: map[string]int{}, lookup: lookup, env: map[string]string{}}
	root := doc.Content[0]
	tree := p.value(root, "")
	name := ""
	if m, ok := tree.(map[string]any); ok {
		name, _ = m["name"].(string)
	}
	if len(p.errs) == 0 {
		p.check(tree, reflect.TypeFor[Config](), "")
	}
	if len(p.errs) > 0 {
		return Config{}, p.hide(&ConfigError{File: source, Config: name, Fields: p.errs})
	}
	js, err := json.Marshal(tree)
	if err != nil {
		return fail("(file)", 0, "cannot be read as a config: "+err.Error())
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	dec.UseNumber()                        // param and filter values keep every digit
	if err := dec.Decode(&c); err != nil { // the checks above make this unexpected
		return Config{}, p.hide(&ConfigError{File: source, Config: name, Fields: []*FieldError{{Field: "(file)", Problem: err.Error()}}})
	}
	c.Source, c.lines = source, p.lines
	if err := c.Validate(); err != nil {
		if ce, ok := err.(*ConfigError); ok {
			return Config{}, p.hide(ce)
		}
		return Config{}, err
	}
	return c, nil
}

type treeParser struct {
	lines  map[string]int
	errs   []*FieldError
	lookup func(string) (string, bool)
	env    map[string]string // values taken from the environment, by variable name
	depth  int
}

func (p *treeParser) fail(path string, line int, format string, args ...any) {
	if path == "" {
		path = "(file)"
	}
	p.errs = append(p.errs, &FieldError{Field: path, Line: line, Problem: fmt.Sprintf(format, args...)})
}

// value converts a YAML node into plain Go values (map[string]any, []any, string, bool,
// int64, float64, nil), recording each path's line and expanding ${VAR} in strings.
func (p *treeParser) value(n *yaml.Node, path string) any {
	p.lines[path] = n.Line
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 64 {
		p.fail(path, n.Line, "is nested too deeply")
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		p.fail(path, n.Line, "YAML aliases are not supported in configs")
		return nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				p.fail(path, k.Line, "has a key that is not a string")
				continue
			}
			if k.Value == "<<" {
				p.fail(path, k.Line, "YAML merge keys are not supported in configs")
				continue
			}
			sub := joinField(path, k.Value)
			if _, dup := m[k.Value]; dup {
				p.fail(sub, k.Line, "is set twice")
				continue
			}
			m[k.Value] = p.value(v, sub)
			p.lines[sub] = k.Line
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, e := range n.Content {
			s[i] = p.value(e, fmt.Sprintf("%s[%d]", path, i))
		}
		return s
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				p.fail(path, n.Line, "%v", err)
			}
			return b
		case "!!int", "!!float":
			if n.Tag == "!!int" {
				if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
					return i
				}
			}
			if isDecimalInt(n.Value) { // an integer beyond int64 (YAML tags some !!float): kept exact
				return json.Number(strings.TrimPrefix(n.Value, "+"))
			}
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				p.fail(path, n.Line, "number %s is out of range", n.Value)
				return nil
			}
			return f
		case "!!str", "":
			s, err := p.expand(n.Value)
			if err != nil {
				p.fail(path, n.Line, "%v", err)
			}
			return s
		default:
			p.fail(path, n.Line, "has the unsupported YAML type %s", n.Tag)
			return nil
		}
	}
	p.fail(path, n.Line, "cannot be read")
	return nil
}

func isDecimalInt(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	durationType  = reflect.TypeFor[backend.Duration]()
	conditionType = reflect.TypeFor[Condition]()
	anyType       = reflect.TypeFor[any]()
)

// check compares the tree with the Go type the config decodes into, naming every
// unknown field and wrong type with its path and line. Scalars given where a string is
// wanted (a header value 2.0) become their text.
func (p *treeParser) check(v any, t reflect.Type, path string) any {
	line := p.lines[path]
	if v == nil {
		return nil
	}
	switch {
	case t == anyType:
		return v
	case t == durationType:
		switch x := v.(type) {
		case string:
			var d backend.Duration
			if err := d.UnmarshalJSON([]byte(strconv.Quote(x))); err != nil {
				p.fail(path, line, "invalid duration %q: use a number of seconds or a Go duration such as \"5s\"", x)
			}
		case int64, float64:
		default:
			p.fail(path, line, "must be a duration (\"5s\") or a number of seconds")
		}
		return v
	case t == conditionType:
		s, ok := v.([]any)
		if !ok || len(s) != 3 {
			p.fail(path, line, "a filter condition is a list of three: [field, operator, value]")
			return v
		}
		if _, ok := s[0].(string); !ok {
			p.fail(path+"[0]", p.lines[path+"[0]"], "the field of a condition must be a string")
		}
		if _, ok := s[1].(string); !ok {
			p.fail(path+"[1]", p.lines[path+"[1]"], "the operator of a condition must be a string")
		}
		return v
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			p.fail(path, line, "must be a mapping of settings")
			return v
		}
		fields := map[string]reflect.StructField{}
		var known []string
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			fields[tag] = f
			known = append(known, tag)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			f, ok := fields[k]
			sub := joinField(path, k)
			if !ok {
				hint := ""
				if near := nearest(k, known); near != "" {
					hint = fmt.Sprintf(" (did you mean %s?)", near)
				}
				p.fail(sub, p.lines[sub], "is not a known field%s", hint)
				continue
			}
			m[k] = p.check(m[k], f.Type, sub)
		}
		return m
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			p.fail(path, line, "must be a list")
			return v
		}
		for i := range s {
			s[i] = p.check(s[i], t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
		return s
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			p.fail(path, line, "must be a mapping")
			return v
		}
		for k := range m {
			m[k] = p.check(m[k], t.Elem(), joinField(path, k))
		}
		return m
	case reflect.String:
		switch x := v.(type) {
		case string:
			return x
		case int64:
			if t == reflect.TypeFor[string]() && strings.HasPrefix(path, "headers.") {
				return strconv.FormatInt(x, 10)
			}
		case float64:
			if strings.HasPrefix(path, "headers.") {
				return strconv.FormatFloat(x, 'f', -1, 64)
			}
		case bool:
			if strings.HasPrefix(path, "headers.") {
				return strconv.FormatBool(x)
			}
		}
		p.fail(path, line, "must be a string")
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			p.fail(path, line, "must be true or false")
		}
	case reflect.Int, reflect.Int64:
		switch x := v.(type) {
		case int64:
		case float64:
			if x != math.Trunc(x) {
				p.fail(path, line, "must be a whole number")
			}
		case json.Number:
			p.fail(path, line, "%s is out of range", x)
		default:
			p.fail(path, line, "must be a number")
		}
	}
	return v
}

// nearest returns the known name closest to s (a typo), or "".
func nearest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// expand expands ${VAR} and ${VAR:-default}; "$$" is a literal "$"; a bare $ stays. The
// values taken from the environment are kept, so errors can hide them.
func (p *treeParser) expand(s string) (string, error) {
	return envref.Expand(s, p.lookup, func(name, value string) { p.env[name] = value })
}

// hide replaces in e's texts every value taken from the environment by its reference,
// so an error quoting a misplaced secret does not leak it.
func (p *treeParser) hide(e *ConfigError) *ConfigError {
	for name, val := range p.env {
		if len(val) < 4 {
			continue
		}
		ref := "${" + name + "}"
		q := strconv.Quote(val)
		for _, f := range e.Fields {
			f.Problem = strings.ReplaceAll(strings.ReplaceAll(f.Problem, q[1:len(q)-1], ref), val, ref)
		}
		e.Config = strings.ReplaceAll(e.Config, val, ref)
	}
	return e
}

// UnmarshalJSON reads a condition written as [field, operator, value].
func (c *Condition) UnmarshalJSON(b []byte) error {
	var s []json.RawMessage
	if err := json.Unmarshal(b, &s); err != nil || len(s) != 3 {
		return fmt.Errorf("a filter condition is a list of three: [field, operator, value]")
	}
	if err := json.Unmarshal(s[0], &c.Field); err != nil {
		return fmt.Errorf("the field of a condition must be a string")
	}
	if err := json.Unmarshal(s[1], &c.Operator); err != nil {
		return fmt.Errorf("the operator of a condition must be a string")
	}
	dec := json.NewDecoder(bytes.NewReader(s[2]))
	dec.UseNumber()
	return dec.Decode(&c.Value)
}

// MarshalJSON writes a condition as [field, operator, value].
func (c Condition) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{c.Field, c.Operator, c.Value})
}
