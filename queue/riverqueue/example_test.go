package riverqueue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

type ExportInvoiceArgs struct {
	InvoiceID int64 `json:"invoice_id"`
}

func (ExportInvoiceArgs) Kind() string { return "export_invoice" }

// One database for everything: connkit's stores, the app's records and the
// jobs. The invoice and the job that exports it are written in one
// transaction, so a crash can neither lose the export nor export an invoice
// that was never saved.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "riverqueue-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	var workers queue.Workers
	done := make(chan struct{})
	queue.AddWorker(&workers, func(ctx context.Context, job *queue.Job[ExportInvoiceArgs]) error {
		fmt.Println("exporting invoice", job.Args.InvoiceID)
		close(done)
		return nil
	})
	// Creates River's tables on first use.
	q, err := riverqueue.New(ctx, db, &workers)
	if err != nil {
		panic(err)
	}

	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)`); err != nil {
		panic(err)
	}
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		panic(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO invoices (id, total) VALUES (42, 1000)`); err != nil {
		panic(err)
	}
	if _, err := q.EnqueueTx(ctx, tx, ExportInvoiceArgs{InvoiceID: 42},
		queue.WithIdentityKey("export_invoice:42"), queue.WithPriority(1)); err != nil {
		panic(err)
	}
	if err := tx.Commit(); err != nil {
		panic(err)
	}

	if err := q.Start(ctx); err != nil {
		panic(err)
	}
	<-done
	if err := q.Stop(ctx); err != nil {
		panic(err)
	}
	// Output:
	// exporting invoice 42
}
