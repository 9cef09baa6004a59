package binding

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"
)

// listPageSize is how many bindings List copies per lock acquisition.
const listPageSize = 500

// MemoryStore is a Store kept in memory: for unit tests and short-lived programs. It is
// safe for concurrent use, and every Binding it returns is a copy.
type MemoryStore struct {
	now func() time.Time

	mu      sync.RWMutex
	nextID  int64
	byID    map[int64]*Binding
	byExt   map[memKey]int64
	byLocal map[memKey]int64
	// order holds IDs in ascending order for List; deleted IDs stay until compaction
	// (dead counts them), so Delete stays O(1) amortised.
	order []int64
	dead  int
}

type memKey struct{ backend, model, id string }

var _ Store = (*MemoryStore)(nil)

// MemoryOption configures a MemoryStore.
type MemoryOption func(*MemoryStore)

// WithClock makes the store read the time from now instead of time.Now; tests use it to
// expire leases and stamp records without waiting.
func WithClock(now func() time.Time) MemoryOption {
	return func(s *MemoryStore) {
		if now != nil {
			s.now = now
		}
	}
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore(opts ...MemoryOption) *MemoryStore {
	s := &MemoryStore{
		now:     time.Now,
		byID:    make(map[int64]*Binding),
		byExt:   make(map[memKey]int64),
		byLocal: make(map[memKey]int64),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *MemoryStore) clock() time.Time { return UTC(s.now()) }

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, id int64) (Binding, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: get %d: %w", id, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.byID[id]
	if !ok {
		return Binding{}, notFoundID("get", id)
	}
	return *b, nil
}

// GetByExternal implements Store.
func (s *MemoryStore) GetByExternal(ctx context.Context, backend, model, externalID string) (Binding, error) {
	return s.getBy(ctx, s.byExt, "external", backend, model, externalID)
}

// GetByLocal implements Store.
func (s *MemoryStore) GetByLocal(ctx context.Context, backend, model, localID string) (Binding, error) {
	return s.getBy(ctx, s.byLocal, "local", backend, model, localID)
}

// GetManyByExternal implements Store, under one read lock.
func (s *MemoryStore) GetManyByExternal(ctx context.Context, backend, model string, externalIDs []string) (map[string]Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("binding: get %d %s/%s by external ID: %w", len(externalIDs), backend, model, err)
	}
	out := make(map[string]Binding, len(externalIDs))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range externalIDs {
		if id == "" {
			continue
		}
		if bid, ok := s.byExt[memKey{backend, model, id}]; ok {
			out[id] = *s.byID[bid]
		}
	}
	return out, nil
}

func (s *MemoryStore) getBy(ctx context.Context, idx map[memKey]int64, side, backend, model, id string) (Binding, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: get %s/%s by %s ID %q: %w", backend, model, side, id, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id != "" {
		if bid, ok := idx[memKey{backend, model, id}]; ok {
			return *s.byID[bid], nil
		}
	}
	return Binding{}, fmt.Errorf("binding: no binding of %s ID %q for model %q on backend %q: %w",
		side, id, model, backend, ErrNotFound)
}

