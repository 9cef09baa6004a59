package queue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/connkit/connkit/queue"
)

// ImportOrderArgs asks for one order to be imported from the external API.
type ImportOrderArgs struct {
	Backend string `json:"backend"`
	OrderID string `json:"order_id"`
}

// Kind names the job type; it is stored with every job.
func (ImportOrderArgs) Kind() string { return "import_order" }

func ExampleNewPool() {
	workers := &queue.Workers{}
	done := make(chan struct{})
	queue.AddWorker(workers, func(ctx context.Context, job *queue.Job[ImportOrderArgs]) error {
		fmt.Printf("importing order %s from %s (attempt %d)\n", job.Args.OrderID, job.Args.Backend, job.Attempt)
		close(done)
		return nil
	})

	pool := queue.NewPool(workers, queue.WithWorkers(4))
	ctx := context.Background()
	if err := pool.Start(ctx); err != nil {
		panic(err)
	}
	info, err := pool.Enqueue(ctx, ImportOrderArgs{Backend: "shop", OrderID: "1001"},
		queue.WithDelay(10*time.Millisecond),
		queue.WithIdentityKey("import_order:shop:1001"))
	if err != nil {
		panic(err)
	}
	// The same identity key while the first job is pending: no second job.
	dup, _ := pool.Enqueue(ctx, ImportOrderArgs{Backend: "shop", OrderID: "1001"},
		queue.WithIdentityKey("import_order:shop:1001"))
	fmt.Println("enqueued:", info.State, "duplicate:", dup.Duplicate, dup.ID == info.ID)

	<-done
	if err := pool.Stop(ctx); err != nil { // waits for running jobs
		panic(err)
	}
	got, _ := pool.GetJob(ctx, info.ID)
	fmt.Println("final state:", got.State)
	// Output:
	// enqueued: scheduled duplicate: true true
	// importing order 1001 from shop (attempt 1)
	// final state: completed
}

func ExamplePermanent() {
	workers := &queue.Workers{}
	queue.AddWorker(workers, func(ctx context.Context, job *queue.Job[ImportOrderArgs]) error {
		if job.Args.OrderID == "" {
			// Retrying cannot fix a missing ID: give up at once.
			return queue.Permanent(fmt.Errorf("order ID is empty"))
		}
		return nil
	})
	pool := queue.NewPool(workers)
	ctx := context.Background()
	_ = pool.Start(ctx)
	info, _ := pool.Enqueue(ctx, ImportOrderArgs{Backend: "shop"})
	for {
		got, _ := pool.GetJob(ctx, info.ID)
		if got.State == queue.StateCancelled {
			fmt.Println(got.State, "-", got.Errors[len(got.Errors)-1].Error)
			break
		}
		time.Sleep(time.Millisecond)
	}
	_ = pool.Stop(ctx)

	// List failed jobs (discarded or cancelled) to inspect or retry them.
	for job, err := range pool.ListJobs(ctx, queue.ListFilter{States: []queue.State{queue.StateDiscarded, queue.StateCancelled}}) {
		if err != nil {
			panic(err)
		}
		fmt.Println("failed:", job.Kind, string(job.Args))
	}
	// Output:
	// cancelled - permanent failure: order ID is empty
	// failed: import_order {"backend":"shop","order_id":""}
}
