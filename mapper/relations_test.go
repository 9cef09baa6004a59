package mapper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/binding"
)

// Relations lists the models a mapper's relational rules look up, through children
// mappers at any depth, sorted and once each; Through models are only read.
func TestRelations(t *testing.T) {
	f := newFakeResolver()
	noop := func(context.Context, string, string) error { return nil }
	tax := must(NewImport("tax", []Rule{Relation("id", "tax_id", "account.tax")}, WithResolver(f)))
	line := must(NewImport("line", []Rule{
		Relation("product_id", "product_id", "product.product"),
		Relation("uom", "uom_id", "uom", SkipMissing()),
		Children("taxes", "tax_ids", tax),
	}, WithResolver(f)))
	order := must(NewImport("order", []Rule{
		Direct("name", "name"),
		Relation("customer.id", "partner_id", "res.partner"),
		Relation("shipping.id", "partner_shipping_id", "res.partner"),
		Children("line_items", "order_line", line),
	}, WithResolver(f), WithImportMissing(noop)))
	want := []string{"account.tax", "product.product", "res.partner", "uom"}
	if d := cmp.Diff(want, order.Relations()); d != "" {
		t.Fatalf("import relations (-want +got):\n%s", d)
	}
	if got := must(NewImport("plain", []Rule{Direct("a", "a")})).Relations(); len(got) != 0 {
		t.Fatalf("no relational rule: %v", got)
	}

	lineOut := must(NewExport("line", []Rule{Relation("product_id", "sku", "product.product")}, WithResolver(f)))
	exp := must(NewExport("order", []Rule{
		Direct("partner_id.name", "customer_name", Through("res.partner")),
		Relation("partner_id.country_id", "country", "res.country", Through("res.partner")),
		Children("order_line", "lines", lineOut),
	}, WithResolver(f), WithRelated(fakeRelated{}.Lookup)))
	if d := cmp.Diff([]string{"product.product", "res.country"}, exp.Relations()); d != "" {
		t.Fatalf("export relations (-want +got):\n%s", d)
	}

	// From a spec file too.
	spec := must(ParseSpec([]byte(`
rules:
  - {field: partner_id, key: customer, kind: relational, model: res.partner}
  - {field: lines, key: items, kind: children, children: {rules: [{field: product_id, key: sku, kind: relational, model: product, on_missing: skip}]}}
`), "order.yaml"))
	if d := cmp.Diff([]string{"product", "res.partner"}, must(spec.Import(WithResolver(f))).Relations()); d != "" {
		t.Fatalf("spec relations (-want +got):\n%s", d)
	}
	// The result is the caller's: changing it changes nothing in the mapper.
	got := order.Relations()
	got[0] = "x"
	if order.Relations()[0] != "account.tax" {
		t.Fatal("Relations shares its slice")
	}
}

