package apisync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/mapper"
)

// compileFilter compiles a filter expression once, as an expression rule of package
// mapper: the same sandbox, limits and helpers as the mapping lines.
func compileFilter(code string) (*mapper.ExportMapper, error) {
	m, err := mapper.NewExport("filter_expression", []mapper.Rule{mapper.Expr("", "match", code)})
	if err != nil {
		var se *mapper.SpecError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("does not compile: %v", se.Err)
		}
		return nil, fmt.Errorf("does not compile: %v", err)
	}
	return m, nil
}

// filter is a compiled Filter + FilterExpression.
type filter struct {
	conds []Condition
	prog  *mapper.ExportMapper
	likes map[int]*regexp.Regexp
}

func newFilter(conds []Condition, code string) (*filter, error) {
	f := &filter{conds: conds, likes: map[int]*regexp.Regexp{}}
	for i, c := range conds {
		if c.Operator == "like" {
			f.likes[i] = likePattern(fmt.Sprint(plain(c.Value)))
		}
	}
	if code != "" {
		p, err := compileFilter(code)
		if err != nil {
			return nil, err
		}
		f.prog = p
	}
	return f, nil
}

// match reports whether rec passes every condition and the expression.
func (f *filter) match(ctx context.Context, rec map[string]any) (bool, error) {
	for i, c := range f.conds {
		ok, err := compare(readPath(rec, c.Field), c.Operator, c.Value, f.likes[i])
		if err != nil {
			return false, fmt.Errorf("filter[%d] %s %s: %w", i, c.Field, c.Operator, err)
		}
		if !ok {
			return false, nil
		}
	}
	if f.prog == nil {
		return true, nil
	}
	out, err := f.prog.Map(ctx, plainMap(rec), mapper.Options{})
	if err != nil {
		return false, fmt.Errorf("filter_expression: %w", err)
	}
	switch r := gjson.GetBytes(out, "match"); r.Type {
	case gjson.True:
		return true, nil
	case gjson.False, gjson.Null:
		return false, nil
	default:
		return false, fmt.Errorf("filter_expression: must yield true or false, got %s", r.Raw)
	}
}

// readPath reads a dotted path through nested maps.
func readPath(rec map[string]any, path string) any {
	var cur any = rec
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// plain turns json.Number into int64 or float64, recursively, for expressions and
// comparisons that do not know json.Number.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		return plainMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

func plainMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = plain(v)
	}
	return out
}

// compare evaluates `have op want`. Numbers compare as numbers (exactly, as decimals),
// strings as strings (ISO dates sort), bools and nulls by equality. A missing field is
// null. Comparing a number with a non-numeric string is false, not an error.
func compare(have any, op string, want any, like *regexp.Regexp) (bool, error) {
	switch op {
	case "in":
		list, ok := want.([]any)
		if !ok {
			return false, fmt.Errorf("the in operator needs a list")
		}
		for _, w := range list {
			if eq, _ := compare(have, "=", w, nil); eq {
				return true, nil
			}
		}
		return false, nil
	case "like":
		if have == nil {
			return false, nil
		}
		if like == nil {
			like = likePattern(fmt.Sprint(plain(want)))
		}
		return like.MatchString(fmt.Sprint(plain(have))), nil
	}
	c, ok := order(have, want)
	switch op {
	case "=":
		return ok && c == 0, nil
	case "!=":
		return !ok || c != 0, nil
	case "<":
		return ok && c < 0, nil
	case "<=":
		return ok && c <= 0, nil
	case ">":
		return ok && c > 0, nil
	case ">=":
		return ok && c >= 0, nil
	}
	return false, fmt.Errorf("unknown operator %q", op)
}

// order compares a and b: ok is false when they are not comparable (different kinds).
func order(a, b any) (int, bool) {
	if a == nil || b == nil {
		if a == nil && b == nil {
			return 0, true
		}
		return 0, false
	}
	if x, ok := number(a); ok {
		y, ok := number(b)
		if !ok {
			return 0, false
		}
		return x.Cmp(y), true
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case bool:
		y, ok := b.(bool)
		if s, isStr := b.(string); isStr { // a query parameter
			var err error
			y, err = strconv.ParseBool(s)
			ok = err == nil
		}
		if !ok || x != y {
			return 1, ok
		}
		return 0, true
	}
	return 0, false
}

// number reads numbers (and numeric strings given where a number is compared, such as a
// query parameter) as exact decimals.
func number(v any) (*big.Rat, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case int:
		return new(big.Rat).SetInt64(int64(x)), true
	case int64:
		return new(big.Rat).SetInt64(x), true
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	case string:
		s = x
		if len(s) > 100 {
			return nil, false
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return nil, false
		}
	default:
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// likePattern compiles a like pattern: % matches any run, _ one character; a pattern
// without either matches as a substring (Odoo's like). Case-sensitive.
func likePattern(p string) *regexp.Regexp {
	if !strings.ContainsAny(p, "%_") {
		p = "%" + p + "%"
	}
	var b strings.Builder
	b.WriteString("^(?s)")
	for _, r := range p {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
