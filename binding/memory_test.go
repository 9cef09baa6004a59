package binding_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/binding/bindingtest"
	"github.com/connkit/connkit/internal/batchhint"
)

// fakeClock is a manual clock for one store.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestMemoryStoreConformance(t *testing.T) {
	t.Run("FakeClock", func(t *testing.T) {
		var clocks sync.Map // binding.Store -> *fakeClock
		bindingtest.Run(t, func(t *testing.T) binding.Store {
			c := newFakeClock()
			s := binding.NewMemory(binding.WithClock(c.Now))
			clocks.Store(s, c)
			return s
		}, bindingtest.WithAdvance(func(s binding.Store, d time.Duration) {
			c, _ := clocks.Load(s)
			c.(*fakeClock).Advance(d)
		}))
	})
	t.Run("RealClock", func(t *testing.T) {
		bindingtest.Run(t, func(t *testing.T) binding.Store { return binding.NewMemory() })
	})
}

func TestMemoryStoreListAfterDeletes(t *testing.T) {
	ctx := t.Context()
	s := binding.NewMemory()
	var ids []int64
	for i := range 300 {
		b, err := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID)
	}
	// Delete all but every tenth: List must step over the tombstones.
	var kept []int64
	for i, id := range ids {
		if i%10 == 0 {
			kept = append(kept, id)
			continue
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for b, err := range s.List(ctx, binding.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.ID)
	}
	if !slices.Equal(got, kept) {
		t.Fatalf("List after deletes = %v, want %v", got, kept)
	}
	// New bindings still list after the survivors.
	n, err := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "new"})
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for b, err := range s.List(ctx, binding.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		last = b.ID
	}
	if last != n.ID {
		t.Fatalf("last listed = %d, want the new binding %d", last, n.ID)
	}
}

func TestMemoryStoreSparseListSpansScanBudget(t *testing.T) {
	// One match every 5,000 bindings: pages come back empty while the scan goes on.
	ctx := t.Context()
	s := binding.NewMemory()
	const n = 12_000
	var want []int64
	bs := make([]binding.Binding, 0, n)
	for i := range n {
		st := binding.StatusPending
		if i%5000 == 4999 {
			st = binding.StatusSkipped
		}
		bs = append(bs, binding.Binding{Backend: "b", Model: "m", ExternalID: fmt.Sprint(i), Status: st})
	}
	got, err := s.UpsertBatch(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range got {
		if b.Status == binding.StatusSkipped {
			want = append(want, b.ID)
		}
	}
	var listed []int64
	for b, err := range s.List(ctx, binding.Filter{Statuses: []binding.Status{binding.StatusSkipped}}) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, b.ID)
	}
	if !slices.Equal(listed, want) {
		t.Fatalf("listed %v, want %v", listed, want)
	}
}

