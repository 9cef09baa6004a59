package importer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/state"
)

// Product is the application's own type.
type Product struct {
	Name string
	SKU  string
}

func Example() {
	ctx := context.Background()
	api := fakeapi.New() // stands in for the external API
	defer api.Close()
	api.Seed("products", 250, func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("Product %d", i), "sku": fmt.Sprintf("SKU-%d", i)}
	})

	client, _ := adapter.New(api.URL)
	bindings := binding.NewMemory()
	products := local.NewMemory[Product]() // the app's store
	imp, err := importer.New(bindings, products, "shop", "product",
		func(_ context.Context, rec gjson.Result, _ bool) (Product, error) {
			return Product{Name: rec.Get("name").String(), SKU: rec.Get("sku").String()}, nil
		},
		importer.WithFetch(importer.FetchFrom(client, "/products/%s", "")))
	if err != nil {
		fmt.Println(err)
		return
	}
	list := importer.ListFrom(client, adapter.Request{Path: "/products"},
		adapter.Cursor("next_cursor", "cursor"), "updated_at_min", adapter.WithRecordsPath("items"))
	batch, _ := importer.NewBatch(imp, list, importer.WithWatermark(state.NewMemory(), "products.updated_at", 0))

	sum, err := batch.Run(ctx)
	fmt.Println("created:", sum.Created, "failed:", sum.Failed, "err:", err)
	sum, _ = batch.Run(ctx) // incremental: only records at or after the watermark
	fmt.Println("second run created:", sum.Created, "local records:", products.Len())

	// One record, e.g. from a webhook.
	res, _ := imp.Import(ctx, "7", importer.Force())
	p, _ := products.Get(ctx, res.LocalID)
	fmt.Println(res.Action, p.Name)
	// Output:
	// created: 250 failed: 0 err: <nil>
	// second run created: 0 local records: 250
	// updated Product 6
}

// Records whose import failed stay failed bindings, with their error and retry count;
// the watermark moves past those that will not pass by themselves, and RetryFailed
// imports them again once the cause is fixed.
func ExampleImporter_RetryFailed() {
	ctx := context.Background()
	api := fakeapi.New()
	defer api.Close()
	api.Seed("products", 5, func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("Product %d", i), "sku": fmt.Sprintf("SKU-%d", i)}
	})
	client, _ := adapter.New(api.URL)
	bindings := binding.NewMemory()
	products := local.NewMemory[Product]()
	strict := true // a decoding rule that product 3 breaks, until it is relaxed
	imp, _ := importer.New(bindings, products, "shop", "product",
		func(_ context.Context, rec gjson.Result, _ bool) (Product, error) {
			if strict && rec.Get("id").Int() == 3 {
				return Product{}, fmt.Errorf("sku %s is not allowed", rec.Get("sku"))
			}
			return Product{Name: rec.Get("name").String(), SKU: rec.Get("sku").String()}, nil
		},
		importer.WithFetch(importer.FetchFrom(client, "/products/%s", "")),
		importer.WithClaimer(&binding.Claimer{Store: bindings, TTL: time.Minute, MaxWait: 5 * time.Second}))
	list := importer.ListFrom(client, adapter.Request{Path: "/products"},
		adapter.Cursor("next_cursor", "cursor"), "updated_at_min", adapter.WithRecordsPath("items"))
	batch, _ := importer.NewBatch(imp, list, importer.WithCommitSize(2),
		importer.WithWatermark(state.NewMemory(), "products.updated_at", 0))

	sum, _ := batch.Run(ctx)
	fmt.Println("created:", sum.Created, "failed:", sum.Failed, "total:", sum.Total())
	b, _ := bindings.GetByExternal(ctx, "shop", "product", "3")
	fmt.Println(b.Status, b.RetryCount)

	strict = false
	sum, _ = imp.RetryFailed(ctx)
	fmt.Println("retried, created:", sum.Created)
	// Output:
	// created: 4 failed: 1 total: 5
	// failed 1
	// retried, created: 1
}
