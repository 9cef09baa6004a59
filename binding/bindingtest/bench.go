package bindingtest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// Bench runs the shared store benchmarks: Upsert (insert then update), UpsertBatch of 100,
// and GetByExternal over 10,000 bindings. Each reports "x-baseline": its time per op
// divided by that of a hand-written mutex-and-map store doing the same work over as
// many ops in the same run: the floor any store can reach, so a SQL store shows its cost
// over pure memory.
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

// run times op with b.Loop, then times the baseline over as many ops with the timer
// stopped, and reports the ratio.
func run(b *testing.B, baseline func(n int) time.Duration, op func()) {
	b.ReportAllocs()
	for b.Loop() {
		op()
	}
	if b.N == 0 {
		return
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.StopTimer()
	base := float64(baseline(b.N).Nanoseconds()) / float64(b.N)
	if base > 0 {
		b.ReportMetric(perOp/base, "x-baseline")
	}
}

// mapStore is the baseline: the least a store must do, a mutex and a map.
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

func baselineUpsert(n int) time.Duration {
	m := &mapStore{byExt: map[string]*binding.Binding{}}
	start := time.Now()
	for i := range n {
		m.upsert(binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprint("e", i/2), Hash: fmt.Sprint(i)})
	}
	return time.Since(start)
}

func baselineBatch(n int) time.Duration {
	m := &mapStore{byExt: map[string]*binding.Binding{}}
	start := time.Now()
	for i := range n {
		bs := make([]binding.Binding, 100)
		for j := range bs {
			bs[j] = binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprint("e", i, "-", j)}
		}
		out := make([]binding.Binding, len(bs))
		for j, b := range bs {
			out[j] = m.upsert(b)
		}
	}
	return time.Since(start)
}

func baselineGet(n int) time.Duration {
	const size = 10_000
	m := &mapStore{byExt: map[string]*binding.Binding{}}
	keys := make([]string, size)
	for j := range size {
		m.upsert(binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprint("e", j), LocalID: fmt.Sprint("l", j)})
		keys[j] = fmt.Sprint("e", (j*7919)%size)
	}
	start := time.Now()
	for i := range n {
		if _, ok := m.get(backendA, modelP, keys[i%size]); !ok {
			panic("bindingtest: baseline lost a key")
		}
	}
	return time.Since(start)
}
