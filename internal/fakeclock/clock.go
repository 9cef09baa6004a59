// Package fakeclock is the fake schedule clock of connkit's scheduler tests and of
// scheduletest.RunNodes: it moves only when told to.
package fakeclock

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Clock is a fake schedulekit.Clock that moves only when told to. Tests advance it and wait
// until the scheduler sleeps until an expected time, so they step through ticks without
// real sleeps and without racing the scheduler.
type Clock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers map[*sleeper]struct{}
	changed  chan struct{} // closed and replaced whenever sleepers change
}

type sleeper struct {
	until time.Time
	wake  chan struct{}
}

// New returns a Clock reading start.
func New(start time.Time) *Clock {
	return &Clock{now: start, sleepers: make(map[*sleeper]struct{}), changed: make(chan struct{})}
}

// Now implements schedulekit.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// SleepUntil implements schedulekit.Clock.
func (c *Clock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if !t.After(c.now) {
		c.mu.Unlock()
		return ctx.Err()
	}
	s := &sleeper{until: t, wake: make(chan struct{})}
	c.sleepers[s] = struct{}{}
	c.notifyLocked()
	c.mu.Unlock()
	select {
	case <-s.wake:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		if _, ok := c.sleepers[s]; ok {
			delete(c.sleepers, s)
			c.notifyLocked()
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Advance moves the clock forward by d, waking every sleeper whose time has come.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for s := range c.sleepers {
		if !s.until.After(c.now) {
			delete(c.sleepers, s)
			close(s.wake)
		}
	}
	c.notifyLocked()
}

// WaitForSleepers blocks until at least n goroutines sleep until exactly t, failing the
// test after 30 seconds of real time. A scheduler that sleeps until its next tick has
// finished looking at the current one.
func (c *Clock) WaitForSleepers(tb testing.TB, t time.Time, n int) {
	tb.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		count := 0
		for s := range c.sleepers {
			if s.until.Equal(t) {
				count++
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if count >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			tb.Fatalf("fakeclock: %d goroutines sleep until %s, want %d (clock at %s)", count, t.Format(time.RFC3339), n, c.Now().Format(time.RFC3339))
		}
	}
}

func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}
