package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/connkit/connkit/schedule"

	"github.com/connkit/connkit/internal/schedulekit"
)

// scheduleStore is the SQL schedule.Store returned by DB.Schedules.
type scheduleStore struct{ db *DB }

var _ schedule.Store = (*scheduleStore)(nil)

// Schedules returns the schedule store kept in this database (table connkit_schedules).
// Every write is one conditional statement, so claims hold across processes; on Postgres,
// lease expiry is read from the database's clock, so nodes whose clocks disagree still
// agree on whether a run holds its entry.
func (db *DB) Schedules() schedule.Store { return &scheduleStore{db: db} }

// Register implements schedule.Store.
func (s *scheduleStore) Register(ctx context.Context, name, spec string) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	p, err := schedulekit.ParseSpec(spec)
	if err != nil {
		return err
	}
	if _, err := s.db.wq.ExecContext(ctx, s.db.q(`INSERT INTO connkit_schedules (name, spec) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET spec = excluded.spec`), name, p.String()); err != nil {
		return fmt.Errorf("schedule: register %q: %w", name, err)
	}
	return nil
}

// SetEnabled implements schedule.Store.
func (s *scheduleStore) SetEnabled(ctx context.Context, name string, enabled bool, at time.Time) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	var res sql.Result
	var err error
	if enabled {
		if at.IsZero() {
			return fmt.Errorf("%w: zero enable time for entry %q", schedule.ErrInvalid, name)
		}
		a := s.db.timeArg(at)
		res, err = s.db.wq.ExecContext(ctx, s.db.q(`UPDATE connkit_schedules SET
			last_tick = CASE WHEN enabled THEN last_tick WHEN last_tick IS NULL OR last_tick < ? THEN ? ELSE last_tick END,
			enabled = ?
			WHERE name = ?`), a, a, true, name)
	} else {
		res, err = s.db.wq.ExecContext(ctx, s.db.q(`UPDATE connkit_schedules SET enabled = ? WHERE name = ?`), false, name)
	}
	if err == nil {
		err = s.mustHaveChanged(ctx, res, name, nil)
	}
	if err != nil {
		return fmt.Errorf("schedule: set %q enabled=%t: %w", name, enabled, err)
	}
	return nil
}

// statusCols reads a schedule.Status; its last column needs the current time (see now).
const statusCols = `name, spec, enabled, last_tick, last_run_at, last_error, last_duration_us, skipped,
	(running_tick IS NOT NULL AND lease_until > %s)`

// now returns the SQL for the current time and its arguments: the database clock on
// Postgres, the DB's clock as a parameter on SQLite.
func (s *scheduleStore) now() (string, []any) {
	if s.db.dialect == Postgres {
		return "now()", nil
	}
	return "?", []any{s.db.timeArg(s.db.clock())}
}

func scanStatus(sc interface{ Scan(...any) error }) (schedule.Status, error) {
	var st schedule.Status
	var lastTick time.Time
	var tookUS int64
	err := sc.Scan(&st.Name, &st.Spec, &st.Enabled, nullTime{&lastTick}, nullTime{&st.LastRunAt},
		&st.LastError, &tookUS, &st.Skipped, &st.Running)
	if err != nil {
		return schedule.Status{}, err
	}
	st.LastDuration = time.Duration(tookUS) * time.Microsecond
	if st.Enabled && !lastTick.IsZero() {
		// A spec this program cannot parse (written by a newer one) has no next run here.
		if p, err := schedulekit.ParseSpec(st.Spec); err == nil {
			st.NextRunAt = utc(p.Next(lastTick))
		}
	}
	return st, nil
}

// Get implements schedule.Store.
func (s *scheduleStore) Get(ctx context.Context, name string) (schedule.Status, error) {
	if err := schedulekit.CheckName(name); err != nil {
		return schedule.Status{}, err
	}
	now, args := s.now()
	st, err := scanStatus(s.db.rq.QueryRowContext(ctx,
		s.db.q(`SELECT `+fmt.Sprintf(statusCols, now)+` FROM connkit_schedules WHERE name = ?`), append(args, name)...))
	if errors.Is(err, sql.ErrNoRows) {
		return schedule.Status{}, fmt.Errorf("%w: %q", schedule.ErrNotFound, name)
	}
	if err != nil {
		return schedule.Status{}, fmt.Errorf("schedule: get %q: %w", name, err)
	}
	return st, nil
}

