package binding_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// claimerEnv is a store and a Claimer on one fake clock whose Sleep advances it.
func claimerEnv(t *testing.T) (*binding.MemoryStore, *binding.Claimer, *fakeClock, *[]time.Duration) {
	t.Helper()
	clock := newFakeClock()
	s := binding.NewMemoryStore(binding.WithClock(clock.Now))
	var waits []time.Duration
	c := &binding.Claimer{Store: s, TTL: time.Minute, MaxWait: 10 * time.Second, Backoff: time.Second, MaxBackoff: 4 * time.Second,
		Now: clock.Now, Owner: "worker",
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			clock.Advance(d)
			return ctx.Err()
		}}
	return s, c, clock, &waits
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
	got, err := c.Claim(ctx, b.ID, "me")
	if err != nil {
		t.Fatalf("Claim after the other lease expired: %v", err)
	}
	if got.LeaseOwner != "me" {
		t.Fatalf("LeaseOwner = %q, want me", got.LeaseOwner)
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
}

func TestClaimerGivesUp(t *testing.T) {
	ctx := t.Context()
	s, c, _, _ := claimerEnv(t)
	b, _ := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	if _, err := s.Claim(ctx, b.ID, "other", time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err := c.Claim(ctx, b.ID, "me")
	if !errors.Is(err, binding.ErrLocked) {
		t.Fatalf("Claim of a long-held lease = %v, want ErrLocked", err)
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
	if _, err := c.Claim(ctx, 999, "me"); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("Claim of a missing binding = %v, want ErrNotFound", err)
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
	if _, err := c.Claim(cctx, b.ID, "me"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Claim cancelled while waiting = %v, want context.Canceled", err)
	}
}

func TestClaimerDefaultsAndOwners(t *testing.T) {
	ctx := t.Context()
	s := binding.NewMemoryStore()
	c := &binding.Claimer{Store: s}
	b, _ := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "E1"})
	got, err := c.Claim(ctx, b.ID, c.NewOwner())
	if err != nil {
		t.Fatal(err)
	}
	if ttl := time.Until(got.LeaseExpiresAt); ttl < 4*time.Minute || ttl > 5*time.Minute {
		t.Fatalf("default lease lasts %s, want 5 min", ttl)
	}
	a, b2 := c.NewOwner(), c.NewOwner()
	if a == b2 || !strings.HasSuffix(b2, "-3") {
		t.Fatalf("NewOwner gave %q then %q, want distinct names ending in a sequence number", a, b2)
	}
	named := &binding.Claimer{Store: s, Owner: "importer-eu"}
	if o := named.NewOwner(); o != "importer-eu-1" {
		t.Fatalf("NewOwner with Owner set = %q, want importer-eu-1", o)
	}
}
