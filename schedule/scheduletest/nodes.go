package scheduletest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/internal/fakeclock"
	"github.com/connkit/connkit/internal/schedulekit"
	"github.com/connkit/connkit/schedule"
)

// RunNodes checks the Scheduler across processes: it runs one Scheduler per store (give
// one store per simulated node, all on the same database) on a shared fake clock, with
// an enabled entry and a disabled one, steps through ten one-minute ticks and fails
// unless every tick ran exactly once across the nodes and the disabled entry never ran.
func RunNodes(t *testing.T, stores ...schedule.Store) {
	t.Helper()
	if len(stores) == 0 {
		t.Fatal("scheduletest.RunNodes: no stores")
	}
	ctx, cancel := context.WithCancel(context.Background())
	clock := fakeclock.New(t0)

	var mu sync.Mutex
	runs := make(map[time.Time]int) // tick → runs of it, across nodes
	perNode := make([]int, len(stores))
	var scheds []*schedule.Scheduler
	for i, st := range stores {
		s := schedule.New(st, schedulekit.WithClock(clock), schedulekit.WithPollInterval(time.Hour), schedulekit.WithLease(time.Hour))
		if err := s.Add("tick", "@every 1m", func(ctx context.Context, tick time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			runs[tick]++
			perNode[i]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Add("off", "@every 1m", func(ctx context.Context, tick time.Time) error {
			t.Errorf("node %d ran the disabled entry for tick %v", i, tick)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		scheds = append(scheds, s)
	}
	if err := scheds[0].Enable(ctx, "tick"); err != nil {
		t.Fatalf("Enable: %v", err)
	}
	var wg sync.WaitGroup
	for _, s := range scheds {
		wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()

	const ticks = 10
	clock.WaitForSleepers(t, minute(1), len(stores))
	for m := 1; m <= ticks; m++ {
		clock.Advance(time.Minute) // the clock reads the tick: every node wakes and claims it
		waitFor(t, "the run of "+minute(m).Format("15:04")+" to be recorded", func() bool {
			st, err := stores[0].Get(ctx, "tick")
			return err == nil && st.LastRunAt.Equal(minute(m)) && !st.Running
		})
		// Every node has looked at the tick once it sleeps until the next one.
		clock.WaitForSleepers(t, minute(m+1), len(stores))
	}

	mu.Lock()
	defer mu.Unlock()
	for m := 1; m <= ticks; m++ {
		if n := runs[minute(m)]; n != 1 {
			t.Errorf("tick %s ran %d times across %d nodes, want exactly once", minute(m).Format("15:04"), n, len(stores))
		}
	}
	if len(runs) != ticks {
		t.Errorf("runs per tick: %v, want the %d ticks once each", runs, ticks)
	}
	t.Logf("runs per node: %v", perNode)
	// Each tick's run ended before the next tick, so nothing may have been skipped: a
	// skip here means a node claimed a tick that another had already taken.
	if st, err := stores[0].Get(ctx, "tick"); err != nil || st.Skipped != 0 {
		t.Errorf("enabled entry: %+v, %v; want no skipped ticks", st, err)
	}
	st, err := stores[len(stores)-1].Get(ctx, "off")
	if err != nil || st.Enabled || !st.LastRunAt.IsZero() {
		t.Errorf("disabled entry: %+v, %v; want registered, disabled, never run", st, err)
	}
}

// waitFor polls cond until it holds, failing the test after 30 seconds of real time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
