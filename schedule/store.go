package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connkit/connkit/internal/schedulekit"
)

// Errors returned (wrapped) by stores and the Scheduler.
var (
	// ErrNotFound: no entry of that name is registered in the store.
	ErrNotFound = errors.New("schedule: entry not found")
	// ErrInvalid: a bad name, spec, tick or lease was passed; nothing was stored.
	ErrInvalid = schedulekit.ErrInvalid
	// ErrLeaseLost: the run no longer holds its entry (its lease expired and another run
	// claimed a later tick), so its renewal or result was not recorded.
	ErrLeaseLost = errors.New("schedule: run no longer holds its entry")
)

// Store keeps schedule entries where every node sharing it sees them: their spec, whether
// they are enabled, the last tick taken and the run in progress. Its Claim is what makes a
// tick run once across processes. Implementations: NewMemory, and sqlstore's
// DB.Schedules (SQLite and Postgres). All must pass scheduletest.Run.
type Store interface {
	// Register creates the entry, disabled, or updates the spec of an existing one and
	// keeps its enabled state and history. A bad name or spec fails with ErrInvalid.
	Register(ctx context.Context, name, spec string) error
	// SetEnabled enables or disables the entry. Enabling a disabled entry anchors it at
	// at: its first run is the first tick after at (ticks passed while it was disabled
	// are not owed). Enabling an enabled entry changes nothing.
	SetEnabled(ctx context.Context, name string, enabled bool, at time.Time) error
	// Get returns the entry's status, or ErrNotFound.
	Get(ctx context.Context, name string) (Status, error)
	// List returns every entry's status, ordered by name.
	List(ctx context.Context) ([]Status, error)
	// Claim atomically takes tick (a time the entry's spec yields) for the caller. With
	// any number of concurrent callers for one tick, at most one wins (true); it must run
	// the entry and then call Finish, renewing the lease with Renew while it runs. When
	// the previous run still holds an unexpired lease the tick is consumed without
	// running and counted in Status.Skipped (false). A tick at or before the last one
	// taken, or a disabled entry, gives false. A missing entry is ErrNotFound.
	Claim(ctx context.Context, name string, tick time.Time, lease time.Duration) (won bool, err error)
	// Renew extends the lease of the run of tick to lease from now; ErrLeaseLost when
	// another run has claimed the entry since.
	Renew(ctx context.Context, name string, tick time.Time, lease time.Duration) error
	// Finish records the end of the run of tick (how long it took and its error text, ""
	// for success) and releases the entry; ErrLeaseLost when another run has claimed the
	// entry since (nothing is recorded then).
	Finish(ctx context.Context, name string, tick time.Time, took time.Duration, lastError string) error
}

// Status is what a store knows about one entry: what a console shows and toggles.
type Status struct {
	Name    string
	Spec    string
	Enabled bool
	// LastRunAt is the tick the latest run was started for (its scheduled time); zero
	// before the first run.
	LastRunAt time.Time
	// NextRunAt is the first tick not taken yet; zero while disabled. It is in the past
	// when a run is overdue (no scheduler was up at that time): the next scheduler to
	// look runs it once, for the latest tick passed, not once per missed tick.
	NextRunAt time.Time
	// LastError is the error of the latest finished run, "" if it succeeded.
	LastError string
	// LastDuration is how long the latest finished run took.
	LastDuration time.Duration
	// Running reports a run holding an unexpired lease.
	Running bool
	// Skipped counts ticks skipped because the previous run was still running.
	Skipped int64
}

// checkClaim validates the arguments of Claim and Renew.
func checkClaim(name string, tick time.Time, lease time.Duration) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	if tick.IsZero() {
		return fmt.Errorf("%w: zero tick for entry %q", ErrInvalid, name)
	}
	if lease <= 0 {
		return fmt.Errorf("%w: lease %s for entry %q is not positive", ErrInvalid, lease, name)
	}
	return nil
}
