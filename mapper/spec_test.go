package mapper

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSpecImportYAML(t *testing.T) {
	f := newFakeResolver()
	f.bind("res.partner", "77", "p77")
	m, err := loadImport("testdata/order_import.yaml", WithResolver(f))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "order.import" {
		t.Fatalf("name %q", m.Name())
	}
	rec := `{"id": 1001, "name": " #1001 ", "total_price": "150.50", "created_at": "2024-07-01 12:00",
		"financial_status": "refunded", "customer": {"id": 77}, "shop_id": 3,
		"line_items": [{"title": "Shirt", "quantity": "2", "price": 75.25}, {"title": "Gift", "quantity": 1}]}`
	got, err := m.Map(context.Background(), []byte(rec), Options{Create: true, Request: map[string]any{"channel": "webhook"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Values{
		"client_order_ref": "#1001", "amount_total": 150.5,
		"date_order": time.Date(2024, 7, 1, 10, 0, 0, 0, time.UTC),
		"state":      "draft", "partner_id": "p77", "note": " #1001  via webhook",
		"origin": "shop", "priority": "high", "company_id": "3",
		"order_line": []Values{
			{"name": "Shirt", "product_uom_qty": int64(2), "price_unit": 75.25},
			{"name": "Gift", "product_uom_qty": int64(1), "price_unit": int64(0)},
		},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// Required field missing: the error names the field and the record (id_path).
	_, err = m.Map(context.Background(), []byte(`{"id": 5}`), Options{})
	var me *MappingError
	if !errors.As(err, &me) || me.Field != "client_order_ref" || me.RecordID != "5" || me.Mapper != "order.import" {
		t.Fatalf("err = %v", err)
	}
}

func TestSpecExportJSON(t *testing.T) {
	f := newFakeResolver()
	f.bind("res.partner", "C9", "p1")
	rel := fakeRelated{"res.partner": {"p1": {"name": "ACME"}}}
	m, err := loadExport("testdata/order_export.json", WithResolver(f), WithRelated(rel.Lookup))
	if err != nil {
		t.Fatal(err)
	}
	local := Values{"client_order_ref": "#1", "amount_total": 12.5, "partner_id": "p1",
		"date_order": time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC), "note": "n",
		"order_line": []Values{{"name": "Shirt", "product_uom_qty": int64(2)}}}
	got, err := m.Map(context.Background(), local, Options{Changed: []string{"amount_total"}})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, `{"order":{"name":"#1","total":"12.5","customer_id":"C9","company_name":"ACME","date":"2024-02-03",
		"lines":[{"title":"Shirt","quantity":2}]}}`, got)
}

func TestSpecBad(t *testing.T) {
	_, err := loadImport("testdata/bad_rules.yaml")
	if err == nil {
		t.Fatal("bad spec loaded")
	}
	var specErrs []*SpecError
	for _, e := range flatten(err) {
		var se *SpecError
		if errors.As(e, &se) {
			specErrs = append(specErrs, se)
		}
	}
	type pos struct {
		Path  string
		Line  int
		Field string
		Want  string
	}
	var got []pos
	for _, se := range specErrs {
		got = append(got, pos{se.Path, se.Line, se.Field, ""})
		if se.File != "bad_rules.yaml" {
			t.Errorf("file %q", se.File)
		}
	}
	want := []pos{
		{"rules[1]", 6, "price", ""},
		{"rules[4].children.rules[1]", 22, "name", ""},
		{"rules[5]", 25, "state", ""},
		{"rules[2]", 9, "title", ""},
		{"rules[3]", 11, "code", ""},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("positions (-want +got):\n%s\n%v", d, err)
	}
	msg := err.Error()
	for _, s := range []string{`unknown converter "money"`, "empty segment", "does not compile", `kind "weird"`,
		`bad_rules.yaml:6: rules[1] (field "price")`} {
		if !strings.Contains(msg, s) {
			t.Errorf("error does not mention %q:\n%s", s, msg)
		}
	}
	if !errors.Is(err, ErrInvalidRule) {
		t.Error("not ErrInvalidRule")
	}

	// JSON specs report lines too.
	_, err = loadImport("testdata/bad_rules.json")
	for _, want := range []string{`bad_rules.json:5: rules[1] (field "b"): unknown converter "cents"`,
		`bad_rules.json:9: rules[2].children.rules[1] (field "x"): expression does not compile`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("JSON spec error does not contain %q:\n%v", want, err)
		}
	}

	for file, want := range map[string]string{
		"testdata/bad_unknown_key.yaml": "convertr",
		"testdata/bad_syntax.json":      "reading JSON spec",
		"testdata/wrong_direction.yaml": "is for export, not import",
		"testdata/missing.yaml":         "no such file",
	} {
		if _, err := loadImport(file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", file, err, want)
		}
	}
	// Relational spec without a resolver, function without registration, custom converter.
	for _, tc := range []struct{ spec, want string }{
		{`{"rules":[{"field":"p","kind":"function","func":"nope"}]}`, `func "nope" is not registered`},
		{`{"rules":[{"field":"p","kind":"relational","model":"m","on_missing":"maybe"}]}`, "on_missing"},
		{`{"rules":[{"field":"p","kind":"expression","mode":"run","expression":"1"}]}`, "mode"},
		{`{"rules":[{"field":"p","key":"p","converter":"enum"}]}`, "enum table"},
		{`{"rules":[{"field":"p","key":"p","converter":"format_time"}]}`, "needs a layout"},
		{`{"rules":[{"field":"p","key":"p","converter":"time","zone":"Mars/Base"}]}`, "Mars/Base"},
		{`{"rules":[{"field":"p","kind":"children","key":"l"}]}`, "children spec"},
	} {
		s, err := ParseSpec([]byte(tc.spec), "inline.json")
		if err == nil {
			_, err = s.Import()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestSpecCustomConverterAndFunc(t *testing.T) {
	s := must(ParseSpec([]byte(`
rules:
  - {field: cents, key: price, converters: [float, cents]}
  - {kind: function, func: backend}
  - {field: tag, key: tag, converter: "trim|upper"}
`), "inline.yaml"))
	m, err := s.Import(
		WithConverter(Convert("cents", func(v any) (any, error) { return int64(v.(float64)*100 + 0.5), nil })),
		WithFunc("backend", func(context.Context, *Record) (Values, error) { return Values{"backend_id": "b1"}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Map(context.Background(), []byte(`{"price":"19.99","tag":" new "}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Values{"cents": int64(1999), "backend_id": "b1", "tag": "NEW"}, got); d != "" {
		t.Fatal(d)
	}
	if _, err := s.Export(); err == nil {
		t.Fatal("export without registered converter should fail")
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			if _, isSpec := e.(*SpecError); isSpec {
				out = append(out, e)
				continue
			}
			out = append(out, flatten(e)...)
		}
		return out
	}
	if u := errors.Unwrap(err); u != nil {
		return flatten(u)
	}
	return []error{err}
}
