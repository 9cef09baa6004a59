package bindingtest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/binding/bindingtest"
)

// A store package runs the suite from its own tests. With WithAdvance the suite moves
// each store's clock instead of sleeping for leases to expire.
func ExampleRun() {
	_ = func(t *testing.T) { // func TestConformance(t *testing.T) in your package
		var mu sync.Mutex
		clocks := map[binding.Store]*time.Time{}
		bindingtest.Run(t, func(t *testing.T) binding.Store {
			now := time.Now()
			s := binding.NewMemory(binding.WithClock(func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				return now
			}))
			mu.Lock()
			clocks[s] = &now
			mu.Unlock()
			return s
		}, bindingtest.WithAdvance(func(s binding.Store, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			*clocks[s] = clocks[s].Add(d)
		}))
	}
}

// Store benchmarks share the suite's workloads and report their cost against a plain
// map ("x-baseline").
func ExampleBench() {
	_ = func(b *testing.B) { // func BenchmarkStore(b *testing.B) in your package
		bindingtest.Bench(b, func(b *testing.B) binding.Store { return binding.NewMemory() })
	}
}
