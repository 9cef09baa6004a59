package local

import (
	"cmp"
	"context"
	"fmt"
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
	mu   sync.RWMutex
	next int64
	// slots holds the records whose ID is a plain integer from 1 to maxSlot (every ID the
	// store gives, until it passes maxSlot): ID n at slot n-1, so a create appends instead
	// of growing a map. other holds every other ID (Put's choice: "a", "007", "-3").
	slots slots[T]
	other map[string]T
	keys  map[string]string // CreateKeyed key -> ID

	creates, updates atomic.Int64
}

// maxSlot is the largest ID kept in slots; larger ones go to the map.
const maxSlot = 1 << 24

// slots is a sparse array of records in chunks of 256, allocated when first written.
type slots[T any] struct {
	chunks [][]slot[T]
	live   int
}

type slot[T any] struct {
	v  T
	id string // the ID's text; "" when the slot is empty
}

const slotBits = 8

// slotOf returns the slot of id when id is an integer from 1 to maxSlot written the way
// the store writes its IDs (no sign, no leading zero).
func slotOf(id string) (int, bool) {
	if len(id) == 0 || len(id) > 8 || id[0] < '1' || id[0] > '9' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > maxSlot {
		return 0, false
	}
	return n - 1, true
}

// get returns slot i when it holds a record, else nil.
func (s *slots[T]) get(i int) *slot[T] {
	c := i >> slotBits
	if c >= len(s.chunks) || s.chunks[c] == nil {
		return nil
	}
	if sl := &s.chunks[c][i&(1<<slotBits-1)]; sl.id != "" {
		return sl
	}
	return nil
}

// at returns slot i, allocating its chunk.
func (s *slots[T]) at(i int) *slot[T] {
	c := i >> slotBits
	for c >= len(s.chunks) {
		s.chunks = append(s.chunks, nil)
	}
	if s.chunks[c] == nil {
		s.chunks[c] = make([]slot[T], 1<<slotBits)
	}
	return &s.chunks[c][i&(1<<slotBits-1)]
}

// NewMemory returns an empty Memory store.
func NewMemory[T any]() *Memory[T] {
	return &Memory[T]{other: make(map[string]T), keys: make(map[string]string)}
}

var (
	_ Store[int]        = (*Memory[int])(nil)
	_ KeyedCreator[int] = (*Memory[int])(nil)
	_ ExistenceChecker  = (*Memory[int])(nil)
)

// lookupLocked returns the record id, or ok false.
func (m *Memory[T]) lookupLocked(id string) (v T, ok bool) {
	if i, isSlot := slotOf(id); isSlot {
		if sl := m.slots.get(i); sl != nil {
			return sl.v, true
		}
		return v, false
	}
	v, ok = m.other[id]
	return v, ok
}

// Get implements Store.
func (m *Memory[T]) Get(ctx context.Context, id string) (T, error) {
	m.mu.RLock()
	v, ok := m.lookupLocked(id)
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
		if _, ok := m.lookupLocked(id); ok {
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
		if _, live := m.lookupLocked(id); live {
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
	m.putLocked(id, v)
	m.creates.Add(1)
	return id
}

// putLocked stores v under id.
func (m *Memory[T]) putLocked(id string, v T) {
	i, ok := slotOf(id)
	if !ok {
		m.other[id] = v
		return
	}
	sl := m.slots.at(i)
	if sl.id == "" {
		sl.id = id
		m.slots.live++
	}
	sl.v = v
}

// Put stores v under id, creating or replacing it without counting a create or update. It
// seeds a store with records whose IDs a test chooses.
func (m *Memory[T]) Put(id string, v T) {
	m.mu.Lock()
	m.putLocked(id, v)
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
	if _, ok := m.lookupLocked(id); !ok {
		return fmt.Errorf("updating local record %q: %w", id, ErrNotFound)
	}
	m.putLocked(id, v)
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
	if i, ok := slotOf(id); ok {
		if sl := m.slots.get(i); sl != nil {
			*sl = slot[T]{} // frees the record
			m.slots.live--
			return nil
		}
	} else if _, ok := m.other[id]; ok {
		delete(m.other, id)
		return nil
	}
	return fmt.Errorf("deleting local record %q: %w", id, ErrNotFound)
}

// Len returns the number of records held.
func (m *Memory[T]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.slots.live + len(m.other)
}

// IDs returns the IDs of all records: those that are integers first, in numeric order,
// then the others in string order.
func (m *Memory[T]) IDs() []string {
	m.mu.RLock()
	ids := make([]string, 0, m.slots.live+len(m.other))
	for _, c := range m.slots.chunks {
		for i := range c {
			if c[i].id != "" {
				ids = append(ids, c[i].id)
			}
		}
	}
	for id := range m.other {
		ids = append(ids, id)
	}
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
