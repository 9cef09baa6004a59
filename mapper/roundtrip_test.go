package mapper

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func roundTripMappers(t *testing.T) (*ImportMapper, *ExportMapper) {
	t.Helper()
	f := newFakeResolver()
	f.bind("res.partner", "C-1", "p1")
	f.bind("product", "SKU-9", "prod9")
	states := map[string]any{"live": "published", "draft": "draft"}
	back := map[string]any{"published": "live", "draft": "draft"}
	lineImp := must(NewImport("line", []Rule{
		Relation("product", "product_id", "product"),
		Direct("qty", "product_uom_qty", Int()),
		Direct("unit_price", "price_unit", Float()),
	}, WithResolver(f)))
	lineExp := must(NewExport("line", []Rule{
		Relation("product_id", "product", "product"),
		Direct("product_uom_qty", "qty"),
		Direct("price_unit", "unit_price"),
	}, WithResolver(f)))
	imp := must(NewImport("order.import", []Rule{
		Direct("title", "name"),
		Direct("price", "amount", Float()),
		Direct("variants.0.sku", "sku"),
		Direct("meta.published", "active", Bool()),
		Direct("created_at", "created", Time()),
		Direct("status", "state", Enum(states)),
		Relation("customer_id", "partner_id", "res.partner"),
		Children("lines", "order_line", lineImp),
	}, WithResolver(f)))
	exp := must(NewExport("order.export", []Rule{
		Direct("name", "title"),
		Direct("amount", "price"),
		Direct("sku", "variants.0.sku"),
		Direct("active", "meta.published"),
		Direct("created", "created_at", FormatTime(time.RFC3339, time.UTC)),
		Direct("state", "status", Enum(back)),
		Relation("partner_id", "customer_id", "res.partner"),
		Children("order_line", "lines", lineExp),
	}, WithResolver(f)))
	return imp, exp
}

func TestRoundTrip(t *testing.T) {
	imp, exp := roundTripMappers(t)
	payloads := map[string]string{
		"full": `{"title":"SO 1","price":19.99,"variants":[{"sku":"A"}],"meta":{"published":true},
			"created_at":"2024-03-01T10:00:00Z","status":"live","customer_id":"C-1",
			"lines":[{"product":"SKU-9","qty":2,"unit_price":5.5},{"product":"SKU-9","qty":1,"unit_price":0}]}`,
		"sparse":      `{"title":"only a title"}`,
		"unicode":     `{"title":"Café ☕ \"quoted\" \\ back","status":"draft"}`,
		"empty lines": `{"title":"x","lines":[]}`,
		"nulls":       `{"title":null,"customer_id":null}`,
		"big numbers": `{"price":12345678.125,"lines":[{"qty":9007199254740993},{"qty":1234567890123456789}]}`,
	}
	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			vals, err := imp.Map(ctx, []byte(payload), Options{Create: true})
			if err != nil {
				t.Fatal(err)
			}
			out, err := exp.Map(ctx, vals, Options{Create: true})
			if err != nil {
				t.Fatal(err)
			}
			jsonEq(t, payload, out)
			if name == "big numbers" { // jsonEq compares float64s, blind to lost digits
				for _, q := range []string{"9007199254740993", "1234567890123456789"} {
					if !strings.Contains(string(out), `"qty":`+q) {
						t.Fatalf("qty %s lost digits: %s", q, out)
					}
				}
			}
		})
	}
}

// A struct round trip: JSON → struct (MapTo) → JSON (MapFrom).
type orderLine struct {
	ProductID string  `mapper:"product_id"`
	Qty       int     `mapper:"product_uom_qty"`
	Price     float64 `mapper:"price_unit"`
}

type order struct {
	Name      string      `json:"name"`
	Amount    float64     `json:"amount"`
	SKU       string      `mapper:"sku"`
	Active    bool        `mapper:"active"`
	Created   time.Time   `mapper:"created"`
	State     string      `mapper:"state"`
	PartnerID *string     `mapper:"partner_id"`
	Lines     []orderLine `mapper:"order_line"`
	Ignored   string      `mapper:"-"`
}

func TestTypedRoundTrip(t *testing.T) {
	imp, exp := roundTripMappers(t)
	ctx := context.Background()
	payload := `{"title":"SO 1","price":19.99,"variants":[{"sku":"A"}],"meta":{"published":true},
		"created_at":"2024-03-01T10:00:00Z","status":"live","customer_id":"C-1",
		"lines":[{"product":"SKU-9","qty":2,"unit_price":5.5}]}`
	o, err := mapTo[order](ctx, imp, []byte(payload), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p1 := "p1"
	want := order{Name: "SO 1", Amount: 19.99, SKU: "A", Active: true, Created: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC),
		State: "published", PartnerID: &p1, Lines: []orderLine{{"prod9", 2, 5.5}}}
	if d := cmp.Diff(want, o); d != "" {
		t.Fatalf("struct (-want +got):\n%s", d)
	}
	out, err := mapFrom(ctx, exp, &o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, payload, out)
}
