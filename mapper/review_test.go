package mapper

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// "" and false are "no related record" on both sides, never an ID sent to the
// resolver (which would report a missing dependency for a record that has none).
func TestRelationEmptyReference(t *testing.T) {
	ctx := context.Background()
	f := newFakeResolver()
	f.bind("res.partner", "E1", "p1")
	imp := must(NewImport("order", []Rule{
		Relation("customer", "partner_id", "res.partner"),
		Relation("tags", "tag_ids", "res.partner"),
	}, WithResolver(f)))
	for _, rec := range []string{`{"customer":"","tags":["", "E1", false, null]}`, `{"customer":false,"tags":["E1"]}`} {
		got, err := imp.Map(ctx, []byte(rec), Options{})
		if err != nil {
			t.Fatalf("%s: %v", rec, err)
		}
		if d := cmp.Diff(Values{"partner_id": nil, "tag_ids": []string{"p1"}}, got); d != "" {
			t.Fatalf("%s (-want +got):\n%s", rec, d)
		}
	}
	req := must(NewImport("order", []Rule{Relation("customer", "partner_id", "res.partner", Required())}, WithResolver(f)))
	if _, err := req.Map(ctx, []byte(`{"customer":""}`), Options{}); !errors.Is(err, ErrRequired) {
		t.Fatalf("required empty reference: %v", err)
	}

	exp := must(NewExport("order", []Rule{
		Relation("partner_id", "customer", "res.partner"),
		Relation("tag_ids", "tags", "res.partner"),
		Direct("partner_id.name", "customer_name", Through("res.partner")),
	}, WithResolver(f), WithRelated((func(_ context.Context, model, id string) (map[string]any, error) {
		t.Errorf("Related called for %s %q", model, id)
		return nil, errBoom
	}))))
	got, err := exp.Map(ctx, Values{"partner_id": "", "tag_ids": []string{"", "p1"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, `{"customer":null,"tags":["E1"]}`, got)
}

// A custom converter's error is a conversion error like a built-in one's.
func TestCustomConverterErrorIsErrConvert(t *testing.T) {
	errBad := errors.New("not an e-mail address")
	m := must(NewImport("c", []Rule{Direct("email", "email", Convert("email", func(v any) (any, error) {
		return nil, errBad
	}))}))
	_, err := m.Map(context.Background(), []byte(`{"email":"x"}`), Options{})
	if !errors.Is(err, ErrConvert) || !errors.Is(err, errBad) || !strings.Contains(err.Error(), "with email") {
		t.Fatalf("%v", err)
	}
}

type sandboxProbe struct{ N int }

// Secret stands for any method of an app's Go value that an expression must not reach.
func (sandboxProbe) Secret() string { return "method called" }

// Expressions may call the known functions and methods of time values, nothing else:
// expr would otherwise call any exported method of a Go value held in local values.
func TestExprSandboxRejectsMethods(t *testing.T) {
	for _, code := range []string{
		`value.Secret()`,
		`record.x.Secret()`,
		`$env.record.x.Secret()`,
		`value?.Secret()`,
		`map([value], #.Secret())`,
		`let f = value.Secret; f()`,
		`__g`,
	} {
		_, err := NewExport("e", []Rule{Expr("v", "out", code)})
		if !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: %v", code, err)
		}
	}
	for code, want := range map[string]string{
		`date("2024-01-02").Format("2006")`:                 `{"out":"2024"}`,
		`(date("2024-01-02") - date("2024-01-01")).Hours()`: `{"out":24}`,
		`"a__gb"`:     `{"out":"a__gb"}`, // reserved names are identifiers, not text
		`value.N + 1`: `{"out":2}`,       // fields are data
	} {
		m, err := NewExport("e", []Rule{Expr("v", "out", code)})
		if err != nil {
			t.Errorf("%s: %v", code, err)
			continue
		}
		got, err := m.Map(context.Background(), Values{"v": sandboxProbe{1}, "x": sandboxProbe{2}}, Options{})
		if err != nil || string(got) != want {
			t.Errorf("%s: %s %v, want %s", code, got, err, want)
		}
	}
}

// Arguments typed any (record values) reach the functions unchecked: numbers read from
// JSON are int64, and a wrong type is a clear error.
func TestExprFunctionArguments(t *testing.T) {
	ctx := context.Background()
	m := must(NewImport("e", []Rule{Expr("n", "stars", `repeat("*", value)`)}))
	got, err := m.Map(ctx, []byte(`{"n":3}`), Options{})
	if err != nil || got["stars"] != "***" {
		t.Fatalf("repeat with a JSON number: %v %v", got, err)
	}
	for code, msg := range map[string]string{
		`b64encode(value)`:          "b64encode: argument 1 is int64, not a string",
		`parseTime("2006", value)`:  "parseTime: argument 2 is int64, not a string",
		`formatTime(value, "2006")`: "formatTime: argument 1 is int64, not a time",
		`replace("a", "a", value)`:  "replace: argument 3 is int64, not a string",
		`repeat("a", value * 1.5)`:  "repeat: count",
	} {
		m := must(NewImport("e", []Rule{Expr("n", "out", code)}))
		_, err := m.Map(ctx, []byte(`{"n":3}`), Options{})
		if !errors.Is(err, ErrExpression) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", code, err, msg)
		}
	}
}

