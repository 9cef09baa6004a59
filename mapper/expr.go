package mapper

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is what an expression sees. It holds data only: there are no I/O functions,
// so an expression can compute but not act.
type exprEnv struct {
	// Record is the source record: the external JSON object on import, the local
	// values on export. Decoded only when the expression uses it.
	Record map[string]any `expr:"record"`
	// Values are the values mapped so far by earlier rules.
	Values map[string]any `expr:"values"`
	// Request is Options.Request.
	Request map[string]any `expr:"request"`
	// Value is the value at the rule's source path, if it has one.
	Value any `expr:"value"`
	// Create is Options.Create.
	Create bool `expr:"create"`
	// Field reads one path of the source record without decoding all of it. Its error
	// (a related record that cannot be read) fails the evaluation.
	Field func(string) (any, error) `expr:"field"`
	// Guard enforces the run-time limits (see guardPatcher).
	Guard *guard `expr:"__g"`
}

// program is a compiled expression with what it needs from the environment.
type program struct {
	prog       *vm.Program
	limits     exprLimits
	usesRecord bool
	usesField  bool
}

// guard is checked after every call and string concatenation of an expression (the
// compiler wraps them, see guardPatcher). It bounds the size of the strings an
// evaluation produces — expr's memory budget counts arrays and ranges but not string
// bytes — and the evaluation's time, and honours the caller's context. Everything an
// expression can repeat (map, filter, reduce…) repeats a guarded call or is bounded by
// expr's memory budget.
type guard struct {
	ctx      context.Context
	deadline time.Time
	steps    uint32
	bytes    int
	limits   *exprLimits
}

var errLimit = errors.New("expression exceeded its limits")

func (g *guard) check(v any) error {
	g.steps++
	switch x := v.(type) {
	case string:
		if len(x) > g.limits.MaxString {
			return fmt.Errorf("%w: string of %d bytes (max %d)", errLimit, len(x), g.limits.MaxString)
		}
		g.bytes += len(x)
	case []any:
		g.bytes += 16 * len(x)
	}
	if g.bytes > g.limits.MaxBytes {
		return fmt.Errorf("%w: produced more than %d bytes", errLimit, g.limits.MaxBytes)
	}
	if g.steps&63 == 0 {
		if err := g.ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(g.deadline) {
			return fmt.Errorf("%w: ran longer than %v", errLimit, g.limits.Timeout)
		}
	}
	return nil
}

// guardPatcher wraps every call, builtin and "+" in __guard(__g, node).
type guardPatcher struct{}

func (guardPatcher) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && id.Value == "__guard" {
			return
		}
	case *ast.BuiltinNode:
	case *ast.BinaryNode:
		if x.Operator != "+" {
			return
		}
	default:
		return
	}
	ast.Patch(n, &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: "__guard"},
		Arguments: []ast.Node{&ast.IdentifierNode{Value: "__g"}, *n},
	})
}

// strArg returns argument i of a function as a string. Arguments typed any (record
// values) reach the function unchecked, so a wrong type is an error, not a panic.
func strArg(fn string, p []any, i int) (string, error) {
	s, ok := p[i].(string)
	if !ok {
		return "", fmt.Errorf("%s: argument %d is %T, not a string", fn, i+1, p[i])
	}
	return s, nil
}

func sizeErr(fn string, n, limit int) error {
	return fmt.Errorf("%w: %s would produce %d bytes (max %d)", errLimit, fn, n, limit)
}

// estimate returns roughly how many bytes v prints as, stopping once past limit.
func estimate(v any, limit int) int {
	switch x := v.(type) {
	case string:
		return len(x) + 2
	case []any:
		n := 2
		for _, e := range x {
			if n += estimate(e, limit) + 1; n > limit {
				return n
			}
		}
		return n
	case map[string]any:
		n := 2
		for k, e := range x {
			if n += len(k) + 4 + estimate(e, limit); n > limit {
				return n
			}
		}
		return n
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		n := 2
		for i := 0; i < rv.Len() && n <= limit; i++ {
			n += estimate(rv.Index(i).Interface(), limit) + 1
		}
		return n
	}
	return 24
}

