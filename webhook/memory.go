package webhook

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"
)

// memoryPage caps how many deliveries List copies, and memoryScan how many it looks at,
// per lock acquisition.
const (
	memoryPage = 100
	memoryScan = 4096
)

// memoryStore is the Store returned by NewMemory.
type memoryStore struct {
	mu    sync.RWMutex
	byKey map[key]*Delivery
	// order holds every delivery sorted by (ReceivedAt, ID, Endpoint), List's order.
	order []*Delivery
}

type key struct{ endpoint, id string }

var (
	_ Store         = (*memoryStore)(nil)
	_ BatchInserter = (*memoryStore)(nil)
)

// NewMemory returns an empty Store kept in memory, for tests and programs that need no
// durability. It is safe for concurrent use; every Delivery it returns is a copy. Times
// are kept in UTC with microsecond precision, as the SQL stores keep them; a zero
// ReceivedAt or UpdatedAt given to Insert, and a zero time given to Finish or Reset,
// become the current time.
func NewMemory() Store {
	return &memoryStore{byKey: make(map[key]*Delivery)}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return utc(time.Now())
	}
	return utc(t)
}

// clone returns a copy of d that shares no memory with it.
func clone(d *Delivery) Delivery {
	c := *d
	c.Header = d.Header.Clone()
	c.Body = bytes.Clone(d.Body)
	if c.Body == nil {
		c.Body = []byte{}
	}
	return c
}

func compareOrder(a *Delivery, t time.Time, id, endpoint string) int {
	return cmp.Or(a.ReceivedAt.Compare(t), strings.Compare(a.ID, id), strings.Compare(a.Endpoint, endpoint))
}

func checkKey(op, endpoint, id string) error {
	switch {
	case endpoint == "":
		return fmt.Errorf("webhook: %s delivery %q: %w: the endpoint is empty", op, id, ErrInvalid)
	case id == "":
		return fmt.Errorf("webhook: %s delivery of endpoint %q: %w: the delivery ID is empty", op, endpoint, ErrInvalid)
	}
	return nil
}

func checkStatus(op string, st Status) error {
	if !st.Valid() {
		return fmt.Errorf("webhook: %s: %w: unknown status %q", op, ErrInvalid, st)
	}
	return nil
}

func notFound(op, endpoint, id string) error {
	return fmt.Errorf("webhook: %s delivery %q of endpoint %q: %w", op, id, endpoint, ErrNotFound)
}

// Insert implements Store.
func (s *memoryStore) Insert(ctx context.Context, d Delivery) (Delivery, bool, error) {
	if err := ctx.Err(); err != nil {
		return Delivery{}, false, fmt.Errorf("webhook: insert delivery %q of endpoint %q: %w", d.ID, d.Endpoint, err)
	}
	row, err := newRow(d)
	if err != nil {
		return Delivery{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, inserted := s.insertLocked(row)
	return clone(stored), inserted, nil
}

// InsertBatch implements BatchInserter.
func (s *memoryStore) InsertBatch(ctx context.Context, ds []Delivery) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("webhook: insert %d deliveries: %w", len(ds), err)
	}
	rows := make([]*Delivery, len(ds))
	for i, d := range ds {
		var err error
		if rows[i], err = newRow(d); err != nil {
			return nil, err
		}
	}
	inserted := make([]bool, len(ds))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, row := range rows {
		_, inserted[i] = s.insertLocked(row)
	}
	return inserted, nil
}

// newRow checks d and returns the copy of it Insert stores.
func newRow(d Delivery) (*Delivery, error) {
	if err := checkKey("insert", d.Endpoint, d.ID); err != nil {
		return nil, err
	}
	if d.Status == "" {
		d.Status = StatusPending
	}
	if err := checkStatus("insert delivery "+d.ID, d.Status); err != nil {
		return nil, err
	}
	if d.Attempts < 0 || d.Generation < 0 {
		return nil, fmt.Errorf("webhook: insert delivery %q of endpoint %q: %w: negative attempts (%d) or generation (%d)",
			d.ID, d.Endpoint, ErrInvalid, d.Attempts, d.Generation)
	}
	d.ReceivedAt = orNow(d.ReceivedAt)
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.ReceivedAt
	}
	d.UpdatedAt = utc(d.UpdatedAt)
	row := clone(&d)
	return &row, nil
}

// insertLocked stores row unless its key is taken, and returns the stored delivery
// (row, or the one found) and whether row was stored. s.mu is held.
func (s *memoryStore) insertLocked(row *Delivery) (*Delivery, bool) {
	k := key{row.Endpoint, row.ID}
	if old, ok := s.byKey[k]; ok {
		return old, false
	}
	s.byKey[k] = row
	if n := len(s.order); n == 0 || compareOrder(s.order[n-1], row.ReceivedAt, row.ID, row.Endpoint) < 0 {
		s.order = append(s.order, row) // the usual case: received after everything stored
	} else {
		i, _ := slices.BinarySearchFunc(s.order, row, func(a, b *Delivery) int {
			return compareOrder(a, b.ReceivedAt, b.ID, b.Endpoint)
		})
		s.order = slices.Insert(s.order, i, row)
	}
	return row, true
}