// An export field() that cannot read a related record fails the record instead of
// mapping null; Record.Get reports the same to func rules.
func TestExportFieldAndReadReportRelatedErrors(t *testing.T) {
	ctx := context.Background()
	rel := (func(_ context.Context, model, id string) (map[string]any, error) {
		if id == "p1" {
			return map[string]any{"name": "ACME"}, nil
		}
		return nil, errBoom
	})
	m := must(NewExport("e", []Rule{Expr("", "company", `field("partner_id.name")`, Through("res.partner"))}, WithRelated(rel)))
	got, err := m.Map(ctx, Values{"partner_id": "p1"}, Options{})
	if err != nil || string(got) != `{"company":"ACME"}` {
		t.Fatalf("%s %v", got, err)
	}
	if _, err := m.Map(ctx, Values{"partner_id": "p2"}, Options{}); !errors.Is(err, errBoom) {
		t.Fatalf("field(): %v", err)
	}

	var readErr error
	f := must(NewExport("e", []Rule{Func("company", func(_ context.Context, r *Record) (Values, error) {
		v, ok, err := r.Get("partner_id.name", "res.partner")
		readErr = err
		if !ok {
			return nil, nil
		}
		return Values{"company": v}, nil
	})}, WithRelated(rel)))
	if _, err := f.Map(ctx, Values{"partner_id": "p2"}, Options{}); err != nil || !errors.Is(readErr, errBoom) {
		t.Fatalf("Read: %v %v", err, readErr)
	}
}

// Func rules on export see what earlier rules wrote, with or without expression rules.
func TestExportFuncRuleSeesMapped(t *testing.T) {
	m := must(NewExport("e", []Rule{
		Direct("name", "title"),
		Func("slug", func(_ context.Context, r *Record) (Values, error) {
			s, _ := r.Mapped()["title"].(string)
			return Values{"slug": strings.ToLower(s)}, nil
		}),
	}))
	got, err := m.Map(context.Background(), Values{"name": "Mug"}, Options{})
	if err != nil || string(got) != `{"title":"Mug","slug":"mug"}` {
		t.Fatalf("%s %v", got, err)
	}
}

