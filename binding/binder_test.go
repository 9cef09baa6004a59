package binding_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/connkit/connkit/binding"
)

func TestBinderToLocalToExternal(t *testing.T) {
	ctx := t.Context()
	s := binding.NewMemory()
	bd := binding.NewBinder(s, "shop")

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

	// Other model, same IDs: unbound.
	if _, err := bd.ToLocal(ctx, "customer", "E1"); !errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("ToLocal(other model) = %v", err)
	}
	// Both sides bound: both directions resolve.
	if _, err := s.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "E1", LocalID: "L1"}); err != nil {
		t.Fatal(err)
	}
	if got, err := bd.ToExternal(ctx, "product", "L1"); err != nil || got != "E1" {
		t.Fatalf("ToExternal(L1) = %q, %v", got, err)
	}
	if got, err := bd.ToLocal(ctx, "product", "E1"); err != nil || got != "L1" {
		t.Fatalf("ToLocal(E1) = %q, %v", got, err)
	}
	// Store errors other than not-found pass through, wrapped.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := bd.ToLocal(cctx, "product", "E1"); !errors.Is(err, context.Canceled) || errors.Is(err, binding.ErrNotFound) {
		t.Fatalf("ToLocal(canceled) = %v", err)
	}
	if _, err := bd.ToExternal(cctx, "product", "L1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("ToExternal(canceled) = %v", err)
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
