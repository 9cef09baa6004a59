// Package scheduletest is the conformance suite for schedule.Store implementations, a
// multi-node check of the Scheduler on a shared store, and a fake clock. Every store in
// connkit runs them; run them against your own store too:
//
//	func TestMyStore(t *testing.T) {
//		scheduletest.Run(t, func(t *testing.T) schedule.Store { return newMyStore(t) })
//	}
package scheduletest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/schedule"
)

// t0 is the time every subtest starts from; ticks of "@every 1m" fall on whole minutes.
var t0 = time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)

func minute(n int) time.Time { return time.Date(2026, 3, 1, 12, n, 0, 0, time.UTC) }

// Run checks that the stores made by newStore behave as schedule.Store documents.
// newStore is called once per subtest and must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) schedule.Store) {
	t.Helper()
	ctx := context.Background()
	const hour = time.Hour

	t.Run("RegisterDisabled", func(t *testing.T) {
		s := newStore(t)
		mustRegister(t, s, "sync_all", " @every 15m ")
		st := mustGet(t, s, "sync_all")
		if st.Name != "sync_all" || st.Spec != "@every 15m" || st.Enabled || st.Running ||
			!st.NextRunAt.IsZero() || !st.LastRunAt.IsZero() || st.LastError != "" || st.Skipped != 0 {
			t.Fatalf("fresh entry: %+v, want disabled, spec \"@every 15m\", no runs", st)
		}
		if claim(t, s, "sync_all", minute(15), hour) {
			t.Fatalf("Claim of a disabled entry won")
		}
	})

	t.Run("BadInputStoresNothing", func(t *testing.T) {
		s := newStore(t)
		err := s.Register(ctx, "x", "every day")
		if !errors.Is(err, schedule.ErrInvalid) || !strings.Contains(err.Error(), `"every day"`) {
			t.Fatalf("Register with a bad spec: %v, want ErrInvalid quoting the spec", err)
		}
		for _, name := range []string{"", "a\nb", string(make([]byte, 201))} {
			if err := s.Register(ctx, name, "@hourly"); !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("Register(%q): %v, want ErrInvalid", name, err)
			}
		}
		if sts := mustList(t, s); len(sts) != 0 {
			t.Fatalf("List after rejected registrations: %+v, want none", sts)
		}
		mustRegister(t, s, "x", "@hourly")
		if err := s.Register(ctx, "x", "61 * * * *"); !errors.Is(err, schedule.ErrInvalid) {
			t.Fatalf("re-Register with a bad spec: %v, want ErrInvalid", err)
		}
		if st := mustGet(t, s, "x"); st.Spec != "@hourly" {
			t.Fatalf("spec after a rejected re-Register: %q, want the previous \"@hourly\"", st.Spec)
		}
		mustEnable(t, s, "x", t0)
		for _, c := range []struct {
			tick  time.Time
			lease time.Duration
		}{{time.Time{}, hour}, {minute(1), 0}, {minute(1), -time.Second}} {
			if _, err := s.Claim(ctx, "x", c.tick, c.lease); !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("Claim(tick %v, lease %v): %v, want ErrInvalid", c.tick, c.lease, err)
			}
		}
		if err := s.SetEnabled(ctx, "x", true, time.Time{}); !errors.Is(err, schedule.ErrInvalid) {
			t.Fatalf("SetEnabled with a zero time: %v, want ErrInvalid", err)
		}
	})

	t.Run("MissingEntry", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, schedule.ErrNotFound) {
			t.Fatalf("Get: %v, want ErrNotFound", err)
		}
		if err := s.SetEnabled(ctx, "nope", true, t0); !errors.Is(err, schedule.ErrNotFound) {
			t.Fatalf("SetEnabled: %v, want ErrNotFound", err)
		}
		if _, err := s.Claim(ctx, "nope", minute(1), hour); !errors.Is(err, schedule.ErrNotFound) {
			t.Fatalf("Claim: %v, want ErrNotFound", err)
		}
		if err := s.Finish(ctx, "nope", minute(1), time.Second, ""); err == nil {
			t.Fatalf("Finish of a missing entry: nil error")
		}
		if err := s.Renew(ctx, "nope", minute(1), hour); err == nil {
			t.Fatalf("Renew of a missing entry: nil error")
		}
	})

	t.Run("EnableAnchorsFirstTick", func(t *testing.T) {
		s := newStore(t)
		mustRegister(t, s, "e", "@every 1m")
		mustEnable(t, s, "e", t0)
		wantNext(t, s, "e", minute(1))
		mustEnable(t, s, "e", t0.Add(5*time.Minute)) // already enabled: no change
		wantNext(t, s, "e", minute(1))
		if err := s.SetEnabled(ctx, "e", false, t0.Add(6*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if st := mustGet(t, s, "e"); st.Enabled || !st.NextRunAt.IsZero() {
			t.Fatalf("disabled: %+v, want Enabled false and no NextRunAt", st)
		}
		if claim(t, s, "e", minute(7), hour) {
			t.Fatalf("Claim after Disable won")
		}
		mustEnable(t, s, "e", t0.Add(10*time.Minute)) // ticks passed while disabled are not owed
		wantNext(t, s, "e", minute(11))
		if claim(t, s, "e", minute(10), hour) {
			t.Fatalf("Claim of a tick before re-enabling won")
		}
	})

	t.Run("CronInTimeZone", func(t *testing.T) {
		s := newStore(t)
		mustRegister(t, s, "nightly", "CRON_TZ=Europe/Paris 0 3 * * *")
		mustEnable(t, s, "nightly", t0)
		wantNext(t, s, "nightly", time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)) // 03:00 CET
	})

	t.Run("ClaimRunFinish", func(t *testing.T) {
		s := newStore(t)
		mustRegister(t, s, "r", "@every 1m")
		mustEnable(t, s, "r", t0)
		if !claim(t, s, "r", minute(1), hour) {
			t.Fatalf("first Claim lost, want won")
		}
		st := mustGet(t, s, "r")
		if !st.Running || !st.LastRunAt.Equal(minute(1)) || !st.NextRunAt.Equal(minute(2)) {
			t.Fatalf("while running: %+v, want Running, LastRunAt %v, NextRunAt %v", st, minute(1), minute(2))
		}
		if claim(t, s, "r", minute(1), hour) {
			t.Fatalf("second Claim of the same tick won")
		}
		if err := s.Renew(ctx, "r", minute(1), hour); err != nil {
			t.Fatalf("Renew by the holder: %v", err)
		}
		if err := s.Renew(ctx, "r", minute(0), hour); !errors.Is(err, schedule.ErrLeaseLost) {
			t.Fatalf("Renew for another tick: %v, want ErrLeaseLost", err)
		}
		mustFinish(t, s, "r", minute(1), 3*time.Second, "boom: ünïcode ✓")
		st = mustGet(t, s, "r")
		if st.Running || st.LastError != "boom: ünïcode ✓" || st.LastDuration != 3*time.Second || !st.LastRunAt.Equal(minute(1)) {
			t.Fatalf("after a failed run: %+v", st)
		}
		if err := s.Finish(ctx, "r", minute(1), time.Second, ""); !errors.Is(err, schedule.ErrLeaseLost) {
			t.Fatalf("second Finish: %v, want ErrLeaseLost", err)
		}
		if !claim(t, s, "r", minute(2), hour) {
			t.Fatalf("Claim of the next tick lost, want won")
		}
		mustFinish(t, s, "r", minute(2), 1500*time.Millisecond, "")
		st = mustGet(t, s, "r")
		if st.LastError != "" || st.LastDuration != 1500*time.Millisecond || !st.LastRunAt.Equal(minute(2)) || !st.NextRunAt.Equal(minute(3)) {
			t.Fatalf("after a successful run: %+v", st)
		}
		if claim(t, s, "r", minute(1), hour) {
			t.Fatalf("Claim of an older tick won")
		}
	})

	t.Run("NoOverlap", func(t *testing.T) {
		s := newStore(t)
		mustRegister(t, s, "long", "@every 1m")
		mustEnable(t, s, "long", t0)
		if !claim(t, s, "long", minute(1), hour) {
			t.Fatalf("Claim lost, want won")
		}
		if claim(t, s, "long", minute(2), hour) {
			t.Fatalf("Claim while the previous run holds the entry won, want skipped")
		}
		if st := mustGet(t, s, "long"); st.Skipped != 1 {
			t.Fatalf("Claim while the previous run holds the entry: Skipped %d, want 1", st.Skipped)
		}
		if claim(t, s, "long", minute(2), hour) {
			t.Fatalf("Claim of a skipped tick won")
		}
		st := mustGet(t, s, "long")
		if !st.Running || st.Skipped != 1 || !st.LastRunAt.Equal(minute(1)) || !st.NextRunAt.Equal(minute(3)) {
			t.Fatalf("after a skip: %+v, want Running, Skipped 1, LastRunAt %v, NextRunAt %v", st, minute(1), minute(3))
		}
		mustFinish(t, s, "long", minute(1), time.Minute+30*time.Second, "")
		if !claim(t, s, "long", minute(3), hour) {
			t.Fatalf("Claim after the long run finished lost, want won")
		}
		if st := mustGet(t, s, "long"); st.Skipped != 1 || !st.LastRunAt.Equal(minute(3)) {
			t.Fatalf("after the next run started: %+v", st)
		}
	})

	t.Run("OneWinnerPerTick", func(t *testing.T) {
		s := newStore(t)
		mustRegister(t, s, "c", "@every 1m")
		mustEnable(t, s, "c", t0)
		const claimers = 8
		for m := 1; m <= 5; m++ {
			var wg sync.WaitGroup
			results := make(chan bool, claimers)
			start := make(chan struct{})
			for range claimers {
				wg.Go(func() {
					<-start
					r, err := s.Claim(ctx, "c", minute(m), hour)
					if err != nil {
						t.Errorf("Claim: %v", err)
					}
					results <- r
				})
			}
			close(start)
			wg.Wait()
			close(results)
			won := 0
			for r := range results {
				if r {
					won++
				}
			}
			if st := mustGet(t, s, "c"); st.Skipped != 0 {
				t.Errorf("tick %d: Skipped %d; concurrent claimers of one tick are lost, not skipped (only the winner's earlier runs can cause a skip)", m, st.Skipped)
			}
			if won != 1 {
				t.Fatalf("tick %d: %d of %d concurrent claimers won, want exactly 1", m, won, claimers)
			}
			mustFinish(t, s, "c", minute(m), time.Second, "")
		}
	})

	t.Run("ExpiredLeaseFreesEntry", func(t *testing.T) {
		s := newStore(t)
		mustRegister(t, s, "x", "@every 1s")
		mustEnable(t, s, "x", t0)
		first := t0.Add(time.Second)
		if !claim(t, s, "x", first, time.Millisecond) {
			t.Fatalf("Claim lost, want won")
		}
		// The holder died: once its lease expires (by the store's clock), a later tick
		// runs. Each attempt below takes a new tick; those before expiry are skipped.
		var won time.Time
		deadline := time.Now().Add(20 * time.Second)
		for tick := first.Add(time.Second); won.IsZero(); tick = tick.Add(time.Second) {
			if claim(t, s, "x", tick, hour) {
				won = tick
				continue
			}
			if time.Now().After(deadline) {
				t.Fatalf("a 1ms lease still blocks the entry after 20s")
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := s.Renew(ctx, "x", first, hour); !errors.Is(err, schedule.ErrLeaseLost) {
			t.Fatalf("Renew by the expired holder: %v, want ErrLeaseLost", err)
		}
		if err := s.Finish(ctx, "x", first, time.Second, "late"); !errors.Is(err, schedule.ErrLeaseLost) {
			t.Fatalf("Finish by the expired holder: %v, want ErrLeaseLost", err)
		}
		st := mustGet(t, s, "x")
		if !st.Running || !st.LastRunAt.Equal(won) || st.LastError != "" {
			t.Fatalf("after the expired holder's Finish: %+v, want the new run (%v) untouched", st, won)
		}
		mustFinish(t, s, "x", won, time.Second, "")
	})

	t.Run("ReRegisterKeepsState", func(t *testing.T) {
		s := newStore(t)
		mustRegister(t, s, "k", "@every 1m")
		mustEnable(t, s, "k", t0)
		if !claim(t, s, "k", minute(1), hour) {
			t.Fatalf("Claim lost, want won")
		}
		mustFinish(t, s, "k", minute(1), time.Second, "oops")
		mustRegister(t, s, "k", "@every 5m")
		st := mustGet(t, s, "k")
		if !st.Enabled || st.Spec != "@every 5m" || !st.LastRunAt.Equal(minute(1)) || st.LastError != "oops" || !st.NextRunAt.Equal(minute(5)) {
			t.Fatalf("after re-Register with a new spec: %+v, want enabled, history kept, NextRunAt %v", st, minute(5))
		}
	})

	t.Run("ListOrderedByName", func(t *testing.T) {
		s := newStore(t)
		for _, n := range []string{"b", "c", "a"} {
			mustRegister(t, s, n, "@daily")
		}
		mustEnable(t, s, "c", t0)
		sts := mustList(t, s)
		var names []string
		for _, st := range sts {
			names = append(names, st.Name)
		}
		if fmt.Sprint(names) != "[a b c]" {
			t.Fatalf("List names: %v, want [a b c]", names)
		}
		if !sts[2].Enabled || sts[0].Enabled || !sts[2].NextRunAt.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("List: %+v", sts)
		}
	})
}

func claim(t *testing.T, s schedule.Store, name string, tick time.Time, lease time.Duration) (won bool) {
	t.Helper()
	won, err := s.Claim(context.Background(), name, tick, lease)
	if err != nil {
		t.Fatalf("Claim(%q, %v): %v", name, tick, err)
	}
	return won
}

func mustRegister(t *testing.T, s schedule.Store, name, spec string) {
	t.Helper()
	if err := s.Register(context.Background(), name, spec); err != nil {
		t.Fatalf("Register(%q, %q): %v", name, spec, err)
	}
}

func mustEnable(t *testing.T, s schedule.Store, name string, at time.Time) {
	t.Helper()
	if err := s.SetEnabled(context.Background(), name, true, at); err != nil {
		t.Fatalf("SetEnabled(%q, true): %v", name, err)
	}
}

func mustFinish(t *testing.T, s schedule.Store, name string, tick time.Time, took time.Duration, lastError string) {
	t.Helper()
	if err := s.Finish(context.Background(), name, tick, took, lastError); err != nil {
		t.Fatalf("Finish(%q, %v): %v", name, tick, err)
	}
}

func mustGet(t *testing.T, s schedule.Store, name string) schedule.Status {
	t.Helper()
	st, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return st
}

func mustList(t *testing.T, s schedule.Store) []schedule.Status {
	t.Helper()
	sts, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return sts
}

func wantNext(t *testing.T, s schedule.Store, name string, want time.Time) {
	t.Helper()
	if st := mustGet(t, s, name); !st.NextRunAt.Equal(want) {
		t.Fatalf("%q NextRunAt = %v, want %v", name, st.NextRunAt, want)
	}
}
