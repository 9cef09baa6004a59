package exporter_test

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
)

// Customer is the application's own type.
type Customer struct {
	Name  string
	Email string
}

func Example() {
	ctx := context.Background()
	api := fakeapi.New() // stands in for the external API
	defer api.Close()
	client, _ := adapter.New(api.URL)

	customers := local.NewMemory[Customer]() // the app's store
	customers.Put("1", Customer{"Ann", "ann@example.com"})
	customers.Put("2", Customer{"Bob", "bob@example.com"})
	bindings := binding.NewMemory()

	exp, err := exporter.New(client, bindings, customers, "crm", "customer", "/contacts",
		func(_ context.Context, c Customer, _ binding.Binding, _ bool) (any, error) {
			return map[string]any{"full_name": c.Name, "email": c.Email}, nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	batch, _ := exporter.NewBatch(exp)
	sum, err := batch.Export(ctx, []string{"1", "2"})
	fmt.Printf("created %d, updated %d, skipped %d, err %v\n", sum.Created, sum.Updated, sum.Skipped, err)

	customers.Put("2", Customer{"Bob", "bob@example.org"})
	sum, _ = batch.Export(ctx, []string{"1", "2"})
	fmt.Printf("created %d, updated %d, skipped %d\n", sum.Created, sum.Updated, sum.Skipped)

	ext, _ := binding.NewBinder(bindings, "crm").ToExternal(ctx, "customer", "2")
	id, _ := strconv.ParseInt(ext, 10, 64)
	remote, _ := api.Record("contacts", id)
	fmt.Println("remote records:", api.Count("contacts"), "customer 2:", remote.Get("email"))

	// Deleting locally propagates.
	_ = customers.Delete(ctx, "1")
	res, _ := exp.Delete(ctx, "1")
	fmt.Println(res.Action, "remote records:", api.Count("contacts"))
	// Output:
	// created 2, updated 0, skipped 0, err <nil>
	// created 0, updated 1, skipped 1
	// remote records: 2 customer 2: bob@example.org
	// deleted remote records: 1
}

// The exporter keeps the remote record's updated_at from each write's response, so an
// importer on the same bindings skips the echo of the export.
func ExampleWithUpdatedAtPath() {
	ctx := context.Background()
	api := fakeapi.New()
	defer api.Close()
	client, _ := adapter.New(api.URL)
	customers := local.NewMemory[Customer]()
	customers.Put("1", Customer{"Ann", "ann@example.com"})
	exp, _ := exporter.New(client, binding.NewMemory(), customers, "crm", "customer", "/contacts",
		func(_ context.Context, c Customer, _ binding.Binding, _ bool) (any, error) {
			return map[string]any{"full_name": c.Name}, nil
		},
		exporter.WithUpdatedAtPath("updated_at")) // the default; "" turns it off
	res, _ := exp.Export(ctx, "1")
	id, _ := strconv.ParseInt(res.ExternalID, 10, 64)
	remote, _ := api.Record("contacts", id)
	fmt.Println(res.Binding.ExternalUpdatedAt.Equal(remote.Get("updated_at").Time().Truncate(time.Microsecond))) // stores keep µs
	// Output: true
}

// WithClaimer sets how each record's lease is held: its TTL (renewed every TTL/3 while
// the export runs, so a slow API never lets another worker in), how long to wait for
// another worker, and the owner names the store shows.
func ExampleWithClaimer() {
	ctx := context.Background()
	api := fakeapi.New()
	defer api.Close()
	client, _ := adapter.New(api.URL)
	customers := local.NewMemory[Customer]()
	customers.Put("1", Customer{"Ann", "ann@example.com"})
	bindings := binding.NewMemory()
	exp, _ := exporter.New(client, bindings, customers, "crm", "customer", "/contacts",
		func(_ context.Context, c Customer, _ binding.Binding, _ bool) (any, error) {
			return map[string]any{"full_name": c.Name}, nil
		},
		exporter.WithClaimer(&binding.Claimer{Store: bindings, TTL: time.Minute, MaxWait: 10 * time.Second, Owner: "exporter-eu"}))
	res, err := exp.Export(ctx, "1")
	fmt.Println(res.Action, err, "lease held now:", res.Binding.LeaseOwner != "")
	// Output: created <nil> lease held now: false
}