// List implements schedule.Store.
func (s *scheduleStore) List(ctx context.Context) ([]schedule.Status, error) {
	now, args := s.now()
	rows, err := s.db.rq.QueryContext(ctx, s.db.q(`SELECT `+fmt.Sprintf(statusCols, now)+` FROM connkit_schedules ORDER BY name`), args...)
	if err != nil {
		return nil, fmt.Errorf("schedule: list: %w", err)
	}
	defer rows.Close()
	var out []schedule.Status
	for rows.Next() {
		st, err := scanStatus(rows)
		if err != nil {
			return nil, fmt.Errorf("schedule: list: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("schedule: list: %w", err)
	}
	return out, nil
}

// Claim implements schedule.Store with one conditional UPDATE: concurrent claimers of a
// tick serialise on the row, and only the first still matches last_tick < tick. The
// same statement either starts the run or, while an unexpired lease holds the entry,
// records the tick as skipped.
func (s *scheduleStore) Claim(ctx context.Context, name string, tick time.Time, lease time.Duration) (bool, error) {
	if err := checkScheduleClaim(name, tick, lease); err != nil {
		return false, err
	}
	tick = utc(tick)
	var query string
	var args []any
	if s.db.dialect == Postgres {
		query = `UPDATE connkit_schedules SET
			last_tick = $1,
			skipped = skipped + CASE WHEN running_tick IS NOT NULL AND lease_until > now() THEN 1 ELSE 0 END,
			last_run_at = CASE WHEN running_tick IS NOT NULL AND lease_until > now() THEN last_run_at ELSE $1 END,
			running_tick = CASE WHEN running_tick IS NOT NULL AND lease_until > now() THEN running_tick ELSE $1 END,
			lease_until = CASE WHEN running_tick IS NOT NULL AND lease_until > now() THEN lease_until
				ELSE now() + $2::bigint * INTERVAL '1 microsecond' END
			WHERE name = $3 AND enabled AND (last_tick IS NULL OR last_tick < $1)
			RETURNING running_tick`
		args = []any{tick, lease.Microseconds(), name}
	} else {
		now := s.db.clock()
		query = `UPDATE connkit_schedules SET
			last_tick = ?1,
			skipped = skipped + CASE WHEN running_tick IS NOT NULL AND lease_until > ?2 THEN 1 ELSE 0 END,
			last_run_at = CASE WHEN running_tick IS NOT NULL AND lease_until > ?2 THEN last_run_at ELSE ?1 END,
			running_tick = CASE WHEN running_tick IS NOT NULL AND lease_until > ?2 THEN running_tick ELSE ?1 END,
			lease_until = CASE WHEN running_tick IS NOT NULL AND lease_until > ?2 THEN lease_until ELSE ?3 END
			WHERE name = ?4 AND enabled AND (last_tick IS NULL OR last_tick < ?1)
			RETURNING running_tick`
		args = []any{s.db.timeArg(tick), s.db.timeArg(now), s.db.timeArg(now.Add(lease)), name}
	}
	var running time.Time
	err := s.db.wq.QueryRowContext(ctx, query, args...).Scan(nullTime{&running})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Disabled, or the tick was taken: lost. Or no such entry.
		if err := s.mustExist(ctx, name); err != nil {
			return false, fmt.Errorf("schedule: claim %q: %w", name, err)
		}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("schedule: claim %q for tick %s: %w", name, tick.Format(time.RFC3339), err)
	case running.Equal(tick):
		return true, nil
	}
	return false, nil // skipped: the previous run holds the entry
}

// Renew implements schedule.Store.
func (s *scheduleStore) Renew(ctx context.Context, name string, tick time.Time, lease time.Duration) error {
	if err := checkScheduleClaim(name, tick, lease); err != nil {
		return err
	}
	var res sql.Result
	var err error
	if s.db.dialect == Postgres {
		res, err = s.db.wq.ExecContext(ctx, `UPDATE connkit_schedules SET lease_until = now() + $1::bigint * INTERVAL '1 microsecond'
			WHERE name = $2 AND running_tick = $3`, lease.Microseconds(), name, utc(tick))
	} else {
		res, err = s.db.wq.ExecContext(ctx, `UPDATE connkit_schedules SET lease_until = ? WHERE name = ? AND running_tick = ?`,
			s.db.timeArg(s.db.clock().Add(lease)), name, s.db.timeArg(tick))
	}
	if err == nil {
		err = s.mustHaveChanged(ctx, res, name, leaseLost(name, tick))
	}
	if err != nil {
		return fmt.Errorf("schedule: renew %q: %w", name, err)
	}
	return nil
}

// Finish implements schedule.Store.
func (s *scheduleStore) Finish(ctx context.Context, name string, tick time.Time, took time.Duration, lastError string) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	res, err := s.db.wq.ExecContext(ctx, s.db.q(`UPDATE connkit_schedules SET running_tick = NULL, lease_until = NULL,
		last_error = ?, last_duration_us = ? WHERE name = ? AND running_tick = ?`),
		s.db.text(lastError), max(took, 0).Microseconds(), name, s.db.timeArg(tick))
	if err == nil {
		err = s.mustHaveChanged(ctx, res, name, leaseLost(name, tick))
	}
	if err != nil {
		return fmt.Errorf("schedule: finish %q: %w", name, err)
	}
	return nil
}

// mustHaveChanged turns an UPDATE that matched no row into ErrNotFound when the entry
// is missing, else into otherwise (nil: success).
func (s *scheduleStore) mustHaveChanged(ctx context.Context, res sql.Result, name string, otherwise error) error {
	n, err := res.RowsAffected()
	if err != nil || n > 0 {
		return err
	}
	if err := s.mustExist(ctx, name); err != nil {
		return err
	}
	return otherwise
}

func (s *scheduleStore) mustExist(ctx context.Context, name string) error {
	var one int
	err := s.db.wq.QueryRowContext(ctx, s.db.q(`SELECT 1 FROM connkit_schedules WHERE name = ?`), name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %q", schedule.ErrNotFound, name)
	}
	return err
}

func checkScheduleClaim(name string, tick time.Time, lease time.Duration) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	if tick.IsZero() {
		return fmt.Errorf("%w: zero tick for entry %q", schedule.ErrInvalid, name)
	}
	if lease <= 0 {
		return fmt.Errorf("%w: lease %s for entry %q is not positive", schedule.ErrInvalid, lease, name)
	}
	return nil
}

func leaseLost(name string, tick time.Time) error {
	return fmt.Errorf("%w: entry %q, run of tick %s", schedule.ErrLeaseLost, name, utc(tick).Format(time.RFC3339))
}
