package mapper_test

import (
	"context"
	"fmt"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/mapper"
)

// A declarative import mapper: external product JSON → local values.
func ExampleNewImport() {
	m, err := mapper.NewImport("product.import", []mapper.Rule{
		mapper.Direct("title", "name", mapper.Trim()),
		mapper.Direct("sku", "default_code", mapper.Required()),
		mapper.Direct("variants.0.price", "list_price", mapper.Float()),
		mapper.Direct("status", "active", mapper.EnumDefault(map[string]any{"active": true}, false)),
		mapper.Direct("created_at", "create_date", mapper.Time("2006-01-02")),
		mapper.Direct("vendor", "vendor", mapper.Default("unknown"), mapper.OnlyCreate()),
	})
	if err != nil {
		panic(err)
	}
	rec := []byte(`{"title":" Blue shirt ","sku":"BS-1","variants":[{"price":"19.99"}],
		"status":"archived","created_at":"2024-03-01"}`)
	v, err := m.Map(context.Background(), rec, mapper.Options{Create: true})
	if err != nil {
		panic(err)
	}
	fmt.Println(v["name"], v["default_code"], v["list_price"], v["active"], v["create_date"].(time.Time).Format(time.DateOnly), v["vendor"])
	// Output: Blue shirt BS-1 19.99 false 2024-03-01 unknown
}

// The models a mapper's relations refer to, children lines included: the records to
// import first. With WithImportMissing, a relation to a record not imported yet imports
// it on the spot.
func ExampleImportMapper_Relations() {
	store := binding.NewMemory()
	bindings := binding.NewBinder(store, "shop")
	customers := map[string]string{} // the app's customers: local ID → name
	importCustomer := func(ctx context.Context, model, externalID string) error {
		// What the importer does: fetch the record, create it locally, bind it.
		localID := "cust-" + externalID
		customers[localID] = "customer " + externalID
		_, err := store.Upsert(ctx, binding.Binding{Backend: "shop", Model: model, LocalID: localID,
			ExternalID: externalID, Status: binding.StatusSuccess})
		return err
	}
	line, _ := mapper.NewImport("line", []mapper.Rule{
		mapper.Relation("product_id", "product_id", "product", mapper.SkipMissing()),
	}, mapper.WithResolver(bindings))
	m, err := mapper.NewImport("order", []mapper.Rule{
		mapper.Relation("customer_id", "partner_id", "customer"),
		mapper.Children("lines", "order_line", line),
	}, mapper.WithResolver(bindings), mapper.WithImportMissing(importCustomer))
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Relations())
	v, err := m.Map(context.Background(), []byte(`{"customer_id":"C7","lines":[{"product_id":"P1"}]}`), mapper.Options{})
	fmt.Println(v["partner_id"], customers[v["partner_id"].(string)], err)
	// Output:
	// [customer product]
	// cust-C7 customer C7 <nil>
}

// An export mapper with a changed-by rule, a related record and order lines.
func ExampleNewExport() {
	line, _ := mapper.NewExport("line", []mapper.Rule{
		mapper.Direct("product_uom_qty", "quantity", mapper.Int()),
		mapper.Direct("price_unit", "price", mapper.String()),
	})
	m, err := mapper.NewExport("order.export", []mapper.Rule{
		mapper.Direct("name", "order.name"),
		mapper.Direct("partner_id.name", "order.company_name", mapper.Through("res.partner")),
		mapper.Direct("note", "order.note", mapper.ChangedBy("note")),
		mapper.Children("order_line", "order.line_items", line),
	}, mapper.WithRelated(func(ctx context.Context, model, id string) (map[string]any, error) {
		return map[string]any{"name": "ACME (" + model + " " + id + ")"}, nil
	}))
	if err != nil {
		panic(err)
	}
	local := mapper.Values{"name": "SO042", "partner_id": "7", "note": "fragile",
		"order_line": []mapper.Values{{"product_uom_qty": 2.0, "price_unit": 9.5}}}
	payload, err := m.Map(context.Background(), local, mapper.Options{Changed: []string{"name"}})
	fmt.Println(string(payload), err)
	// Output: {"order":{"name":"SO042","company_name":"ACME (res.partner 7)","line_items":[{"quantity":2,"price":"9.5"}]}} <nil>
}

// Expression rules in evaluate and execute mode.
func ExampleExpr() {
	m, err := mapper.NewImport("contact", []mapper.Rule{
		mapper.Expr("", "name", `trim(record.first + " " + record.last)`),
		mapper.Expr("token", "secret", `b64decode(value)`),
		mapper.Exec(`{"is_company": record.type == "org", "source": request.channel ?? "api"}`),
	})
	if err != nil {
		panic(err)
	}
	v, err := m.Map(context.Background(), []byte(`{"first":"Ada","last":"Lovelace","token":"czNjcjN0","type":"person"}`),
		mapper.Options{Request: map[string]any{"channel": "webhook"}})
	fmt.Println(v["name"], v["secret"], v["is_company"], v["source"], err)
	// Output: Ada Lovelace s3cr3t false webhook <nil>
}

// Loading a mapper from a YAML spec (read from a file or embedded with go:embed).
func ExampleParseSpec() {
	spec := `
name: partner.import
rules:
  - {field: name, key: company.name, converter: trim, required: true}
  - {field: email, key: email, converter: "trim|lower"}
  - {field: ref, kind: expression, expression: 'upper(record.code)'}
`
	s, err := mapper.ParseSpec([]byte(spec), "partner.yaml")
	if err != nil {
		panic(err)
	}
	m, err := s.Import()
	if err != nil {
		panic(err)
	}
	v, err := m.Map(context.Background(), []byte(`{"company":{"name":" ACME "},"email":" Info@ACME.test","code":"ac-1"}`), mapper.Options{})
	fmt.Println(v["name"], v["email"], v["ref"], err)

	// A bad spec names the rule, its line and field.
	s, _ = mapper.ParseSpec([]byte("rules:\n  - {field: a, key: a}\n  - {field: b, key: b, converter: money}\n"), "partner.yaml")
	_, err = s.Import()
	fmt.Println(err)
	// Output:
	// ACME info@acme.test AC-1 <nil>
	// building import mapper "partner": partner.yaml:3: rules[1] (field "b"): unknown converter "money" (built in: string, int, float, bool, time, format_time, enum, trim, lower, upper; register others WithConverter)
}
