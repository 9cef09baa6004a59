package bindingtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// full returns a binding with every caller-controlled field set.
func full() binding.Binding {
	return binding.Binding{
		Backend:           backendA,
		Model:             modelP,
		LocalID:           "L1",
		ExternalID:        "E1",
		Status:            binding.StatusFailed,
		LastError:         "HTTP 500 from /products/E1",
		RetryCount:        2,
		SyncedAt:          time.Date(2025, 3, 4, 5, 6, 7, 8_000_000, time.UTC),
		ExternalUpdatedAt: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		Hash:              "sha256:abc",
		NoExport:          true,
	}
}

func init() {
	register("GetByEachKey", func(t *testing.T, e *env) {
		want := full()
		b := e.upsert(t, want)
		sameBinding(t, "Upsert result", b, want)
		if b.CreatedAt.IsZero() || b.UpdatedAt.IsZero() {
			t.Fatalf("CreatedAt/UpdatedAt not set: %+v", b)
		}
		sameTime(t, "CreatedAt", b.CreatedAt, b.CreatedAt)
		sameTime(t, "UpdatedAt", b.UpdatedAt, b.UpdatedAt)
		if b.LeaseOwner != "" || !b.LeaseExpiresAt.IsZero() {
			t.Fatalf("new binding has a lease: %+v", b)
		}
		got := e.get(t, b.ID)
		sameBinding(t, "Get", got, want)
		eq(t, "Get ID", got.ID, b.ID)
		byExt, err := e.store.GetByExternal(e.ctx, backendA, modelP, "E1")
		noErr(t, "GetByExternal", err)
		eq(t, "GetByExternal ID", byExt.ID, b.ID)
		sameBinding(t, "GetByExternal", byExt, want)
		byLocal, err := e.store.GetByLocal(e.ctx, backendA, modelP, "L1")
		noErr(t, "GetByLocal", err)
		eq(t, "GetByLocal ID", byLocal.ID, b.ID)
		sameBinding(t, "GetByLocal", byLocal, want)
	})

	register("ReturnedBindingsAreCopies", func(t *testing.T, e *env) {
		b := e.upsert(t, binding.Binding{ExternalID: "E1", Hash: "h1"})
		b.Hash = "mutated"
		got := e.get(t, b.ID)
		eq(t, "Hash after mutating a returned copy", got.Hash, "h1")
		got.LocalID = "mutated"
		again := e.get(t, b.ID)
		eq(t, "LocalID after mutating a returned copy", again.LocalID, "")
	})

	register("DefaultStatusPending", func(t *testing.T, e *env) {
		b := e.upsert(t, binding.Binding{ExternalID: "E1"})
		eq(t, "Status of a binding upserted without one", b.Status, binding.StatusPending)
		c, created, err := e.store.Ensure(e.ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E2"})
		noErr(t, "Ensure", err)
		eq(t, "created", created, true)
		eq(t, "Status of a binding ensured without one", c.Status, binding.StatusPending)
	})

	register("NotFound", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		b := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		missing := b.ID + 1000
		_, err := s.Get(ctx, missing)
		wantErr(t, "Get(missing)", err, binding.ErrNotFound)
		_, err = s.GetByExternal(ctx, backendA, modelP, "nope")
		wantErr(t, "GetByExternal(missing)", err, binding.ErrNotFound)
		_, err = s.GetByLocal(ctx, backendA, modelP, "nope")
		wantErr(t, "GetByLocal(missing)", err, binding.ErrNotFound)
		_, err = s.GetByExternal(ctx, backendA, modelP, "")
		wantErr(t, "GetByExternal(empty ID)", err, binding.ErrNotFound)
		_, err = s.GetByLocal(ctx, backendA, modelP, "")
		wantErr(t, "GetByLocal(empty ID)", err, binding.ErrNotFound)
		_, err = s.GetByExternal(ctx, backendA, modelC, "E1")
		wantErr(t, "GetByExternal(other model)", err, binding.ErrNotFound)
		_, err = s.GetByLocal(ctx, backendB, modelP, "L1")
		wantErr(t, "GetByLocal(other backend)", err, binding.ErrNotFound)
		_, err = s.Upsert(ctx, binding.Binding{ID: missing, Backend: backendA, Model: modelP, ExternalID: "E9"})
		wantErr(t, "Upsert(missing ID)", err, binding.ErrNotFound)
		_, err = s.MarkSuccess(ctx, missing, binding.Success{})
		wantErr(t, "MarkSuccess(missing)", err, binding.ErrNotFound)
		_, err = s.MarkFailed(ctx, missing, binding.Failure{Error: "boom"})
		wantErr(t, "MarkFailed(missing)", err, binding.ErrNotFound)
		wantErr(t, "SetStatus(missing)", s.SetStatus(ctx, missing, "", binding.StatusSkipped), binding.ErrNotFound)
		_, err = s.Claim(ctx, missing, "w1", time.Minute)
		wantErr(t, "Claim(missing)", err, binding.ErrNotFound)
		wantErr(t, "Delete(missing)", s.Delete(ctx, missing), binding.ErrNotFound)
		noErr(t, "Release(missing) is a no-op", s.Release(ctx, missing, "w1"))
		if e.count(t, binding.Filter{}) != 1 {
			t.Fatal("a failed call changed the number of bindings")
		}
	})

	register("InvalidInput", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		b := e.upsert(t, binding.Binding{ExternalID: "E1"})
		bad := []struct {
			name string
			b    binding.Binding
		}{
			{"no backend", binding.Binding{Model: modelP, ExternalID: "X"}},
			{"no model", binding.Binding{Backend: backendA, ExternalID: "X"}},
			{"unknown status", binding.Binding{Backend: backendA, Model: modelP, ExternalID: "X", Status: "done"}},
			{"negative retry count", binding.Binding{Backend: backendA, Model: modelP, ExternalID: "X", RetryCount: -1}},
			{"no ID at all", binding.Binding{Backend: backendA, Model: modelP}},
		}
		for _, c := range bad {
			_, err := s.Upsert(ctx, c.b)
			wantErr(t, "Upsert with "+c.name, err, binding.ErrInvalid)
			_, _, err = s.Ensure(ctx, c.b)
			wantErr(t, "Ensure with "+c.name, err, binding.ErrInvalid)
		}
		_, err := s.Upsert(ctx, binding.Binding{ID: b.ID, Backend: backendA, Model: modelP, Status: "bogus"})
		wantErr(t, "Upsert by ID with unknown status", err, binding.ErrInvalid)
		wantErr(t, "SetStatus(unknown)", s.SetStatus(ctx, b.ID, "", "bogus"), binding.ErrInvalid)
		wantErr(t, "SetStatus(empty)", s.SetStatus(ctx, b.ID, "", ""), binding.ErrInvalid)
		_, err = s.Claim(ctx, b.ID, "", time.Minute)
		wantErr(t, "Claim with empty owner", err, binding.ErrInvalid)
		_, err = s.Claim(ctx, b.ID, "w1", 0)
		wantErr(t, "Claim with zero ttl", err, binding.ErrInvalid)
		for _, f := range []binding.Filter{
			{Limit: -1},
			{RetryableBelow: -1},
			{Statuses: []binding.Status{"bogus"}},
		} {
			n := 0
			for _, err := range s.List(ctx, f) {
				n++
				wantErr(t, "List with invalid filter", err, binding.ErrInvalid)
			}
			eq(t, "items yielded by List with an invalid filter", n, 1)
		}
		got := e.get(t, b.ID)
		eq(t, "Status after rejected writes", got.Status, binding.StatusPending)
		eq(t, "LeaseOwner after rejected claims", got.LeaseOwner, "")
		eq(t, "bindings after rejected writes", e.count(t, binding.Filter{}), 1)
	})

	register("ContextCanceled", func(t *testing.T, e *env) {
		b := e.upsert(t, binding.Binding{ExternalID: "E1"})
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		_, err := e.store.Get(ctx, b.ID)
		wantErr(t, "Get with a canceled context", err, context.Canceled)
		_, err = e.store.Upsert(ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E2"})
		if err == nil {
			t.Fatal("Upsert with a canceled context succeeded")
		}
		listErr := false
		for _, err := range e.store.List(ctx, binding.Filter{}) {
			if err == nil {
				t.Fatal("List with a canceled context yielded a binding")
			}
			listErr = true
			break
		}
		if !listErr {
			t.Fatal("List with a canceled context yielded nothing, want an error")
		}
		if _, err := e.store.GetByExternal(e.ctx, backendA, modelP, "E2"); !errors.Is(err, binding.ErrNotFound) {
			t.Fatalf("Upsert with a canceled context wrote anyway: %v", err)
		}
	})

	register("Ensure", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		in := binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E1", LocalID: "L1", Hash: "h1", ID: 12345}
		a, created, err := s.Ensure(ctx, in)
		noErr(t, "Ensure (new)", err)
		eq(t, "created (new)", created, true)
		if a.ID == 0 {
			t.Fatal("Ensure returned no ID")
		}
		eq(t, "Hash", a.Hash, "h1")
		eq(t, "LocalID", a.LocalID, "L1")

		in.Hash, in.LocalID = "h2", "L2"
		b, created, err := s.Ensure(ctx, in)
		noErr(t, "Ensure (existing)", err)
		eq(t, "created (existing)", created, false)
		eq(t, "ID (existing)", b.ID, a.ID)
		eq(t, "Hash of existing binding (Ensure does not write)", b.Hash, "h1")
		eq(t, "LocalID of existing binding (Ensure does not write)", b.LocalID, "L1")

		// Keyed by local ID when the external ID is empty.
		c, created, err := s.Ensure(ctx, binding.Binding{Backend: backendA, Model: modelP, LocalID: "L9"})
		noErr(t, "Ensure by local ID", err)
		eq(t, "created by local ID", created, true)
		d, created, err := s.Ensure(ctx, binding.Binding{Backend: backendA, Model: modelP, LocalID: "L9"})
		noErr(t, "Ensure by local ID again", err)
		eq(t, "created by local ID again", created, false)
		eq(t, "ID by local ID again", d.ID, c.ID)

		// Inserting by external ID with a local ID bound elsewhere conflicts.
		_, _, err = s.Ensure(ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E5", LocalID: "L1"})
		wantErr(t, "Ensure reusing a bound local ID", err, binding.ErrConflict)
		eq(t, "bindings", e.count(t, binding.Filter{}), 2)
	})
}
