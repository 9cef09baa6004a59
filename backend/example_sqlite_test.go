package backend_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

// The same two-model connector, persisted: one SQLite file holds the bindings, the
// watermarks, the audit log, the app's records and a durable River queue. A new local
// order and its export are committed in one transaction (the outbox), so a crash can
// neither lose the export nor send one for an order that was rolled back.
func Example_sqlite() {
	ctx := context.Background()
	api := fakeapi.New()
	defer api.Close()
	ada := api.Add("customers", map[string]any{"name": "Ada Lovelace", "email": "ada@example.com"})
	api.Add("orders", map[string]any{"number": "SO-1", "customer_id": ada})

	dir, _ := os.MkdirTemp("", "connkit-example")
	defer os.RemoveAll(dir)
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "crm.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	customers, _ := sqlstore.Records[Customer](ctx, db, "customer")
	orders, _ := sqlstore.Records[Order](ctx, db, "order")

	crm, err := backend.New(backend.Config{Name: "crm", BaseURL: api.URL},
		backend.WithDB(db),
		backend.WithQueue(func(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
			return riverqueue.New(ctx, db, w, riverqueue.WithRiverConfig(func(c *river.Config) {
				c.FetchPollInterval = 50 * time.Millisecond
			}))
		}),
		backend.WithModel(backend.Model[Customer]{
			Name: "customer", Local: customers,
			Import: &backend.Import{List: adapter.Request{Path: "/customers"}, Records: "items", Since: "updated_at_min",
				Fetch: "/customers/{id}", Rules: []mapper.Rule{mapper.Direct("name", "name"), mapper.Direct("email", "email")}},
			Export: &backend.Export{Create: "/customers", Rules: []mapper.Rule{mapper.Direct("name", "name"), mapper.Direct("email", "email")}},
		}),
		backend.WithModel(backend.Model[Order]{
			Name: "order", Local: orders,
			Import: &backend.Import{List: adapter.Request{Path: "/orders"}, Records: "items", Fetch: "/orders/{id}",
				Rules: []mapper.Rule{mapper.Direct("number", "number"), mapper.Relation("customer_id", "customer_id", "customer")}},
			Export: &backend.Export{Create: "/orders",
				Rules: []mapper.Rule{mapper.Direct("number", "number"), mapper.Relation("customer_id", "customer_id", "customer")}},
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := crm.SyncAll(ctx)
	fmt.Println("imported:", rep.Total.Created, "error:", err)

	var job queue.JobInfo
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		id, err := orders.WithTx(tx).Create(ctx, Order{Number: "SO-2", CustomerID: "1"})
		if err != nil {
			return err
		}
		job, err = crm.Later().ExportTx(ctx, tx, "order", id)
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := crm.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("export job:", waitForJob(ctx, crm.Queue(), job.ID))
	_ = crm.Stop(ctx)
	fmt.Println("orders in the CRM:", api.Count("orders"))
	// Output:
	// imported: 2 error: <nil>
	// export job: completed
	// orders in the CRM: 2
}
