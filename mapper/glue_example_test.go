package mapper_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/report"
)

// Product is the application's own type, filled by the import mapper's values.
type Product struct {
	Name     string  `mapper:"name"`
	Price    float64 `mapper:"list_price"`
	VendorID string  `mapper:"partner_id"` // local ID of the vendor
}

// An import mapper plugged into the importer: relations resolve through the same binding
// store the importer writes, drafts are skipped, and a bad record fails with the
// mapper's error naming rule, field and record.
func ExampleImportFunc() {
	ctx := context.Background()
	bindings := binding.NewMemory()
	binder := binding.NewBinder(bindings, "shop")
	_, _ = bindings.Upsert(ctx, binding.Binding{Backend: "shop", Model: "partner", LocalID: "v-1", ExternalID: "501",
		Status: binding.StatusSuccess}) // vendor 501 was imported before

	m, err := mapper.NewImport("product.import", []mapper.Rule{
		mapper.Func("skip drafts", func(_ context.Context, r *mapper.Record) (mapper.Values, error) {
			if s, _, _ := r.Get("status"); s == "draft" {
				return nil, report.ErrSkip
			}
			return nil, nil
		}),
		mapper.Direct("title", "name", mapper.Trim(), mapper.Required()),
		mapper.Direct("price", "list_price", mapper.Float()),
		mapper.Relation("vendor_id", "partner_id", "partner"),
	}, mapper.WithResolver(binder))
	if err != nil {
		fmt.Println(err)
		return
	}
	products := local.NewMemory[Product]()
	imp, err := importer.New(bindings, products, "shop", "product", mapper.ImportFunc[Product](m))
	if err != nil {
		fmt.Println(err)
		return
	}

	res, err := imp.ImportRecord(ctx, gjson.Parse(`{"id":1,"title":" Mug ","price":"7.5","vendor_id":501}`))
	p, _ := products.Get(ctx, res.LocalID)
	fmt.Printf("%s %+v %v\n", res.Action, p, err)

	res, err = imp.ImportRecord(ctx, gjson.Parse(`{"id":2,"title":"Cup","status":"draft"}`))
	fmt.Println(res.Action, err)

	_, err = imp.ImportRecord(ctx, gjson.Parse(`{"id":3,"price":"1"}`))
	var me *mapper.MappingError
	fmt.Println(errors.Is(err, mapper.ErrRequired), errors.As(err, &me) && me.Field == "name" && me.RecordID == "3")
	// Output:
	// created {Name:Mug Price:7.5 VendorID:v-1} <nil>
	// skipped <nil>
	// true true
}

// Customer is the application's own type, read by the export mapper.
type Customer struct {
	Name    string `mapper:"name"`
	Email   string `mapper:"email"`
	Country string `mapper:"country"`
}

// An export mapper plugged into the exporter: the payload goes out as built (a
// json.RawMessage, not encoded twice), only-on-create rules run on the POST only (so
// updates PATCH, keeping what was set on create), and an unchanged record is not sent
// again.
func ExampleExportFunc() {
	ctx := context.Background()
	api := fakeapi.New() // stands in for the external API
	defer api.Close()
	client, _ := adapter.New(api.URL)

	m, err := mapper.NewExport("customer.export", []mapper.Rule{
		mapper.Direct("name", "full_name", mapper.Required()),
		mapper.Direct("email", "contact.email", mapper.Lower(), mapper.Convert("email", checkEmail)),
		mapper.Direct("country", "contact.country", mapper.Upper(), mapper.Default("ZZ")),
		mapper.Expr("", "source", `"connkit"`, mapper.OnlyCreate()),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	customers := local.NewMemory[Customer]()
	customers.Put("1", Customer{"Ann", "Ann@Example.com", "fr"})
	bindings := binding.NewMemory()
	exp, err := exporter.New(client, bindings, customers, "crm", "customer", "/contacts",
		mapper.ExportFunc[Customer](m), exporter.WithUpdateMethod("PATCH"))
	if err != nil {
		fmt.Println(err)
		return
	}

	res, err := exp.Export(ctx, "1")
	fmt.Println(res.Action, err)
	id, _ := strconv.ParseInt(res.ExternalID, 10, 64)
	remote, _ := api.Record("contacts", id)
	fmt.Println(remote.Get("full_name"), remote.Get("contact.email"), remote.Get("contact.country"), remote.Get("source"))

	res, _ = exp.Export(ctx, "1") // the update payload has no "source": sent once
	fmt.Println(res.Action)
	res, _ = exp.Export(ctx, "1")
	fmt.Println(res.Action)

	customers.Put("1", Customer{"Ann B.", "ann@example.com", "fr"})
	res, _ = exp.Export(ctx, "1")
	remote, _ = api.Record("contacts", id)
	fmt.Println(res.Action, remote.Get("full_name"), remote.Get("source"))

	customers.Put("2", Customer{Name: "Bob", Email: "bob at example.com"})
	_, err = exp.Export(ctx, "2")
	var me *mapper.MappingError
	fmt.Println(errors.Is(err, mapper.ErrConvert), errors.As(err, &me), me.Field, me.RecordID)
	// Output:
	// created <nil>
	// Ann ann@example.com FR connkit
	// updated
	// skipped
	// updated Ann B. connkit
	// true true contact.email 2
}

func checkEmail(v any) (any, error) {
	if s, _ := v.(string); !strings.Contains(s, "@") {
		return nil, fmt.Errorf("%q is not an e-mail address", s)
	}
	return v, nil
}