func exprOptions(l exprLimits) []expr.Option {
	max := l.MaxString
	return []expr.Option{
		expr.Function("__guard", func(p ...any) (any, error) {
			if err := p[0].(*guard).check(p[1]); err != nil {
				return nil, err
			}
			return p[1], nil
		}, new(func(*guard, any) any)),
		expr.Function("b64encode", func(p ...any) (any, error) {
			s, err := strArg("b64encode", p, 0)
			if err != nil {
				return nil, err
			}
			return base64.StdEncoding.EncodeToString([]byte(s)), nil
		}, new(func(string) string)),
		expr.Function("b64decode", func(p ...any) (any, error) {
			s, err := strArg("b64decode", p, 0)
			if err != nil {
				return nil, err
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("b64decode: %w", err)
			}
			return string(b), nil
		}, new(func(string) string)),
		expr.Function("parseTime", func(p ...any) (any, error) {
			layout, err := strArg("parseTime", p, 0)
			if err != nil {
				return nil, err
			}
			value, err := strArg("parseTime", p, 1)
			if err != nil {
				return nil, err
			}
			t, err := time.Parse(layout, value)
			if err != nil {
				return nil, fmt.Errorf("parseTime: %w", err)
			}
			return t, nil
		}, new(func(layout, value string) time.Time)),
		expr.Function("formatTime", func(p ...any) (any, error) {
			t, ok := p[0].(time.Time)
			if !ok {
				return nil, fmt.Errorf("formatTime: argument 1 is %T, not a time (parse it first)", p[0])
			}
			layout, err := strArg("formatTime", p, 1)
			if err != nil {
				return nil, err
			}
			return t.Format(layout), nil
		}, new(func(t time.Time, layout string) string)),
		expr.Function("today", func(p ...any) (any, error) {
			return time.Now().UTC().Format(time.DateOnly), nil
		}, new(func() string)),
		expr.Function("coalesce", func(p ...any) (any, error) {
			for _, v := range p {
				if v != nil && v != "" {
					return v, nil
				}
			}
			return nil, nil
		}),
		// Size-checked replacements of the builtins that can multiply string sizes
		// before the guard sees the result.
		expr.DisableBuiltin("replace"),
		expr.Function("replace", func(p ...any) (any, error) {
			var args [3]string
			for i := range args {
				var err error
				if args[i], err = strArg("replace", p, i); err != nil {
					return nil, err
				}
			}
			s, old, nw := args[0], args[1], args[2]
			n := len(s)
			if c := strings.Count(s, old); len(nw) > len(old) {
				n += c * (len(nw) - len(old))
			}
			if n > max {
				return nil, sizeErr("replace", n, max)
			}
			return strings.ReplaceAll(s, old, nw), nil
		}, new(func(s, old, new string) string)),
		expr.DisableBuiltin("repeat"),
		expr.Function("repeat", func(p ...any) (any, error) {
			s, err := strArg("repeat", p, 0)
			if err != nil {
				return nil, err
			}
			c, err := toInt(p[1]) // int64 when read from JSON
			if err != nil {
				return nil, fmt.Errorf("repeat: count: %w", err)
			}
			n64 := c.(int64)
			if n64 > int64(max) {
				n64 = int64(max) + 1 // too many either way; keeps n in int range
			}
			n := int(n64)
			if n < 0 {
				return nil, fmt.Errorf("repeat: negative count %d", n)
			}
			if n > 0 && len(s) > max/n {
				return nil, sizeErr("repeat", len(s)*n, max)
			}
			return strings.Repeat(s, n), nil
		}, new(func(s string, n int) string)),
		expr.DisableBuiltin("join"),
		expr.Function("join", func(p ...any) (any, error) {
			sep := ""
			if len(p) > 1 {
				var err error
				if sep, err = strArg("join", p, 1); err != nil {
					return nil, err
				}
			}
			rv := reflect.ValueOf(p[0])
			if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
				return nil, fmt.Errorf("join: %T is not an array", p[0])
			}
			parts := make([]string, rv.Len())
			n := 0
			for i := range parts {
				s, ok := rv.Index(i).Interface().(string)
				if !ok {
					return nil, fmt.Errorf("join: element %d is %T, not a string", i, rv.Index(i).Interface())
				}
				if n += len(s) + len(sep); n > max {
					return nil, sizeErr("join", n, max)
				}
				parts[i] = s
			}
			return strings.Join(parts, sep), nil
		}, new(func(arr any) string), new(func(arr any, sep string) string)),
		expr.DisableBuiltin("toJSON"),
		expr.Function("toJSON", func(p ...any) (any, error) {
			if n := estimate(p[0], max); n > max {
				return nil, sizeErr("toJSON", n, max)
			}
			b, err := json.Marshal(p[0])
			if err != nil {
				return nil, fmt.Errorf("toJSON: %w", err)
			}
			return string(b), nil
		}, new(func(any) string)),
		expr.DisableBuiltin("string"),
		expr.Function("string", func(p ...any) (any, error) {
			if s, err := toString(p[0]); err == nil {
				return s, nil
			}
			if p[0] == nil {
				return "<nil>", nil
			}
			if n := estimate(p[0], max); n > max {
				return nil, sizeErr("string", n, max)
			}
			return fmt.Sprint(p[0]), nil
		}, new(func(any) string)),
	}
}

