package bindingtest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/bindingkit"
)

func init() {
	register("LeaseClaimRelease", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1"})
		b, err := s.Claim(ctx, a.ID, "w1", time.Hour)
		noErr(t, "Claim by w1", err)
		eq(t, "LeaseOwner", b.LeaseOwner, "w1")
		if !bindingkit.Leased(&b, b.LeaseExpiresAt.Add(-time.Minute)) {
			t.Fatalf("binding not leased a minute before its lease ends: %+v", b)
		}
		if d := b.LeaseExpiresAt.Sub(b.UpdatedAt); d < 59*time.Minute || d > 61*time.Minute {
			// UpdatedAt is the store's clock at the last write, just before the claim.
			t.Fatalf("lease ends %v after the last write, want about 1h", d)
		}
		eq(t, "LeaseExpiresAt location", b.LeaseExpiresAt.Location(), time.UTC)
		stored := e.get(t, a.ID)
		eq(t, "stored LeaseOwner", stored.LeaseOwner, "w1")
		sameTime(t, "stored LeaseExpiresAt", stored.LeaseExpiresAt, b.LeaseExpiresAt)

		_, err = s.Claim(ctx, a.ID, "w2", time.Hour)
		wantErr(t, "Claim by w2 while w1 holds it", err, binding.ErrLocked)
		var le *binding.LockedError
		if !errors.As(err, &le) {
			t.Fatalf("Claim error %v is not a *binding.LockedError", err)
		}
		eq(t, "LockedError.Owner", le.Owner, "w1")
		eq(t, "LockedError.ID", le.ID, a.ID)
		sameTime(t, "LockedError.Expires", le.Expires, b.LeaseExpiresAt)

		// Re-entrant: the holder extends its lease.
		c, err := s.Claim(ctx, a.ID, "w1", 2*time.Hour)
		noErr(t, "Claim again by w1", err)
		if !c.LeaseExpiresAt.After(b.LeaseExpiresAt) {
			t.Fatalf("re-claim did not extend the lease: %v then %v", b.LeaseExpiresAt, c.LeaseExpiresAt)
		}

		noErr(t, "Release by w2 (not the holder) is a no-op", s.Release(ctx, a.ID, "w2"))
		eq(t, "LeaseOwner after a stranger's Release", e.get(t, a.ID).LeaseOwner, "w1")
		noErr(t, "Release by w1", s.Release(ctx, a.ID, "w1"))
		d := e.get(t, a.ID)
		eq(t, "LeaseOwner after Release", d.LeaseOwner, "")
		if bindingkit.Leased(&d, time.Now()) {
			t.Fatal("binding still leased after Release")
		}
		noErr(t, "Release twice", s.Release(ctx, a.ID, "w1"))

		f, err := s.Claim(ctx, a.ID, "w2", time.Hour)
		noErr(t, "Claim by w2 after Release", err)
		eq(t, "LeaseOwner", f.LeaseOwner, "w2")

		// The holder's writes keep the lease; only Claim, Renew and Release change it.
		_, err = s.MarkFailed(ctx, a.ID, binding.Failure{Owner: "w2", Error: "x"})
		noErr(t, "MarkFailed", err)
		_, err = s.MarkSuccess(ctx, a.ID, binding.Success{Owner: "w2"})
		noErr(t, "MarkSuccess", err)
		noErr(t, "SetStatus", s.SetStatus(ctx, a.ID, "w2", binding.StatusInProgress))
		_, err = s.Upsert(ctx, binding.Binding{ID: a.ID, Backend: backendA, Model: modelP, LeaseOwner: "w2"})
		noErr(t, "Upsert", err)
		eq(t, "LeaseOwner after writes", e.get(t, a.ID).LeaseOwner, "w2")
	})

	register("LeaseExpires", func(t *testing.T, e *env) {
		s, ctx := e.store, e.ctx
		a := e.upsert(t, binding.Binding{ExternalID: "E1"})
		if e.cfg.advance != nil {
			_, err := s.Claim(ctx, a.ID, "w1", time.Minute)
			noErr(t, "Claim by w1", err)
			e.cfg.advance(s, 30*time.Second)
			_, err = s.Claim(ctx, a.ID, "w2", time.Minute)
			wantErr(t, "Claim by w2 half-way through w1's lease", err, binding.ErrLocked)
			e.cfg.advance(s, 31*time.Second)
			b, err := s.Claim(ctx, a.ID, "w2", time.Minute)
			noErr(t, "Claim by w2 after w1's lease expired", err)
			eq(t, "LeaseOwner", b.LeaseOwner, "w2")

			// Many workers racing for an expired lease: exactly one gets it.
			e.cfg.advance(s, 2*time.Minute)
			var wins atomic.Int32
			parallel(50, func(i int) {
				_, err := s.Claim(ctx, a.ID, fmt.Sprint("r", i), time.Minute)
				if err == nil {
					wins.Add(1)
				} else if !errors.Is(err, binding.ErrLocked) {
					t.Errorf("Claim of an expired lease: %v", err)
				}
			})
			eq(t, "workers that took the expired lease", wins.Load(), 1)
			return
		}
		_, err := s.Claim(ctx, a.ID, "w1", 50*time.Millisecond)
		noErr(t, "Claim by w1", err)
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, err := s.Claim(ctx, a.ID, "w2", time.Minute)
			if err == nil {
				eq(t, "LeaseOwner", b.LeaseOwner, "w2")
				return
			}
			wantErr(t, "Claim by w2 before w1's lease expired", err, binding.ErrLocked)
			if time.Now().After(deadline) {
				t.Fatal("a 50ms lease was still held after 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	register("ConcurrentClaim", func(t *testing.T, e *env) {
		a := e.upsert(t, binding.Binding{ExternalID: "E1"})
		var wins, locked atomic.Int32
		var winner atomic.Value
		errs := make(chan error, 100)
		parallel(100, func(i int) {
			owner := fmt.Sprint("w", i)
			_, err := e.store.Claim(e.ctx, a.ID, owner, time.Hour)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(owner)
			case errors.Is(err, binding.ErrLocked):
				locked.Add(1)
			default:
				errs <- err
			}
		})
		close(errs)
		for err := range errs {
			t.Errorf("Claim: unexpected error %v", err)
		}
		eq(t, "winners", wins.Load(), 1)
		eq(t, "locked out", locked.Load(), 99)
		eq(t, "stored LeaseOwner", e.get(t, a.ID).LeaseOwner, winner.Load().(string))
	})
}
