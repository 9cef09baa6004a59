package binding_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

func TestBinderToLocalToExternal(t *testing.T) {
	ctx := t.Context()
	s := binding.NewMemoryStore()
	bd := binding.NewBinder(s, "shop")
	if bd.Backend() != "shop" || bd.Store() != binding.Store(s) {
		t.Fatal("Backend/Store accessors")
	}

	_, err := bd.ToLocal(ctx, "product", "E1")
	if !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("ToLocal(unbound) = %v, want ErrNotFound", err)
	}
	for _, part := range []string{`"shop"`, "product", `"E1"`} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("ToLocal error %q does not name %s", err, part)
		}
	}
	_, err = bd.ToExternal(ctx, "product", "L1")
	if !errors.Is(err, binding.ErrNotFound) || !strings.Contains(err.Error(), `"L1"`) {
		t.Fatalf("ToExternal(unbound) = %v, want ErrNotFound naming L1", err)
	}

	// A binding with only one side counts as unbound for the other direction.
	if _, err := s.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "E1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bd.ToLocal(ctx, "product", "E1"); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("ToLocal(external-only binding) = %v, want ErrNotFound", err)
	}
	if _, err := s.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", LocalID: "L2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bd.ToExternal(ctx, "product", "L2"); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("ToExternal(local-only binding) = %v, want ErrNotFound", err)
	}

	// Bind the import-created binding: updated, not duplicated.
	b, err := bd.Bind(ctx, "product", "L1", "E1", binding.WithHash("h"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != binding.StatusSuccess || b.Hash != "h" || b.SyncedAt.IsZero() {
		t.Fatalf("Bind result %+v", b)
	}
	// Bind the export-created binding: learns its external ID.
	b2, err := bd.Bind(ctx, "product", "L2", "E2")
	if err != nil {
		t.Fatal(err)
	}
	if n := countAll(t, s); n != 2 {
		t.Fatalf("bindings after two Binds = %d, want 2", n)
	}
	for local, ext := range map[string]string{"L1": "E1", "L2": "E2"} {
		if got, err := bd.ToExternal(ctx, "product", local); err != nil || got != ext {
			t.Fatalf("ToExternal(%s) = %q, %v", local, got, err)
		}
		if got, err := bd.ToLocal(ctx, "product", ext); err != nil || got != local {
			t.Fatalf("ToLocal(%s) = %q, %v", ext, got, err)
		}
	}
	// Other model, same IDs: unbound.
	if _, err := bd.ToLocal(ctx, "customer", "E1"); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("ToLocal(other model) = %v", err)
	}
	// Binding two IDs already bound to different records conflicts and changes nothing.
	if _, err := bd.Bind(ctx, "product", "L1", "E2"); !errors.Is(err, binding.ErrConflict) {
		t.Fatalf("Bind(L1, E2) = %v, want ErrConflict", err)
	}
	if got, _ := bd.ToExternal(ctx, "product", "L2"); got != "E2" || b2.ExternalID != "E2" {
		t.Fatalf("after a rejected Bind, L2 -> %q", got)
	}
}

func TestBinderBindOptionsAndFailures(t *testing.T) {
	ctx := t.Context()
	s := binding.NewMemoryStore()
	bd := binding.NewBinder(s, "crm")
	at := time.Date(2025, 5, 5, 5, 5, 5, 0, time.UTC)
	extAt := at.Add(-time.Hour)
	b, err := bd.Bind(ctx, "contact", "7", "c-7", binding.WithSyncedAt(at), binding.WithExternalUpdatedAt(extAt), binding.WithHash("x"))
	if err != nil {
		t.Fatal(err)
	}
	if !b.SyncedAt.Equal(at) || !b.ExternalUpdatedAt.Equal(extAt) || b.Hash != "x" {
		t.Fatalf("Bind options not recorded: %+v", b)
	}
	// Bind after failures resets them.
	if _, err := s.MarkFailed(ctx, b.ID, "boom"); err != nil {
		t.Fatal(err)
	}
	b, err = bd.Bind(ctx, "contact", "7", "c-7")
	if err != nil || b.RetryCount != 0 || b.LastError != "" || b.Status != binding.StatusSuccess {
		t.Fatalf("Bind after failure = %+v, %v", b, err)
	}
	for _, c := range [][2]string{{"", "x"}, {"x", ""}} {
		if _, err := bd.Bind(ctx, "contact", c[0], c[1]); !errors.Is(err, binding.ErrInvalid) {
			t.Fatalf("Bind(%q, %q) = %v, want ErrInvalid", c[0], c[1], err)
		}
	}
	if _, err := binding.NewBinder(s, "").Bind(ctx, "contact", "1", "2"); !errors.Is(err, binding.ErrInvalid) {
		t.Fatalf("Bind without backend = %v, want ErrInvalid", err)
	}
	// Store errors other than not-found pass through, wrapped.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := bd.ToLocal(cctx, "contact", "c-7"); !errors.Is(err, context.Canceled) || errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("ToLocal(canceled) = %v", err)
	}
	if _, err := bd.ToExternal(cctx, "contact", "7"); !errors.Is(err, context.Canceled) {
		t.Fatalf("ToExternal(canceled) = %v", err)
	}
	if _, err := bd.Bind(cctx, "contact", "8", "c-8"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Bind(canceled) = %v", err)
	}
}

func countAll(t *testing.T, s binding.Store) int {
	t.Helper()
	n := 0
	for _, err := range s.List(t.Context(), binding.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}
