package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/sqlstore"
)

// Issue 9 defect 6: on Postgres, lease times come from the database clock. Two processes
// whose clocks disagree by ten minutes (WithClock stands in for each process's clock)
// still agree on who holds a five-minute lease.
func TestPostgresLeasesUseTheDatabaseClock(t *testing.T) {
	dsn := pgSchemaDSN(t)
	ctx := context.Background()
	ahead := func() time.Time { return time.Now().Add(10 * time.Minute) }
	behind := func() time.Time { return time.Now().Add(-10 * time.Minute) }
	a := mustOpen(t, dsn, sqlstore.WithClock(behind)).Bindings()
	b := mustOpen(t, dsn, sqlstore.WithClock(ahead)).Bindings()
	x, err := a.Upsert(ctx, binding.Binding{Backend: "s", Model: "m", ExternalID: "E"})
	if err != nil {
		t.Fatal(err)
	}
	held, err := a.Claim(ctx, x.ID, "a", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The expiry is the database's now + 5 min, whatever a's clock says.
	if d := time.Until(held.LeaseExpiresAt); d < 4*time.Minute || d > 6*time.Minute {
		t.Fatalf("lease expires %v from now, want about 5 min on the database clock", d)
	}
	if _, err := b.Claim(ctx, x.ID, "b", 5*time.Minute); !errors.Is(err, binding.ErrLocked) {
		t.Fatalf("a process whose clock runs 10 minutes ahead: Claim = %v, want ErrLocked", err)
	}
	// A write naming no lease from that process is refused too.
	if _, err := b.MarkFailed(ctx, x.ID, binding.Failure{Error: "x"}); !errors.Is(err, binding.ErrLocked) {
		t.Fatalf("MarkFailed naming no lease from the fast process = %v, want ErrLocked", err)
	}
	r, err := a.Renew(ctx, x.ID, "a", 5*time.Minute)
	if err != nil || r.LeaseExpiresAt.Before(held.LeaseExpiresAt) {
		t.Fatalf("Renew from the slow process: %+v, %v", r, err)
	}
	// A process whose clock is behind sees a short, really expired lease as expired.
	if _, err := a.Renew(ctx, x.ID, "a", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := a.Claim(ctx, x.ID, "a2", time.Minute)
		if err == nil {
			if got.LeaseOwner != "a2" {
				t.Fatalf("LeaseOwner = %q", got.LeaseOwner)
			}
			break
		}
		if !errors.Is(err, binding.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("Claim after a 1 ms lease ended (process clock 10 min behind): %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A lease taken over by another process makes the first holder's writes fail with
// ErrLeaseLost, on every engine and for every guarded write path of the SQL store.
func TestSQLWritesNeedTheLease(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := e.open(t).Bindings()
			bs, err := s.UpsertBatch(ctx, []binding.Binding{
				{Backend: "s", Model: "m", ExternalID: "E1"},
				{Backend: "s", Model: "m", ExternalID: "E2", LocalID: "L2"},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				if _, err := s.Claim(ctx, b.ID, "new", time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			// A batch of fresh inserts (the multi-row path) and the two leased keys.
			batch := []binding.Binding{
				{Backend: "s", Model: "m", ExternalID: "N1"}, {Backend: "s", Model: "m", ExternalID: "N2"},
				{Backend: "s", Model: "m", ExternalID: "N3"},
				{Backend: "s", Model: "m", ExternalID: "E1", LeaseOwner: "old", Status: binding.StatusSuccess},
			}
			_, err = s.UpsertBatch(ctx, batch)
			var be *binding.BatchError
			if !errors.As(err, &be) || be.Index != 3 || !errors.Is(err, binding.ErrLeaseLost) {
				t.Fatalf("UpsertBatch over a lost lease = %v, want a *BatchError at 3 matching ErrLeaseLost", err)
			}
			if _, err := s.GetByExternal(ctx, "s", "m", "N1"); !errors.Is(err, binding.ErrNotFound) {
				t.Fatalf("the refused batch wrote N1: %v", err)
			}
			_, err = s.Upsert(ctx, binding.Binding{Backend: "s", Model: "m", ExternalID: "E2", LocalID: "L2"})
			if !errors.Is(err, binding.ErrLocked) {
				t.Fatalf("Upsert by both IDs naming no lease = %v, want ErrLocked", err)
			}
			batch[3].LeaseOwner = "new"
			if _, err := s.UpsertBatch(ctx, batch); err != nil {
				t.Fatalf("UpsertBatch by the holder: %v", err)
			}
		})
	}
}