// exprFuncs are the names an expression may call: expr's enabled builtins, the functions
// exprOptions declares and the environment's field().
var exprFuncs = sync.OnceValue(func() map[string]bool {
	c := conf.CreateNew()
	for _, o := range exprOptions(exprLimits{}) {
		o(c)
	}
	names := map[string]bool{"field": true}
	for n := range c.Builtins {
		if !c.Disabled[n] {
			names[n] = true
		}
	}
	for n := range c.Functions {
		if !strings.HasPrefix(n, "__") {
			names[n] = true
		}
	}
	return names
})

var durationType = reflect.TypeOf(time.Duration(0))

// sandboxVisitor checks a type-checked expression: it may call the known functions and
// methods of time values, nothing else. expr would otherwise call any exported method
// of a Go value it reads, and export values may hold any Go value the app put there.
// Variables cannot hide a function, so a call by name is always the function.
type sandboxVisitor struct {
	funcs map[string]bool
	err   error
}

func (v *sandboxVisitor) Visit(n *ast.Node) {
	if v.err != nil {
		return
	}
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if strings.HasPrefix(x.Value, "__") {
			v.err = fmt.Errorf("name %s is reserved", x.Value)
		}
	case *ast.VariableDeclaratorNode:
		if v.funcs[x.Name] || strings.HasPrefix(x.Name, "__") {
			v.err = fmt.Errorf("let %s: the name is taken by a function", x.Name)
		}
	case *ast.CallNode:
		switch c := x.Callee.(type) {
		case *ast.IdentifierNode:
			if !v.funcs[c.Value] {
				v.err = fmt.Errorf("%s is not a function an expression may call", c.Value)
			}
		case *ast.MemberNode:
			if t := c.Node.Type(); t != timeType && t != durationType {
				name := "a method"
				if s, ok := c.Property.(*ast.StringNode); ok {
					name = s.Value + "()"
				}
				v.err = fmt.Errorf("%s: only methods of time values may be called, not of %s", name, t)
			}
		default:
			v.err = errors.New("only functions and methods of time values may be called")
		}
	}
}

// identVisitor records which environment names an expression uses.
type identVisitor struct{ names map[string]bool }

func (v *identVisitor) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		v.names[x.Value] = true
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok {
			v.names[id.Value] = true
		}
	}
}

// compileExpr compiles code twice: once as written, for exact type checking (guarding
// hides static types), then with the guard calls that run.
func compileExpr(code string, l exprLimits) (*program, error) {
	base := append([]expr.Option{expr.Env(exprEnv{}), expr.MaxNodes(l.MaxNodes)}, exprOptions(l)...)
	plain, err := expr.Compile(code, base...)
	if err != nil {
		return nil, fmt.Errorf("expression does not compile: %w", err)
	}
	sb := &sandboxVisitor{funcs: exprFuncs()}
	checked := plain.Node()
	if ast.Walk(&checked, sb); sb.err != nil {
		return nil, fmt.Errorf("expression is not allowed: %w", sb.err)
	}
	guarded, err := expr.Compile(code, append(base, expr.MaxNodes(4*l.MaxNodes), expr.Patch(guardPatcher{}))...)
	if err != nil {
		return nil, fmt.Errorf("expression does not compile with guards (please report): %w", err)
	}
	v := &identVisitor{names: map[string]bool{}}
	node := plain.Node()
	ast.Walk(&node, v)
	return &program{
		prog:       guarded,
		limits:     l,
		usesRecord: v.names["record"],
		usesField:  v.names["field"],
	}, nil
}

type runner struct {
	vm vm.VM
	g  guard
}

var runnerPool = sync.Pool{New: func() any { return new(runner) }}

// run evaluates p within its limits: expr's node limit (compile time) and memory budget,
// plus the guard's string, time and context checks.
func (p *program) run(ctx context.Context, env *exprEnv) (out any, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := runnerPool.Get().(*runner)
	r.vm.MemoryBudget = p.limits.MemoryBudget
	r.g = guard{ctx: ctx, deadline: time.Now().Add(p.limits.Timeout), limits: &p.limits}
	env.Guard = &r.g
	defer func() {
		if rec := recover(); rec != nil { // expr recovers itself; belt and braces
			err = fmt.Errorf("%w: panic: %v", ErrExpression, rec)
		}
		r.g = guard{}
		runnerPool.Put(r)
	}()
	out, err = r.vm.Run(p.prog, *env)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("%w: %w", ErrExpression, cerr)
		}
		return nil, fmt.Errorf("%w: %w", ErrExpression, err)
	}
	return normalize(out), nil
}

// normalize makes integers int64, as on the JSON side, so results do not depend on how
// expr happened to compute them; maps are normalized one level deep into a copy
// (execute patches), never in place: the map may be the caller's.
func normalize(v any) any {
	switch x := v.(type) {
	case int, int8, int16, int32, uint, uint8, uint16, uint32, uint64:
		return widen(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

func execResult(v any) (map[string]any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return x, nil
	}
	return nil, errors.New("execute-mode expression must return a map (or nil), got " + fmt.Sprintf("%T", v))
}
