package riverqueue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
)

type ExportInvoiceArgs struct {
	InvoiceID int64 `json:"invoice_id"`
}

func (ExportInvoiceArgs) Kind() string { return "export_invoice" }

// A durable queue on a SQLite file: jobs survive restarts. For many
// processes on many machines, use NewPostgres with a shared database.
func ExampleOpenSQLite() {
	dir, _ := os.MkdirTemp("", "riverqueue-example")
	defer os.RemoveAll(dir)

	workers := queue.NewWorkers()
	done := make(chan struct{})
	queue.AddWorker(workers, func(ctx context.Context, job *queue.Job[ExportInvoiceArgs]) error {
		fmt.Println("exporting invoice", job.Args.InvoiceID)
		close(done)
		return nil
	})

	ctx := context.Background()
	// Creates the file and River's tables on first use.
	q, err := riverqueue.OpenSQLite(ctx, filepath.Join(dir, "jobs.db"), workers,
		riverqueue.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	defer q.Close()

	if _, err := q.Enqueue(ctx, ExportInvoiceArgs{InvoiceID: 42}, queue.WithPriority(queue.PriorityHigh)); err != nil {
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