// Ensure implements Store.
func (s *MemoryStore) Ensure(ctx context.Context, b Binding) (Binding, bool, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, false, fmt.Errorf("binding: ensure: %w", err)
	}
	if err := b.validateKeyed("binding: ensure"); err != nil {
		return Binding{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, id := s.byExt, b.ExternalID
	if id == "" {
		idx, id = s.byLocal, b.LocalID
	}
	if bid, ok := idx[memKey{b.Backend, b.Model, id}]; ok {
		return *s.byID[bid], false, nil
	}
	b.ID = 0
	got, err := s.writeLocked(nil, b, nil)
	if err != nil {
		return Binding{}, false, fmt.Errorf("binding: ensure: %w", err)
	}
	return got, true, nil
}

// Upsert implements Store.
func (s *MemoryStore) Upsert(ctx context.Context, b Binding) (Binding, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: upsert: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, err := s.upsertLocked(b, nil)
	if err != nil {
		return Binding{}, fmt.Errorf("binding: upsert: %w", err)
	}
	return got, nil
}

// UpsertBatch implements Store. It is all or nothing: a failing item rolls back the
// items before it.
func (s *MemoryStore) UpsertBatch(ctx context.Context, bs []Binding) ([]Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("binding: upsert batch of %d: %w", len(bs), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &undoLog{steps: make([]undoStep, 0, len(bs)), nextID: s.nextID, orderLen: len(s.order)}
	out := make([]Binding, len(bs))
	for i, b := range bs {
		got, err := s.upsertLocked(b, u)
		if err != nil {
			s.rollback(u)
			return nil, &BatchError{Index: i, Err: err}
		}
		out[i] = got
	}
	return out, nil
}

// undoLog remembers what a batch changed so that a failure can restore it.
type undoLog struct {
	steps    []undoStep
	nextID   int64
	orderLen int
}

// undoStep is one write of a batch: the binding's ID and its value before (nil: inserted).
type undoStep struct {
	id   int64
	prev *Binding
}

func (s *MemoryStore) rollback(u *undoLog) {
	// Undo the writes last to first: each step restores the state before that write,
	// so indexes stay consistent at every step.
	for i := len(u.steps) - 1; i >= 0; i-- {
		st := u.steps[i]
		s.unindex(s.byID[st.id])
		if st.prev == nil {
			delete(s.byID, st.id)
			continue
		}
		cur := s.byID[st.id]
		*cur = *st.prev
		s.index(cur)
	}
	s.nextID = u.nextID
	s.order = s.order[:u.orderLen]
}

// upsertLocked resolves which binding b is, then writes it. u, when not nil, records the
// previous state for rollback.
func (s *MemoryStore) upsertLocked(b Binding, u *undoLog) (Binding, error) {
	if b.ID != 0 {
		if err := b.Validate(); err != nil {
			return Binding{}, err
		}
		cur, ok := s.byID[b.ID]
		if !ok {
			return Binding{}, notFoundID("upsert", b.ID)
		}
		return s.writeLocked(cur, b, u)
	}
	if err := b.validateKeyed("binding: upsert"); err != nil {
		return Binding{}, err
	}
	var extOwner, localOwner int64
	if b.ExternalID != "" {
		extOwner = s.byExt[memKey{b.Backend, b.Model, b.ExternalID}]
	}
	if b.LocalID != "" {
		localOwner = s.byLocal[memKey{b.Backend, b.Model, b.LocalID}]
	}
	if extOwner != 0 && localOwner != 0 && extOwner != localOwner {
		return Binding{}, fmt.Errorf("%s/%s external ID %q is bound to binding %d but local ID %q to binding %d: %w",
			b.Backend, b.Model, b.ExternalID, extOwner, b.LocalID, localOwner, ErrConflict)
	}
	var cur *Binding
	if extOwner != 0 {
		cur = s.byID[extOwner]
	} else if localOwner != 0 {
		cur = s.byID[localOwner]
	}
	return s.writeLocked(cur, b, u)
}

// writeLocked stores b over cur (nil: insert), applying the merge rules and checking
// uniqueness of the result.
func (s *MemoryStore) writeLocked(cur *Binding, b Binding, u *undoLog) (Binding, error) {
	now := s.clock()
	next := b
	next.SyncedAt = UTC(b.SyncedAt)
	next.ExternalUpdatedAt = UTC(b.ExternalUpdatedAt)
	next.UpdatedAt = now
	if next.Status == "" {
		next.Status = StatusPending
	}
	if cur != nil {
		next.ID = cur.ID
		next.CreatedAt = cur.CreatedAt
		next.LeaseOwner, next.LeaseExpiresAt = cur.LeaseOwner, cur.LeaseExpiresAt
		if next.LocalID == "" {
			next.LocalID = cur.LocalID
		}
		if next.ExternalID == "" {
			next.ExternalID = cur.ExternalID
		}
	} else {
		next.ID = s.nextID + 1
		next.CreatedAt = now
		next.LeaseOwner, next.LeaseExpiresAt = "", time.Time{}
	}
	if err := s.checkUnique(&next); err != nil {
		return Binding{}, err
	}
	if u != nil {
		var old *Binding
		if cur != nil {
			c := *cur
			old = &c
		}
		u.steps = append(u.steps, undoStep{next.ID, old})
	}
	if cur != nil {
		s.unindex(cur)
		*cur = next
		s.index(cur)
	} else {
		s.nextID = next.ID
		nb := next
		s.byID[nb.ID] = &nb
		s.index(&nb)
		s.order = append(s.order, nb.ID)
	}
	return next, nil
}

func (s *MemoryStore) checkUnique(b *Binding) error {
	if b.ExternalID != "" {
		if other, ok := s.byExt[memKey{b.Backend, b.Model, b.ExternalID}]; ok && other != b.ID {
			return fmt.Errorf("%s/%s external ID %q is already bound to binding %d: %w",
				b.Backend, b.Model, b.ExternalID, other, ErrConflict)
		}
	}
	if b.LocalID != "" {
		if other, ok := s.byLocal[memKey{b.Backend, b.Model, b.LocalID}]; ok && other != b.ID {
			return fmt.Errorf("%s/%s local ID %q is already bound to binding %d: %w",
				b.Backend, b.Model, b.LocalID, other, ErrConflict)
		}
	}
	return nil
}

func (s *MemoryStore) index(b *Binding) {
	if b.ExternalID != "" {
		s.byExt[memKey{b.Backend, b.Model, b.ExternalID}] = b.ID
	}
	if b.LocalID != "" {
		s.byLocal[memKey{b.Backend, b.Model, b.LocalID}] = b.ID
	}
}

func (s *MemoryStore) unindex(b *Binding) {
	if b.ExternalID != "" {
		delete(s.byExt, memKey{b.Backend, b.Model, b.ExternalID})
	}
	if b.LocalID != "" {
		delete(s.byLocal, memKey{b.Backend, b.Model, b.LocalID})
	}
}

// update runs fn on the stored binding id under the write lock and returns the result.
func (s *MemoryStore) update(ctx context.Context, op string, id int64, fn func(b *Binding, now time.Time) error) (Binding, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: %s %d: %w", op, id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byID[id]
	if !ok {
		return Binding{}, notFoundID(op, id)
	}
	if err := fn(b, s.clock()); err != nil {
		return Binding{}, fmt.Errorf("binding: %s %d: %w", op, id, err)
	}
	return *b, nil
}

// MarkSuccess implements Store.
func (s *MemoryStore) MarkSuccess(ctx context.Context, id int64, sc Success) (Binding, error) {
	return s.update(ctx, "mark success", id, func(b *Binding, now time.Time) error {
		next := *b
		if sc.LocalID != "" {
			next.LocalID = sc.LocalID
		}
		if sc.ExternalID != "" {
			next.ExternalID = sc.ExternalID
		}
		if err := s.checkUnique(&next); err != nil {
			return err
		}
		if sc.Hash != "" {
			next.Hash = sc.Hash
		}
		if !sc.ExternalUpdatedAt.IsZero() {
			next.ExternalUpdatedAt = UTC(sc.ExternalUpdatedAt)
		}
		next.SyncedAt = now
		if !sc.At.IsZero() {
			next.SyncedAt = UTC(sc.At)
		}
		next.Status, next.LastError, next.RetryCount = StatusSuccess, "", 0
		next.UpdatedAt = now
		s.unindex(b)
		*b = next
		s.index(b)
		return nil
	})
}

// MarkFailed implements Store.
func (s *MemoryStore) MarkFailed(ctx context.Context, id int64, errText string) (Binding, error) {
	return s.update(ctx, "mark failed", id, func(b *Binding, now time.Time) error {
		b.Status, b.LastError = StatusFailed, errText
		b.RetryCount++
		b.UpdatedAt = now
		return nil
	})
}

// SetStatus implements Store.
func (s *MemoryStore) SetStatus(ctx context.Context, id int64, st Status) error {
	if !st.Valid() {
		return fmt.Errorf("binding: set status of %d: unknown status %q: %w", id, st, ErrInvalid)
	}
	_, err := s.update(ctx, "set status", id, func(b *Binding, now time.Time) error {
		b.Status = st
		b.UpdatedAt = now
		return nil
	})
	return err
}

// Claim implements Store.
func (s *MemoryStore) Claim(ctx context.Context, id int64, owner string, ttl time.Duration) (Binding, error) {
	if err := ValidateClaim(id, owner, ttl); err != nil {
		return Binding{}, err
	}
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: claim %d: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byID[id]
	if !ok {
		return Binding{}, notFoundID("claim", id)
	}
	now := s.clock()
	if b.LeaseOwner != owner && b.Leased(now) {
		return Binding{}, &LockedError{ID: id, Owner: b.LeaseOwner, Expires: b.LeaseExpiresAt}
	}
	b.LeaseOwner, b.LeaseExpiresAt = owner, UTC(now.Add(ttl))
	return *b, nil
}

// Release implements Store.
func (s *MemoryStore) Release(ctx context.Context, id int64, owner string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("binding: release %d: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.byID[id]; ok && owner != "" && b.LeaseOwner == owner {
		b.LeaseOwner, b.LeaseExpiresAt = "", time.Time{}
	}
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, id int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("binding: delete %d: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byID[id]
	if !ok {
		return notFoundID("delete", id)
	}
	s.unindex(b)
	delete(s.byID, id)
	s.dead++
	if s.dead > 64 && s.dead > len(s.order)/2 {
		s.order = slices.DeleteFunc(s.order, func(id int64) bool { _, ok := s.byID[id]; return !ok })
		s.dead = 0
	}
	return nil
}

// List implements Store. It copies at most listPageSize matches per lock acquisition and
// yields them with the lock released, so the loop body may write to the store.
func (s *MemoryStore) List(ctx context.Context, f Filter) iter.Seq2[Binding, error] {
	return func(yield func(Binding, error) bool) {
		if err := f.Validate(); err != nil {
			yield(Binding{}, fmt.Errorf("binding: list: %w", err))
			return
		}
		var after int64
		left := f.Limit
		for {
			if err := ctx.Err(); err != nil {
				yield(Binding{}, fmt.Errorf("binding: list: %w", err))
				return
			}
			n := listPageSize
			if f.Limit > 0 && left < n {
				n = left
			}
			page, last, done := s.page(&f, after, n)
			for _, b := range page {
				if !yield(b, nil) {
					return
				}
			}
			if f.Limit > 0 {
				left -= len(page)
				if left <= 0 {
					return
				}
			}
			if done {
				return
			}
			after = last
		}
	}
}

// page copies up to n bindings matching f with IDs above after. It examines a bounded
// number of entries so that a sparse filter does not hold the lock for a full scan; last
// is the highest ID examined, done reports the end of the store.
func (s *MemoryStore) page(f *Filter, after int64, n int) (page []Binding, last int64, done bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, _ := slices.BinarySearch(s.order, after+1)
	budget := 8 * listPageSize
	page = make([]Binding, 0, min(n, 64))
	last = after
	for ; i < len(s.order) && len(page) < n && budget > 0; i++ {
		budget--
		id := s.order[i]
		last = id
		if b, ok := s.byID[id]; ok && f.Match(b) {
			page = append(page, *b)
		}
	}
	return page, last, i >= len(s.order)
}

// Counts implements Store.
func (s *MemoryStore) Counts(ctx context.Context, backend, model string) (map[Status]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("binding: counts of %s/%s: %w", backend, model, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[Status]int)
	for _, b := range s.byID {
		if (backend == "" || b.Backend == backend) && (model == "" || b.Model == model) {
			out[b.Status]++
		}
	}
	return out, nil
}

func notFoundID(op string, id int64) error {
	return fmt.Errorf("binding: %s: no binding with ID %d: %w", op, id, ErrNotFound)
}