// Integers keep every digit: 19-digit IDs fit int64; longer ones stay exact as
// json.Number instead of being rounded through float64.
func TestImportLargeIntegers(t *testing.T) {
	ctx := context.Background()
	f := newFakeResolver()
	f.bind("user", "123456789012345678901", "u1")
	m := must(NewImport("e", []Rule{
		Direct("a", "a"),
		Direct("b", "b", String()),
		Relation("b", "user_id", "user"),
		Direct("c", "c"),
	}, WithResolver(f)))
	got, err := m.Map(ctx, []byte(`{"a":1234567890123456789,"b":123456789012345678901,"c":-9223372036854775808}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Values{"a": int64(1234567890123456789), "b": "123456789012345678901", "user_id": "u1", "c": int64(-9223372036854775808)}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	toInt := must(NewImport("e", []Rule{Direct("b", "b", Int())}))
	if _, err := toInt.Map(ctx, []byte(`{"b":123456789012345678901}`), Options{}); !errors.Is(err, ErrConvert) {
		t.Fatalf("Int beyond int64: %v", err)
	}
	type big struct {
		B uint64 `mapper:"b"`
	}
	plain := must(NewImport("e", []Rule{Direct("b", "b")}))
	v, err := mapTo[big](ctx, plain, []byte(`{"b":18446744073709551615}`), Options{})
	if err != nil || v.B != 18446744073709551615 {
		t.Fatalf("uint64: %v %v", v, err)
	}
	if _, err := mapTo[big](ctx, plain, []byte(`{"b":18446744073709551616}`), Options{}); !errors.Is(err, ErrConvert) {
		t.Fatalf("uint64 overflow: %v", err)
	}
}

// Converters take local values of any Go numeric type, and Int's range is exact.
func TestConvertersNumericTypes(t *testing.T) {
	tests := []struct {
		conv Converter
		in   any
		want any
		fail bool
	}{
		{Int(), int16(-7), int64(-7), false},
		{Int(), uint8(200), int64(200), false},
		{Int(), uint64(1 << 63), nil, true},
		{Int(), uint(42), int64(42), false},
		{Int(), 9.21e18, int64(9.21e18), false},
		{Int(), -9223372036854775808.0, int64(-9223372036854775808), false},
		{Int(), 9223372036854775808.0, nil, true},
		{Float(), uint32(3), 3.0, false},
		{Bool(), int32(0), false, false},
		{Bool(), float32(2), true, false},
		{String(), uint64(18446744073709551615), "18446744073709551615", false},
		{String(), int8(-1), "-1", false},
		{Time(), math.NaN(), nil, true},
		{Time(), 1e300, nil, true},
		{Time(), int32(86400), time.Unix(86400, 0).UTC(), false},
	}
	for _, tt := range tests {
		got, err := tt.conv.fn(tt.in)
		if tt.fail {
			if !errors.Is(err, ErrConvert) {
				t.Errorf("%s(%T %v) = %v, %v; want ErrConvert", tt.conv.name, tt.in, tt.in, got, err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("%s(%T %v) = %T %v, %v; want %T %v", tt.conv.name, tt.in, tt.in, got, got, err, tt.want, tt.want)
		}
	}
	if got := normalize(uint(1 << 63)); got != uint64(1<<63) {
		t.Errorf("normalize(uint 2^63) = %T %v", got, got)
	}
	// Relations take IDs of any integer type.
	f := newFakeResolver()
	f.bind("user", "E7", "7")
	m := must(NewExport("e", []Rule{Relation("user_id", "user", "user")}, WithResolver(f)))
	if got, err := m.Map(context.Background(), Values{"user_id": uint32(7)}, Options{}); err != nil || string(got) != `{"user":"E7"}` {
		t.Errorf("uint32 ID: %s %v", got, err)
	}
}

// Options a rule's kind does not use are build errors, not silently ignored.
func TestRuleOptionsThatDoNotApply(t *testing.T) {
	fn := func(context.Context, *Record) (Values, error) { return nil, nil }
	child := must(NewImport("line", []Rule{Direct("a", "a")}))
	imports := map[string]Rule{
		"func with converter":  Func("f", fn, Float()),
		"func with required":   Func("f", fn, Required()),
		"exec with default":    Exec(`{}`, Default(1)),
		"children converter":   Children("lines", "lines", child, Trim()),
		"direct with missing":  Direct("a", "a", SkipMissing()),
		"through on an import": Direct("a.b", "a", Through("res.partner")),
	}
	for name, r := range imports {
		if _, err := NewImport("m", []Rule{r}); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := NewExport("m", []Rule{Exec(`{}`, Through("x"))}); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("through on exec: %v", err)
	}
	for name, yaml := range map[string]string{
		"expression on a plain line": `{field: a, key: a, expression: 'upper(value)'}`,
		"model on a plain line":      `{field: a, key: a, model: res.partner}`,
		"enum without enum":          `{field: a, key: a, converter: trim, enum: {x: 1}}`,
		"zone without time":          `{field: a, key: a, zone: Europe/Paris}`,
		"func on an expression":      `{field: a, kind: expression, expression: '1', func: f}`,
	} {
		s, err := ParseSpec([]byte("name: m\nrules:\n  - "+yaml+"\n"), "m.yaml")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = s.Import()
		var se *SpecError
		if !errors.As(err, &se) || se.Line != 3 || !strings.Contains(err.Error(), "not used by this rule") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The keys of the rule's own kind are fine.
	s := must(ParseSpec([]byte("name: m\nrules:\n  - {field: d, key: d, converter: time, zone: Europe/Paris, layout: '2006-01-02'}\n"+
		"  - {field: s, key: s, converter: enum, enum: {a: 1}, enum_default: 0}\n"), "m.yaml"))
	if _, err := s.Import(); err != nil {
		t.Fatal(err)
	}
}

// A mapper keeps its own copy of the rules and of enum tables: the caller may reuse them.
func TestMapperCopiesRulesAndTables(t *testing.T) {
	table := map[string]any{"x": "X"}
	rules := []Rule{Direct("a", "a"), Direct("s", "s", Enum(table))}
	m := must(NewImport("m", rules))
	rules[0] = Direct("b", "b")
	table["x"] = "changed"
	got, err := m.Map(context.Background(), []byte(`{"a":1,"b":2,"s":"x"}`), Options{})
	if err != nil || got["a"] != int64(1) || got["b"] != nil || got["s"] != "X" {
		t.Fatalf("%v %v", got, err)
	}
}

// Time converters keep their own layouts: changing defaultTimeLayouts or the caller's
// slice later does not change (or race with) converters already built.
func TestTimeCopiesLayouts(t *testing.T) {
	layouts := []string{"02/01/2006"}
	custom := Time(layouts...)
	saved := defaultTimeLayouts[len(defaultTimeLayouts)-1]
	def := Time()
	layouts[0] = "2006"
	defaultTimeLayouts[len(defaultTimeLayouts)-1] = "2006"
	defer func() { defaultTimeLayouts[len(defaultTimeLayouts)-1] = saved }()
	if _, err := custom.fn("31/12/2023"); err != nil {
		t.Errorf("custom layouts changed: %v", err)
	}
	if _, err := def.fn("2024-03-01"); err != nil {
		t.Errorf("default layouts changed: %v", err)
	}
}
