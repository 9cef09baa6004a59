package bindingtest

import (
	"errors"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// The lease rule of binding.Store: writes that record an outcome name the writer's lease;
// a lost lease is ErrLeaseLost, a lease held by someone else is ErrLocked for a write
// naming none, and either way nothing is written.

// guardedWrites are the writes the lease rule covers, each naming owner on binding b.
func guardedWrites(e *env, b binding.Binding, owner string) map[string]func() error {
	s, ctx := e.store, e.ctx
	return map[string]func() error{
		"MarkSuccess": func() error {
			_, err := s.MarkSuccess(ctx, b.ID, binding.Success{Owner: owner, Hash: "written"})
			return err
		},
		"MarkFailed": func() error {
			_, err := s.MarkFailed(ctx, b.ID, binding.Failure{Owner: owner, Error: "written"})
			return err
		},
		"SetStatus": func() error { return s.SetStatus(ctx, b.ID, owner, binding.StatusSkipped) },
		"Upsert by ID": func() error {
			_, err := s.Upsert(ctx, binding.Binding{ID: b.ID, Backend: b.Backend, Model: b.Model, Hash: "written", LeaseOwner: owner})
			return err
		},
		"Upsert by external ID": func() error {
			_, err := s.Upsert(ctx, binding.Binding{Backend: b.Backend, Model: b.Model, ExternalID: b.ExternalID, Hash: "written", LeaseOwner: owner})
			return err
		},
		"Upsert by both IDs": func() error {
			_, err := s.Upsert(ctx, binding.Binding{Backend: b.Backend, Model: b.Model, ExternalID: b.ExternalID, LocalID: b.LocalID, Hash: "written", LeaseOwner: owner})
			return err
		},
		"UpsertBatch": func() error {
			// A fresh insert first: all or nothing, it must not be written either.
			_, err := s.UpsertBatch(ctx, []binding.Binding{
				{Backend: b.Backend, Model: b.Model, ExternalID: "fresh-" + owner},
				{Backend: b.Backend, Model: b.Model, ExternalID: b.ExternalID, Hash: "written", LeaseOwner: owner},
			})
			var be *binding.BatchError
			if err != nil && (!errors.As(err, &be) || be.Index != 1) {
				return errors.Join(errors.New("want a *binding.BatchError naming item 1"), err)
			}
			return err
		},
	}
}

// unchanged fails unless the binding is as before, lease included, and nothing was inserted.
func (e *env) unchanged(t *testing.T, what string, before binding.Binding, n int) {
	t.Helper()
	got := e.get(t, before.ID)
	sameBinding(t, what, got, before)
	eq(t, what+": LeaseOwner", got.LeaseOwner, before.LeaseOwner)
	sameTime(t, what+": LeaseExpiresAt", got.LeaseExpiresAt, before.LeaseExpiresAt)
	eq(t, what+": bindings", e.count(t, binding.Filter{}), n)
}

func init() {
	register("LeaseGuardsWrites", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1", Status: binding.StatusFailed, RetryCount: 2})
		held, err := s.Claim(ctx, a.ID, "w1", time.Hour)
		noErr(t, "Claim by w1", err)
		n := e.count(t, binding.Filter{})

		for name, write := range guardedWrites(e, a, "w2") {
			err := write()
			wantErr(t, name+" naming w2's lease while w1 holds it", err, binding.ErrLeaseLost)
			var lost *binding.LeaseLostError
			if !errors.As(err, &lost) {
				t.Fatalf("%s: error %v is not a *binding.LeaseLostError", name, err)
			}
			eq(t, name+": LeaseLostError.ID", lost.ID, a.ID)
			eq(t, name+": LeaseLostError.Owner", lost.Owner, "w2")
			eq(t, name+": LeaseLostError.Holder", lost.Holder, "w1")
			sameTime(t, name+": LeaseLostError.Expires", lost.Expires, held.LeaseExpiresAt)
			if errors.Is(err, binding.ErrLocked) {
				t.Fatalf("%s: a lost lease also matches ErrLocked: %v", name, err)
			}
			e.unchanged(t, name+" refused", held, n)
		}
		for name, write := range guardedWrites(e, a, "") {
			err := write()
			wantErr(t, name+" naming no lease while w1 holds it", err, binding.ErrLocked)
			var le *binding.LockedError
			if !errors.As(err, &le) {
				t.Fatalf("%s: error %v is not a *binding.LockedError", name, err)
			}
			eq(t, name+": LockedError.Owner", le.Owner, "w1")
			e.unchanged(t, name+" refused", held, n)
		}
		for name, write := range guardedWrites(e, a, "w1") {
			noErr(t, name+" by the holder", write())
			eq(t, name+": LeaseOwner after the holder's write", e.get(t, a.ID).LeaseOwner, "w1")
		}

		// Released: the former holder's writes are refused, unleased ones go through.
		noErr(t, "Release by w1", s.Release(ctx, a.ID, "w1"))
		before := e.get(t, a.ID)
		n = e.count(t, binding.Filter{})
		for name, write := range guardedWrites(e, a, "w1") {
			err := write()
			wantErr(t, name+" naming a released lease", err, binding.ErrLeaseLost)
			var lost *binding.LeaseLostError
			if !errors.As(err, &lost) || lost.Holder != "" {
				t.Fatalf("%s: error %#v, want a *binding.LeaseLostError with no holder", name, err)
			}
			e.unchanged(t, name+" refused", before, n)
		}
		for name, write := range guardedWrites(e, a, "") {
			noErr(t, name+" naming no lease on an unleased binding", write())
		}

		// Inserts are not checked: there is no lease to hold yet.
		_, err = s.Upsert(ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: "new", LeaseOwner: "w9"})
		noErr(t, "Upsert inserting with an owner", err)
	})

	register("LeaseGuardOrder", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1", LocalID: "L1"})
		b := e.upsert(t, binding.Binding{ExternalID: "E2", LocalID: "L2"})
		_, err := s.Claim(ctx, a.ID, "w1", time.Hour)
		noErr(t, "Claim", err)
		// Missing before the lease, the lease before uniqueness.
		_, err = s.MarkSuccess(ctx, 1<<40, binding.Success{Owner: "w2"})
		wantErr(t, "MarkSuccess(missing)", err, binding.ErrNotFound)
		_, err = s.MarkSuccess(ctx, a.ID, binding.Success{Owner: "w2", ExternalID: "E2"})
		wantErr(t, "MarkSuccess with a lost lease and a taken ID", err, binding.ErrLeaseLost)
		_, err = s.Upsert(ctx, binding.Binding{ID: a.ID, Backend: backendA, Model: modelP, ExternalID: "E2"})
		wantErr(t, "Upsert by ID over w1's lease with a taken ID", err, binding.ErrLocked)
		// Two IDs bound to two bindings is a conflict whatever the leases.
		_, err = s.Upsert(ctx, binding.Binding{Backend: backendA, Model: modelP, ExternalID: "E1", LocalID: "L2", LeaseOwner: "w2"})
		wantErr(t, "Upsert keyed on two bindings", err, binding.ErrConflict)
		_, err = s.MarkSuccess(ctx, a.ID, binding.Success{Owner: "w1", ExternalID: "E2"})
		wantErr(t, "MarkSuccess by the holder with a taken ID", err, binding.ErrConflict)
		_ = b
	})

	register("RenewExtendsOnlyAHeldLease", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1"})
		c, err := s.Claim(ctx, a.ID, "w1", time.Minute)
		noErr(t, "Claim", err)
		r, err := s.Renew(ctx, a.ID, "w1", 2*time.Hour)
		noErr(t, "Renew by the holder", err)
		eq(t, "LeaseOwner after Renew", r.LeaseOwner, "w1")
		if d := r.LeaseExpiresAt.Sub(c.LeaseExpiresAt); d < 118*time.Minute || d > 120*time.Minute {
			t.Fatalf("Renew for 2h moved the expiry by %v from a 1 min lease", d)
		}
		sameTime(t, "stored LeaseExpiresAt", e.get(t, a.ID).LeaseExpiresAt, r.LeaseExpiresAt)

		_, err = s.Renew(ctx, a.ID, "w2", time.Hour)
		wantErr(t, "Renew by a stranger", err, binding.ErrLeaseLost)
		var lost *binding.LeaseLostError
		if !errors.As(err, &lost) || lost.Holder != "w1" || lost.ID != a.ID || lost.Owner != "w2" {
			t.Fatalf("Renew by a stranger: %#v, want a *binding.LeaseLostError naming holder w1", err)
		}
		eq(t, "LeaseOwner after a stranger's Renew", e.get(t, a.ID).LeaseOwner, "w1")

		noErr(t, "Release", s.Release(ctx, a.ID, "w1"))
		_, err = s.Renew(ctx, a.ID, "w1", time.Hour)
		wantErr(t, "Renew of a released lease", err, binding.ErrLeaseLost)
		eq(t, "LeaseOwner after Renew of a released lease", e.get(t, a.ID).LeaseOwner, "")

		_, err = s.Renew(ctx, 1<<40, "w1", time.Hour)
		wantErr(t, "Renew(missing)", err, binding.ErrNotFound)
		_, err = s.Renew(ctx, a.ID, "", time.Hour)
		wantErr(t, "Renew with no owner", err, binding.ErrInvalid)
		_, err = s.Renew(ctx, a.ID, "w1", 0)
		wantErr(t, "Renew with ttl 0", err, binding.ErrInvalid)
	})

	register("LeaseLostAfterExpiry", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1"})
		ttl := time.Minute
		if e.cfg.advance == nil {
			ttl = 50 * time.Millisecond
		}
		_, err := s.Claim(ctx, a.ID, "w1", ttl)
		noErr(t, "Claim by w1", err)
		e.expire(t, a.ID, ttl)
		// Expired, but no one else claimed it: the holder's write is still safe.
		_, err = s.MarkSuccess(ctx, a.ID, binding.Success{Owner: "w1", Hash: "h1"})
		noErr(t, "MarkSuccess by w1 after its lease expired unclaimed", err)
		_, err = s.Renew(ctx, a.ID, "w1", ttl)
		noErr(t, "Renew by w1 after its lease expired unclaimed", err)
		e.expire(t, a.ID, ttl)
		_, err = s.MarkFailed(ctx, a.ID, binding.Failure{Error: "no lease"})
		noErr(t, "MarkFailed naming no lease on an expired one", err)

		_, err = s.Claim(ctx, a.ID, "w2", time.Hour)
		noErr(t, "Claim by w2", err)
		_, err = s.MarkSuccess(ctx, a.ID, binding.Success{Owner: "w1", Hash: "stale"})
		wantErr(t, "MarkSuccess by w1 after w2 took the lease", err, binding.ErrLeaseLost)
		_, err = s.Renew(ctx, a.ID, "w1", time.Hour)
		wantErr(t, "Renew by w1 after w2 took the lease", err, binding.ErrLeaseLost)
		got := e.get(t, a.ID)
		eq(t, "Hash", got.Hash, "h1")
		eq(t, "LeaseOwner", got.LeaseOwner, "w2")
		_, err = s.MarkSuccess(ctx, a.ID, binding.Success{Owner: "w2", Hash: "h2"})
		noErr(t, "MarkSuccess by w2", err)
	})
}

// expire waits until the store sees the lease on id, taken for ttl, as expired: through
// the clock hook, or by polling a write that naming no lease succeeds only then.
func (e *env) expire(t *testing.T, id int64, ttl time.Duration) {
	t.Helper()
	if e.cfg.advance != nil {
		e.cfg.advance(e.store, ttl+time.Second)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A probe that changes nothing visible to the cases: SetStatus to the current status.
		b := e.get(t, id)
		err := e.store.SetStatus(e.ctx, id, "", b.Status)
		if err == nil {
			return
		}
		wantErr(t, "probe before the lease expired", err, binding.ErrLocked)
		if time.Now().After(deadline) {
			t.Fatalf("a %v lease was still held after 10s", ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
