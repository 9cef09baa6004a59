package backend_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/connkit/connkit/report"

	"github.com/connkit/connkit/backend"
)

// A connector registers its sync operations and exporters; the backend orchestrates them.
func Example() {
	cfg, err := backend.ParseConfig([]byte(`
name: shop-eu
base_url: https://shop.example.com/admin/api
auth: {type: bearer, token: "${SHOP_TOKEN}"}
`), func(name string) (string, bool) { return "shpat_example", name == "SHOP_TOKEN" })
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := backend.New(cfg,
		backend.WithOperation("orders", func(ctx context.Context, b *backend.Backend) (report.Counts, error) {
			return report.Counts{Created: 3, Updated: 1}, nil
		}),
		backend.WithOperation("products", func(ctx context.Context, b *backend.Backend) (report.Counts, error) {
			return report.Counts{Skipped: 7}, errors.New("API answered 503")
		}),
		backend.WithExporter("product", backend.ExporterFunc(func(ctx context.Context, ids []string) (report.Counts, error) {
			return report.Counts{Created: len(ids)}, nil
		})),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	rep, err := b.SyncAll(ctx)
	for _, r := range rep.Results {
		fmt.Printf("%s: %+v failed=%v\n", r.Name, r.Counts, r.Err != nil)
	}
	fmt.Println("sync all error:", err != nil)

	_, err = b.ExportRecords(ctx, "sale.order", []string{"42"})
	fmt.Println(errors.Is(err, backend.ErrExportNotImplemented))
	// Output:
	// orders: {Created:3 Updated:1 Skipped:0 Duplicates:0 Failed:0 Enqueued:0} failed=false
	// products: {Created:0 Updated:0 Skipped:7 Duplicates:0 Failed:0 Enqueued:0} failed=true
	// sync all error: true
	// true
}

// Validation names every bad field, so a typo in a config file is found at start-up.
func ExampleParseConfig_invalid() {
	_, err := backend.ParseConfig([]byte(`{name: crm, base_url: "crm.example.com", auth: {type: basic, username: bot}}`), nil)
	fmt.Println(err)
	// Output:
	// invalid backend config "crm": base_url: "crm.example.com" is not an absolute http(s) URL; auth.password: is required for auth type basic (write ${ENV_VAR} to keep it out of the file)
}