// With WithImportMissing, a relation to a record not imported yet imports it first,
// with no option on the rule: a relation is the dependency, declared once.
func TestRelationImportsMissingByDefault(t *testing.T) {
	ctx := context.Background()
	f := newFakeResolver()
	var imported []string
	m := must(NewImport("order", []Rule{
		Relation("customer", "partner_id", "res.partner"),
		Relation("carrier", "carrier_id", "carrier", SkipMissing()),
		Children("lines", "order_line", must(NewImport("line", []Rule{Relation("sku", "product_id", "product")},
			WithResolver(f), WithImportMissing(func(_ context.Context, model, ext string) error {
				imported = append(imported, model+":"+ext)
				f.bind(model, ext, "new-"+ext)
				return nil
			})))),
	}, WithResolver(f), WithImportMissing(func(_ context.Context, model, ext string) error {
		imported = append(imported, model+":"+ext)
		f.bind(model, ext, "new-"+ext)
		return nil
	})))
	got, err := m.Map(ctx, []byte(`{"customer":"C1","carrier":"DHL","lines":[{"sku":"S1"}]}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Values{"partner_id": "new-C1", "order_line": []Values{{"product_id": "new-S1"}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"res.partner:C1", "product:S1"}, imported); d != "" {
		t.Fatalf("imported (-want +got):\n%s", d)
	}

	// The callback decides which models may be imported on the spot; its refusal names
	// the dependency.
	errNo := errors.New("orders do not import carriers")
	refuse := must(NewImport("order", []Rule{Relation("carrier", "carrier_id", "carrier")}, WithResolver(f),
		WithImportMissing(func(_ context.Context, model, _ string) error { return errNo })))
	if _, err := refuse.Map(ctx, []byte(`{"carrier":"UPS"}`), Options{}); !errors.Is(err, errNo) {
		t.Fatalf("refused import: %v", err)
	}
	// A spec's on_missing: fail fails even when the mapper could import.
	spec := must(ParseSpec([]byte(`{"rules":[{"field":"partner_id","key":"customer","kind":"relational","model":"res.partner","on_missing":"fail"}]}`), "o.json"))
	strict := must(spec.Import(WithResolver(f), WithImportMissing(func(context.Context, string, string) error {
		t.Error("on_missing: fail must not import")
		return nil
	})))
	if _, err := strict.Map(ctx, []byte(`{"customer":"C404"}`), Options{}); !errors.Is(err, ErrMissingDependency) {
		t.Fatalf("on_missing fail: %v", err)
	}
}

// storeResolver is the resolver a backend passes: the binder's answer, checked against
// the app's store, so a binding whose local record the app deleted is "not bound".
type storeResolver struct {
	mu       sync.Mutex
	bindings map[string]string   // external ID → local ID (one model is enough here)
	records  map[string]struct{} // the app's local records
}

func (s *storeResolver) ToLocal(_ context.Context, model, ext string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	local, ok := s.bindings[ext]
	if !ok {
		return "", fmt.Errorf("%s %q is not bound: %w", model, ext, binding.ErrNotFound)
	}
	if _, alive := s.records[local]; !alive {
		return "", fmt.Errorf("%s %q is bound to local %q, which no longer exists: %w", model, ext, local, binding.ErrNotFound)
	}
	return local, nil
}

func (s *storeResolver) ToExternal(context.Context, string, string) (string, error) {
	return "", binding.ErrNotFound
}

// Issue 9 defect 7, mapper side: a relation never hands out the ID of a local record
// that is gone. The resolver reports the dead binding as not found; the mapper imports
// the record again (the importer recreates and rebinds it) and maps the new ID.
func TestRelationNeverHandsOutADeadLocalID(t *testing.T) {
	ctx := context.Background()
	res := &storeResolver{bindings: map[string]string{"C1": "cust-1"}, records: map[string]struct{}{"cust-1": {}}}
	var reimported []string
	recreate := func(_ context.Context, model, ext string) error {
		res.mu.Lock()
		defer res.mu.Unlock()
		reimported = append(reimported, ext)
		res.records["cust-2"] = struct{}{} // created again…
		res.bindings[ext] = "cust-2"       // …and rebound
		return nil
	}
	m := must(NewImport("order", []Rule{Relation("customer", "partner_id", "res.partner")},
		WithResolver(res), WithImportMissing(recreate)))
	rec := []byte(`{"customer":"C1"}`)
	if got, err := m.Map(ctx, rec, Options{}); err != nil || got["partner_id"] != "cust-1" {
		t.Fatalf("alive: %v %v", got, err)
	}

	delete(res.records, "cust-1") // the app deletes the customer
	got, err := m.Map(ctx, rec, Options{})
	if err != nil || got["partner_id"] != "cust-2" || !slices.Equal(reimported, []string{"C1"}) {
		t.Fatalf("dead ID: got %v, %v; reimported %v", got, err, reimported)
	}

	// An import that does not bring the record back fails the record: the dead ID is
	// never mapped.
	delete(res.records, "cust-2")
	lazy := must(NewImport("order", []Rule{Relation("customer", "partner_id", "res.partner")},
		WithResolver(res), WithImportMissing(func(context.Context, string, string) error { return nil })))
	got, err = lazy.Map(ctx, rec, Options{})
	if !errors.Is(err, ErrMissingDependency) || !errors.Is(err, binding.ErrNotFound) || got != nil {
		t.Fatalf("still dead after import: %v, %v", got, err)
	}
	// Without WithImportMissing: a missing dependency, never the dead ID.
	plain := must(NewImport("order", []Rule{Relation("customer", "partner_id", "res.partner")}, WithResolver(res)))
	if got, err := plain.Map(ctx, rec, Options{}); !errors.Is(err, ErrMissingDependency) || got != nil {
		t.Fatalf("no import callback: %v, %v", got, err)
	}
	// SkipMissing leaves the field out.
	skip := must(NewImport("order", []Rule{Relation("customer", "partner_id", "res.partner", SkipMissing())}, WithResolver(res)))
	if got, err := skip.Map(ctx, rec, Options{}); err != nil || len(got) != 0 {
		t.Fatalf("skip: %v, %v", got, err)
	}
}

// emptyResolver answers an empty local ID with no error: that is no ID either.
type emptyResolver struct{ fakeResolver }

func (*emptyResolver) ToLocal(context.Context, string, string) (string, error) { return "", nil }

func TestRelationEmptyLocalIDIsMissing(t *testing.T) {
	m := must(NewImport("order", []Rule{Relation("customer", "partner_id", "res.partner")}, WithResolver(&emptyResolver{})))
	got, err := m.Map(context.Background(), []byte(`{"customer":"C1"}`), Options{})
	if !errors.Is(err, ErrMissingDependency) || got != nil {
		t.Fatalf("empty local ID mapped: %v, %v", got, err)
	}
}