func TestMemoryStoreClockStampsTimes(t *testing.T) {
	ctx := t.Context()
	c := newFakeClock()
	s := binding.NewMemory(binding.WithClock(c.Now))
	b, err := s.Upsert(ctx, binding.Binding{Backend: "b", Model: "m", ExternalID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if !b.CreatedAt.Equal(c.Now()) || !b.UpdatedAt.Equal(c.Now()) {
		t.Fatalf("CreatedAt/UpdatedAt = %v/%v, want the clock's %v", b.CreatedAt, b.UpdatedAt, c.Now())
	}
	c.Advance(time.Hour)
	b, err = s.MarkSuccess(ctx, b.ID, binding.Success{})
	if err != nil {
		t.Fatal(err)
	}
	if !b.SyncedAt.Equal(c.Now()) || !b.UpdatedAt.Equal(c.Now()) || b.CreatedAt.Equal(c.Now()) {
		t.Fatalf("after an hour: SyncedAt %v UpdatedAt %v CreatedAt %v, clock %v", b.SyncedAt, b.UpdatedAt, b.CreatedAt, c.Now())
	}
	b, err = s.Claim(ctx, b.ID, "w", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Add(time.Minute); !b.LeaseExpiresAt.Equal(want) {
		t.Fatalf("LeaseExpiresAt = %v, want %v", b.LeaseExpiresAt, want)
	}
	// WithClock(nil) keeps the default.
	if binding.NewMemory(binding.WithClock(nil)) == nil {
		t.Fatal("nil store")
	}
}

func TestValidateMessages(t *testing.T) {
	b := binding.Binding{Backend: "shop", Model: "product", ExternalID: "1", Status: "done"}
	_, err := binding.NewMemory().Upsert(context.Background(), b)
	if !errors.Is(err, binding.ErrInvalid) {
		t.Fatalf("Upsert = %v, want ErrInvalid", err)
	}
	for _, part := range []string{`"done"`, "shop/product", "Status constants"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("Upsert message %q does not mention %s", err, part)
		}
	}
	be := &binding.BatchError{Index: 4, Err: binding.ErrConflict}
	if !errors.Is(be, binding.ErrConflict) || !strings.Contains(be.Error(), "item 4") {
		t.Fatalf("BatchError %q does not name the index or unwrap", be)
	}
}

func BenchmarkMemoryStore(b *testing.B) {
	bindingtest.Bench(b, func(b *testing.B) binding.Store { return binding.NewMemory() })
}

// UpsertBatch reads the caller's bindings and writes its own copies: the batch passed in
// is left as it was, whether the batch is written or rolled back, and what it returns does
// not share memory with the store.
func TestMemoryStoreUpsertBatchLeavesItsInput(t *testing.T) {
	ctx := t.Context()
	s := binding.NewMemory()
	in := []binding.Binding{
		{Backend: "b", Model: "m", ExternalID: "1", LocalID: "L1", Hash: "h"},
		{Backend: "b", Model: "m", ExternalID: "2"},
	}
	want := slices.Clone(in)
	out, err := s.UpsertBatch(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in, want) {
		t.Fatalf("UpsertBatch changed its input: %+v", in)
	}
	if out[0].ID == 0 || out[1].Status != binding.StatusPending {
		t.Fatalf("UpsertBatch returned %+v", out)
	}
	out[0].Hash = "changed"
	if got, _ := s.Get(ctx, out[0].ID); got.Hash != "h" {
		t.Fatalf("the returned binding shares memory with the store: Hash %q", got.Hash)
	}
	// Rolled back: the second item's external ID is bound to binding 2, its local ID to 1.
	in = []binding.Binding{{Backend: "b", Model: "m", ExternalID: "3"}, {Backend: "b", Model: "m", ExternalID: "2", LocalID: "L1"}}
	want = slices.Clone(in)
	if _, err := s.UpsertBatch(ctx, in); !errors.Is(err, binding.ErrConflict) {
		t.Fatalf("UpsertBatch = %v, want ErrConflict", err)
	}
	if !slices.Equal(in, want) {
		t.Fatalf("a rolled-back UpsertBatch changed its input: %+v", in)
	}
	// GetManyByExternal: a map also when nothing is bound, copies when something is.
	got, err := s.GetManyByExternal(ctx, "b", "m", []string{"3", "9"})
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("GetManyByExternal of unbound IDs = %v, %v; want an empty map", got, err)
	}
	got, err = s.GetManyByExternal(ctx, "b", "m", []string{"9", "1", "2", "1"})
	if err != nil || len(got) != 2 || got["1"].LocalID != "L1" || got["2"].ID != out[1].ID {
		t.Fatalf("GetManyByExternal = %+v, %v", got, err)
	}
}

// With the importer's hint that the result goes unread, UpsertBatch writes the same
// bindings (and rolls back the same way) but returns none.
func TestMemoryStoreUpsertBatchUnreadResults(t *testing.T) {
	ctx := t.Context()
	plain, hinted := binding.NewMemory(), binding.NewMemory()
	batch := []binding.Binding{
		{Backend: "b", Model: "m", ExternalID: "1", LocalID: "L1", Hash: "h", Status: binding.StatusSuccess},
		{Backend: "b", Model: "m", ExternalID: "2"},
		{Backend: "b", Model: "m", ExternalID: "1", Hash: "h2", Status: binding.StatusSuccess}, // sees the first
	}
	want, err := plain.UpsertBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := hinted.UpsertBatch(batchhint.WithoutResults(ctx), batch)
	if err != nil || got != nil {
		t.Fatalf("hinted UpsertBatch = %v, %v; want nil, nil", got, err)
	}
	for _, r := range want {
		w, err := plain.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		g, err := hinted.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if g != w {
			t.Errorf("hinted store holds %+v, want %+v", g, w)
		}
	}
	// A conflict rolls the hinted batch back too.
	_, err = hinted.UpsertBatch(batchhint.WithoutResults(ctx), []binding.Binding{
		{Backend: "b", Model: "m", ExternalID: "3"},
		{Backend: "b", Model: "m", ExternalID: "2", LocalID: "L1"},
	})
	if !errors.Is(err, binding.ErrConflict) {
		t.Fatalf("UpsertBatch = %v, want ErrConflict", err)
	}
	if _, err := hinted.GetByExternal(ctx, "b", "m", "3"); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("the rolled-back insert is still there: %v", err)
	}
}
