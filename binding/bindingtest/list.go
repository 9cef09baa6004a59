package bindingtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

func ids(bs []binding.Binding) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

func init() {
	register("ListFilters", func(t *testing.T, e *env) {
		mk := func(backend, model, ext string, st binding.Status, retries int) binding.Binding {
			return e.upsert(t, binding.Binding{Backend: backend, Model: model, ExternalID: ext, Status: st, RetryCount: retries})
		}
		p1 := mk(backendA, modelP, "p1", binding.StatusPending, 0)
		p2 := mk(backendA, modelP, "p2", binding.StatusFailed, 1)
		p3 := mk(backendA, modelP, "p3", binding.StatusFailed, 5)
		c1 := mk(backendA, modelC, "c1", binding.StatusSuccess, 0)
		c2 := mk(backendA, modelC, "c2", binding.StatusFailed, 2)
		u1 := mk(backendB, modelP, "u1", binding.StatusSkipped, 0)
		all := []binding.Binding{p1, p2, p3, c1, c2, u1}
		if !slices.IsSorted(ids(all)) {
			t.Fatalf("IDs are not assigned in increasing order: %v", ids(all))
		}
		for _, tc := range []struct {
			name string
			f    binding.Filter
			want []binding.Binding
		}{
			{"zero filter", binding.Filter{}, all},
			{"backend", binding.Filter{Backend: backendA}, []binding.Binding{p1, p2, p3, c1, c2}},
			{"other backend", binding.Filter{Backend: backendB}, []binding.Binding{u1}},
			{"unknown backend", binding.Filter{Backend: "nope"}, nil},
			{"model", binding.Filter{Model: modelC}, []binding.Binding{c1, c2}},
			{"backend and model", binding.Filter{Backend: backendA, Model: modelP}, []binding.Binding{p1, p2, p3}},
			{"one status", binding.Filter{Statuses: []binding.Status{binding.StatusFailed}}, []binding.Binding{p2, p3, c2}},
			{"two statuses", binding.Filter{Statuses: []binding.Status{binding.StatusSkipped, binding.StatusPending}}, []binding.Binding{p1, u1}},
			{"retryable below 3", binding.Filter{RetryableBelow: 3}, []binding.Binding{p2, c2}},
			{"retryable below 2", binding.Filter{RetryableBelow: 2}, []binding.Binding{p2}},
			{"retryable below 6 of one model", binding.Filter{Model: modelP, RetryableBelow: 6}, []binding.Binding{p2, p3}},
			{"limit", binding.Filter{Limit: 2}, []binding.Binding{p1, p2}},
			{"limit with status", binding.Filter{Statuses: []binding.Status{binding.StatusFailed}, Limit: 2}, []binding.Binding{p2, p3}},
			{"limit above count", binding.Filter{Limit: 100}, all},
			{"changed since the zero time", binding.Filter{ChangedSince: time.Time{}}, all},
			{"changed since far future", binding.Filter{ChangedSince: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		} {
			got := e.list(t, tc.f)
			if !slices.Equal(ids(got), ids(tc.want)) {
				t.Errorf("List(%s) IDs = %v, want %v", tc.name, ids(got), ids(tc.want))
			}
		}
	})

	register("ListChangedSince", func(t *testing.T, e *env) {
		a := e.upsert(t, binding.Binding{ExternalID: "a"})
		e.waitClock(20 * time.Millisecond)
		b := e.upsert(t, binding.Binding{ExternalID: "b"})
		if !b.UpdatedAt.After(a.UpdatedAt) {
			t.Fatalf("UpdatedAt did not advance: %v then %v", a.UpdatedAt, b.UpdatedAt)
		}
		got := e.list(t, binding.Filter{ChangedSince: b.UpdatedAt})
		if !slices.Equal(ids(got), []int64{b.ID}) {
			t.Fatalf("List(ChangedSince=b.UpdatedAt) = %v, want [%d] (at or after)", ids(got), b.ID)
		}
		e.waitClock(20 * time.Millisecond)
		_, err := e.store.MarkFailed(e.ctx, a.ID, binding.Failure{Error: "x"})
		noErr(t, "MarkFailed", err)
		got = e.list(t, binding.Filter{ChangedSince: b.UpdatedAt.Add(time.Millisecond)})
		if !slices.Equal(ids(got), []int64{a.ID}) {
			t.Fatalf("List(ChangedSince after b) after a changed = %v, want [%d]", ids(got), a.ID)
		}
	})

	register("ListManyPages", func(t *testing.T, e *env) {
		const n = 1200
		stored := e.batch(t, seq("p", n))
		eq(t, "stored", len(stored), n)
		got := e.list(t, binding.Filter{})
		eq(t, "listed", len(got), n)
		if !slices.IsSorted(ids(got)) {
			t.Fatal("List is not in ascending ID order")
		}
		if !slices.Equal(ids(got), ids(stored)) {
			t.Fatal("List IDs differ from the stored ones (duplicates or gaps across pages)")
		}
		eq(t, "listed with Limit 1001", e.count(t, binding.Filter{Limit: 1001}), 1001)
		eq(t, "listed with Limit 3", e.count(t, binding.Filter{Limit: 3}), 3)

		// Sparse matches spread over every page.
		for i := 0; i < n; i += 97 {
			_, err := e.store.MarkFailed(e.ctx, stored[i].ID, binding.Failure{Error: "x"})
			noErr(t, "MarkFailed", err)
		}
		failed := e.list(t, binding.Filter{Statuses: []binding.Status{binding.StatusFailed}})
		eq(t, "failed listed", len(failed), (n+96)/97)

		// Stopping early is fine.
		seen := 0
		for _, err := range e.store.List(e.ctx, binding.Filter{}) {
			noErr(t, "List", err)
			seen++
			if seen == 10 {
				break
			}
		}
		eq(t, "seen before break", seen, 10)
	})

	register("ListWhileWriting", func(t *testing.T, e *env) {
		// The loop body writes to the store: a store that holds a lock or its only
		// connection while yielding deadlocks here.
		const n = 1200
		e.batch(t, seq("p", n))
		done := make(chan error, 1)
		go func() {
			seen := 0
			for b, err := range e.store.List(e.ctx, binding.Filter{Backend: backendA}) {
				if err != nil {
					done <- err
					return
				}
				if seen%100 == 0 {
					if _, err := e.store.MarkFailed(e.ctx, b.ID, binding.Failure{Error: "x"}); err != nil {
						done <- err
						return
					}
					if _, err := e.store.Upsert(e.ctx, binding.Binding{Backend: backendB, Model: modelP, ExternalID: fmt.Sprint("w", seen)}); err != nil {
						done <- err
						return
					}
				}
				seen++
			}
			if seen != n {
				done <- fmt.Errorf("listed %d bindings, want %d", seen, n)
				return
			}
			done <- nil
		}()
		select {
		case err := <-done:
			noErr(t, "List with writes in the loop body", err)
		case <-time.After(60 * time.Second):
			t.Fatal("List with writes in the loop body did not finish in 60s: the store holds a lock while yielding")
		}
		eq(t, "failed", e.count(t, binding.Filter{Statuses: []binding.Status{binding.StatusFailed}}), n/100)
	})

	register("Counts", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		e.upsert(t, binding.Binding{Model: modelP, ExternalID: "1", Status: binding.StatusPending})
		e.upsert(t, binding.Binding{Model: modelP, ExternalID: "2", Status: binding.StatusPending})
		e.upsert(t, binding.Binding{Model: modelP, ExternalID: "3", Status: binding.StatusFailed})
		e.upsert(t, binding.Binding{Model: modelC, ExternalID: "1", Status: binding.StatusSuccess})
		e.upsert(t, binding.Binding{Model: modelC, ExternalID: "2", Status: binding.StatusFailed})
		e.upsert(t, binding.Binding{Backend: backendB, Model: modelP, ExternalID: "1", Status: binding.StatusSkipped})
		check := func(backend, model string, want map[binding.Status]int) {
			t.Helper()
			got, err := s.Counts(ctx, backend, model)
			noErr(t, "Counts", err)
			for _, st := range []binding.Status{binding.StatusPending, binding.StatusInProgress, binding.StatusSuccess, binding.StatusFailed, binding.StatusSkipped} {
				if got[st] != want[st] {
					t.Errorf("Counts(%q, %q)[%s] = %d, want %d", backend, model, st, got[st], want[st])
				}
			}
		}
		check(backendA, "", map[binding.Status]int{binding.StatusPending: 2, binding.StatusFailed: 2, binding.StatusSuccess: 1})
		check(backendA, modelP, map[binding.Status]int{binding.StatusPending: 2, binding.StatusFailed: 1})
		check(backendA, modelC, map[binding.Status]int{binding.StatusSuccess: 1, binding.StatusFailed: 1})
		check(backendB, "", map[binding.Status]int{binding.StatusSkipped: 1})
		check("nope", "", nil)
		check("", modelP, map[binding.Status]int{binding.StatusPending: 2, binding.StatusFailed: 1, binding.StatusSkipped: 1})
		check("", "", map[binding.Status]int{binding.StatusPending: 2, binding.StatusFailed: 2, binding.StatusSuccess: 1, binding.StatusSkipped: 1})
	})
}
