package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/state"
)

// Stats are a backend's running statistics.
type Stats struct {
	LastSyncAt   time.Time `json:"last_sync_at,omitzero"`
	LastExportAt time.Time `json:"last_export_at,omitzero"`
	// Syncs and Exports total every operation's and model's counts.
	Syncs   report.Counts `json:"syncs"`
	Exports report.Counts `json:"exports"`
	// Operations and Models hold the same per operation name and per exported model.
	// Single-record imports (Backend.Import, deferred imports, webhooks) are counted under
	// "fetch_<model>" in Operations.
	Operations map[string]RunStats `json:"operations,omitempty"`
	Models     map[string]RunStats `json:"models,omitempty"`
}

// RunStats are the statistics of one operation or one exported model.
type RunStats struct {
	LastRunAt time.Time     `json:"last_run_at"`
	LastError string        `json:"last_error,omitempty"`
	Runs      int           `json:"runs"`
	Errors    int           `json:"errors"`
	Total     report.Counts `json:"total"`
	Last      report.Counts `json:"last"`
}

func (s *Stats) addSync(name string, at time.Time, r report.Counts, err error) {
	s.LastSyncAt = at
	s.Syncs = s.Syncs.Add(r)
	s.Operations = addRun(s.Operations, name, at, r, err)
}

func (s *Stats) addExport(model string, at time.Time, r report.Counts, err error) {
	s.LastExportAt = at
	s.Exports = s.Exports.Add(r)
	s.Models = addRun(s.Models, model, at, r, err)
}

func addRun(m map[string]RunStats, key string, at time.Time, r report.Counts, err error) map[string]RunStats {
	if m == nil {
		m = map[string]RunStats{}
	}
	rs := m[key]
	rs.LastRunAt, rs.Last, rs.LastError = at, r, ""
	rs.Runs++
	rs.Total = rs.Total.Add(r)
	if err != nil {
		rs.Errors++
		rs.LastError = err.Error()
	}
	m[key] = rs
	return m
}

// statsKey is the state-store name statistics are kept under.
const statsKey = "connkit.backend.stats"

// Stats returns the backend's statistics from its state store, so with WithDB they
// include every process sharing the database.
func (b *Backend) Stats(ctx context.Context) (Stats, error) {
	s, _, err := b.loadStats(ctx)
	return s, err
}

func (b *Backend) loadStats(ctx context.Context) (Stats, []byte, error) {
	raw, err := b.state.Get(ctx, b.cfg.Name, statsKey)
	if errors.Is(err, state.ErrNotFound) {
		return Stats{}, nil, nil
	}
	if err != nil {
		return Stats{}, nil, fmt.Errorf("backend %q: reading statistics: %w", b.cfg.Name, err)
	}
	var s Stats
	if err := json.Unmarshal(raw, &s); err != nil {
		return Stats{}, nil, fmt.Errorf("backend %q: statistics in the state store are corrupt (%v); delete %q to reset them", b.cfg.Name, err, statsKey)
	}
	return s, raw, nil
}

// record applies update to the statistics, retrying a compare-and-swap so concurrent
// processes never lose each other's counts.
func (b *Backend) record(ctx context.Context, update func(*Stats)) error {
	// Statistics must be written even when the run was cancelled.
	ctx = context.WithoutCancel(ctx)
	for range 100 {
		s, old, err := b.loadStats(ctx)
		if err != nil {
			return err
		}
		update(&s)
		raw, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("backend %q: encoding statistics: %w", b.cfg.Name, err)
		}
		ok, err := b.state.CompareAndSwap(ctx, b.cfg.Name, statsKey, old, raw)
		if err != nil {
			return fmt.Errorf("backend %q: saving statistics: %w", b.cfg.Name, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("backend %q: saving statistics: too much contention on %q", b.cfg.Name, statsKey)
}
