package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/binding/bindingtest"
	"github.com/connkit/connkit/sqlstore"
)

func TestBindingConformance(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			if e.name == "postgres" {
				// Lease times come from the database clock, which a fake clock cannot move:
				// the suite runs on real time (short leases, polling).
				bindingtest.Run(t, func(t *testing.T) binding.Store { return e.open(t).Bindings() })
				return
			}
			var clocks sync.Map // binding.Store → *fakeClock
			bindingtest.Run(t, func(t *testing.T) binding.Store {
				clk := newClock()
				s := e.open(t, sqlstore.WithClock(clk.Now)).Bindings()
				clocks.Store(s, clk)
				return s
			}, bindingtest.WithAdvance(func(s binding.Store, d time.Duration) {
				clk, _ := clocks.Load(s)
				clk.(*fakeClock).Advance(d)
			}))
		})
	}
}

// Concurrent upserts of one new key with both IDs take the lookup-then-insert path; on
// Postgres the losers of the insert race must retry and update, not fail.
func TestConcurrentUpsertOfOneNewKey(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := e.open(t).Bindings()
			for round := range 5 {
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for w := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := s.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product",
							ExternalID: fmt.Sprint("E", round), LocalID: fmt.Sprint("L", round), Hash: fmt.Sprint(w)})
						if err != nil {
							errs <- err
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			n := 0
			for _, err := range s.List(ctx, binding.Filter{Backend: "shop"}) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 5 {
				t.Fatalf("%d bindings, want 5", n)
			}
		})
	}
}

// An error text with NUL bytes or invalid UTF-8 (a binary response excerpt) must not make
// MarkFailed fail: the failure would go unrecorded. Postgres gets U+FFFD instead.
func TestMarkFailedWithBinaryErrorText(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := e.open(t).Bindings()
			b, err := s.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "E1"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.MarkFailed(ctx, b.ID, binding.Failure{Error: "bad body: \x00\xff"})
			if err != nil {
				t.Fatalf("MarkFailed: %v", err)
			}
			if got.Status != binding.StatusFailed || got.RetryCount != 1 || !strings.HasPrefix(got.LastError, "bad body: ") {
				t.Fatalf("after MarkFailed: %+v", got)
			}
		})
	}
}
