package mapper

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is what an expression sees. It holds data only: expr cannot call methods on
// it and there are no I/O functions, so an expression can compute but not act.
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
	// Field reads one path of the source record without decoding all of it.
	Field func(string) any `expr:"field"`
}

// program is a compiled expression with what it needs from the environment.
type program struct {
	prog        *vm.Program
	usesRecord  bool
	usesField   bool
	usesValues  bool
	usesRequest bool
}

var exprFunctions = []expr.Option{
	expr.Function("b64encode", func(p ...any) (any, error) {
		return base64.StdEncoding.EncodeToString([]byte(p[0].(string))), nil
	}, new(func(string) string)),
	expr.Function("b64decode", func(p ...any) (any, error) {
		b, err := base64.StdEncoding.DecodeString(p[0].(string))
		if err != nil {
			return nil, fmt.Errorf("b64decode: %w", err)
		}
		return string(b), nil
	}, new(func(string) string)),
	expr.Function("parseTime", func(p ...any) (any, error) {
		t, err := time.Parse(p[0].(string), p[1].(string))
		if err != nil {
			return nil, fmt.Errorf("parseTime: %w", err)
		}
		return t, nil
	}, new(func(layout, value string) time.Time)),
	expr.Function("formatTime", func(p ...any) (any, error) {
		return p[0].(time.Time).Format(p[1].(string)), nil
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

func compileExpr(code string, maxNodes uint) (*program, error) {
	opts := append([]expr.Option{expr.Env(exprEnv{}), expr.MaxNodes(maxNodes)}, exprFunctions...)
	p, err := expr.Compile(code, opts...)
	if err != nil {
		return nil, fmt.Errorf("expression does not compile: %w", err)
	}
	v := &identVisitor{names: map[string]bool{}}
	node := p.Node()
	ast.Walk(&node, v)
	return &program{
		prog:        p,
		usesRecord:  v.names["record"],
		usesField:   v.names["field"],
		usesValues:  v.names["values"],
		usesRequest: v.names["request"],
	}, nil
}

var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

// run evaluates p with a memory budget. expr has no loops or I/O; with the node limit
// at compile time and the memory budget here, a run is bounded in time and space.
func (p *program) run(env *exprEnv, budget uint) (out any, err error) {
	machine := vmPool.Get().(*vm.VM)
	machine.MemoryBudget = budget
	defer func() {
		if r := recover(); r != nil { // expr recovers itself; belt and braces
			err = fmt.Errorf("%w: panic: %v", ErrExpression, r)
		}
		vmPool.Put(machine)
	}()
	out, err = machine.Run(p.prog, *env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExpression, err)
	}
	return normalize(out), nil
}

// normalize makes integers int64, as on the JSON side, so results do not depend on how
// expr happened to compute them; maps are normalized one level deep (execute patches).
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint:
		return int64(x)
	case uint32:
		return int64(x)
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
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
