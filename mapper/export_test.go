package mapper

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/binding"
)

// jsonEq compares two JSON documents structurally.
func jsonEq(t *testing.T, want string, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, got)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Fatalf("payload (-want +got):\n%s\n%s", d, got)
	}
}

func TestExportDirect(t *testing.T) {
	ctx := context.Background()
	local := Values{
		"name": " Blue Shirt ", "list_price": 19.99, "qty": int64(3), "active": true,
		"write_date": time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC), "state": "sale", "empty": nil,
		"partner_id": Values{"name": "ACME", "country_id": Values{"code": "FR"}},
		"tags":       []any{"a", "b"},
	}
	tests := []struct {
		name    string
		rule    Rule
		want    string
		wantErr error
	}{
		{"plain", Direct("name", "title"), `{"title":" Blue Shirt "}`, nil},
		{"trim", Direct("name", "title", Trim()), `{"title":"Blue Shirt"}`, nil},
		{"nested target", Direct("list_price", "pricing.amount"), `{"pricing":{"amount":19.99}}`, nil},
		{"array target", Direct("list_price", "variants.0.price"), `{"variants":[{"price":19.99}]}`, nil},
		{"float to string", Direct("list_price", "price", String()), `{"price":"19.99"}`, nil},
		{"int", Direct("qty", "quantity"), `{"quantity":3}`, nil},
		{"bool", Direct("active", "published"), `{"published":true}`, nil},
		{"time formatted", Direct("write_date", "updated", FormatTime("2006-01-02", nil)), `{"updated":"2024-03-01"}`, nil},
		{"time as is", Direct("write_date", "updated"), `{"updated":"2024-03-01T10:00:00Z"}`, nil},
		{"enum", Direct("state", "status", Enum(map[string]any{"sale": "confirmed"})), `{"status":"confirmed"}`, nil},
		{"nested local path", Direct("partner_id.name", "company_name"), `{"company_name":"ACME"}`, nil},
		{"two hops", Direct("partner_id.country_id.code", "country"), `{"country":"FR"}`, nil},
		{"array value", Direct("tags", "tags"), `{"tags":["a","b"]}`, nil},
		{"array index local", Direct("tags.1", "second"), `{"second":"b"}`, nil},
		{"missing skipped", Direct("nope", "x"), `{}`, nil},
		{"null written", Direct("empty", "x"), `{"x":null}`, nil},
		{"default", Direct("nope", "x", Default("n/a")), `{"x":"n/a"}`, nil},
		{"required", Direct("nope", "x", Required()), ``, ErrRequired},
		{"convert error", Direct("name", "x", Int()), ``, ErrConvert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewExport("product.export", []Rule{tt.rule})
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Map(ctx, local, Options{RecordID: "7"})
			if tt.wantErr != nil {
				var me *MappingError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &me) || me.RecordID != "7" || me.Field != tt.rule.to {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			jsonEq(t, tt.want, got)
		})
	}
}

