package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/sqlstore"
)

// UpsertBatch writes runs of items without an ID with multi-row statements and the rest
// one by one. Random batches over a few keys (repeated keys, moves between scopes, IDs
// taken from other bindings, missing IDs) must give exactly what a model applying Upsert's
// rules strictly one item after the other gives: the same results, the same failing
// index, the same stored bindings.
func TestUpsertBatchMatchesModel(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := newClock()
			sqls := e.open(t, sqlstore.WithClock(clk.Now)).Bindings()
			mem := newModelStore(clk.Now)
			r := rand.New(rand.NewPCG(7, 11))
			ids := newIDMap()
			scopes := [][2]string{{"shop", "product"}, {"shop", "customer"}, {"shop-us", "product"}}
			key := func(prefix string, n int) string {
				if r.IntN(4) == 0 {
					return ""
				}
				return fmt.Sprint(prefix, r.IntN(n))
			}
			for round := range 300 {
				// Small key spaces early make batches collide; larger ones later make
				// long runs of fresh inserts.
				n := 4
				if round%3 == 2 {
					n = 40
				}
				memBatch := make([]binding.Binding, 1+r.IntN(30))
				sqlBatch := make([]binding.Binding, len(memBatch))
				for i := range memBatch {
					sc := scopes[r.IntN(len(scopes))]
					b := binding.Binding{Backend: sc[0], Model: sc[1], ExternalID: key("E", n), LocalID: key("L", n),
						Hash: fmt.Sprint("r", round, "i", i), Status: binding.StatusSuccess, RetryCount: r.IntN(3)}
					if b.ExternalID == "" && b.LocalID == "" {
						b.ExternalID = fmt.Sprint("E", r.IntN(n))
					}
					sb := b
					if r.IntN(6) == 0 {
						b.ID, sb.ID = ids.pick(r)
					}
					memBatch[i], sqlBatch[i] = b, sb
				}
				want, wantErr := mem.UpsertBatch(ctx, memBatch)
				got, gotErr := sqls.UpsertBatch(ctx, sqlBatch)
				where := fmt.Sprintf("round %d, batch %+v", round, memBatch)
				sameOutcome(t, where, wantErr, gotErr)
				if wantErr == nil {
					for i := range want {
						ids.check(t, fmt.Sprintf("%s: item %d", where, i), want[i], got[i])
					}
				}
				if r.IntN(10) == 0 { // free some keys
					m, s := ids.pick(r)
					sameOutcome(t, fmt.Sprintf("round %d: Delete(%d)", round, m), mem.Delete(ctx, m), sqls.Delete(ctx, s))
				}
				sameStores(t, fmt.Sprintf("after round %d", round), ids, mem, sqls)
			}
		})
	}
}

// idMap pairs the model's binding IDs with the SQL store's.
type idMap struct{ memToSQL, sqlToMem map[int64]int64 }

func newIDMap() *idMap { return &idMap{map[int64]int64{}, map[int64]int64{}} }