// Get implements Store.
func (s *memoryStore) Get(ctx context.Context, endpoint, id string) (Delivery, error) {
	if err := ctx.Err(); err != nil {
		return Delivery{}, fmt.Errorf("webhook: get delivery %q of endpoint %q: %w", id, endpoint, err)
	}
	if err := checkKey("get", endpoint, id); err != nil {
		return Delivery{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.byKey[key{endpoint, id}]
	if !ok {
		return Delivery{}, notFound("get", endpoint, id)
	}
	return clone(d), nil
}

// Finish implements Store.
func (s *memoryStore) Finish(ctx context.Context, endpoint, id string, o Outcome) (Delivery, error) {
	if err := checkStatus("finish delivery "+id, o.Status); err != nil {
		return Delivery{}, err
	}
	return s.update(ctx, "finish", endpoint, id, func(d *Delivery) error {
		if d.Generation != o.Generation {
			return stale(endpoint, id, o.Generation, d.Generation)
		}
		d.Status, d.LastError, d.UpdatedAt = o.Status, o.Error, orNow(o.At)
		d.Attempts++
		return nil
	})
}

// stale is the ErrStale of Finish.
func stale(endpoint, id string, read, now int) error {
	return fmt.Errorf("webhook: finish delivery %q of endpoint %q: %w (the attempt read generation %d, it is at %d)", id, endpoint, ErrStale, read, now)
}

// Reset implements Store.
func (s *memoryStore) Reset(ctx context.Context, endpoint, id string, at time.Time) (Delivery, error) {
	return s.update(ctx, "reset", endpoint, id, func(d *Delivery) error {
		d.Status, d.UpdatedAt = StatusPending, orNow(at)
		d.Generation++
		return nil
	})
}

func (s *memoryStore) update(ctx context.Context, op, endpoint, id string, change func(*Delivery) error) (Delivery, error) {
	if err := ctx.Err(); err != nil {
		return Delivery{}, fmt.Errorf("webhook: %s delivery %q of endpoint %q: %w", op, id, endpoint, err)
	}
	if err := checkKey(op, endpoint, id); err != nil {
		return Delivery{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.byKey[key{endpoint, id}]
	if !ok {
		return Delivery{}, notFound(op, endpoint, id)
	}
	if err := change(d); err != nil {
		return Delivery{}, err
	}
	return clone(d), nil
}

func (f *Filter) match(d *Delivery) bool {
	return (f.Endpoint == "" || d.Endpoint == f.Endpoint) &&
		(f.Status == "" || d.Status == f.Status) &&
		(f.ReceivedBefore.IsZero() || d.ReceivedAt.Before(f.ReceivedBefore))
}

// List implements Store: it copies at most memoryPage deliveries per read lock, and
// continues after the last one it looked at, so deliveries written while the caller
// iterates are seen when they sort after that point.
func (s *memoryStore) List(ctx context.Context, f Filter) iter.Seq2[Delivery, error] {
	return func(yield func(Delivery, error) bool) {
		switch {
		case f.Limit < 0:
			yield(Delivery{}, fmt.Errorf("webhook: list deliveries: %w: Limit is negative (%d); use 0 for no limit", ErrInvalid, f.Limit))
			return
		case f.Status != "" && !f.Status.Valid():
			yield(Delivery{}, checkStatus("list deliveries", f.Status))
			return
		}
		f.ReceivedBefore = utc(f.ReceivedBefore)
		var (
			last    Delivery // the last delivery looked at
			started bool
			left    = f.Limit
			page    = make([]Delivery, 0, memoryPage)
		)
		for {
			if err := ctx.Err(); err != nil {
				yield(Delivery{}, fmt.Errorf("webhook: list deliveries: %w", err))
				return
			}
			page = page[:0]
			exhausted := false
			s.mu.RLock()
			i := 0
			if started {
				i, _ = slices.BinarySearchFunc(s.order, &last, func(a, b *Delivery) int {
					return compareOrder(a, b.ReceivedAt, b.ID, b.Endpoint)
				})
				if i < len(s.order) && compareOrder(s.order[i], last.ReceivedAt, last.ID, last.Endpoint) == 0 {
					i++
				}
			}
			for scanned := 0; i < len(s.order) && len(page) < memoryPage && scanned < memoryScan; scanned++ {
				d := s.order[i]
				if !f.ReceivedBefore.IsZero() && !d.ReceivedAt.Before(f.ReceivedBefore) {
					exhausted = true // sorted by ReceivedAt: nothing further matches
					break
				}
				if f.match(d) {
					page = append(page, clone(d))
				}
				i++
			}
			if i >= len(s.order) {
				exhausted = true
			}
			if i > 0 {
				p := s.order[i-1]
				last, started = Delivery{ReceivedAt: p.ReceivedAt, ID: p.ID, Endpoint: p.Endpoint}, true
			}
			s.mu.RUnlock()
			for _, d := range page {
				if !yield(d, nil) {
					return
				}
				if f.Limit > 0 {
					if left--; left == 0 {
						return
					}
				}
			}
			if exhausted {
				return
			}
		}
	}
}

// Purge implements Store.
func (s *memoryStore) Purge(ctx context.Context, before time.Time, statuses ...Status) (int, error) {
	for _, st := range statuses {
		if err := checkStatus("purge deliveries", st); err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("webhook: purge deliveries: %w", err)
	}
	before = utc(before)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	s.order = slices.DeleteFunc(s.order, func(d *Delivery) bool {
		if !d.ReceivedAt.Before(before) || len(statuses) > 0 && !slices.Contains(statuses, d.Status) {
			return false
		}
		delete(s.byKey, key{d.Endpoint, d.ID})
		n++
		return true
	})
	return n, nil
}
