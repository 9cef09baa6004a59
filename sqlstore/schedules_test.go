package sqlstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/schedule"
	"github.com/connkit/connkit/schedule/scheduletest"
	"github.com/connkit/connkit/sqlstore"

	"github.com/connkit/connkit/internal/fakeclock"

	"github.com/connkit/connkit/internal/schedulekit"
)

func TestScheduleConformance(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			scheduletest.Run(t, func(t *testing.T) schedule.Store { return e.open(t).Schedules() })
		})
	}
}

// Three processes share one database: each tick runs exactly once among them.
func TestSchedulesThreeNodes(t *testing.T) {
	t.Run("sqlite-file", func(t *testing.T) {
		t.Parallel()
		dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")
		scheduletest.RunNodes(t, mustOpen(t, dsn).Schedules(), mustOpen(t, dsn).Schedules(), mustOpen(t, dsn).Schedules())
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgSchemaDSN(t)
		scheduletest.RunNodes(t, mustOpen(t, dsn).Schedules(), mustOpen(t, dsn).Schedules(), mustOpen(t, dsn).Schedules())
	})
}

// A restarted process finds the entry enabled with its last run, and runs the latest tick
// it missed while down once.
func TestSchedulesSurviveRestart(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite-file": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "connkit.db") },
		"postgres":    func(t *testing.T) string { return pgSchemaDSN(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dsn := dsn(t)
			ctx := context.Background()
			clock := fakeclock.New(time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC))
			tick := func(m int) time.Time { return time.Date(2026, 3, 1, 12, m, 0, 0, time.UTC) }
			var mu sync.Mutex
			var ran []time.Time
			process := func(db *sqlstore.DB) (stop func()) {
				s := schedule.New(db.Schedules(), schedulekit.WithClock(clock), schedulekit.WithPollInterval(time.Hour))
				if err := s.Add("sync_all", "@every 1m", func(ctx context.Context, tick time.Time) error {
					mu.Lock()
					ran = append(ran, tick)
					mu.Unlock()
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if err := s.Enable(ctx, "sync_all"); err != nil { // a no-op after the restart
					t.Fatal(err)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error)
				go func() { done <- s.Run(rctx) }()
				return func() {
					cancel()
					if err := <-done; err != nil {
						t.Errorf("Run: %v", err)
					}
				}
			}
			waitRun := func(db *sqlstore.DB, m int) {
				t.Helper()
				deadline := time.Now().Add(30 * time.Second)
				for {
					st, err := db.Schedules().Get(ctx, "sync_all")
					if err == nil && st.LastRunAt.Equal(tick(m)) && !st.Running {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("run of 12:%02d not recorded: %+v, %v", m, st, err)
					}
					time.Sleep(time.Millisecond)
				}
			}

			db1, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			stop := process(db1)
			clock.WaitForSleepers(t, tick(1), 1)
			clock.Advance(30 * time.Second)
			waitRun(db1, 1)
			stop()
			db1.Close()

			clock.Advance(9*time.Minute + 30*time.Second) // down until 12:10:30
			db2 := mustOpen(t, dsn)
			st, err := db2.Schedules().Get(ctx, "sync_all")
			if err != nil || !st.Enabled || !st.LastRunAt.Equal(tick(1)) || !st.NextRunAt.Equal(tick(2)) {
				t.Fatalf("after restart: %+v, %v; want enabled, last run 12:01, overdue since 12:02", st, err)
			}
			stop = process(db2)
			defer stop()
			waitRun(db2, 10)
			clock.WaitForSleepers(t, tick(11), 1)
			mu.Lock()
			defer mu.Unlock()
			if len(ran) != 2 || !ran[0].Equal(tick(1)) || !ran[1].Equal(tick(10)) {
				t.Fatalf("ran for %v, want [12:01 12:10]", ran)
			}
		})
	}
}