func TestExportChangedByAndOnlyCreate(t *testing.T) {
	m := must(NewExport("p", []Rule{
		Direct("name", "title", ChangedBy("name")),
		Direct("list_price", "price", ChangedBy("list_price", "currency")),
		Direct("sku", "sku", OnlyCreate()),
		Direct("id", "ref"),
	}))
	local := Values{"id": "1", "name": "n", "list_price": 2.5, "sku": "s"}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"create runs all", Options{Create: true, Changed: []string{}}, `{"title":"n","price":2.5,"sku":"s","ref":"1"}`},
		{"changed unknown", Options{}, `{"title":"n","price":2.5,"ref":"1"}`},
		{"only name changed", Options{Changed: []string{"name"}}, `{"title":"n","ref":"1"}`},
		{"currency changed", Options{Changed: []string{"currency"}}, `{"price":2.5,"ref":"1"}`},
		{"nothing changed", Options{Changed: []string{}}, `{"ref":"1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Map(context.Background(), local, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			jsonEq(t, tt.want, got)
		})
	}
}

type fakeRelated map[string]map[string]map[string]any

func (f fakeRelated) Lookup(_ context.Context, model, id string) (map[string]any, error) {
	if r, ok := f[model][id]; ok {
		return r, nil
	}
	return nil, binding.ErrNotFound
}

func TestExportRelationsAndRelated(t *testing.T) {
	ctx := context.Background()
	f := newFakeResolver()
	f.bind("res.partner", "cust-9", "p1")
	f.bind("tag", "T1", "t1")
	rel := fakeRelated{
		"res.partner": {"p1": {"name": "ACME", "country_id": "c1"}, "p2": {"name": "Nobody", "country_id": false}},
		"res.country": {"c1": {"code": "FR"}},
	}
	m := must(NewExport("order.export", []Rule{
		Relation("partner_id", "customer_id", "res.partner"),
		Relation("tag_ids", "tags", "tag", SkipMissing()),
		Direct("partner_id.name", "company_name", Through("res.partner")),
		Direct("partner_id.country_id.code", "country", Through("res.partner", "res.country")),
	}, WithResolver(f), WithRelated(rel.Lookup), WithIDPath("id")))

	got, err := m.Map(ctx, Values{"id": "o1", "partner_id": "p1", "tag_ids": []string{"t1", "t2"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, `{"customer_id":"cust-9","tags":["T1"],"company_name":"ACME","country":"FR"}`, got)

	// An unexported dependency names the model and the local ID.
	_, err = m.Map(ctx, Values{"id": "o2", "partner_id": "p2"}, Options{})
	var md *missingDependencyError
	var me *MappingError
	if !errors.As(err, &md) || md.model != "res.partner" || md.id != "p2" || !md.export ||
		!errors.Is(err, binding.ErrNotFound) || !errors.As(err, &me) || me.RecordID != "o2" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "not exported yet") {
		t.Errorf("message: %v", err)
	}
	// Empty many2one (false) clears the relation (null) and the dotted paths find nothing.
	got, err = m.Map(ctx, Values{"partner_id": false}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, `{"customer_id":null}`, got)

	// Dotted path errors: unknown related record, no model, no Related.
	_, err = m.Map(ctx, Values{"partner_id": "p404"}, Options{})
	if !errors.Is(err, ErrMissingDependency) {
		t.Fatalf("p404: %v", err)
	}
	noModel := must(NewExport("x", []Rule{Direct("partner_id.name", "n")}, WithRelated(rel.Lookup)))
	if _, err := noModel.Map(ctx, Values{"partner_id": "p1"}, Options{}); err == nil || !strings.Contains(err.Error(), "Through") {
		t.Fatalf("no model: %v", err)
	}
	noRel := must(NewExport("x", []Rule{Direct("partner_id.name", "n", Through("res.partner"))}))
	if _, err := noRel.Map(ctx, Values{"partner_id": "p1"}, Options{}); err == nil || !strings.Contains(err.Error(), "WithRelated") {
		t.Fatalf("no related: %v", err)
	}
	related := must(NewExport("x", []Rule{Direct("partner_id.name", "n", Through("res.partner"))}, WithRelated(rel.Lookup)))
	if _, err := related.Map(ctx, Values{"partner_id": "p404"}, Options{}); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("lookup error: %v", err)
	}
}

func TestExportChildrenAndFunc(t *testing.T) {
	ctx := context.Background()
	line := must(NewExport("line", []Rule{
		Direct("product_uom_qty", "quantity", Int()),
		Direct("price_unit", "price", String()),
	}))
	order := must(NewExport("order", []Rule{
		Direct("name", "order.name"),
		Children("order_line", "order.line_items", line),
		Func("note", func(ctx context.Context, r *Record) (Values, error) {
			n, _, _ := r.Get("order_line.0.price_unit")
			s, _ := n.(string)
			return Values{"order.note": "first line at " + s}, nil
		}),
	}))
	local := Values{"name": "SO1", "order_line": []Values{
		{"product_uom_qty": 2.0, "price_unit": "5.5"},
		{"product_uom_qty": int64(1), "price_unit": 3.0},
	}}
	got, err := order.Map(ctx, local, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, `{"order":{"name":"SO1","line_items":[{"quantity":2,"price":"5.5"},{"quantity":1,"price":"3"}],"note":"first line at 5.5"}}`, got)

	got, err = order.Map(ctx, Values{"name": "SO2", "order_line": []any{}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, `{"order":{"name":"SO2","line_items":[],"note":"first line at "}}`, got)

	_, err = order.Map(ctx, Values{"order_line": []any{"x"}}, Options{})
	if !errors.Is(err, ErrConvert) {
		t.Fatalf("bad lines: %v", err)
	}
	_, err = order.Map(ctx, Values{"order_line": []Values{{"product_uom_qty": 1.5}}}, Options{})
	var me *MappingError
	if !errors.As(err, &me) || me.Mapper != "order/line[0]" || me.Field != "quantity" {
		t.Fatalf("line error: %v", err)
	}
}
