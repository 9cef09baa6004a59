package mapper

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/binding"
)

const productJSON = `{
  "id": 42, "title": "  Blue Shirt ", "sku": "bs-1", "price": "19.99", "qty": 3,
  "active": "yes", "created_at": "2024-03-01T10:00:00Z", "status": "live",
  "tags": ["a", "b"], "vendor": {"name": "ACME", "country": "FR"},
  "variants": [{"id": 1, "price": 21.5}, {"id": 2, "price": 22}],
  "empty": null, "big": 9007199254740993
}`

func TestImportDirect(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		rule    Rule
		want    Values
		wantErr error
	}{
		{"plain string", Direct("sku", "default_code"), Values{"default_code": "bs-1"}, nil},
		{"trim", Direct("title", "name", Trim()), Values{"name": "Blue Shirt"}, nil},
		{"chain", Direct("title", "name", Trim(), Lower()), Values{"name": "blue shirt"}, nil},
		{"numeric string to float", Direct("price", "list_price", Float()), Values{"list_price": 19.99}, nil},
		{"int", Direct("qty", "qty"), Values{"qty": int64(3)}, nil},
		{"big int keeps precision", Direct("big", "big"), Values{"big": int64(9007199254740993)}, nil},
		{"int to string", Direct("id", "ref", String()), Values{"ref": "42"}, nil},
		{"bool", Direct("active", "active", Bool()), Values{"active": true}, nil},
		{"time", Direct("created_at", "created", Time()), Values{"created": time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)}, nil},
		{"enum", Direct("status", "state", Enum(map[string]any{"live": "published"})), Values{"state": "published"}, nil},
		{"nested object path", Direct("vendor.name", "vendor"), Values{"vendor": "ACME"}, nil},
		{"array path", Direct("variants.1.price", "p2", Float()), Values{"p2": 22.0}, nil},
		{"array query", Direct("variants.#(id==2).price", "p2"), Values{"p2": int64(22)}, nil},
		{"array whole", Direct("tags", "tags"), Values{"tags": []any{"a", "b"}}, nil},
		{"array count", Direct("variants.#", "n"), Values{"n": int64(2)}, nil},
		{"missing skipped", Direct("nope", "x"), Values{}, nil},
		{"null kept", Direct("empty", "x", Float()), Values{"x": nil}, nil},
		{"default on missing", Direct("nope", "x", Default("d")), Values{"x": "d"}, nil},
		{"default on null", Direct("empty", "x", Default(0.0)), Values{"x": 0.0}, nil},
		{"required present", Direct("sku", "x", Required()), Values{"x": "bs-1"}, nil},
		{"required missing", Direct("nope", "x", Required()), nil, ErrRequired},
		{"required null", Direct("empty", "x", Required()), nil, ErrRequired},
		{"conversion error", Direct("title", "x", Float()), nil, ErrConvert},
		{"enum miss", Direct("status", "x", Enum(map[string]any{})), nil, ErrConvert},
		{"custom func", Direct("qty", "double", Convert("double", func(v any) (any, error) { return v.(int64) * 2, nil })),
			Values{"double": int64(6)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewImport("product", []Rule{tt.rule}, WithIDPath("id"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Map(ctx, []byte(productJSON), Options{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var me *MappingError
				if !errors.As(err, &me) || me.Mapper != "product" || me.RecordID != "42" || me.Field != tt.rule.to || me.Rule != "#0 direct" {
					t.Fatalf("MappingError = %+v", me)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Fatalf("values (-want +got):\n%s", d)
			}
		})
	}
}

func TestImportFuncOnlyCreateAndErrors(t *testing.T) {
	ctx := context.Background()
	m, err := NewImport("product", []Rule{
		Direct("title", "name", Trim()),
		Func("backend", func(ctx context.Context, r *Record) (Values, error) {
			id, _, _ := r.Get("id")
			return Values{"backend_id": "shop", "external_id": id, "seen_name": r.Mapped()["name"]}, nil
		}),
		Direct("sku", "default_code", OnlyCreate()),
		Func("create_only", func(ctx context.Context, r *Record) (Values, error) {
			return Values{"created_by": "connkit"}, nil
		}, OnlyCreate()),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Map(ctx, []byte(productJSON), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	want := Values{"name": "Blue Shirt", "backend_id": "shop", "external_id": int64(42), "seen_name": "Blue Shirt",
		"default_code": "bs-1", "created_by": "connkit"}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("create (-want +got):\n%s", d)
	}
	got, err = m.Map(ctx, []byte(productJSON), Options{Create: false})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["default_code"]; ok {
		t.Fatalf("only-create rule ran on update: %v", got)
	}
	if _, ok := got["created_by"]; ok {
		t.Fatalf("only-create func ran on update: %v", got)
	}

	failing, _ := NewImport("product", []Rule{
		Func("fails", func(context.Context, *Record) (Values, error) { return nil, errBoom }),
	})
	_, err = failing.Map(ctx, []byte(`{"id":1}`), Options{RecordID: "ext-1"})
	var me *MappingError
	if !errors.As(err, &me) || !errors.Is(err, errBoom) || me.Rule != "fails" || me.RecordID != "ext-1" {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{`"product"`, "fails", `"ext-1"`, "boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestImportAllErrors(t *testing.T) {
	rules := []Rule{
		Direct("title", "a", Float()),
		Direct("sku", "ok"),
		Direct("nope", "b", Required()),
	}
	m := must(NewImport("p", rules))
	_, err := m.Map(context.Background(), []byte(productJSON), Options{})
	if err == nil || !errors.Is(err, ErrConvert) || errors.Is(err, ErrRequired) {
		t.Fatalf("first error only: %v", err)
	}
	_, err = m.Map(context.Background(), []byte(productJSON), Options{collect: true})
	if !errors.Is(err, ErrConvert) || !errors.Is(err, ErrRequired) {
		t.Fatalf("all errors: %v", err)
	}
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var me *MappingError
		if errors.As(e, &me) {
			fields = append(fields, me.Field)
		}
	}
	if d := cmp.Diff([]string{"a", "b"}, fields); d != "" {
		t.Fatal(d)
	}
	m2 := must(NewImport("p", rules, CollectErrors()))
	if _, err := m2.Map(context.Background(), []byte(productJSON), Options{}); !errors.Is(err, ErrRequired) {
		t.Fatalf("CollectErrors option: %v", err)
	}
}

func TestImportBadRecord(t *testing.T) {
	m := must(NewImport("p", []Rule{Direct("a", "a")}))
	for _, in := range []string{``, `nope`, `[1,2]`, `{"a":`, `"str"`, `{"a":1}}`} {
		_, err := m.Map(context.Background(), []byte(in), Options{RecordID: "r1"})
		var me *MappingError
		if !errors.Is(err, errInvalidRecord) || !errors.As(err, &me) || me.RecordID != "r1" {
			t.Errorf("Map(%q) err = %v", in, err)
		}
	}
	deep := `{"a":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`
	if _, err := m.Map(context.Background(), []byte(deep), Options{}); !errors.Is(err, errInvalidRecord) {
		t.Errorf("too deep: %v", err)
	}
	// Brackets inside strings do not count.
	ok := `{"a":[[1]], "s": "` + strings.Repeat(`[\"`, maxDepth) + `"}`
	if _, err := m.Map(context.Background(), []byte(ok), Options{}); err != nil {
		t.Errorf("deep but allowed: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Map(ctx, []byte(`{}`), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}
}

func TestImportRelation(t *testing.T) {
	ctx := context.Background()
	rec := []byte(`{"id": 9, "customer": {"id": 501}, "tag_ids": [1, 2, 3], "carrier": null}`)
	tests := []struct {
		name     string
		rule     Rule
		setup    func(*fakeResolver)
		want     Values
		wantErr  error
		imported []string
	}{
		{"bound", Relation("customer.id", "partner_id", "res.partner"),
			func(f *fakeResolver) { f.bind("res.partner", "501", "p-1") }, Values{"partner_id": "p-1"}, nil, nil},
		{"missing fails", func() Rule {
			r := Relation("customer.id", "partner_id", "res.partner")
			r.onMissing = missingFail
			return r
		}(),
			nil, nil, ErrMissingDependency, nil},
		{"missing skip", Relation("customer.id", "partner_id", "res.partner", SkipMissing()),
			nil, Values{}, nil, nil},
		{"missing imported by default", Relation("customer.id", "partner_id", "res.partner"),
			nil, Values{"partner_id": "imported-501"}, nil, []string{"res.partner:501"}},
		{"many2many", Relation("tag_ids", "tag_ids", "tag", SkipMissing()),
			func(f *fakeResolver) { f.bind("tag", "1", "t1"); f.bind("tag", "3", "t3") },
			Values{"tag_ids": []string{"t1", "t3"}}, nil, nil},
		{"null", Relation("carrier", "carrier_id", "carrier"), nil, Values{"carrier_id": nil}, nil, nil},
		{"resolver error", Relation("customer.id", "partner_id", "res.partner"),
			func(f *fakeResolver) { f.fail = errBoom }, nil, errBoom, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeResolver()
			if tt.setup != nil {
				tt.setup(f)
			}
			var imported []string
			m, err := NewImport("order", []Rule{tt.rule}, WithResolver(f),
				WithImportMissing(func(ctx context.Context, model, ext string) error {
					imported = append(imported, model+":"+ext)
					f.bind(model, ext, "imported-"+ext)
					return nil
				}))
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Map(ctx, rec, Options{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.wantErr == ErrMissingDependency {
					var md *missingDependencyError
					if !errors.As(err, &md) || md.model != "res.partner" || md.id != "501" || !errors.Is(err, binding.ErrNotFound) {
						t.Fatalf("missing dependency error = %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.imported, imported); d != "" {
				t.Fatalf("imported (-want +got):\n%s", d)
			}
		})
	}
}

func TestImportMissingCallbackFails(t *testing.T) {
	f := newFakeResolver()
	m := must(NewImport("order", []Rule{Relation("customer", "partner_id", "res.partner")},
		WithResolver(f), WithImportMissing(func(context.Context, string, string) error { return errBoom })))
	_, err := m.Map(context.Background(), []byte(`{"customer":"c1"}`), Options{})
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), `res.partner "c1"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestImportChildren(t *testing.T) {
	ctx := context.Background()
	f := newFakeResolver()
	f.bind("product", "p9", "local-p9")
	line := must(NewImport("line", []Rule{
		Relation("product_id", "product_id", "product"),
		Direct("qty", "product_uom_qty", Float(), Required()),
		Direct("price", "price_unit", Float()),
	}, WithResolver(f)))
	order := must(NewImport("order", []Rule{
		Direct("name", "client_order_ref"),
		Children("line_items", "order_line", line),
	}, WithIDPath("id")))
	got, err := order.Map(ctx, []byte(`{"id":"o1","name":"#1001","line_items":[
		{"product_id":"p9","qty":2,"price":"5.5"},{"product_id":"p9","qty":"1"}]}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Values{"client_order_ref": "#1001", "order_line": []Values{
		{"product_id": "local-p9", "product_uom_qty": 2.0, "price_unit": 5.5},
		{"product_id": "local-p9", "product_uom_qty": 1.0},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// No lines key at all: nothing written; empty array: empty lines.
	got, _ = order.Map(ctx, []byte(`{"name":"x","line_items":[]}`), Options{})
	if d := cmp.Diff(Values{"client_order_ref": "x", "order_line": []Values{}}, got); d != "" {
		t.Fatal(d)
	}
	// Line errors name the line and the parent record.
	_, err = order.Map(ctx, []byte(`{"id":"o2","line_items":[{"product_id":"p9","qty":1},{"product_id":"zz","qty":1}]}`), Options{})
	var me *MappingError
	if !errors.As(err, &me) || me.Mapper != "order/line[1]" || me.Field != "product_id" || me.RecordID != "o2" || !errors.Is(err, ErrMissingDependency) {
		t.Fatalf("err = %v (%+v)", err, me)
	}
	_, err = order.Map(ctx, []byte(`{"line_items":{"qty":1}}`), Options{})
	if !errors.Is(err, ErrConvert) {
		t.Fatalf("non-array children: %v", err)
	}
	_, err = order.Map(ctx, []byte(`{"line_items":[{"product_id":"zz"},{"product_id":"p9"}]}`), Options{collect: true})
	if !errors.Is(err, ErrMissingDependency) || !errors.Is(err, ErrRequired) {
		t.Fatalf("all line errors: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	line := must(NewImport("line", nil))
	exp := must(NewExport("x", nil))
	tests := []struct {
		name string
		rule Rule
		opts []Option
		want string
	}{
		{"empty from", Direct("", "a"), nil, "source path is empty"},
		{"bad path", Direct("a..b", "a"), nil, "empty segment"},
		{"unbalanced", Direct("items.#(price>1", "a"), nil, "not closed"},
		{"dotted target", Direct("a", "a.b"), nil, "plain name"},
		{"no model", Relation("a", "b", "", SkipMissing()), []Option{WithResolver(newFakeResolver())}, "needs a model"},
		{"no import callback", func() Rule { r := Relation("a", "b", "m"); r.onMissing = missingImport; return r }(),
			[]Option{WithResolver(newFakeResolver())}, "WithImportMissing"},
		{"nil func", Func("f", nil), nil, "nil func"},
		{"bad expression", Expr("", "a", "1 +"), nil, "does not compile"},
		{"unknown variable", Expr("", "a", "env.os"), nil, "does not compile"},
		{"no I/O functions", Expr("", "a", `readFile("/etc/passwd")`), nil, "does not compile"},
		{"too many nodes", Expr("", "a", strings.Repeat("1+", 600)+"1"), nil, "does not compile"},
		{"wrong child", Children("a", "b", exp), nil, "*ImportMapper"},
		{"nil child", Rule{kind: kindChildren, from: "a", to: "b"}, nil, "child mapper"},
		{"typed nil child", Children("a", "b", (*ImportMapper)(nil)), nil, "nil child mapper"},
		{"child ok", Children("a", "b", line), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewImport("m", []Rule{Direct("ok", "ok"), tt.rule}, tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *SpecError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidRule) || se.Index != 1 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want SpecError at index 1 containing %q", err, tt.want)
			}
		})
	}
}
