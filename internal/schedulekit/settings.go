package schedulekit

import (
	"context"
	"log/slog"
	"time"
)

// Clock is the time source of a schedule.Scheduler. connkit's tests pass a fake
// (internal/fakeclock) to step through ticks without sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// SleepUntil blocks until the clock reads t or later (nil), or until ctx is done
	// (ctx's error).
	SleepUntil(ctx context.Context, t time.Time) error
}

// Settings is what a schedule.Option sets. The options below are connkit's own (its
// tests, scheduletest.RunNodes): each returns a func(*Settings), which is assignable to
// schedule.Option.
type Settings struct {
	Clock Clock
	Log   *slog.Logger
	// Lease is how long a run holds its entry without renewing (default 1m); Poll how
	// often the scheduler rereads the store when no tick is due sooner (default 15s);
	// MaxRunning bounds the runs in progress at once (default 4).
	Lease, Poll time.Duration
	MaxRunning  int
}

// WithClock replaces the real clock.
func WithClock(c Clock) func(*Settings) {
	return func(s *Settings) {
		if c != nil {
			s.Clock = c
		}
	}
}

// WithLease sets how long a run holds its entry without renewing (at least 1s: shorter
// values are raised to 1s). A run renews every third of it, so only a process that died
// mid-run makes the entry wait; ticks in that time are skipped.
func WithLease(d time.Duration) func(*Settings) {
	return func(s *Settings) {
		if d > 0 {
			s.Lease = max(d, time.Second)
		}
	}
}

// WithPollInterval sets how often the scheduler rereads the store when no tick is due
// sooner: the delay before it sees an entry enabled by another process.
func WithPollInterval(d time.Duration) func(*Settings) {
	return func(s *Settings) {
		if d > 0 {
			s.Poll = d
		}
	}
}

// WithMaxRunning bounds the runs in progress at once in the scheduler; a due entry waits
// for a free slot, and meanwhile another node may take its tick.
func WithMaxRunning(n int) func(*Settings) {
	return func(s *Settings) {
		if n > 0 {
			s.MaxRunning = n
		}
	}
}
