package bindingtest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/connkit/connkit/binding"
)

// Bench runs the shared store benchmarks: Upsert (insert then update), UpsertBatch of 100,
// and GetByExternal over 10,000 bindings. Each reports "x-baseline": its time per op
// divided by that of a hand-written mutex-and-map store doing the same work, which is the
// floor any store can reach (so a SQL store shows its cost over pure memory).
func Bench(b *testing.B, newStore func(b *testing.B) binding.Store) {
	b.Run("Upsert", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		i := 0
		run(b, baselineUpsert, func() {
			// Alternate inserts and updates of the previous binding.
			ext := fmt.Sprint("e", i/2)
			if _, err := s.Upsert(ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: ext, Hash: fmt.Sprint(i)}); err != nil {
				b.Fatal(err)
			}
			i++
		})
	})
	b.Run("UpsertBatch100", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		i := 0
		run(b, baselineBatch, func() {
			bs := make([]binding.Binding, 100)
			for j := range bs {
				bs[j] = binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprint("e", i, "-", j)}
			}
			if _, err := s.UpsertBatch(ctx, bs); err != nil {
				b.Fatal(err)
			}
			i++
		})
	})
	b.Run("GetByExternal", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		const n = 10_000
		for k := 0; k < n; k += 500 {
			bs := make([]binding.Binding, 500)
			for j := range bs {
				bs[j] = binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprint("e", k+j), LocalID: fmt.Sprint("l", k+j)}
			}
			if _, err := s.UpsertBatch(ctx, bs); err != nil {
				b.Fatal(err)
			}
		}
		keys := make([]string, n)
		for j := range keys {
			keys[j] = fmt.Sprint("e", (j*7919)%n)
		}
		i := 0
		run(b, baselineGet, func() {
			if _, err := s.GetByExternal(ctx, backendA, modelP, keys[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		})
	})
}

// run times op with b.Loop and reports its ratio to the baseline benchmark (run once per
// process and cached).
func run(b *testing.B, baseline func() float64, op func()) {
	b.ReportAllocs()
	for b.Loop() {
		op()
	}
	if b.N > 0 {
		perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if base := baseline(); base > 0 {
			b.ReportMetric(perOp/base, "x-baseline")
		}
	}
}

// mapStore is the baseline: the least a store must do, a mutex and two maps.
type mapStore struct {
	mu    sync.Mutex
	next  int64
	byExt map[string]*binding.Binding
}

func (m *mapStore) upsert(b binding.Binding) binding.Binding {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := b.Backend + "\x00" + b.Model + "\x00" + b.ExternalID
	if cur, ok := m.byExt[k]; ok {
		b.ID = cur.ID
		*cur = b
		return b
	}
	m.next++
	b.ID = m.next
	m.byExt[k] = &b
	return b
}

func (m *mapStore) get(backend, model, ext string) (binding.Binding, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.byExt[backend+"\x00"+model+"\x00"+ext]
	if !ok {
		return binding.Binding{}, false
	}
	return *b, true
}

func nsPerOp(r testing.BenchmarkResult) float64 {
	if r.N == 0 {
		return 0
	}
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

var (
	baselineUpsert = sync.OnceValue(func() float64 {
		return nsPerOp(testing.Benchmark(func(b *testing.B) {
			m := &mapStore{byExt: map[string]*binding.Binding{}}
			i := 0
			for b.Loop() {
				m.upsert(binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprint("e", i/2), Hash: fmt.Sprint(i)})
				i++
			}
		}))
	})
	baselineBatch = sync.OnceValue(func() float64 {
		return nsPerOp(testing.Benchmark(func(b *testing.B) {
			m := &mapStore{byExt: map[string]*binding.Binding{}}
			i := 0
			for b.Loop() {
				out := make([]binding.Binding, 100)
				for j := range out {
					out[j] = m.upsert(binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprint("e", i, "-", j)})
				}
				i++
			}
		}))
	})
	baselineGet = sync.OnceValue(func() float64 {
		return nsPerOp(testing.Benchmark(func(b *testing.B) {
			const n = 10_000
			m := &mapStore{byExt: map[string]*binding.Binding{}}
			keys := make([]string, n)
			for j := range n {
				m.upsert(binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprint("e", j)})
				keys[j] = fmt.Sprint("e", (j*7919)%n)
			}
			i := 0
			for b.Loop() {
				if _, ok := m.get(backendA, modelP, keys[i%n]); !ok {
					b.Fatal("baseline lost a key")
				}
				i++
			}
		}))
	})
)
