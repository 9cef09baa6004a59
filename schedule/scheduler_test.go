package schedule_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/internal/fakeclock"
	"github.com/connkit/connkit/internal/schedulekit"
	"github.com/connkit/connkit/schedule"
	"github.com/connkit/connkit/schedule/scheduletest"
)

func TestMemoryStoreConformance(t *testing.T) {
	scheduletest.Run(t, func(t *testing.T) schedule.Store { return schedule.NewMemory() })
}

func TestMemoryStoreThreeNodes(t *testing.T) {
	st := schedule.NewMemory()
	scheduletest.RunNodes(t, st, st, st)
}

var start = time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)

func at(h, m int) time.Time { return time.Date(2026, 3, 1, h, m, 0, 0, time.UTC) }

// harness runs one scheduler on a fake clock and records the ticks it runs.
type harness struct {
	t     *testing.T
	clock *fakeclock.Clock
	store schedule.Store
	s     *schedule.Scheduler

	mu    sync.Mutex
	ticks map[string][]time.Time

	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, store schedule.Store, clock *fakeclock.Clock, opts ...schedule.Option) *harness {
	t.Helper()
	if store == nil {
		store = schedule.NewMemory()
	}
	if clock == nil {
		clock = fakeclock.New(start)
	}
	opts = append([]schedule.Option{schedulekit.WithClock(clock), schedulekit.WithPollInterval(time.Hour), schedulekit.WithLease(time.Hour)}, opts...)
	return &harness{t: t, clock: clock, store: store, s: schedule.New(store, opts...), ticks: make(map[string][]time.Time)}
}