// pick returns a known pair of IDs, or now and then an ID neither store has.
func (m *idMap) pick(r *rand.Rand) (mem, sql int64) {
	if len(m.memToSQL) == 0 || r.IntN(8) == 0 {
		return 999_999, 999_999
	}
	keys := make([]int64, 0, len(m.memToSQL))
	for k := range m.memToSQL {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	k := keys[r.IntN(len(keys))]
	return k, m.memToSQL[k]
}

// check compares two bindings, learning their ID pair if it is new.
func (m *idMap) check(t *testing.T, what string, want, got binding.Binding) {
	t.Helper()
	if s, ok := m.memToSQL[want.ID]; ok && s != got.ID {
		t.Fatalf("%s: model binding %d is SQL binding %d, got %d", what, want.ID, s, got.ID)
	}
	if mm, ok := m.sqlToMem[got.ID]; ok && mm != want.ID {
		t.Fatalf("%s: SQL binding %d is model binding %d, got %d", what, got.ID, mm, want.ID)
	}
	m.memToSQL[want.ID], m.sqlToMem[got.ID] = got.ID, want.ID
	w, g := want, got
	w.ID, g.ID = 0, 0
	for _, tp := range [][2]*time.Time{{&w.SyncedAt, &g.SyncedAt}, {&w.ExternalUpdatedAt, &g.ExternalUpdatedAt},
		{&w.CreatedAt, &g.CreatedAt}, {&w.UpdatedAt, &g.UpdatedAt}, {&w.LeaseExpiresAt, &g.LeaseExpiresAt}} {
		if !tp[0].Equal(*tp[1]) {
			t.Fatalf("%s: times differ:\nmodel %+v\nSQL   %+v", what, want, got)
		}
		*tp[0] = *tp[1]
	}
	if w != g {
		t.Fatalf("%s:\nmodel %+v\nSQL   %+v", what, want, got)
	}
}

// sameOutcome fails unless both errors are nil, or both match the same sentinel and, for
// batches, name the same index.
func sameOutcome(t *testing.T, what string, want, got error) {
	t.Helper()
	if (want == nil) != (got == nil) {
		t.Fatalf("%s: model error %v, SQL store error %v", what, want, got)
	}
	if want == nil {
		return
	}
	for _, s := range []error{binding.ErrConflict, binding.ErrNotFound, binding.ErrInvalid} {
		if errors.Is(want, s) != errors.Is(got, s) {
			t.Fatalf("%s: model error %v, SQL store error %v", what, want, got)
		}
	}
	var wb, gb *binding.BatchError
	if errors.As(want, &wb) != errors.As(got, &gb) || wb != nil && wb.Index != gb.Index {
		t.Fatalf("%s: model error %v, SQL store error %v", what, want, got)
	}
}

func sameStores(t *testing.T, what string, ids *idMap, mem *modelStore, sqls binding.Store) {
	t.Helper()
	list := func(s interface {
		List(context.Context, binding.Filter) iter.Seq2[binding.Binding, error]
	}) []binding.Binding {
		var out []binding.Binding
		for b, err := range s.List(context.Background(), binding.Filter{}) {
			if err != nil {
				t.Fatalf("%s: List: %v", what, err)
			}
			out = append(out, b)
		}
		return out
	}
	want, got := list(mem), list(sqls)
	// Every binding is found by each of its IDs.
	for _, b := range got {
		if b.ExternalID != "" {
			g, err := sqls.GetByExternal(context.Background(), b.Backend, b.Model, b.ExternalID)
			if err != nil || g.ID != b.ID {
				t.Fatalf("%s: GetByExternal of binding %+v = %d, %v", what, b, g.ID, err)
			}
		}
		if b.LocalID != "" {
			g, err := sqls.GetByLocal(context.Background(), b.Backend, b.Model, b.LocalID)
			if err != nil || g.ID != b.ID {
				t.Fatalf("%s: GetByLocal of binding %+v = %d, %v", what, b, g.ID, err)
			}
		}
	}
	if len(want) != len(got) {
		t.Fatalf("%s: model has %d bindings, SQL store %d", what, len(want), len(got))
	}
	byID := make(map[int64]binding.Binding, len(got))
	for _, b := range got {
		byID[b.ID] = b
	}
	for _, w := range want {
		s, ok := ids.memToSQL[w.ID]
		if !ok {
			t.Fatalf("%s: model binding %+v was never returned by a batch", what, w)
		}
		ids.check(t, what, w, byID[s])
	}
}

// modelStore is the reference for TestUpsertBatchMatchesModel: Upsert's documented
// rules applied one item at a time to a map, and a batch rolled back by restoring a copy.
// It is deliberately naive, so that it is obviously right.
type modelStore struct {
	now  func() time.Time
	next int64
	rows map[int64]binding.Binding
}

func newModelStore(now func() time.Time) *modelStore {
	return &modelStore{now: now, rows: map[int64]binding.Binding{}}
}

// owner returns the binding holding id on one side of scope (0 for none).
func (m *modelStore) owner(backend, model string, local bool, id string) int64 {
	if id == "" {
		return 0
	}
	for _, b := range m.rows {
		if b.Backend == backend && b.Model == model && (local && b.LocalID == id || !local && b.ExternalID == id) {
			return b.ID
		}
	}
	return 0
}

func (m *modelStore) upsert(b binding.Binding) (binding.Binding, error) {
	var cur binding.Binding
	if b.ID != 0 {
		var ok bool
		if cur, ok = m.rows[b.ID]; !ok {
			return binding.Binding{}, fmt.Errorf("no binding %d: %w", b.ID, binding.ErrNotFound)
		}
	} else {
		ext, local := m.owner(b.Backend, b.Model, false, b.ExternalID), m.owner(b.Backend, b.Model, true, b.LocalID)
		if ext != 0 && local != 0 && ext != local {
			return binding.Binding{}, fmt.Errorf("IDs of two bindings: %w", binding.ErrConflict)
		}
		cur = m.rows[max(ext, local)]
	}
	now := binding.UTC(m.now())
	next := b
	next.ID, next.CreatedAt, next.UpdatedAt = cur.ID, cur.CreatedAt, now
	next.LeaseOwner, next.LeaseExpiresAt = cur.LeaseOwner, cur.LeaseExpiresAt
	if next.ID == 0 {
		m.next++
		next.ID, next.CreatedAt = m.next, now
	}
	if next.LocalID == "" {
		next.LocalID = cur.LocalID
	}
	if next.ExternalID == "" {
		next.ExternalID = cur.ExternalID
	}
	if next.Status == "" {
		next.Status = binding.StatusPending
	}
	next.SyncedAt, next.ExternalUpdatedAt = binding.UTC(next.SyncedAt), binding.UTC(next.ExternalUpdatedAt)
	for _, side := range []struct {
		local bool
		id    string
	}{{false, next.ExternalID}, {true, next.LocalID}} {
		if o := m.owner(next.Backend, next.Model, side.local, side.id); o != 0 && o != next.ID {
			return binding.Binding{}, fmt.Errorf("ID bound to binding %d: %w", o, binding.ErrConflict)
		}
	}
	m.rows[next.ID] = next
	return next, nil
}

// UpsertBatch applies bs in order, all or nothing.
func (m *modelStore) UpsertBatch(_ context.Context, bs []binding.Binding) ([]binding.Binding, error) {
	saved, savedNext := maps.Clone(m.rows), m.next
	out := make([]binding.Binding, len(bs))
	for i, b := range bs {
		got, err := m.upsert(b)
		if err != nil {
			m.rows, m.next = saved, savedNext
			return nil, &binding.BatchError{Index: i, Err: err}
		}
		out[i] = got
	}
	return out, nil
}

func (m *modelStore) Delete(_ context.Context, id int64) error {
	if _, ok := m.rows[id]; !ok {
		return fmt.Errorf("no binding %d: %w", id, binding.ErrNotFound)
	}
	delete(m.rows, id)
	return nil
}

// List yields every binding in ID order (the filter is ignored).
func (m *modelStore) List(context.Context, binding.Filter) iter.Seq2[binding.Binding, error] {
	return func(yield func(binding.Binding, error) bool) {
		for _, id := range slices.Sorted(maps.Keys(m.rows)) {
			if !yield(m.rows[id], nil) {
				return
			}
		}
	}
}

// Concurrent batches inserting the same new keys: on Postgres the multi-row inserts race,
// and a batch whose rows were taken by another must update them, not fail.
func TestConcurrentUpsertBatchOfNewKeys(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := e.open(t).Bindings()
			const workers, keys = 4, 60
			for round := range 3 {
				errs := make(chan error, workers)
				start := make(chan struct{})
				for w := range workers {
					go func() {
						<-start
						bs := make([]binding.Binding, keys)
						for i := range bs {
							bs[i] = binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprint("E", round, "-", i),
								LocalID: fmt.Sprint("L", round, "-", i), Hash: fmt.Sprint(w)}
						}
						_, err := s.UpsertBatch(ctx, bs)
						errs <- err
					}()
				}
				close(start)
				for range workers {
					if err := <-errs; err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
			counts, err := s.Counts(ctx, "shop", "product")
			if err != nil {
				t.Fatal(err)
			}
			if counts[binding.StatusPending] != 3*keys {
				t.Fatalf("%d bindings, want %d", counts[binding.StatusPending], 3*keys)
			}
		})
	}
}

// Concurrent batches over the same keys in opposite orders lock rows in opposite orders:
// Postgres aborts one of them as a deadlock, which the store must retry, not report.
func TestConcurrentUpsertBatchOppositeOrders(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := e.open(t).Bindings()
			for round := range 6 {
				errs := make(chan error, 2)
				for w := range 2 {
					go func() {
						bs := make([]binding.Binding, 50)
						for i := range bs {
							k := i
							if w == 1 {
								k = len(bs) - 1 - i
							}
							bs[i] = binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprint("E", k), Hash: fmt.Sprint(round, w)}
							if round%2 == 1 { // with local IDs: the lookup-then-write path
								bs[i].LocalID = fmt.Sprint("L", k)
							}
						}
						_, err := s.UpsertBatch(ctx, bs)
						errs <- err
					}()
				}
				for range 2 {
					if err := <-errs; err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
		})
	}
}
