package mapper

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExpressionsImport(t *testing.T) {
	ctx := context.Background()
	rec := []byte(`{"id": 5, "sku": "ab-1", "price": "10", "first": "Ada", "last": "Lovelace",
		"born": "1815-12-10", "secret": "aGVsbG8=", "lines": [{"q": 2}, {"q": 3}]}`)
	tests := []struct {
		name    string
		rule    Rule
		want    Values
		wantErr error
	}{
		{"record", Expr("", "code", `upper(record.sku)`), Values{"code": "AB-1"}, nil},
		{"value", Expr("price", "price", `float(value) * 1.2`), Values{"price": 12.0}, nil},
		{"value + converter", Expr("price", "price", `value + "0"`, Int()), Values{"price": int64(100)}, nil},
		{"field helper", Expr("", "name", `field("first") + " " + field("last")`), Values{"name": "Ada Lovelace"}, nil},
		{"array path", Expr("", "q", `field("lines.1.q") * 2`), Values{"q": int64(6)}, nil},
		{"sum over array", Expr("", "total", `sum(record.lines, #.q)`), Values{"total": int64(5)}, nil},
		{"request", Expr("", "source", `request.channel ?? "api"`), Values{"source": "webhook"}, nil},
		{"create flag", Expr("", "is_new", `create`), Values{"is_new": true}, nil},
		{"b64decode", Expr("secret", "plain", `b64decode(value)`), Values{"plain": "hello"}, nil},
		{"b64encode", Expr("sku", "enc", `b64encode(value)`), Values{"enc": "YWItMQ=="}, nil},
		{"date helpers", Expr("born", "year", `parseTime("2006-01-02", value).Year()`), Values{"year": int64(1815)}, nil},
		{"formatTime", Expr("born", "fr", `formatTime(date(value), "02/01/2006")`), Values{"fr": "10/12/1815"}, nil},
		{"string helpers", Expr("", "parts", `split(record.sku, "-")[1] + trim("  x ") + replace("a.b", ".", "/")`), Values{"parts": "1xa/b"}, nil},
		{"coalesce", Expr("", "c", `coalesce(record.nope, "", "fallback")`), Values{"c": "fallback"}, nil},
		{"nil result with default", Expr("", "d", `record.nope`, Default("dflt")), Values{"d": "dflt"}, nil},
		{"execute patch", Exec(`{"a": record.id, "b": lower(record.first)}`), Values{"a": int64(5), "b": "ada"}, nil},
		{"execute nil", Exec(`record.id > 100 ? {"big": true} : nil`), Values{}, nil},
		{"execute wrong type", Exec(`42`), nil, nil},
		{"runtime error", Expr("", "x", `b64decode("%%%")`), nil, ErrExpression},
		{"memory budget", Expr("", "x", `len(1..100000000)`), nil, ErrExpression},
		{"nested blowup", Expr("", "x", `len(map(1..1000, map(1..1000, map(1..1000, #))))`), nil, ErrExpression},
		{"repeat blowup", Expr("", "x", `len(repeat(repeat("x", 10000), 1000))`), nil, ErrExpression},
		{"quadratic concat", Expr("", "x", `len(reduce(1..90000, #acc + "xxxxxxxxxxxxxxxx", ""))`), nil, ErrExpression},
		{"doubling concat", Expr("", "x", `len(reduce(1..90000, #acc + #acc, "x"))`), nil, ErrExpression},
		{"doubling replace", Expr("", "x", `len(reduce(1..64, replace(#acc, "x", "xx"), "x"))`), nil, ErrExpression},
		{"join of shared big string", Expr("", "x", `len(join(map(1..50000, repeat("x", 1000)), ""))`), nil, ErrExpression},
		{"toJSON blowup", Expr("", "x", `len(toJSON(map(1..50000, repeat("y", 100000))))`), nil, ErrExpression},
		{"string() blowup", Expr("", "x", `len(string(map(1..50000, repeat("y", 100000))))`), nil, ErrExpression},
		{"time arithmetic", Expr("", "x", `now() - date("2024-01-01") > duration("1h") && date("2024-01-01") < now()`), Values{"x": true}, nil},
		{"time methods", Expr("", "x", `date("2024-01-02").Add(duration("24h")).Format("2006-01-02")`), Values{"x": "2024-01-03"}, nil},
		{"ternary and in", Expr("", "x", `"b" in split("a,b", ",") ? upper("y") : "n"`), Values{"x": "Y"}, nil},
		{"type error at build", Expr("", "x", `upper(1)`), nil, nil},
		{"reserved name", Expr("", "x", `__g`), nil, nil},
		{"guards keep semantics", Expr("", "x", `join(map(split("a,b", ","), upper(#)), "+") + string(1) + repeat("z", 2) + replace("aXb", "X", "-")`),
			Values{"x": "A+B1zza-b"}, nil},
	}
	// Type errors are build errors, never mapping errors.
	buildFails := map[string]bool{"type error at build": true, "reserved name": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewImport("p", []Rule{tt.rule})
			if buildFails[tt.name] {
				if !errors.Is(err, ErrInvalidRule) {
					t.Fatalf("want a build error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Map(ctx, rec, Options{Create: true, Request: map[string]any{"channel": "webhook"}})
			if tt.want == nil {
				if err == nil {
					t.Fatalf("want error, got %v", got)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestExpressionSeesEarlierValuesAndExport(t *testing.T) {
	ctx := context.Background()
	m := must(NewImport("p", []Rule{
		Direct("price", "list_price", Float()),
		Expr("", "with_tax", `values.list_price * 1.2`),
	}))
	got, err := m.Map(ctx, []byte(`{"price": "10"}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got["with_tax"] != 12.0 {
		t.Fatalf("got %v", got)
	}
	e := must(NewExport("p", []Rule{
		Direct("name", "title"),
		Expr("write_date", "updated", `formatTime(value, "2006-01-02")`),
		Expr("", "label", `values.title + " (" + record.partner_id.name + ")"`),
		Exec(`{"meta.count": len(record.tags), "meta.first": field("tags.0")}`),
	}))
	p, err := e.Map(ctx, Values{"name": "Shirt", "write_date": time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC),
		"partner_id": Values{"name": "ACME"}, "tags": []any{"x", "y"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, `{"title":"Shirt","updated":"2024-05-06","label":"Shirt (ACME)","meta":{"count":2,"first":"x"}}`, p)
}

func TestExpressionLimitsConfigurable(t *testing.T) {
	code := strings.Repeat("1+", 40) + "1"
	if _, err := NewImport("p", []Rule{Expr("", "x", code)}, withExprLimits(exprLimits{MaxNodes: 20})); err == nil {
		t.Fatal("node limit not applied")
	}
	m := must(NewImport("p", []Rule{Expr("", "x", `len(1..5000)`)}, withExprLimits(exprLimits{MemoryBudget: 1000})))
	if _, err := m.Map(context.Background(), []byte(`{}`), Options{}); !errors.Is(err, ErrExpression) {
		t.Fatalf("memory budget not applied: %v", err)
	}
	m = must(NewImport("p", []Rule{Expr("", "x", `len(1..5000)`)}))
	if v, err := m.Map(context.Background(), []byte(`{}`), Options{}); err != nil || v["x"] != int64(5000) {
		t.Fatalf("default budget: %v %v", v, err)
	}
}

func TestExpressionTimeoutAndCancel(t *testing.T) {
	// A busy but small expression: the guard stops it at the timeout; no wall-clock
	// assertion, only the kind of error.
	busy := `reduce(1..90000, #acc + len(repeat("ab", 10)), 0)`
	m := must(NewImport("p", []Rule{Expr("", "x", busy)}, withExprLimits(exprLimits{Timeout: time.Nanosecond})))
	_, err := m.Map(context.Background(), []byte(`{}`), Options{})
	if !errors.Is(err, ErrExpression) || !strings.Contains(err.Error(), "ran longer") {
		t.Fatalf("timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m = must(NewImport("p", []Rule{
		Func("cancel", func(context.Context, *Record) (Values, error) { cancel(); return nil, nil }),
		Expr("", "x", busy),
	}))
	if _, err := m.Map(ctx, []byte(`{}`), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestExpressionConcurrent(t *testing.T) {
	m := must(NewImport("p", []Rule{Expr("n", "x", `value * 2`), Exec(`{"y": field("n") + 1}`)}))
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 200; i++ {
				v, err := m.Map(context.Background(), []byte(`{"n": 21}`), Options{})
				if err == nil && (v["x"] != int64(42) || v["y"] != int64(22)) {
					err = errors.New("wrong result")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
