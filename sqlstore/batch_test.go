package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/connkit/connkit/binding"
)

// UpsertBatch's results, failing index and rollback are checked against a reference
// model by the conformance case bindingtest "UpsertBatchMatchesModel" (see
// TestBindingConformance). These tests cover what a model run cannot: concurrent
// batches racing on one database.

// Concurrent batches inserting the same new keys: on Postgres the multi-row inserts race,
// and a batch whose rows were taken by another must update them, not fail.
func TestConcurrentUpsertBatchOfNewKeys(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := e.open(t).Bindings()
			const workers, keys = 4, 60
			for round := range 3 {
				errs := make(chan error, workers)
				start := make(chan struct{})
				for w := range workers {
					go func() {
						<-start
						bs := make([]binding.Binding, keys)
						for i := range bs {
							bs[i] = binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprint("E", round, "-", i),
								LocalID: fmt.Sprint("L", round, "-", i), Hash: fmt.Sprint(w)}
						}
						_, err := s.UpsertBatch(ctx, bs)
						errs <- err
					}()
				}
				close(start)
				for range workers {
					if err := <-errs; err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
			counts, err := s.Counts(ctx, "shop", "product")
			if err != nil {
				t.Fatal(err)
			}
			if counts[binding.StatusPending] != 3*keys {
				t.Fatalf("%d bindings, want %d", counts[binding.StatusPending], 3*keys)
			}
		})
	}
}

// Concurrent batches over the same keys in opposite orders lock rows in opposite orders:
// Postgres aborts one of them as a deadlock, which the store must retry, not report.
func TestConcurrentUpsertBatchOppositeOrders(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := e.open(t).Bindings()
			for round := range 6 {
				errs := make(chan error, 2)
				for w := range 2 {
					go func() {
						bs := make([]binding.Binding, 50)
						for i := range bs {
							k := i
							if w == 1 {
								k = len(bs) - 1 - i
							}
							bs[i] = binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprint("E", k), Hash: fmt.Sprint(round, w)}
							if round%2 == 1 { // with local IDs: the lookup-then-write path
								bs[i].LocalID = fmt.Sprint("L", k)
							}
						}
						_, err := s.UpsertBatch(ctx, bs)
						errs <- err
					}()
				}
				for range 2 {
					if err := <-errs; err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
		})
	}
}
