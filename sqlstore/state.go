package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/connkit/connkit/internal/statekey"
	"github.com/connkit/connkit/state"
)

// stateStore is the SQL state.Store returned by DB.State.
type stateStore struct{ db *DB }

var _ state.Store = (*stateStore)(nil)

// Get implements state.Store.
func (s *stateStore) Get(ctx context.Context, backend, name string) ([]byte, error) {
	if err := statekey.Check(backend, name); err != nil {
		return nil, err
	}
	var v []byte
	err := s.db.rq.QueryRowContext(ctx, s.db.q(`SELECT value FROM connkit_sync_state WHERE backend = ? AND name = ?`),
		backend, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get state %q of backend %q: %w", name, backend, state.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("state: get %q of backend %q: %w", name, backend, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Put implements state.Store.
func (s *stateStore) Put(ctx context.Context, backend, name string, value []byte) error {
	if err := statekey.Check(backend, name); err != nil {
		return err
	}
	_, err := s.db.wq.ExecContext(ctx, s.db.q(`INSERT INTO connkit_sync_state (backend, name, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (backend, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
		backend, name, nonNil(value), s.db.timeArg(s.db.clock()))
	if err != nil {
		return fmt.Errorf("state: put %q of backend %q: %w", name, backend, err)
	}
	return nil
}

// CompareAndSwap implements state.Store with one conditional statement, so it holds
// across processes.
func (s *stateStore) CompareAndSwap(ctx context.Context, backend, name string, old, new []byte) (bool, error) {
	if err := statekey.Check(backend, name); err != nil {
		return false, err
	}
	now := s.db.timeArg(s.db.clock())
	var res sql.Result
	var err error
	if old == nil {
		res, err = s.db.wq.ExecContext(ctx, s.db.q(`INSERT INTO connkit_sync_state (backend, name, value, updated_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (backend, name) DO NOTHING`), backend, name, nonNil(new), now)
	} else {
		res, err = s.db.wq.ExecContext(ctx, s.db.q(`UPDATE connkit_sync_state SET value = ?, updated_at = ?
			WHERE backend = ? AND name = ? AND value = ?`), nonNil(new), now, backend, name, nonNil(old))
	}
	if err != nil {
		return false, fmt.Errorf("state: compare and swap %q of backend %q: %w", name, backend, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("state: compare and swap %q of backend %q: %w", name, backend, err)
	}
	return n == 1, nil
}

// Delete implements state.Store; deleting a missing value is a no-op.
func (s *stateStore) Delete(ctx context.Context, backend, name string) error {
	if err := statekey.Check(backend, name); err != nil {
		return err
	}
	if _, err := s.db.wq.ExecContext(ctx, s.db.q(`DELETE FROM connkit_sync_state WHERE backend = ? AND name = ?`), backend, name); err != nil {
		return fmt.Errorf("state: delete %q of backend %q: %w", name, backend, err)
	}
	return nil
}

// nonNil stores nil as an empty value (NOT NULL column, and "" must equal "" in CAS).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return bytes.Clone(b)
}
