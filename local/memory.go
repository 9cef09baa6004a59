package local

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Memory is an in-memory Store for tests and examples. It is safe for concurrent use,
// implements KeyedCreator and ExistenceChecker, and counts the creates and updates it receives so tests can assert that a sync
// created each record exactly once. IDs are "1", "2", … in creation order.
//
// Records are stored as the values given: a T holding slices, maps or pointers shares them
// with the caller, so changing one after Create, Update or Get changes the stored record
// too (and is a data race if other goroutines read it). Store copies, or value types.
type Memory[T any] struct {
	mu      sync.RWMutex
	next    int64
	records map[string]T
	keys    map[string]string // CreateKeyed key -> ID

	creates, updates atomic.Int64
}

// NewMemory returns an empty Memory store.
func NewMemory[T any]() *Memory[T] {
	return &Memory[T]{records: make(map[string]T), keys: make(map[string]string)}
}

var (
	_ Store[int]        = (*Memory[int])(nil)
	_ KeyedCreator[int] = (*Memory[int])(nil)
	_ ExistenceChecker  = (*Memory[int])(nil)
)

// Get implements Store.
func (m *Memory[T]) Get(ctx context.Context, id string) (T, error) {
	m.mu.RLock()
	v, ok := m.records[id]
	m.mu.RUnlock()
	if !ok {
		var zero T
		return zero, fmt.Errorf("getting local record %q: %w", id, ErrNotFound)
	}
	return v, nil
}

// Existing implements ExistenceChecker.
func (m *Memory[T]) Existing(ctx context.Context, ids []string) (map[string]struct{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	live := make(map[string]struct{}, len(ids))
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, id := range ids {
		if _, ok := m.records[id]; ok {
			live[id] = struct{}{}
		}
	}
	return live, nil
}

// Create implements Store.
func (m *Memory[T]) Create(ctx context.Context, v T) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	id := m.insertLocked(v)
	m.mu.Unlock()
	return id, nil
}

// CreateKeyed implements KeyedCreator: a key seen before returns its record's ID and
// stores nothing.
func (m *Memory[T]) CreateKeyed(ctx context.Context, key string, v T) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.keys[key]; ok {
		if _, live := m.records[id]; live {
			return id, false, nil
		}
	}
	id := m.insertLocked(v)
	m.keys[key] = id
	return id, true, nil
}

func (m *Memory[T]) insertLocked(v T) string {
	m.next++
	id := strconv.FormatInt(m.next, 10)
	m.records[id] = v
	m.creates.Add(1)
	return id
}

// Put stores v under id, creating or replacing it without counting a create or update. It
// seeds a store with records whose IDs a test chooses.
func (m *Memory[T]) Put(id string, v T) {
	m.mu.Lock()
	m.records[id] = v
	if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > m.next {
		m.next = n
	}
	m.mu.Unlock()
}

// Update implements Store.
func (m *Memory[T]) Update(ctx context.Context, id string, v T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[id]; !ok {
		return fmt.Errorf("updating local record %q: %w", id, ErrNotFound)
	}
	m.records[id] = v
	m.updates.Add(1)
	return nil
}

// Delete implements Store.
func (m *Memory[T]) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[id]; !ok {
		return fmt.Errorf("deleting local record %q: %w", id, ErrNotFound)
	}
	delete(m.records, id)
	return nil
}

// Len returns the number of records held.
func (m *Memory[T]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.records)
}

// IDs returns the IDs of all records: those that are integers first, in numeric order,
// then the others in string order.
func (m *Memory[T]) IDs() []string {
	m.mu.RLock()
	ids := slices.Collect(maps.Keys(m.records))
	m.mu.RUnlock()
	slices.SortFunc(ids, compareIDs)
	return ids
}

func compareIDs(a, b string) int {
	na, ea := strconv.ParseInt(a, 10, 64)
	nb, eb := strconv.ParseInt(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		if c := cmp.Compare(na, nb); c != 0 {
			return c
		}
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b) // "7" and "007": a fixed order all the same
}

// Creates returns how many records were created through Create and CreateKeyed (Put is
// not counted).
func (m *Memory[T]) Creates() int { return int(m.creates.Load()) }

// Updates returns how many successful Update calls the store received.
func (m *Memory[T]) Updates() int { return int(m.updates.Load()) }
