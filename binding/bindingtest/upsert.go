package bindingtest

import (
	"errors"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/bindingkit"
)

func init() {
	register("UpsertByID", func(t *testing.T, e *env) {
		a := e.upsert(t, full())
		_, err := e.store.Claim(e.ctx, a.ID, "w1", time.Hour)
		noErr(t, "Claim", err)
		want := binding.Binding{
			ID: a.ID, Backend: backendA, Model: modelP,
			LocalID: "L2", ExternalID: "E2", Status: binding.StatusSuccess, Hash: "h2",
			SyncedAt: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		}
		want.LeaseOwner = "w1" // the writer holds the lease
		b := e.upsert(t, want)
		eq(t, "ID", b.ID, a.ID)
		// Every field is written: LastError, RetryCount, NoExport, ExternalUpdatedAt cleared.
		sameBinding(t, "Upsert by ID", b, want)
		sameBinding(t, "Get after Upsert by ID", e.get(t, a.ID), want)
		sameTime(t, "CreatedAt kept", b.CreatedAt, a.CreatedAt)
		if b.UpdatedAt.Before(a.UpdatedAt) {
			t.Fatalf("UpdatedAt went back: %v then %v", a.UpdatedAt, b.UpdatedAt)
		}
		eq(t, "lease owner kept by Upsert", b.LeaseOwner, "w1")
		// The old IDs are free again, the new ones resolve.
		_, err = e.store.GetByExternal(e.ctx, backendA, modelP, "E1")
		wantErr(t, "GetByExternal(old ID)", err, binding.ErrNotFound)
		_, err = e.store.GetByLocal(e.ctx, backendA, modelP, "L1")
		wantErr(t, "GetByLocal(old ID)", err, binding.ErrNotFound)
		got, err := e.store.GetByLocal(e.ctx, backendA, modelP, "L2")
		noErr(t, "GetByLocal(new ID)", err)
		eq(t, "GetByLocal(new ID).ID", got.ID, a.ID)
		eq(t, "bindings", e.count(t, binding.Filter{}), 1)
	})

	register("UpsertByExternalID", func(t *testing.T, e *env) {
		a := e.upsert(t, binding.Binding{ExternalID: "E1", Hash: "h1"})
		b := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1", Hash: "h2", Status: binding.StatusSuccess})
		eq(t, "ID", b.ID, a.ID)
		eq(t, "LocalID", b.LocalID, "L1")
		eq(t, "Hash", b.Hash, "h2")
		eq(t, "Status", b.Status, binding.StatusSuccess)
		// A new local ID for a bound external ID rebinds it (the local record was
		// replaced): the old local ID is free afterwards.
		c := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L2"})
		eq(t, "ID (rebound)", c.ID, a.ID)
		eq(t, "LocalID (rebound)", c.LocalID, "L2")
		_, err := e.store.GetByLocal(e.ctx, backendA, modelP, "L1")
		wantErr(t, "GetByLocal(old local ID)", err, binding.ErrNotFound)
		eq(t, "bindings", e.count(t, binding.Filter{}), 1)
	})

	register("UpsertByLocalID", func(t *testing.T, e *env) {
		// An export: the binding exists with a local ID only, then learns its external ID.
		a := e.upsert(t, binding.Binding{LocalID: "L1"})
		b := e.upsert(t, binding.Binding{LocalID: "L1", Hash: "h2"})
		eq(t, "ID (by local ID)", b.ID, a.ID)
		eq(t, "Hash", b.Hash, "h2")
		c := e.upsert(t, binding.Binding{LocalID: "L1", ExternalID: "E1"})
		eq(t, "ID (local ID matches, external ID new)", c.ID, a.ID)
		eq(t, "ExternalID", c.ExternalID, "E1")
		// A new external ID for a bound local ID rebinds it (the external record was
		// recreated): the old external ID is free afterwards.
		d := e.upsert(t, binding.Binding{LocalID: "L1", ExternalID: "E2"})
		eq(t, "ID (rebound)", d.ID, a.ID)
		eq(t, "ExternalID (rebound)", d.ExternalID, "E2")
		_, err := e.store.GetByExternal(e.ctx, backendA, modelP, "E1")
		wantErr(t, "GetByExternal(old external ID)", err, binding.ErrNotFound)
		eq(t, "bindings", e.count(t, binding.Filter{}), 1)
	})

	register("UpsertEmptyIDsNeverClear", func(t *testing.T, e *env) {
		a := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		b := e.upsert(t, binding.Binding{ExternalID: "E1", Hash: "h"})
		eq(t, "LocalID after Upsert without one", b.LocalID, "L1")
		c := e.upsert(t, binding.Binding{LocalID: "L1", Hash: "h2"})
		eq(t, "ExternalID after Upsert without one", c.ExternalID, "E1")
		d := e.upsert(t, binding.Binding{ID: a.ID, Hash: "h3"})
		eq(t, "LocalID after Upsert by ID without IDs", d.LocalID, "L1")
		eq(t, "ExternalID after Upsert by ID without IDs", d.ExternalID, "E1")
		eq(t, "Hash", d.Hash, "h3")
		for _, x := range []binding.Binding{b, c, d} {
			eq(t, "ID", x.ID, a.ID)
		}
	})

	register("UpsertConflicts", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		b := e.upsert(t, binding.Binding{ExternalID: "E2", LocalID: "L2"})
		cases := []struct {
			name string
			b    binding.Binding
		}{
			{"external ID of one binding, local ID of another", binding.Binding{ExternalID: "E1", LocalID: "L2"}},
			{"by ID, taking another binding's external ID", binding.Binding{ID: b.ID, ExternalID: "E1"}},
			{"by ID, taking another binding's local ID", binding.Binding{ID: b.ID, LocalID: "L1"}},
		}
		for _, c := range cases {
			c.b.Backend, c.b.Model, c.b.Hash = backendA, modelP, "changed"
			_, err := s.Upsert(ctx, c.b)
			wantErr(t, "Upsert with "+c.name, err, binding.ErrConflict)
		}
		for _, want := range []binding.Binding{a, b} {
			got := e.get(t, want.ID)
			sameBinding(t, "binding after rejected upserts", got, want)
		}
		eq(t, "bindings", e.count(t, binding.Filter{}), 2)
	})

	register("UpsertBatch", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		existing := e.upsert(t, binding.Binding{ExternalID: "E0", LocalID: "L0"})
		got, err := s.UpsertBatch(ctx, []binding.Binding{
			{Backend: backendA, Model: modelP, ExternalID: "E1", Hash: "h1"},
			{Backend: backendA, Model: modelP, ExternalID: "E0", Hash: "h0"},
			{Backend: backendA, Model: modelP, ExternalID: "E2"},
			// A later item sees the earlier ones: this updates item 0.
			{Backend: backendA, Model: modelP, ExternalID: "E1", LocalID: "L1"},
		})
		noErr(t, "UpsertBatch", err)
		eq(t, "results", len(got), 4)
		eq(t, "item 1 ID (existing)", got[1].ID, existing.ID)
		eq(t, "item 1 Hash", got[1].Hash, "h0")
		eq(t, "item 1 LocalID kept", got[1].LocalID, "L0")
		eq(t, "item 3 ID (same binding as item 0)", got[3].ID, got[0].ID)
		eq(t, "item 3 LocalID", got[3].LocalID, "L1")
		if got[0].ID == got[2].ID || got[0].ID == existing.ID || got[2].ID == existing.ID {
			t.Fatalf("new bindings got reused IDs: %d %d (existing %d)", got[0].ID, got[2].ID, existing.ID)
		}
		eq(t, "item 0 ExternalID", got[0].ExternalID, "E1")
		eq(t, "item 2 ExternalID", got[2].ExternalID, "E2")
		for i, b := range got {
			if b.ID == 0 || b.CreatedAt.IsZero() {
				t.Fatalf("item %d not stored: %+v", i, b)
			}
		}
		stored, err := s.GetByLocal(ctx, backendA, modelP, "L1")
		noErr(t, "GetByLocal(L1)", err)
		eq(t, "stored item 0+3 Hash", stored.Hash, "") // item 3 wrote every field
		eq(t, "bindings", e.count(t, binding.Filter{}), 3)

		empty, err := s.UpsertBatch(ctx, nil)
		noErr(t, "UpsertBatch(nil)", err)
		eq(t, "results of an empty batch", len(empty), 0)
	})

	register("UpsertBatchAllOrNothing", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1", Hash: "ha"})
		b := e.upsert(t, binding.Binding{ExternalID: "E2", LocalID: "L2", Hash: "hb"})
		for _, tc := range []struct {
			name   string
			middle binding.Binding
			target error
		}{
			// L9 is b's local ID once item 2 ran: a later item sees the earlier ones.
			{"conflict", binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E1", LocalID: "L9"}, binding.ErrConflict},
			{"invalid", binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E7", Status: "bogus"}, binding.ErrInvalid},
		} {
			_, err := s.UpsertBatch(ctx, []binding.Binding{
				{Backend: backendA, Model: modelP, ExternalID: "E3"},                  // insert
				{Backend: backendA, Model: modelP, ExternalID: "E1", Hash: "changed"}, // update
				{Backend: backendA, Model: modelP, ID: b.ID, LocalID: "L9"},           // move an ID
				tc.middle,
				{Backend: backendA, Model: modelP, ExternalID: "E4"},
			})
			wantErr(t, "UpsertBatch with a "+tc.name+" at index 3", err, tc.target)
			var be *binding.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("UpsertBatch error %v is not a *binding.BatchError", err)
			}
			eq(t, "BatchError.Index", be.Index, 3)
			for _, ext := range []string{"E3", "E4", "E7"} {
				_, err := s.GetByExternal(ctx, backendA, modelP, ext)
				wantErr(t, "GetByExternal("+ext+") after a failed batch", err, binding.ErrNotFound)
			}
			sameBinding(t, "binding a after a failed batch", e.get(t, a.ID), a)
			sameBinding(t, "binding b after a failed batch", e.get(t, b.ID), b)
			got, err := s.GetByLocal(ctx, backendA, modelP, "L2")
			noErr(t, "GetByLocal(L2) after a failed batch", err)
			eq(t, "GetByLocal(L2).ID", got.ID, b.ID)
			_, err = s.GetByLocal(ctx, backendA, modelP, "L9")
			wantErr(t, "GetByLocal(L9) after a failed batch", err, binding.ErrNotFound)
			eq(t, "bindings after a failed batch", e.count(t, binding.Filter{}), 2)
		}
		// The store still works after the rollback.
		got, err := s.UpsertBatch(ctx, []binding.Binding{{Backend: backendA, Model: modelP, ExternalID: "E3"}})
		noErr(t, "UpsertBatch after a failed one", err)
		eq(t, "ExternalID", got[0].ExternalID, "E3")
		eq(t, "bindings", e.count(t, binding.Filter{}), 3)
	})

	register("UpsertBatchAllOrNothingAcrossScopes", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		_, err := s.UpsertBatch(ctx, []binding.Binding{
			{Backend: backendA, Model: modelC, ExternalID: "C1", LocalID: "L1"}, // same IDs, other model
			{Backend: backendB, Model: modelP, ExternalID: "E1"},                // same ID, other backend
			{Backend: backendA, Model: modelC, ExternalID: "C1", Hash: "again"}, // updates item 0
			{Backend: backendA, Model: modelP, ExternalID: "E3", LocalID: "LX"}, // insert
			{Backend: backendA, Model: modelP, ExternalID: "E1", LocalID: "LX"}, // E1 is a's, LX item 3's
		})
		wantErr(t, "UpsertBatch ending in a conflict", err, binding.ErrConflict)
		for _, k := range []struct{ backend, model, ext string }{{backendA, modelC, "C1"}, {backendB, modelP, "E1"}, {backendA, modelP, "E3"}} {
			_, err := s.GetByExternal(ctx, k.backend, k.model, k.ext)
			wantErr(t, "GetByExternal "+k.backend+"/"+k.model+"/"+k.ext+" after a failed batch", err, binding.ErrNotFound)
		}
		for _, k := range []struct{ model, local string }{{modelC, "L1"}, {modelP, "LX"}} {
			_, err = s.GetByLocal(ctx, backendA, k.model, k.local)
			wantErr(t, "GetByLocal("+k.model+" "+k.local+") after a failed batch", err, binding.ErrNotFound)
		}
		got, err := s.GetByLocal(ctx, backendA, modelP, "L1")
		noErr(t, "GetByLocal(product L1)", err)
		eq(t, "GetByLocal(product L1).ID", got.ID, a.ID)
		eq(t, "bindings after a failed batch", e.count(t, binding.Filter{}), 1)
		// The same batch without the conflict lands whole.
		out, err := s.UpsertBatch(ctx, []binding.Binding{
			{Backend: backendA, Model: modelC, ExternalID: "C1", LocalID: "L1"},
			{Backend: backendB, Model: modelP, ExternalID: "E1"},
			{Backend: backendA, Model: modelC, ExternalID: "C1", Hash: "again"},
		})
		noErr(t, "UpsertBatch without the conflict", err)
		eq(t, "item 2 updated item 0", out[2].ID, out[0].ID)
		eq(t, "item 2 kept item 0's local ID", out[2].LocalID, "L1")
		eq(t, "bindings", e.count(t, binding.Filter{}), 3)
	})

	register("UpsertBatchRollbackRestoresMovedIDs", func(t *testing.T, e *env) {
		// Item 0 moves x's local ID away, item 1 takes it for a new binding, item 2 fails:
		// the rollback must give L1 back to x, not drop it with the new binding.
		s, ctx := e.store, e.ctx
		x := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		e.upsert(t, binding.Binding{ExternalID: "E9"})
		e.upsert(t, binding.Binding{LocalID: "L9"})
		_, err := s.UpsertBatch(ctx, []binding.Binding{
			{Backend: backendA, Model: modelP, ExternalID: "E1", LocalID: "L2"},
			{Backend: backendA, Model: modelP, ExternalID: "E2", LocalID: "L1"},
			{Backend: backendA, Model: modelP, ExternalID: "E9", LocalID: "L9"}, // two bindings: conflict
		})
		wantErr(t, "UpsertBatch ending in a conflict", err, binding.ErrConflict)
		got, err := s.GetByLocal(ctx, backendA, modelP, "L1")
		noErr(t, "GetByLocal(L1) after the rollback", err)
		eq(t, "GetByLocal(L1).ID", got.ID, x.ID)
		got, err = s.GetByExternal(ctx, backendA, modelP, "E1")
		noErr(t, "GetByExternal(E1) after the rollback", err)
		eq(t, "GetByExternal(E1).LocalID", got.LocalID, "L1")
		_, err = s.GetByLocal(ctx, backendA, modelP, "L2")
		wantErr(t, "GetByLocal(L2) after the rollback", err, binding.ErrNotFound)
		_, err = s.GetByExternal(ctx, backendA, modelP, "E2")
		wantErr(t, "GetByExternal(E2) after the rollback", err, binding.ErrNotFound)
		// The index is whole: binding another external ID to L1 is a conflict with x.
		_, err = s.UpsertBatch(ctx, []binding.Binding{{Backend: backendA, Model: modelP, ExternalID: "E9", LocalID: "L1"}})
		wantErr(t, "binding E9 (bound elsewhere) to L1", err, binding.ErrConflict)
	})

	register("MarkSuccess", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{LocalID: "L1", Status: binding.StatusFailed, LastError: "boom", RetryCount: 3, Hash: "old"})
		at := time.Date(2025, 7, 1, 12, 30, 0, 250_000_000, time.FixedZone("UTC-7", -7*3600))
		extAt := time.Date(2025, 6, 30, 8, 0, 0, 0, time.UTC)
		b, err := s.MarkSuccess(ctx, a.ID, binding.Success{ExternalID: "E1", Hash: "h1", ExternalUpdatedAt: extAt, At: at})
		noErr(t, "MarkSuccess", err)
		eq(t, "Status", b.Status, binding.StatusSuccess)
		eq(t, "LastError", b.LastError, "")
		eq(t, "RetryCount", b.RetryCount, 0)
		eq(t, "ExternalID", b.ExternalID, "E1")
		eq(t, "LocalID kept", b.LocalID, "L1")
		eq(t, "Hash", b.Hash, "h1")
		sameTime(t, "SyncedAt", b.SyncedAt, at)
		sameTime(t, "ExternalUpdatedAt", b.ExternalUpdatedAt, extAt)
		sameBinding(t, "Get after MarkSuccess", e.get(t, a.ID), b)
		byExt, err := s.GetByExternal(ctx, backendA, modelP, "E1")
		noErr(t, "GetByExternal after MarkSuccess set it", err)
		eq(t, "GetByExternal ID", byExt.ID, a.ID)

		// Empty fields keep stored values; a zero At means now.
		c, err := s.MarkSuccess(ctx, a.ID, binding.Success{})
		noErr(t, "MarkSuccess (empty)", err)
		eq(t, "ExternalID kept", c.ExternalID, "E1")
		eq(t, "LocalID kept", c.LocalID, "L1")
		eq(t, "Hash kept", c.Hash, "h1")
		sameTime(t, "ExternalUpdatedAt kept", c.ExternalUpdatedAt, extAt)
		if c.SyncedAt.IsZero() || c.SyncedAt.Location() != time.UTC {
			t.Fatalf("SyncedAt after MarkSuccess without At = %v, want the store's current time in UTC", c.SyncedAt)
		}
		d, err := s.MarkSuccess(ctx, a.ID, binding.Success{LocalID: "L2"})
		noErr(t, "MarkSuccess (new local ID)", err)
		eq(t, "LocalID", d.LocalID, "L2")
		_, err = s.GetByLocal(ctx, backendA, modelP, "L1")
		wantErr(t, "GetByLocal(old local ID)", err, binding.ErrNotFound)
	})

	register("MarkSuccessConflict", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		b := e.upsert(t, binding.Binding{LocalID: "L2", Status: binding.StatusFailed, RetryCount: 1, LastError: "x"})
		_, err := s.MarkSuccess(ctx, b.ID, binding.Success{ExternalID: "E1"})
		wantErr(t, "MarkSuccess with an external ID bound elsewhere", err, binding.ErrConflict)
		_, err = s.MarkSuccess(ctx, b.ID, binding.Success{LocalID: "L1"})
		wantErr(t, "MarkSuccess with a local ID bound elsewhere", err, binding.ErrConflict)
		sameBinding(t, "a after rejected MarkSuccess", e.get(t, a.ID), a)
		sameBinding(t, "b after rejected MarkSuccess", e.get(t, b.ID), b)
	})

	register("MarkFailed", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1", Hash: "h"})
		if !bindingkit.CanRetry(&a, 0) {
			t.Fatal("a pending binding cannot be retried")
		}
		for i := 1; i <= 3; i++ {
			b, err := s.MarkFailed(ctx, a.ID, binding.Failure{Error: "HTTP 502: bad gateway"})
			noErr(t, "MarkFailed", err)
			eq(t, "Status", b.Status, binding.StatusFailed)
			eq(t, "RetryCount", b.RetryCount, i)
			eq(t, "LastError", b.LastError, "HTTP 502: bad gateway")
			eq(t, "Hash kept", b.Hash, "h")
		}
		b := e.get(t, a.ID)
		eq(t, "RetryCount stored", b.RetryCount, 3)
		eq(t, "CanRetry(3)", bindingkit.CanRetry(&b, 3), false)
		eq(t, "CanRetry(4)", bindingkit.CanRetry(&b, 4), true)
		c, err := s.MarkSuccess(ctx, a.ID, binding.Success{})
		noErr(t, "MarkSuccess", err)
		eq(t, "RetryCount after success", c.RetryCount, 0)
		eq(t, "CanRetry(1) after success", bindingkit.CanRetry(&c, 1), true)
		d, err := s.MarkFailed(ctx, a.ID, binding.Failure{Error: "again"})
		noErr(t, "MarkFailed after success", err)
		eq(t, "RetryCount counts consecutive failures", d.RetryCount, 1)
	})

	register("SetStatus", func(t *testing.T, e *env) {
		a := e.upsert(t, full())
		for _, st := range []binding.Status{binding.StatusInProgress, binding.StatusSkipped, binding.StatusPending, binding.StatusSuccess, binding.StatusFailed} {
			noErr(t, "SetStatus", e.store.SetStatus(e.ctx, a.ID, "", st))
			want := a
			want.Status = st
			sameBinding(t, "after SetStatus("+string(st)+")", e.get(t, a.ID), want)
		}
	})

	register("Delete", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		b := e.upsert(t, binding.Binding{ExternalID: "E2", LocalID: "L2"})
		noErr(t, "Delete", s.Delete(ctx, a.ID))
		_, err := s.Get(ctx, a.ID)
		wantErr(t, "Get after Delete", err, binding.ErrNotFound)
		_, err = s.GetByExternal(ctx, backendA, modelP, "E1")
		wantErr(t, "GetByExternal after Delete", err, binding.ErrNotFound)
		_, err = s.GetByLocal(ctx, backendA, modelP, "L1")
		wantErr(t, "GetByLocal after Delete", err, binding.ErrNotFound)
		wantErr(t, "Delete again", s.Delete(ctx, a.ID), binding.ErrNotFound)
		// The IDs can be bound again.
		c := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		if c.ID == b.ID {
			t.Fatalf("new binding reuses a live ID %d", c.ID)
		}
		list := e.list(t, binding.Filter{})
		eq(t, "bindings", len(list), 2)
		eq(t, "first listed", list[0].ID, b.ID)
		eq(t, "second listed", list[1].ID, c.ID)
	})
}
