package binding

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/connkit/connkit/internal/batchhint"
)

// listPageSize is how many bindings List copies per lock acquisition.
const listPageSize = 500

// memoryStore is the Store returned by NewMemory.
type memoryStore struct {
	now func() time.Time

	mu sync.RWMutex
	// rows holds binding ID n at row n-1, so IDs need no index of their own and List
	// walks rows in ID order. A deleted binding leaves a zeroed tombstone (ID 0): IDs are
	// never reused, and a long-lived store with heavy deletes keeps one empty slot each.
	rows    rows
	byExt   index
	byLocal index
}

// rows is a growable array of bindings in fixed-size chunks: appending never copies the
// bindings already stored (a single slice of 100,000 bindings spent most of an import's
// binding time re-copying itself as it grew), and pointers to rows stay valid.
type rows struct {
	chunks [][]Binding
	n      int
}

const chunkBits = 8 // 256 bindings, about 70 KiB, per chunk

func (r *rows) at(i int) *Binding { return &r.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// push adds an empty row and returns it, to be written in place.
func (r *rows) push() *Binding {
	if r.n == len(r.chunks)<<chunkBits {
		r.chunks = append(r.chunks, make([]Binding, 1<<chunkBits))
	}
	r.n++
	return r.at(r.n - 1)
}

// truncate drops the rows from n on (chunks stay allocated for reuse).
func (r *rows) truncate(n int) {
	for i := n; i < r.n; i++ {
		*r.at(i) = Binding{}
	}
	r.n = n
}

// index maps (backend, model, ID) to a binding ID through one inner map per scope, so a
// lookup hashes the record's ID rather than three strings.
type index map[scope]map[string]int64

type scope struct{ backend, model string }

// get returns the binding ID of id in the scope, 0 when there is none (id "" never has one).
func (x index) get(backend, model, id string) int64 {
	if id == "" {
		return 0
	}
	return x[scope{backend, model}][id]
}

func (x index) put(backend, model, id string, bid int64) {
	if id == "" {
		return
	}
	sc := scope{backend, model}
	m := x[sc]
	if m == nil {
		m = make(map[string]int64)
		x[sc] = m
	}
	m[id] = bid
}

func (x index) del(backend, model, id string) {
	if id != "" {
		delete(x[scope{backend, model}], id)
	}
}

// scopeCache holds the index maps of the scope a batch last wrote to, so that a batch of
// one scope looks its scope up once rather than four times per binding.
type scopeCache struct {
	sc       scope
	ext, loc map[string]int64
}

// maps returns the external and local index maps of (backend, model), creating them.
func (c *scopeCache) maps(s *memoryStore, backend, model string) (ext, loc map[string]int64) {
	if c.ext != nil && c.sc.backend == backend && c.sc.model == model {
		return c.ext, c.loc
	}
	c.sc = scope{backend, model}
	if c.ext = s.byExt[c.sc]; c.ext == nil {
		c.ext = make(map[string]int64)
		s.byExt[c.sc] = c.ext
	}
	if c.loc = s.byLocal[c.sc]; c.loc == nil {
		c.loc = make(map[string]int64)
		s.byLocal[c.sc] = c.loc
	}
	return c.ext, c.loc
}

var _ Store = (*memoryStore)(nil)

// MemoryOption configures the store NewMemory returns.
type MemoryOption func(*memoryStore)

// WithClock makes the store read the time from now instead of time.Now; tests use it to
// expire leases and stamp records without waiting.
func WithClock(now func() time.Time) MemoryOption {
	return func(s *memoryStore) {
		if now != nil {
			s.now = now
		}
	}
}

// NewMemory returns an empty Store kept in memory: for unit tests and short-lived
// programs. It is safe for concurrent use, and every Binding it returns is a copy.
func NewMemory(opts ...MemoryOption) Store {
	s := &memoryStore{now: time.Now, byExt: index{}, byLocal: index{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *memoryStore) clock() time.Time { return utc(s.now()) }

// row returns the live binding with the given ID, or nil.
func (s *memoryStore) row(id int64) *Binding {
	if id < 1 || id > int64(s.rows.n) {
		return nil
	}
	b := s.rows.at(int(id - 1))
	if b.ID == 0 {
		return nil
	}
	return b
}

// Get implements Store.
func (s *memoryStore) Get(ctx context.Context, id int64) (Binding, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: get %d: %w", id, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.row(id)
	if b == nil {
		return Binding{}, notFoundID("get", id)
	}
	return *b, nil
}

// GetByExternal implements Store.
func (s *memoryStore) GetByExternal(ctx context.Context, backend, model, externalID string) (Binding, error) {
	return s.getBy(ctx, s.byExt, "external", backend, model, externalID)
}

// GetByLocal implements Store.
func (s *memoryStore) GetByLocal(ctx context.Context, backend, model, localID string) (Binding, error) {
	return s.getBy(ctx, s.byLocal, "local", backend, model, localID)
}

// GetManyByExternal implements Store, under one read lock.
func (s *memoryStore) GetManyByExternal(ctx context.Context, backend, model string, externalIDs []string) (map[string]Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("binding: get %d %s/%s bindings by external ID: %w", len(externalIDs), backend, model, err)
	}
	var out map[string]Binding
	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.byExt[scope{backend, model}]
	for i, id := range externalIDs {
		if bid, ok := ids[id]; ok {
			if out == nil {
				// Sized at the first hit: a page of new records (all misses) allocates
				// no room for bindings it does not have.
				out = make(map[string]Binding, len(externalIDs)-i)
			}
			out[id] = *s.rows.at(int(bid - 1))
		}
	}
	if out == nil {
		out = map[string]Binding{}
	}
	return out, nil
}

func (s *memoryStore) getBy(ctx context.Context, idx index, side, backend, model, id string) (Binding, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: get %s/%s by %s ID %q: %w", backend, model, side, id, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if bid := idx.get(backend, model, id); bid != 0 {
		return *s.rows.at(int(bid - 1)), nil
	}
	return Binding{}, &notFoundKey{side: side, backend: backend, model: model, id: id}
}

// notFoundKey is the ErrNotFound of a lookup by local or external ID. Importers miss often
// (every new record), so the message is built only when someone reads it.
type notFoundKey struct{ side, backend, model, id string }

func (e *notFoundKey) Error() string {
	return fmt.Sprintf("binding: no binding of %s ID %q for model %q on backend %q: %v", e.side, e.id, e.model, e.backend, ErrNotFound)
}

func (e *notFoundKey) Unwrap() error { return ErrNotFound }

// Ensure implements Store.
func (s *memoryStore) Ensure(ctx context.Context, b Binding) (Binding, bool, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, false, fmt.Errorf("binding: ensure: %w", err)
	}
	if err := b.validateKeyed("binding: ensure"); err != nil {
		return Binding{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	bid := s.byExt.get(b.Backend, b.Model, b.ExternalID)
	if b.ExternalID == "" {
		bid = s.byLocal.get(b.Backend, b.Model, b.LocalID)
	}
	if bid != 0 {
		return *s.rows.at(int(bid - 1)), false, nil
	}
	// The binding's other ID may belong to another binding.
	if err := s.checkUnique(&b, 0); err != nil {
		return Binding{}, false, fmt.Errorf("binding: ensure: %w", err)
	}
	ext, loc := (&scopeCache{}).maps(s, b.Backend, b.Model)
	return *s.insertLocked(&b, s.clock(), ext, loc, nil), true, nil
}

// Upsert implements Store.
func (s *memoryStore) Upsert(ctx context.Context, b Binding) (Binding, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: upsert: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	got, err := s.upsertLocked(&b, s.clock(), nil, &scopeCache{}, false)
	if err != nil {
		return Binding{}, fmt.Errorf("binding: upsert: %w", err)
	}
	return *got, nil
}

// UpsertBatch implements Store. It is all or nothing: a failing item rolls back the
// items before it. When ctx carries connkit's internal hint that the caller will not read
// the result (the batch importer's commits), it writes the batch the same way and returns
// nil instead of a copy of every binding.
func (s *memoryStore) UpsertBatch(ctx context.Context, bs []Binding) ([]Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("binding: upsert batch of %d: %w", len(bs), err)
	}
	// Items invalid on their own are reported before any conflict (see Store.UpsertBatch).
	for i := range bs {
		err := bs[i].validate()
		if err == nil && bs[i].ID == 0 {
			err = bs[i].validateKeyed("binding: upsert")
		}
		if err != nil {
			return nil, &BatchError{Index: i, Err: err}
		}
	}
	var out []Binding // nil when the caller does not read it
	if !batchhint.ResultsUnread(ctx) {
		out = make([]Binding, len(bs))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	u := &undoLog{rowsLen: s.rows.n, steps: make([]undoStep, 0, len(bs))}
	var c scopeCache
	for i := range bs {
		got, err := s.upsertLocked(&bs[i], now, u, &c, true)
		if err != nil {
			s.rollback(u)
			return nil, &BatchError{Index: i, Err: err}
		}
		if out != nil {
			out[i] = *got
		}
	}
	return out, nil
}

// undoLog remembers what a batch changed so that a failure can restore it: every write
// in order (inserts append rows past rowsLen; updates keep the binding as it was).
type undoLog struct {
	rowsLen int
	steps   []undoStep
	updates []Binding
}

// undoStep is one write: binding id, and the index in updates of its previous value (-1:
// it was inserted).
type undoStep struct {
	id   int64
	prev int
}

func (s *memoryStore) rollback(u *undoLog) {
	// Undo the writes last to first: each step then finds the store exactly as that write
	// left it, so taking its keys out of the indexes never removes a key that an earlier
	// write (now restored) owns.
	for i := len(u.steps) - 1; i >= 0; i-- {
		st := u.steps[i]
		cur := s.rows.at(int(st.id - 1))
		s.unindex(cur)
		if st.prev < 0 {
			continue // inserted: the row goes with the truncation below
		}
		*cur = u.updates[st.prev]
		s.index(cur)
	}
	s.rows.truncate(u.rowsLen)
}

// upsertLocked resolves which binding b is, then writes it, and returns the stored row
// (the store's own, to be copied while the lock is held). b is only read. u, when not
// nil, records the previous state for rollback; validated tells that b was checked on its
// own already.
func (s *memoryStore) upsertLocked(b *Binding, now time.Time, u *undoLog, c *scopeCache, validated bool) (*Binding, error) {
	if b.ID != 0 {
		if !validated {
			if err := b.validate(); err != nil {
				return nil, err
			}
		}
		cur := s.row(b.ID)
		if cur == nil {
			return nil, notFoundID("upsert", b.ID)
		}
		if err := checkLease(cur, b.LeaseOwner, now); err != nil {
			return nil, err
		}
		next := s.merge(cur, b, now)
		// The binding may move to other IDs, or another scope.
		if err := s.checkUnique(&next, next.ID); err != nil {
			return nil, err
		}
		return s.replaceLocked(cur, next, u), nil
	}
	if !validated {
		if err := b.validateKeyed("binding: upsert"); err != nil {
			return nil, err
		}
	}
	ext, loc := c.maps(s, b.Backend, b.Model)
	var extOwner, localOwner int64
	if b.ExternalID != "" {
		extOwner = ext[b.ExternalID]
	}
	if b.LocalID != "" {
		localOwner = loc[b.LocalID]
	}
	switch {
	case extOwner != 0 && localOwner != 0 && extOwner != localOwner:
		return nil, fmt.Errorf("%s/%s external ID %q is bound to binding %d but local ID %q to binding %d: %w",
			b.Backend, b.Model, b.ExternalID, extOwner, b.LocalID, localOwner, ErrConflict)
	case extOwner == 0 && localOwner == 0:
		// Neither ID is bound in this scope, so the new binding is unique.
		return s.insertLocked(b, now, ext, loc, u), nil
	}
	// Found by one of its IDs in its own scope: the other ID is either empty, this
	// binding's own, or unbound, so the result stays unique.
	cur := s.rows.at(int(max(extOwner, localOwner) - 1))
	if err := checkLease(cur, b.LeaseOwner, now); err != nil {
		return nil, err
	}
	return s.replaceLocked(cur, s.merge(cur, b, now), u), nil
}

// merge returns b written over cur with Upsert's rules: the stored ID, creation time and
// lease stay, and empty IDs keep the stored ones.
func (s *memoryStore) merge(cur *Binding, b *Binding, now time.Time) Binding {
	next := *b
	next.ID, next.CreatedAt, next.UpdatedAt = cur.ID, cur.CreatedAt, now
	next.LeaseOwner, next.LeaseExpiresAt = cur.LeaseOwner, cur.LeaseExpiresAt
	next.SyncedAt, next.ExternalUpdatedAt = utc(b.SyncedAt), utc(b.ExternalUpdatedAt)
	if next.Status == "" {
		next.Status = StatusPending
	}
	if next.LocalID == "" {
		next.LocalID = cur.LocalID
	}
	if next.ExternalID == "" {
		next.ExternalID = cur.ExternalID
	}
	return next
}

// insertLocked appends a copy of src as a new binding, indexes it in ext and loc, the maps
// of its scope, and returns the stored row; the caller has checked uniqueness.
func (s *memoryStore) insertLocked(src *Binding, now time.Time, ext, loc map[string]int64, u *undoLog) *Binding {
	b := s.rows.push() // written in place: a Binding is large
	*b = *src
	b.ID = int64(s.rows.n)
	b.CreatedAt, b.UpdatedAt = now, now
	b.LeaseOwner, b.LeaseExpiresAt = "", time.Time{}
	b.SyncedAt, b.ExternalUpdatedAt = utc(b.SyncedAt), utc(b.ExternalUpdatedAt)
	if b.Status == "" {
		b.Status = StatusPending
	}
	if u != nil {
		u.steps = append(u.steps, undoStep{id: b.ID, prev: -1})
	}
	if b.ExternalID != "" {
		ext[b.ExternalID] = b.ID
	}
	if b.LocalID != "" {
		loc[b.LocalID] = b.ID
	}
	return b
}

// replaceLocked stores next over cur, re-indexing it when its keys change, and returns cur;
// the caller has checked uniqueness.
func (s *memoryStore) replaceLocked(cur *Binding, next Binding, u *undoLog) *Binding {
	if u != nil {
		u.steps = append(u.steps, undoStep{id: cur.ID, prev: len(u.updates)})
		u.updates = append(u.updates, *cur)
	}
	moved := cur.Backend != next.Backend || cur.Model != next.Model ||
		cur.ExternalID != next.ExternalID || cur.LocalID != next.LocalID
	if moved {
		s.unindex(cur)
	}
	*cur = next
	if moved {
		s.index(cur)
	}
	return cur
}

// checkUnique fails with ErrConflict when b's IDs are bound to a binding other than self.
func (s *memoryStore) checkUnique(b *Binding, self int64) error {
	if other := s.byExt.get(b.Backend, b.Model, b.ExternalID); other != 0 && other != self {
		return fmt.Errorf("%s/%s external ID %q is already bound to binding %d: %w",
			b.Backend, b.Model, b.ExternalID, other, ErrConflict)
	}
	if other := s.byLocal.get(b.Backend, b.Model, b.LocalID); other != 0 && other != self {
		return fmt.Errorf("%s/%s local ID %q is already bound to binding %d: %w",
			b.Backend, b.Model, b.LocalID, other, ErrConflict)
	}
	return nil
}

func (s *memoryStore) index(b *Binding) {
	s.byExt.put(b.Backend, b.Model, b.ExternalID, b.ID)
	s.byLocal.put(b.Backend, b.Model, b.LocalID, b.ID)
}

func (s *memoryStore) unindex(b *Binding) {
	s.byExt.del(b.Backend, b.Model, b.ExternalID)
	s.byLocal.del(b.Backend, b.Model, b.LocalID)
}

// update runs fn on the stored binding id under the write lock and returns the result.
func (s *memoryStore) update(ctx context.Context, op string, id int64, fn func(b *Binding, now time.Time) error) (Binding, error) {
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: %s %d: %w", op, id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.row(id)
	if b == nil {
		return Binding{}, notFoundID(op, id)
	}
	if err := fn(b, s.clock()); err != nil {
		return Binding{}, fmt.Errorf("binding: %s %d: %w", op, id, err)
	}
	return *b, nil
}

// MarkSuccess implements Store.
func (s *memoryStore) MarkSuccess(ctx context.Context, id int64, sc Success) (Binding, error) {
	return s.update(ctx, "mark success", id, func(b *Binding, now time.Time) error {
		if err := checkLease(b, sc.Owner, now); err != nil {
			return err
		}
		next := *b
		if sc.LocalID != "" {
			next.LocalID = sc.LocalID
		}
		if sc.ExternalID != "" {
			next.ExternalID = sc.ExternalID
		}
		if err := s.checkUnique(&next, next.ID); err != nil {
			return err
		}
		if sc.Hash != "" {
			next.Hash = sc.Hash
		}
		if !sc.ExternalUpdatedAt.IsZero() {
			next.ExternalUpdatedAt = utc(sc.ExternalUpdatedAt)
		}
		next.SyncedAt = now
		if !sc.At.IsZero() {
			next.SyncedAt = utc(sc.At)
		}
		next.Status, next.LastError, next.RetryCount = StatusSuccess, "", 0
		next.UpdatedAt = now
		s.replaceLocked(b, next, nil)
		return nil
	})
}

// MarkFailed implements Store.
func (s *memoryStore) MarkFailed(ctx context.Context, id int64, f Failure) (Binding, error) {
	return s.update(ctx, "mark failed", id, func(b *Binding, now time.Time) error {
		if err := checkLease(b, f.Owner, now); err != nil {
			return err
		}
		b.Status, b.LastError = StatusFailed, f.Error
		b.RetryCount++
		b.UpdatedAt = now
		return nil
	})
}

// SetStatus implements Store.
func (s *memoryStore) SetStatus(ctx context.Context, id int64, owner string, st Status) error {
	if !st.Valid() {
		return fmt.Errorf("binding: set status of %d: unknown status %q: %w", id, st, ErrInvalid)
	}
	_, err := s.update(ctx, "set status", id, func(b *Binding, now time.Time) error {
		if err := checkLease(b, owner, now); err != nil {
			return err
		}
		b.Status = st
		b.UpdatedAt = now
		return nil
	})
	return err
}

// Claim implements Store.
func (s *memoryStore) Claim(ctx context.Context, id int64, owner string, ttl time.Duration) (Binding, error) {
	if err := validateClaim("claim", id, owner, ttl); err != nil {
		return Binding{}, err
	}
	if err := ctx.Err(); err != nil {
		return Binding{}, fmt.Errorf("binding: claim %d: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.row(id)
	if b == nil {
		return Binding{}, notFoundID("claim", id)
	}
	now := s.clock()
	if b.LeaseOwner != owner && b.leased(now) {
		return Binding{}, &LockedError{ID: id, Owner: b.LeaseOwner, Expires: b.LeaseExpiresAt}
	}
	b.LeaseOwner, b.LeaseExpiresAt = owner, utc(now.Add(ttl))
	return *b, nil
}

// Renew implements Store.
func (s *memoryStore) Renew(ctx context.Context, id int64, owner string, ttl time.Duration) (Binding, error) {
	if err := validateClaim("renew", id, owner, ttl); err != nil {
		return Binding{}, err
	}
	return s.update(ctx, "renew", id, func(b *Binding, now time.Time) error {
		if err := checkLease(b, owner, now); err != nil {
			return err
		}
		b.LeaseExpiresAt = utc(now.Add(ttl))
		return nil
	})
}

// Release implements Store.
func (s *memoryStore) Release(ctx context.Context, id int64, owner string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("binding: release %d: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.row(id); b != nil && owner != "" && b.LeaseOwner == owner {
		b.LeaseOwner, b.LeaseExpiresAt = "", time.Time{}
	}
	return nil
}

// Delete implements Store.
func (s *memoryStore) Delete(ctx context.Context, id int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("binding: delete %d: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.row(id)
	if b == nil {
		return notFoundID("delete", id)
	}
	s.unindex(b)
	*b = Binding{} // tombstone: frees the strings, keeps the slot
	return nil
}

// List implements Store. It copies at most listPageSize matches per lock acquisition and
// yields them with the lock released, so the loop body may write to the store.
func (s *memoryStore) List(ctx context.Context, f Filter) iter.Seq2[Binding, error] {
	return func(yield func(Binding, error) bool) {
		if err := f.validate(); err != nil {
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
// number of rows so that a sparse filter does not hold the lock for a full scan; last is
// the highest ID examined, done reports the end of the store.
func (s *memoryStore) page(f *Filter, after int64, n int) (page []Binding, last int64, done bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	budget := 8 * listPageSize
	page = make([]Binding, 0, min(n, 64))
	i := int(after) // rows[i] holds ID i+1
	for ; i < s.rows.n && len(page) < n && budget > 0; i++ {
		budget--
		if b := s.rows.at(i); b.ID != 0 && f.match(b) {
			page = append(page, *b)
		}
	}
	return page, int64(i), i >= s.rows.n
}

// Counts implements Store.
func (s *memoryStore) Counts(ctx context.Context, backend, model string) (map[Status]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("binding: counts of %s/%s: %w", backend, model, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[Status]int)
	for i := range s.rows.n {
		b := s.rows.at(i)
		if b.ID != 0 && (backend == "" || b.Backend == backend) && (model == "" || b.Model == model) {
			out[b.Status]++
		}
	}
	return out, nil
}

func notFoundID(op string, id int64) error {
	return fmt.Errorf("binding: %s: no binding with ID %d: %w", op, id, ErrNotFound)
}
