package bindingtest

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

func init() {
	register("Isolation", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		// One external and local ID on two models and two backends: four bindings.
		var made []binding.Binding
		for _, backend := range []string{backendA, backendB} {
			for _, model := range []string{modelP, modelC} {
				made = append(made, e.upsert(t, binding.Binding{Backend: backend, Model: model, ExternalID: "42", LocalID: "7", Hash: backend + "/" + model}))
			}
		}
		got := ids(made)
		slices.Sort(got)
		if len(slices.Compact(got)) != 4 {
			t.Fatalf("same IDs on different backends/models share bindings: %v", ids(made))
		}
		for _, m := range made {
			byExt, err := s.GetByExternal(ctx, m.Backend, m.Model, "42")
			noErr(t, "GetByExternal", err)
			eq(t, "GetByExternal("+m.Hash+").ID", byExt.ID, m.ID)
			byLocal, err := s.GetByLocal(ctx, m.Backend, m.Model, "7")
			noErr(t, "GetByLocal", err)
			eq(t, "GetByLocal("+m.Hash+").ID", byLocal.ID, m.ID)
		}
		// Writing one leaves the others alone.
		_, err := s.MarkFailed(ctx, made[0].ID, binding.Failure{Error: "x"})
		noErr(t, "MarkFailed", err)
		noErr(t, "Delete", s.Delete(ctx, made[1].ID))
		for _, m := range made[2:] {
			sameBinding(t, "untouched binding "+m.Hash, e.get(t, m.ID), m)
		}
		eq(t, "List(backend B)", len(e.list(t, binding.Filter{Backend: backendB})), 2)
		eq(t, "List(model C)", len(e.list(t, binding.Filter{Model: modelC})), 1)
	})

	register("TimesRoundTrip", func(t *testing.T, e *env) {
		zone := time.FixedZone("UTC+5:30", 5*3600+1800)
		synced := time.Date(2024, 2, 29, 23, 59, 58, 123_456_789, zone)
		extAt := time.Date(1999, 12, 31, 23, 0, 0, 987_000_000, time.UTC)
		a := e.upsert(t, binding.Binding{ExternalID: "E1", SyncedAt: synced, ExternalUpdatedAt: extAt})
		for _, b := range []binding.Binding{a, e.get(t, a.ID)} {
			sameTime(t, "SyncedAt", b.SyncedAt, synced)
			sameTime(t, "ExternalUpdatedAt", b.ExternalUpdatedAt, extAt)
			sameTime(t, "CreatedAt", b.CreatedAt, b.CreatedAt)
			sameTime(t, "UpdatedAt", b.UpdatedAt, b.UpdatedAt)
		}
		// Zero times stay zero.
		z := e.upsert(t, binding.Binding{ExternalID: "E2"})
		for _, b := range []binding.Binding{z, e.get(t, z.ID)} {
			sameTime(t, "zero SyncedAt", b.SyncedAt, time.Time{})
			sameTime(t, "zero ExternalUpdatedAt", b.ExternalUpdatedAt, time.Time{})
			sameTime(t, "zero LeaseExpiresAt", b.LeaseExpiresAt, time.Time{})
		}
		// Overwriting with zero clears.
		c := e.upsert(t, binding.Binding{ID: a.ID, Backend: backendA, Model: modelP})
		sameTime(t, "SyncedAt after Upsert with the zero time", c.SyncedAt, time.Time{})
		sameTime(t, "stored SyncedAt after Upsert with the zero time", e.get(t, a.ID).SyncedAt, time.Time{})
	})

	register("ConcurrentEnsure", func(t *testing.T, e *env) {
		var created atomic.Int32
		got := make([]int64, 100)
		errs := make([]error, 100)
		parallel(100, func(i int) {
			b, c, err := e.store.Ensure(e.ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E1", Hash: fmt.Sprint(i)})
			errs[i], got[i] = err, b.ID
			if c {
				created.Add(1)
			}
		})
		for i, err := range errs {
			noErr(t, fmt.Sprint("Ensure #", i), err)
		}
		eq(t, "Ensure calls that created", created.Load(), 1)
		for i, id := range got {
			eq(t, fmt.Sprint("ID from Ensure #", i), id, got[0])
		}
		eq(t, "bindings", e.count(t, binding.Filter{}), 1)
	})

	register("ConcurrentUpsert", func(t *testing.T, e *env) {
		got := make([]int64, 100)
		errs := make([]error, 100)
		parallel(100, func(i int) {
			b, err := e.store.Upsert(e.ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E1", Hash: fmt.Sprint(i)})
			errs[i], got[i] = err, b.ID
		})
		for i, err := range errs {
			noErr(t, fmt.Sprint("Upsert #", i), err)
		}
		for i, id := range got {
			eq(t, fmt.Sprint("ID from Upsert #", i), id, got[0])
		}
		eq(t, "bindings", e.count(t, binding.Filter{}), 1)
	})

	register("ConcurrentMarkFailed", func(t *testing.T, e *env) {
		a := e.upsert(t, binding.Binding{ExternalID: "E1"})
		errs := make([]error, 100)
		parallel(100, func(i int) {
			_, errs[i] = e.store.MarkFailed(e.ctx, a.ID, binding.Failure{Error: fmt.Sprint("failure ", i)})
		})
		for i, err := range errs {
			noErr(t, fmt.Sprint("MarkFailed #", i), err)
		}
		eq(t, "RetryCount after 100 concurrent failures", e.get(t, a.ID).RetryCount, 100)
	})

	register("ConcurrentMixed", func(t *testing.T, e *env) {
		// Batches, single writes, reads and lists at once; each external ID ends up bound once.
		// Room for every error the calls below can send (Ensure: 10 × 50), so that a store
		// failing them all makes the test fail, not hang.
		errs := make(chan error, 10*50+30)
		parallel(40, func(i int) {
			switch i % 4 {
			case 0:
				bs := seq("m", 50)
				if _, err := e.store.UpsertBatch(e.ctx, bs); err != nil {
					errs <- err
				}
			case 1:
				for j := range 50 {
					if _, _, err := e.store.Ensure(e.ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprintf("m-%04d", j)}); err != nil {
						errs <- err
					}
				}
			case 2:
				for _, err := range e.store.List(e.ctx, binding.Filter{}) {
					if err != nil {
						errs <- err
					}
				}
			case 3:
				if _, err := e.store.Counts(e.ctx, backendA, ""); err != nil {
					errs <- err
				}
			}
		})
		close(errs)
		for err := range errs {
			t.Errorf("concurrent call: %v", err)
		}
		eq(t, "bindings", e.count(t, binding.Filter{}), 50)
	})
}
