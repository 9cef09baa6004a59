package mapper

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestChildrenInheritResolver: the lines of an order refer to products; the lines' mapper
// is built without a resolver and resolves through the order mapper's, on import and on
// export, grandchildren included. The shared lines mapper itself is not changed.
func TestChildrenInheritResolver(t *testing.T) {
	ctx := context.Background()
	res := newFakeResolver()
	res.bind("product", "9001", "p1")
	res.bind("product", "9002", "p2")
	res.bind("tax", "77", "t1")

	taxIn, err := NewImport("tax", []Rule{Relation("id", "tax_id", "tax")})
	if err != nil {
		t.Fatal(err)
	}
	lineIn, err := NewImport("line", []Rule{
		Relation("product_id", "product_id", "product"),
		Direct("quantity", "quantity", Int()),
		Children("taxes", "taxes", taxIn),
	})
	if err != nil {
		t.Fatalf("a lines mapper with relations builds without a resolver: %v", err)
	}
	orderIn, err := NewImport("order", []Rule{Children("line_items", "lines", lineIn)}, WithResolver(res))
	if err != nil {
		t.Fatal(err)
	}
	if got := orderIn.Relations(); !slices.Equal(got, []string{"product", "tax"}) {
		t.Errorf("Relations = %v, want the lines' models", got)
	}
	v, err := orderIn.Map(ctx, []byte(`{"line_items":[{"product_id":9001,"quantity":2,"taxes":[{"id":77}]},{"product_id":9002,"quantity":1}]}`), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	lines := v["lines"].([]Values)
	if lines[0]["product_id"] != "p1" || lines[1]["product_id"] != "p2" || lines[0]["taxes"].([]Values)[0]["tax_id"] != "t1" {
		t.Errorf("lines = %v, want products p1, p2 and tax t1", lines)
	}

	// The lines mapper on its own still has no resolver: its relations fail each record,
	// saying what to do.
	_, err = lineIn.Map(ctx, []byte(`{"product_id":9001}`), Options{})
	if err == nil || !strings.Contains(err.Error(), "needs a resolver") {
		t.Errorf("lines mapper used alone: %v, want a needs-a-resolver error", err)
	}

	lineOut, err := NewExport("line", []Rule{Relation("product_id", "product_id", "product"), Direct("quantity", "quantity")})
	if err != nil {
		t.Fatal(err)
	}
	orderOut, err := NewExport("order", []Rule{Children("lines", "line_items", lineOut)}, WithResolver(res))
	if err != nil {
		t.Fatal(err)
	}
	body, err := orderOut.Map(ctx, Values{"lines": []any{map[string]any{"product_id": "p2", "quantity": 3}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"line_items":[{"product_id":"9002","quantity":3}]}`; string(body) != want {
		t.Errorf("export = %s, want %s", body, want)
	}
}
