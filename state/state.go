// Package state keeps small named values per backend: the cursors, watermarks, page
// checkpoints and counters an incremental import needs to resume where it stopped.
//
// A value is an opaque byte slice (JSON, a timestamp, a cursor token…) addressed by
// (backend, name). [Store.CompareAndSwap] lets two workers advance one cursor without
// losing an update: read the value, compute the next one, swap only if nobody changed it.
//
// Stores: [NewMemory] for tests and single-process programs, and the SQLite / Postgres
// store returned by sqlstore.DB.State. Every store passes the conformance helper in
// package statetest.
package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/connkit/connkit/internal/statekey"
)

// Store keeps named values per backend. Implementations are safe for concurrent use; the
// SQL ones are also safe across processes sharing one database.
//
// Values are copied on the way in and out: callers may reuse their slices. A nil value is
// stored as an empty one.
type Store interface {
	// Get returns the value of (backend, name), or an error matching ErrNotFound.
	Get(ctx context.Context, backend, name string) ([]byte, error)
	// Put sets the value of (backend, name), creating it when missing.
	Put(ctx context.Context, backend, name string, value []byte) error
	// CompareAndSwap sets the value to new only when the current value equals old. A nil
	// old means "only if missing" (an empty, non-nil old matches a stored empty value).
	// It reports whether the swap happened; a mismatch is not an error.
	CompareAndSwap(ctx context.Context, backend, name string, old, new []byte) (bool, error)
	// Delete removes (backend, name). Deleting a missing value is a no-op, so resetting a
	// cursor is idempotent.
	Delete(ctx context.Context, backend, name string) error
}

// ErrNotFound is returned (wrapped) by Get when no value is stored under the key.
var ErrNotFound = errors.New("state: not found")

// ErrEmptyName is returned (wrapped) when a call names no value. The backend may be empty
// (values shared by every backend); the name may not.
var ErrEmptyName = statekey.ErrEmptyName

type key struct{ backend, name string }

// memory is the Store returned by NewMemory.
type memory struct {
	mu     sync.Mutex
	values map[key][]byte
}

// NewMemory returns an empty Store kept in memory, safe for concurrent use.
func NewMemory() Store { return &memory{values: make(map[key][]byte)} }

var _ Store = (*memory)(nil)

// Get implements Store.
func (m *memory) Get(ctx context.Context, backend, name string) ([]byte, error) {
	if err := statekey.Check(backend, name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[key{backend, name}]
	if !ok {
		return nil, fmt.Errorf("get state %q of backend %q: %w", name, backend, ErrNotFound)
	}
	return bytes.Clone(v), nil
}

// Put implements Store.
func (m *memory) Put(ctx context.Context, backend, name string, value []byte) error {
	if err := statekey.Check(backend, name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[key{backend, name}] = cloneNonNil(value)
	return nil
}

// CompareAndSwap implements Store.
func (m *memory) CompareAndSwap(ctx context.Context, backend, name string, old, new []byte) (bool, error) {
	if err := statekey.Check(backend, name); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{backend, name}
	cur, ok := m.values[k]
	if old == nil {
		if ok {
			return false, nil
		}
	} else if !ok || !bytes.Equal(cur, old) {
		return false, nil
	}
	m.values[k] = cloneNonNil(new)
	return true, nil
}

// Delete implements Store.
func (m *memory) Delete(ctx context.Context, backend, name string) error {
	if err := statekey.Check(backend, name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.values, key{backend, name})
	return nil
}

func cloneNonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return bytes.Clone(b)
}
