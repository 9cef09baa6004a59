package binding_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// claimerEnv is a store and a Claimer on one fake clock. Waits between claims advance
// the clock; renewals (waits of TTL/3) never come, so these tests see no renewal.
func claimerEnv(t *testing.T) (binding.Store, *binding.Claimer, *fakeClock, *[]time.Duration) {
	t.Helper()
	clock := newFakeClock()
	s := binding.NewMemory(binding.WithClock(clock.Now))
	var mu sync.Mutex
	var waits []time.Duration
	c := &binding.Claimer{Store: s, TTL: time.Minute, MaxWait: 10 * time.Second, Backoff: time.Second, MaxBackoff: 4 * time.Second,
		Now: clock.Now, Owner: "worker",
		Sleep: func(ctx context.Context, d time.Duration) error {
			if d == 20*time.Second { // a renewal: wait for the end
				<-ctx.Done()
				return ctx.Err()
			}
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
			clock.Advance(d)
			return ctx.Err()
		}}
	return s, c, clock, &waits
}

func hold(t *testing.T, c *binding.Claimer, id int64) *binding.Lease {
	t.Helper()
	l, err := c.Hold(t.Context(), id)
	if err != nil {
		t.Fatalf("Hold(%d): %v", id, err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

func TestClaimerWaitsForExpiry(t *testing.T) {
	ctx := t.Context()
	s, c, _, waits := claimerEnv(t)
	b, err := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else holds it for 5 s: the claimer waits with growing backoff, then wins.
	if _, err := s.Claim(ctx, b.ID, "other", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	l := hold(t, c, b.ID)
	if got := l.Binding(); got.LeaseOwner != l.Owner() || !strings.HasPrefix(l.Owner(), "worker-") {
		t.Fatalf("LeaseOwner = %q, Owner() = %q, want one worker-… name", got.LeaseOwner, l.Owner())
	}
	if len(*waits) < 2 {
		t.Fatalf("waited %v, want several backoff steps", *waits)
	}
	for i, w := range *waits {
		limit := min(time.Second<<i, 4*time.Second)
		if w < limit/2 || w > limit {
			t.Fatalf("wait %d = %s, want within [%s, %s]", i, w, limit/2, limit)
		}
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, b.ID); got.LeaseOwner != "" {
		t.Fatalf("LeaseOwner after Release = %q", got.LeaseOwner)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if !errors.Is(l.Context().Err(), context.Canceled) {
		t.Fatalf("Context after Release: %v, want cancelled", l.Context().Err())
	}
}

func TestClaimerGivesUp(t *testing.T) {
	ctx := t.Context()
	s, c, _, _ := claimerEnv(t)
	b, _ := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	if _, err := s.Claim(ctx, b.ID, "other", time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err := c.Hold(ctx, b.ID)
	if !errors.Is(err, binding.ErrLocked) {
		t.Fatalf("Hold of a long-held lease = %v, want ErrLocked", err)
	}
	var le *binding.LockedError
	if !errors.As(err, &le) || le.Owner != "other" {
		t.Fatalf("error %v does not carry the holder's *LockedError", err)
	}
	if !strings.Contains(err.Error(), "gave up after 10s") {
		t.Fatalf("error %q does not say how long it waited", err)
	}
}

func TestClaimerStopsOnOtherErrorsAndContext(t *testing.T) {
	ctx := t.Context()
	s, c, _, waits := claimerEnv(t)
	if _, err := c.Hold(ctx, 999); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("Hold of a missing binding = %v, want ErrNotFound", err)
	}
	if len(*waits) != 0 {
		t.Fatalf("waited %v before a non-lock error", *waits)
	}
	b, _ := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	if _, err := s.Claim(ctx, b.ID, "other", time.Hour); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	c.Sleep = func(context.Context, time.Duration) error { cancel(); return cctx.Err() }
	if _, err := c.Hold(cctx, b.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hold cancelled while waiting = %v, want context.Canceled", err)
	}
	if _, err := (&binding.Claimer{}).Hold(ctx, b.ID); !errors.Is(err, binding.ErrInvalid) {
		t.Fatalf("Hold without a Store = %v, want ErrInvalid", err)
	}
}

func TestClaimerDefaultsAndOwners(t *testing.T) {
	ctx := t.Context()
	s := binding.NewMemory()
	c := &binding.Claimer{Store: s}
	b, _ := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	b2, _ := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E2"})
	l := hold(t, c, b.ID)
	if ttl := time.Until(l.Binding().LeaseExpiresAt); ttl < 4*time.Minute || ttl > 5*time.Minute {
		t.Fatalf("default lease lasts %s, want 5 min", ttl)
	}
	l2 := hold(t, c, b2.ID)
	if l.Owner() == l2.Owner() || !strings.HasSuffix(l2.Owner(), "-2") {
		t.Fatalf("owners %q then %q, want distinct names ending in a sequence number", l.Owner(), l2.Owner())
	}
	_ = l2.Release(ctx)
	named := &binding.Claimer{Store: s, Owner: "importer-eu"}
	if o := hold(t, named, b2.ID).Owner(); o != "importer-eu-1" {
		t.Fatalf("owner with Claimer.Owner set = %q, want importer-eu-1", o)
	}
}

// renewEnv is a Claimer whose renewals run one at a time when the test says: each
// renewal wait reports on slept and returns when wake receives.
type renewEnv struct {
	s      binding.Store
	c      *binding.Claimer
	clock  *fakeClock
	slept  chan time.Duration
	wake   chan struct{}
	cancel context.CancelFunc
}

func newRenewEnv(t *testing.T) *renewEnv {
	t.Helper()
	e := &renewEnv{clock: newFakeClock(), slept: make(chan time.Duration), wake: make(chan struct{})}
	e.s = binding.NewMemory(binding.WithClock(e.clock.Now))
	e.c = &binding.Claimer{Store: e.s, TTL: time.Minute, Now: e.clock.Now, Owner: "w",
		Sleep: func(ctx context.Context, d time.Duration) error {
			select {
			case e.slept <- d:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-e.wake:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
	return e
}

// step lets one renewal run after advancing the clock by d, and waits until it is done
// (the renewal loop is back in its wait), or until the renewal loop ended.
func (e *renewEnv) step(t *testing.T, l *binding.Lease, d time.Duration) {
	t.Helper()
	e.clock.Advance(d)
	e.wake <- struct{}{}
	select {
	case got := <-e.slept:
		if got != 20*time.Second {
			t.Fatalf("renewal wait %v, want TTL/3 = 20s", got)
		}
	case <-l.Context().Done():
	}
}

// Issue 9 defect 6: a lease held while the work runs longer than the TTL is renewed, so
// no other worker takes the record in the middle.
func TestHoldRenewsWhileWorkRuns(t *testing.T) {
	ctx := t.Context()
	e := newRenewEnv(t)
	b, _ := e.s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	l, err := e.c.Hold(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := <-e.slept; d != 20*time.Second {
		t.Fatalf("renewal wait %v, want TTL/3 = 20s", d)
	}
	for range 9 { // 9 × 20 s: three TTLs
		e.step(t, l, 20*time.Second)
	}
	if _, err := e.s.Claim(ctx, b.ID, "other", time.Minute); !errors.Is(err, binding.ErrLocked) {
		t.Fatalf("another worker's Claim three TTLs into the work = %v, want ErrLocked", err)
	}
	if l.Context().Err() != nil {
		t.Fatalf("lease context ended while the lease is held: %v", context.Cause(l.Context()))
	}
	if _, err := e.s.MarkSuccess(ctx, b.ID, binding.Success{Owner: l.Owner(), Hash: "h"}); err != nil {
		t.Fatalf("MarkSuccess by the holder: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.s.Get(ctx, b.ID); got.LeaseOwner != "" {
		t.Fatalf("lease still held after Release: %+v", got)
	}
}

// A renewal that finds the lease taken over cancels the lease's context with a
// *LeaseLostError, and the old holder's writes are refused.
func TestHoldReportsLostLease(t *testing.T) {
	ctx := t.Context()
	e := newRenewEnv(t)
	b, _ := e.s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	l, err := e.c.Hold(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	<-e.slept
	// The process stalls past its TTL (no renewal ran) and another worker takes over.
	e.clock.Advance(2 * time.Minute)
	if _, err := e.s.Claim(ctx, b.ID, "other", time.Minute); err != nil {
		t.Fatal(err)
	}
	e.step(t, l, 0)
	<-l.Context().Done()
	var lost *binding.LeaseLostError
	if cause := context.Cause(l.Context()); !errors.As(cause, &lost) || lost.Holder != "other" || lost.Owner != l.Owner() {
		t.Fatalf("lease context cause = %v, want a *LeaseLostError naming the new holder", cause)
	}
	if _, err := e.s.MarkSuccess(ctx, b.ID, binding.Success{Owner: l.Owner(), Hash: "stale"}); !errors.Is(err, binding.ErrLeaseLost) {
		t.Fatalf("MarkSuccess after the lease was lost = %v, want ErrLeaseLost", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.s.Get(ctx, b.ID); got.LeaseOwner != "other" {
		t.Fatalf("Release of a lost lease ended the new holder's: %+v", got)
	}
}

// A binding deleted under the lease ends it too.
func TestHoldBindingDeleted(t *testing.T) {
	ctx := t.Context()
	e := newRenewEnv(t)
	b, _ := e.s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	l, err := e.c.Hold(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	<-e.slept
	if err := e.s.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	e.step(t, l, 0)
	<-l.Context().Done()
	if cause := context.Cause(l.Context()); !errors.Is(cause, binding.ErrLeaseLost) {
		t.Fatalf("cause = %v, want ErrLeaseLost", cause)
	}
	_ = l.Release(ctx)
}