// add declares name; body (may be nil) runs after the tick is recorded.
func (h *harness) add(name, spec string, body func(context.Context, time.Time) error) {
	h.t.Helper()
	err := h.s.Add(name, spec, func(ctx context.Context, tick time.Time) error {
		h.mu.Lock()
		h.ticks[name] = append(h.ticks[name], tick)
		h.mu.Unlock()
		if body != nil {
			return body(ctx, tick)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.s.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop ends Run and waits for it (idempotent).
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

func (h *harness) ran(name string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.ticks[name]...)
}

func (h *harness) status(name string) schedule.Status {
	h.t.Helper()
	st, err := h.store.Get(context.Background(), name)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", name, err)
	}
	return st
}

// waitStatus waits (bounded, real time) until name's status satisfies ok.
func (h *harness) waitStatus(name, what string, ok func(schedule.Status) bool) schedule.Status {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := h.store.Get(context.Background(), name)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %q: %s; last status %+v, %v", name, what, st, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// finished waits until the run of tick has been recorded.
func (h *harness) finished(name string, tick time.Time) schedule.Status {
	h.t.Helper()
	return h.waitStatus(name, "run of "+tick.Format("15:04")+" finished", func(st schedule.Status) bool {
		return st.LastRunAt.Equal(tick) && !st.Running
	})
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestDisabledEntryNeverRuns(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.add("off", "@every 1m", nil)
	h.run()
	for i := 1; i <= 5; i++ {
		h.clock.WaitForSleepers(t, start.Add(time.Duration(i)*time.Hour), 1) // polling, nothing due
		h.clock.Advance(time.Hour)
	}
	h.clock.WaitForSleepers(t, start.Add(6*time.Hour), 1)
	if got := h.ran("off"); len(got) != 0 {
		t.Fatalf("disabled entry ran for ticks %v", got)
	}
	if st := h.status("off"); st.Enabled || !st.NextRunAt.IsZero() || !st.LastRunAt.IsZero() {
		t.Fatalf("status: %+v, want registered, disabled, never run", st)
	}
}

func TestEnabledRunsOnItsTicksAndMissedTicksOnce(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.add("sync", "@every 1m", func(ctx context.Context, tick time.Time) error {
		if tick.Equal(at(12, 2)) {
			return errors.New("remote said no")
		}
		return nil
	})
	h.add("cron", "*/5 * * * *", nil)
	for _, n := range []string{"sync", "cron"} {
		if err := h.s.Enable(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	h.run()

	h.clock.WaitForSleepers(t, at(12, 1), 1)
	h.clock.Advance(30 * time.Second) // 12:01:00
	h.finished("sync", at(12, 1))
	h.clock.WaitForSleepers(t, at(12, 2), 1)
	h.clock.Advance(time.Minute) // 12:02:00, the run fails
	if st := h.finished("sync", at(12, 2)); st.LastError != "remote said no" {
		t.Fatalf("after a failed run: LastError %q", st.LastError)
	}
	h.clock.WaitForSleepers(t, at(12, 3), 1)
	// Down (or late) for three ticks: one run, for the latest.
	h.clock.Advance(3*time.Minute + 30*time.Second) // 12:05:30
	if st := h.finished("sync", at(12, 5)); st.LastError != "" || !st.NextRunAt.Equal(at(12, 6)) {
		t.Fatalf("after catching up: %+v", st)
	}
	h.finished("cron", at(12, 5))
	h.clock.WaitForSleepers(t, at(12, 6), 1)

	if got, want := h.ran("sync"), []time.Time{at(12, 1), at(12, 2), at(12, 5)}; !equalTimes(got, want) {
		t.Fatalf("sync ran for %v, want %v", got, want)
	}
	if got, want := h.ran("cron"), []time.Time{at(12, 5)}; !equalTimes(got, want) {
		t.Fatalf("cron ran for %v, want %v", got, want)
	}
}

func TestLongRunSkipsNextTick(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, nil, nil)
	h.add("long", "@every 1m", func(ctx context.Context, tick time.Time) error {
		if tick.Equal(at(12, 1)) {
			select { // ctx too, so that a failing test still stops
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	})
	if err := h.s.Enable(context.Background(), "long"); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.clock.WaitForSleepers(t, at(12, 1), 1)
	h.clock.Advance(30 * time.Second) // 12:01: the run starts and blocks
	h.waitStatus("long", "running", func(st schedule.Status) bool { return st.Running })
	h.clock.WaitForSleepers(t, at(12, 2), 1)
	h.clock.Advance(time.Minute) // 12:02: still running
	st := h.waitStatus("long", "a skip", func(st schedule.Status) bool { return st.Skipped == 1 })
	if !st.Running || !st.LastRunAt.Equal(at(12, 1)) || !st.NextRunAt.Equal(at(12, 3)) {
		t.Fatalf("after the skip: %+v", st)
	}
	close(release)
	if st := h.finished("long", at(12, 1)); st.LastDuration != time.Minute {
		t.Fatalf("LastDuration %v, want 1m by the scheduler's clock", st.LastDuration)
	}
	h.clock.WaitForSleepers(t, at(12, 3), 1)
	h.clock.Advance(time.Minute) // 12:03
	h.finished("long", at(12, 3))
	if got, want := h.ran("long"), []time.Time{at(12, 1), at(12, 3)}; !equalTimes(got, want) {
		t.Fatalf("ran for %v, want %v (12:02 skipped)", got, want)
	}
	if st := h.status("long"); st.Skipped != 1 {
		t.Fatalf("Skipped = %d, want 1", st.Skipped)
	}
}

func TestRestartKeepsEnabledStateAndLastRun(t *testing.T) {
	store := schedule.NewMemory()
	clock := fakeclock.New(start)
	h1 := newHarness(t, store, clock)
	h1.add("sync", "@every 1m", nil)
	if err := h1.s.Enable(context.Background(), "sync"); err != nil {
		t.Fatal(err)
	}
	h1.run()
	clock.WaitForSleepers(t, at(12, 1), 1)
	clock.Advance(30 * time.Second)
	h1.finished("sync", at(12, 1))
	h1.stop()

	// Down from 12:01 to 12:10:30; the new process runs the latest missed tick once.
	clock.Advance(9*time.Minute + 30*time.Second)
	h2 := newHarness(t, store, clock)
	h2.add("sync", "@every 1m", nil)
	if st := h2.status("sync"); !st.Enabled || !st.LastRunAt.Equal(at(12, 1)) || !st.NextRunAt.Equal(at(12, 2)) {
		t.Fatalf("status seen by the new process: %+v", st)
	}
	h2.run()
	h2.finished("sync", at(12, 10))
	clock.WaitForSleepers(t, at(12, 11), 1)
	if got := h2.ran("sync"); !equalTimes(got, []time.Time{at(12, 10)}) {
		t.Fatalf("after restart ran for %v, want [12:10]", got)
	}
	if st := h2.status("sync"); !st.Enabled {
		t.Fatalf("re-registering disabled the entry: %+v", st)
	}
}

func TestEnabledFromConsoleIsSeenAtNextPoll(t *testing.T) {
	h := newHarness(t, nil, nil, schedulekit.WithPollInterval(10*time.Minute))
	h.add("sync", "@every 1m", nil)
	h.run()
	h.clock.WaitForSleepers(t, start.Add(10*time.Minute), 1)
	// Another process (a console) enables it through the store alone.
	if err := h.store.SetEnabled(context.Background(), "sync", true, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10 * time.Minute) // 12:10:30, the poll
	h.finished("sync", at(12, 10))
	h.clock.WaitForSleepers(t, at(12, 11), 1)
	if err := h.s.Disable(context.Background(), "sync"); err != nil {
		t.Fatal(err)
	}
	h.clock.WaitForSleepers(t, at(12, 20).Add(30*time.Second), 1) // back to polling
	h.clock.Advance(10 * time.Minute)
	h.clock.WaitForSleepers(t, at(12, 30).Add(30*time.Second), 1)
	if got := h.ran("sync"); !equalTimes(got, []time.Time{at(12, 10)}) {
		t.Fatalf("ran for %v, want [12:10] only", got)
	}
}

func TestMaxRunningBoundsRuns(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, nil, nil, schedulekit.WithMaxRunning(1))
	var mu sync.Mutex
	inFlight, most := 0, 0
	body := func(ctx context.Context, tick time.Time) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	}
	h.add("a", "@every 1m", body)
	h.add("b", "@every 1m", body)
	for _, n := range []string{"a", "b"} {
		if err := h.s.Enable(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	h.run()
	h.clock.WaitForSleepers(t, at(12, 1), 1)
	h.clock.Advance(30 * time.Second)
	h.waitStatus("a", "a or b running", func(schedule.Status) bool { return len(h.ran("a"))+len(h.ran("b")) == 1 })
	close(release)
	h.finished("a", at(12, 1))
	h.finished("b", at(12, 1))
	if most != 1 {
		t.Fatalf("%d runs at once, want at most 1", most)
	}
}

func TestShutdownCancelsAndRecordsRun(t *testing.T) {
	h := newHarness(t, nil, nil)
	started := make(chan struct{})
	h.add("slow", "@every 1m", func(ctx context.Context, tick time.Time) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	if err := h.s.Enable(context.Background(), "slow"); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.clock.WaitForSleepers(t, at(12, 1), 1)
	h.clock.Advance(30 * time.Second)
	<-started
	h.stop() // returns only after the run ended and its result was recorded
	if st := h.status("slow"); st.Running || st.LastError != context.Canceled.Error() {
		t.Fatalf("after shutdown: %+v", st)
	}
}

func TestPanicIsRecorded(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.add("bad", "@every 1m", func(ctx context.Context, tick time.Time) error { panic("kaboom") })
	if err := h.s.Enable(context.Background(), "bad"); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.clock.WaitForSleepers(t, at(12, 1), 1)
	h.clock.Advance(30 * time.Second)
	if st := h.finished("bad", at(12, 1)); !strings.HasPrefix(st.LastError, "panic: kaboom") {
		t.Fatalf("LastError %q, want the panic", st.LastError)
	}
}

// renewFailingStore fails every renewal with err.
type renewFailingStore struct {
	schedule.Store
	err error
}

func (s renewFailingStore) Renew(ctx context.Context, name string, tick time.Time, lease time.Duration) error {
	return s.err
}

// A run whose lease cannot be kept is cancelled: at once when another run took the entry,
// after a whole lease of failed renewals when the store is unreachable.
func TestRunWithoutLeaseIsCancelled(t *testing.T) {
	for _, c := range []struct {
		name     string
		err      error
		renewals int // failed renewals before the run is cancelled
	}{
		{"lost", schedule.ErrLeaseLost, 1},
		{"unreachable", errors.New("connection refused"), 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, renewFailingStore{schedule.NewMemory(), c.err}, nil, schedulekit.WithLease(3*time.Minute))
			cancelled := make(chan error, 1)
			h.add("x", "@every 1h", func(ctx context.Context, tick time.Time) error {
				<-ctx.Done()
				cancelled <- ctx.Err()
				return ctx.Err()
			})
			if err := h.s.Enable(context.Background(), "x"); err != nil {
				t.Fatal(err)
			}
			h.run()
			h.clock.WaitForSleepers(t, at(13, 0), 1)
			h.clock.Advance(59*time.Minute + 30*time.Second) // 13:00, the run starts
			for i := 1; i <= c.renewals; i++ {
				select {
				case err := <-cancelled:
					t.Fatalf("run cancelled (%v) after %d failed renewals, want %d", err, i-1, c.renewals)
				default:
				}
				h.clock.WaitForSleepers(t, at(13, i), 1) // renewals every third of the lease
				h.clock.Advance(time.Minute)
			}
			select {
			case err := <-cancelled:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("run ctx: %v, want cancelled", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("run not cancelled after %d failed renewals", c.renewals)
			}
		})
	}
}

func TestAddRejectsBadInput(t *testing.T) {
	s := schedule.New(schedule.NewMemory())
	noop := func(context.Context, time.Time) error { return nil }
	if err := s.Add("x", "60 * * * *", noop); !errors.Is(err, schedule.ErrInvalid) || !strings.Contains(err.Error(), `"60 * * * *"`) {
		t.Fatalf("bad spec: %v, want ErrInvalid quoting the spec", err)
	}
	if err := s.Add("", "@hourly", noop); !errors.Is(err, schedule.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
	if err := s.Add("x", "@hourly", nil); !errors.Is(err, schedule.ErrInvalid) {
		t.Fatalf("nil func: %v", err)
	}
	if err := s.Add("x", "@hourly", noop); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("x", "@daily", noop); !errors.Is(err, schedule.ErrInvalid) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.Enable(context.Background(), "unknown"); !errors.Is(err, schedule.ErrNotFound) {
		t.Fatalf("Enable of an unknown entry: %v, want ErrNotFound", err)
	}
}
