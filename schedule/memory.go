package schedule

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connkit/connkit/internal/schedulekit"
)

// memoryStore is a Store in process memory, for tests and single-process programs whose
// schedules need not survive a restart. Its leases expire by time.Now. It is safe for
// concurrent use.
type memoryStore struct {
	mu      sync.Mutex
	entries map[string]*memEntry
}

type memEntry struct {
	spec        string
	parsed      schedulekit.Spec
	enabled     bool
	lastTick    time.Time // ticks after it are due; zero before the first enable
	runningTick time.Time // zero when no run holds the entry
	leaseUntil  time.Time
	lastRunAt   time.Time
	lastError   string
	lastTook    time.Duration
	skipped     int64
}

var _ Store = (*memoryStore)(nil)

// NewMemory returns an empty Store in process memory, for tests and single-process
// programs whose schedules need not survive a restart.
func NewMemory() Store {
	return &memoryStore{entries: make(map[string]*memEntry)}
}

// Register implements Store.
func (m *memoryStore) Register(ctx context.Context, name, spec string) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	p, err := schedulekit.ParseSpec(spec)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[name]; ok {
		e.spec, e.parsed = p.String(), p
		return nil
	}
	m.entries[name] = &memEntry{spec: p.String(), parsed: p}
	return nil
}

// SetEnabled implements Store.
func (m *memoryStore) SetEnabled(ctx context.Context, name string, enabled bool, at time.Time) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	if enabled && at.IsZero() {
		return fmt.Errorf("%w: zero enable time for entry %q", ErrInvalid, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[name]
	if !ok {
		return notFound(name)
	}
	if enabled && !e.enabled && e.lastTick.Before(at) {
		e.lastTick = at.UTC()
	}
	e.enabled = enabled
	return nil
}

// Get implements Store.
func (m *memoryStore) Get(ctx context.Context, name string) (Status, error) {
	if err := schedulekit.CheckName(name); err != nil {
		return Status{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[name]
	if !ok {
		return Status{}, notFound(name)
	}
	return e.status(name, time.Now()), nil
}

// List implements Store.
func (m *memoryStore) List(ctx context.Context) ([]Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	out := make([]Status, 0, len(m.entries))
	for name, e := range m.entries {
		out = append(out, e.status(name, now))
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Claim implements Store.
func (m *memoryStore) Claim(ctx context.Context, name string, tick time.Time, lease time.Duration) (bool, error) {
	if err := checkClaim(name, tick, lease); err != nil {
		return false, err
	}
	tick = tick.UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[name]
	if !ok {
		return false, notFound(name)
	}
	if !e.enabled || !e.lastTick.Before(tick) {
		return false, nil
	}
	e.lastTick = tick
	now := time.Now()
	if e.running(now) {
		e.skipped++
		return false, nil
	}
	e.runningTick, e.leaseUntil, e.lastRunAt = tick, now.Add(lease), tick
	return true, nil
}

// Renew implements Store.
func (m *memoryStore) Renew(ctx context.Context, name string, tick time.Time, lease time.Duration) error {
	if err := checkClaim(name, tick, lease); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.holder(name, tick)
	if err != nil {
		return err
	}
	e.leaseUntil = time.Now().Add(lease)
	return nil
}

// Finish implements Store.
func (m *memoryStore) Finish(ctx context.Context, name string, tick time.Time, took time.Duration, lastError string) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.holder(name, tick)
	if err != nil {
		return err
	}
	e.runningTick, e.leaseUntil = time.Time{}, time.Time{}
	e.lastError, e.lastTook = lastError, max(took, 0)
	return nil
}

// holder returns the entry if the run of tick holds it.
func (m *memoryStore) holder(name string, tick time.Time) (*memEntry, error) {
	e, ok := m.entries[name]
	if !ok {
		return nil, notFound(name)
	}
	if e.runningTick.IsZero() || !e.runningTick.Equal(tick) {
		return nil, leaseLost(name, tick)
	}
	return e, nil
}

func (e *memEntry) running(now time.Time) bool {
	return !e.runningTick.IsZero() && e.leaseUntil.After(now)
}

func (e *memEntry) status(name string, now time.Time) Status {
	st := Status{
		Name:         name,
		Spec:         e.spec,
		Enabled:      e.enabled,
		LastRunAt:    e.lastRunAt,
		LastError:    e.lastError,
		LastDuration: e.lastTook,
		Running:      e.running(now),
		Skipped:      e.skipped,
	}
	if e.enabled && !e.lastTick.IsZero() {
		st.NextRunAt = e.parsed.Next(e.lastTick).UTC()
	}
	return st
}

func notFound(name string) error {
	return fmt.Errorf("%w: %q", ErrNotFound, name)
}

func leaseLost(name string, tick time.Time) error {
	return fmt.Errorf("%w: entry %q, run of tick %s", ErrLeaseLost, name, tick.UTC().Format(time.RFC3339))
}
