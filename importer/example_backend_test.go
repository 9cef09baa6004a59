package importer_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/state"
)

// Batch.Sync has the signature of a backend operation: register it, and SyncAll runs it
// with the connector's other operations and records its counts.
func ExampleBatch_Sync() {
	ctx := context.Background()
	api := fakeapi.New()
	defer api.Close()
	api.Seed("products", 120, func(i int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("Product %d", i), "sku": fmt.Sprintf("SKU-%d", i)}
	})
	client, _ := adapter.New(api.URL)
	imp, _ := importer.New(binding.NewMemoryStore(), local.NewMemory[Product](), "shop", "product",
		func(_ context.Context, rec gjson.Result, _ bool) (Product, error) {
			return Product{Name: rec.Get("name").String(), SKU: rec.Get("sku").String()}, nil
		})
	products, _ := importer.NewBatch(imp, importer.ListFrom(client, adapter.Request{Path: "/products"},
		adapter.Cursor("next_cursor", "cursor"), "updated_at_min", adapter.WithRecordsPath("items")))

	shop, _ := backend.New(backend.Config{Name: "shop", BaseURL: api.URL},
		backend.WithOperation("import_products", products.Sync),
		backend.WithStateStore(state.NewMemory()), backend.WithLogger(slog.New(slog.DiscardHandler)))
	report, err := shop.SyncAll(ctx)
	fmt.Printf("%+v %v\n", report.Total, err)
	stats, _ := shop.Stats(ctx)
	fmt.Println("created so far:", stats.Syncs.Created)
	// Output:
	// {Created:120 Updated:0 Skipped:0 Failed:0 Enqueued:0} <nil>
	// created so far: 120
}
