package mapper

import (
	"context"
	"errors"
	"testing"

	"github.com/connkit/connkit/binding"
)

// The real binder satisfies IDResolver, and its "not bound" errors drive the relations'
// missing-record policy.
var _ IDResolver = (*binding.Binder)(nil)

func TestWithRealBinder(t *testing.T) {
	ctx := context.Background()
	store := binding.NewMemory()
	b := binding.NewBinder(store, "shop")
	if _, err := store.Upsert(ctx, binding.Binding{Backend: "shop", Model: "res.partner", LocalID: "p1", ExternalID: "C-1",
		Status: binding.StatusSuccess}); err != nil {
		t.Fatal(err)
	}
	imp := must(NewImport("order", []Rule{
		Relation("customer", "partner_id", "res.partner"),
		Relation("carrier", "carrier_id", "delivery.carrier", SkipMissing()),
	}, WithResolver(b)))
	got, err := imp.Map(ctx, []byte(`{"customer":"C-1","carrier":"DHL"}`), Options{})
	if err != nil || got["partner_id"] != "p1" || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = imp.Map(ctx, []byte(`{"customer":"C-404"}`), Options{})
	if !errors.Is(err, ErrMissingDependency) || !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	exp := must(NewExport("order", []Rule{Relation("partner_id", "customer", "res.partner")}, WithResolver(b)))
	p, err := exp.Map(ctx, Values{"partner_id": "p1"}, Options{})
	if err != nil || string(p) != `{"customer":"C-1"}` {
		t.Fatalf("payload %s, %v", p, err)
	}
	_, err = exp.Map(ctx, Values{"partner_id": "p2"}, Options{})
	var md *missingDependencyError
	if !errors.As(err, &md) || md.id != "p2" || !md.export {
		t.Fatalf("err = %v", err)
	}
}
