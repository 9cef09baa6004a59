package exporter_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
)

// A Batch is a backend.Exporter: the backend routes ExportRecords to it by model and
// keeps the counts in its statistics.
func ExampleBatch_ExportRecords() {
	ctx := context.Background()
	api := fakeapi.New()
	defer api.Close()
	client, _ := adapter.New(api.URL)
	customers := local.NewMemory[Customer]()
	customers.Put("1", Customer{"Ann", "ann@example.com"})
	customers.Put("2", Customer{"", "nobody@example.com"})

	exp, _ := exporter.New(client, binding.NewMemoryStore(), customers, "crm", "customer", "/contacts",
		func(_ context.Context, c Customer, _ binding.Binding, _ bool) (any, error) {
			if c.Name == "" {
				return nil, fmt.Errorf("customer without a name")
			}
			return map[string]any{"full_name": c.Name, "email": c.Email}, nil
		}, exporter.WithLogger(slog.New(slog.DiscardHandler)))
	batch, _ := exporter.NewBatch(exp)

	crm, _ := backend.New(backend.Config{Name: "crm", BaseURL: api.URL},
		backend.WithExporter("customer", batch), backend.WithLogger(slog.New(slog.DiscardHandler)))
	res, err := crm.ExportRecords(ctx, "customer", []string{"1", "2"})
	fmt.Printf("%+v\n", res)
	var partial *backend.PartialError
	if errors.As(err, &partial) {
		fmt.Println(partial.Failed, "failed:", partial.Errors[0])
	}
	// Output:
	// {Created:1 Updated:0 Skipped:0 Failed:1 Enqueued:0}
	// 1 failed: exporting crm customer local "2" (map): customer without a name
}
