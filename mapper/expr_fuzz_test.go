package mapper

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// exprTrap is a Go value an app may put in local values: its Act method must stay out
// of an expression's reach. String is allowed (string() and converters use it).
type exprTrap struct{ acted *atomic.Bool }

func (t exprTrap) Act() string    { t.acted.Store(true); return "acted" }
func (t exprTrap) String() string { return "trap" }

// FuzzExpr: an expression either fails to build with a *SpecError (ErrInvalidRule) or
// builds and then, on any record, evaluates within its limits: no panic, errors are
// *MappingError, strings no longer than MaxString, integers normalized to int64, and
// never a call of a method of a Go value found in the local values.
func FuzzExpr(f *testing.F) {
	for _, code := range []string{
		`upper(record.sku)`, `float(value) * 1.2`, `value + "0"`, `field("first") + " " + field("last")`,
		`sum(record.lines, #.q)`, `request.channel ?? "api"`, `create`, `b64decode(value)`, `b64encode(value)`,
		`parseTime("2006-01-02", value).Year()`, `formatTime(date(value), "02/01/2006")`,
		`split(record.sku, "-")[1] + trim("  x ") + replace("a.b", ".", "/")`, `coalesce(record.nope, "", "x")`,
		`{"a": record.id, "b": lower(record.first)}`, `record.id > 100 ? {"big": true} : nil`,
		`len(1..100000000)`, `len(map(1..1000, map(1..1000, map(1..1000, #))))`,
		`len(repeat(repeat("x", 10000), 1000))`, `len(reduce(1..90000, #acc + #acc, "x"))`,
		`len(reduce(1..64, replace(#acc, "x", "xx"), "x"))`, `len(join(map(1..50000, repeat("x", 1000)), ""))`,
		`len(toJSON(map(1..50000, repeat("y", 100000))))`, `len(string(map(1..50000, repeat("y", 100000))))`,
		`date("2024-01-02").Add(duration("24h")).Format("2006-01-02")`, `upper(1)`, `__g`,
		`value.Act()`, `record.trap.Act()`, `$env.record.trap.Act()`, `value?.Act()`, `map([value], #.Act())`,
		`record.trap.String()`, `string(record.trap)`, `toJSON(record)`, `let f = record.trap; f.Act()`,
		`1 + 2`, `int("7") + 1`, `repeat("ab", -1)`, `repeat("ab", 1e18)`,
	} {
		f.Add(code, []byte(`{"id":7,"sku":"A-1","first":"Ada","last":"L","lines":[{"q":1},{"q":2}]}`))
	}
	f.Add(`value`, []byte(`{"value":"2024-01-02"}`))
	limits := exprLimits{MaxNodes: 300, MemoryBudget: 20_000, MaxString: 4096, MaxBytes: 64 << 10, Timeout: 5 * time.Second}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, code string, record []byte) {
		var acted atomic.Bool
		trap := exprTrap{&acted}
		check := func(what string, build error, run func() (Values, error)) {
			if build != nil {
				var se *SpecError
				if !errors.As(build, &se) || !errors.Is(build, ErrInvalidRule) {
					t.Fatalf("%s: build error is not a *SpecError: %T %v", what, build, build)
				}
				return
			}
			out, err := run()
			if acted.Load() {
				t.Fatalf("%s: %q called a method of a Go value in the local values", what, code)
			}
			if err != nil {
				var me *MappingError
				if !errors.As(err, &me) || err.Error() == "" {
					t.Fatalf("%s: error is not a *MappingError: %T %v", what, err, err)
				}
				return
			}
			for k, v := range out {
				switch x := v.(type) {
				case string:
					if len(x) > limits.MaxString {
						t.Fatalf("%s: %s is a string of %d bytes, over MaxString", what, k, len(x))
					}
				case int, int8, int16, int32, uint, uint8, uint16, uint32:
					t.Fatalf("%s: %s is %T, not int64", what, k, v)
				}
			}
		}
		// Import: the record is the external JSON.
		imp, err := NewImport("fuzz", []Rule{Expr("value", "out", code)}, withExprLimits(limits))
		check("import expr", err, func() (Values, error) { return imp.Map(ctx, record, Options{Create: true}) })
		ex, err := NewImport("fuzz", []Rule{Exec(code)}, withExprLimits(limits))
		check("import exec", err, func() (Values, error) { return ex.Map(ctx, record, Options{}) })
		// Export: the record is local values holding a Go value with methods.
		local := Values{"value": trap, "trap": trap, "sku": string(record), "id": int32(7)}
		exp, err := NewExport("fuzz", []Rule{Expr("value", "out", code)}, withExprLimits(limits))
		check("export expr", err, func() (Values, error) {
			b, err := exp.Map(ctx, local, Options{})
			if err != nil {
				return nil, err
			}
			return Values{"payload": fmt.Sprint(len(b))}, nil
		})
	})
}
