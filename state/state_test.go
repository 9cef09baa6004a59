package state_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/connkit/connkit/state"
	"github.com/connkit/connkit/state/statetest"
)

func TestMemory(t *testing.T) {
	statetest.Run(t, func(*testing.T) state.Store { return state.NewMemory() })
}

// A watermark advanced with CompareAndSwap: the swap fails if another worker moved it.
func ExampleNewMemory() {
	ctx := context.Background()
	s := state.NewMemory()

	ok, _ := s.CompareAndSwap(ctx, "shop-eu", "orders.watermark", nil, []byte("2026-01-01T00:00:00Z"))
	fmt.Println("created:", ok)
	ok, _ = s.CompareAndSwap(ctx, "shop-eu", "orders.watermark", []byte("stale"), []byte("2026-02-01T00:00:00Z"))
	fmt.Println("stale swap:", ok)
	v, _ := s.Get(ctx, "shop-eu", "orders.watermark")
	fmt.Println(string(v))
	// Output:
	// created: true
	// stale swap: false
	// 2026-01-01T00:00:00Z
}
