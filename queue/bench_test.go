package queue_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/connkit/connkit/queue"
)

// BenchmarkPool measures enqueue-and-run through the Pool against a
// hand-written baseline: the same JSON encode and decode per job, through a
// buffered channel drained by the same number of goroutines, without
// priorities, delays, retries or job records. The pool sub-benchmark
// reports its cost as a multiple of the baseline (x-baseline).
func BenchmarkPool(b *testing.B) {
	const workers = 4
	work := func(n int) {} // the job itself is free: this measures overhead

	var baselineNs float64
	b.Run("baseline", func(b *testing.B) {
		jobs := make(chan []byte, 1024)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for raw := range jobs {
					var args sleepArgs
					if err := json.Unmarshal(raw, &args); err != nil {
						panic(err)
					}
					work(args.N)
				}
			})
		}
		b.ResetTimer()
		for i := range b.N {
			raw, err := json.Marshal(sleepArgs{N: i})
			if err != nil {
				b.Fatal(err)
			}
			jobs <- raw
		}
		close(jobs)
		wg.Wait()
		baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})

	b.Run("pool", func(b *testing.B) {
		w := &queue.Workers{}
		var done sync.WaitGroup
		queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error {
			work(job.Args.N)
			done.Done()
			return nil
		})
		p := queue.NewPool(w, queue.WithWorkers(workers), queue.WithRetention(1024), queue.WithLogger(quiet))
		ctx := context.Background()
		if err := p.Start(ctx); err != nil {
			b.Fatal(err)
		}
		done.Add(b.N)
		b.ResetTimer()
		for i := range b.N {
			if _, err := p.Enqueue(ctx, sleepArgs{N: i}); err != nil {
				b.Fatal(err)
			}
		}
		done.Wait()
		b.StopTimer()
		_ = p.Stop(ctx)
		if baselineNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x-baseline")
		}
	})
}
