// Package bindingtest is the conformance suite every binding.Store passes, in the spirit
// of River's riverdrivertest: a store package calls Run from its own tests with a
// constructor of fresh, empty stores, and Bench from its benchmarks.
//
//	func TestStore(t *testing.T) {
//		bindingtest.Run(t, func(t *testing.T) binding.Store { return newTestStore(t) })
//	}
//
// The suite pins the contract documented on binding.Store, including the details the
// interface comments leave to prose: the empty-ID merge rule, ErrInvalid on bad input,
// *BatchError and all-or-nothing batches, UTC times with at least millisecond precision,
// leases, and what must hold under concurrency.
package bindingtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// Option adjusts how Run drives the store.
type Option func(*config)

type config struct {
	advance func(s binding.Store, d time.Duration)
}

// WithAdvance gives the suite a way to move the clock of a store made by newStore forward
// by d. With it, lease expiry is tested without waiting; without it the suite uses short
// real TTLs and polls.
func WithAdvance(advance func(s binding.Store, d time.Duration)) Option {
	return func(c *config) { c.advance = advance }
}

// Run runs the conformance suite. newStore must return a new, empty store on every call;
// each subtest gets its own. Register cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) binding.Store, opts ...Option) {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.fn(t, &env{store: s, cfg: c, ctx: t.Context()})
		})
	}
}

// env is what each case gets.
type env struct {
	store binding.Store
	cfg   config
	ctx   context.Context
}

type testCase struct {
	name string
	fn   func(t *testing.T, e *env)
}

// cases is filled by the init functions of this package's files.
var cases []testCase

func register(name string, fn func(t *testing.T, e *env)) {
	cases = append(cases, testCase{name, fn})
}

// --- helpers ---

const (
	backendA = "shop-eu"
	backendB = "shop-us"
	modelP   = "product"
	modelC   = "customer"
)

func (e *env) upsert(t *testing.T, b binding.Binding) binding.Binding {
	t.Helper()
	if b.Backend == "" {
		b.Backend = backendA
	}
	if b.Model == "" {
		b.Model = modelP
	}
	got, err := e.store.Upsert(e.ctx, b)
	if err != nil {
		t.Fatalf("Upsert(%+v): %v", b, err)
	}
	if got.ID == 0 {
		t.Fatalf("Upsert(%+v) returned a binding without ID", b)
	}
	return got
}

func (e *env) get(t *testing.T, id int64) binding.Binding {
	t.Helper()
	got, err := e.store.Get(e.ctx, id)
	if err != nil {
		t.Fatalf("Get(%d): %v", id, err)
	}
	return got
}

func (e *env) list(t *testing.T, f binding.Filter) []binding.Binding {
	t.Helper()
	var out []binding.Binding
	for b, err := range e.store.List(e.ctx, f) {
		if err != nil {
			t.Fatalf("List(%+v): %v", f, err)
		}
		out = append(out, b)
	}
	return out
}

func (e *env) count(t *testing.T, f binding.Filter) int { t.Helper(); return len(e.list(t, f)) }

// wantErr fails unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %v", what, err, target)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// sameTime checks that got is want within a millisecond, in UTC (zero stays zero).
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if want.IsZero() {
		if !got.IsZero() {
			t.Fatalf("%s = %v, want the zero time", what, got)
		}
		return
	}
	if got.Location() != time.UTC {
		t.Fatalf("%s = %v has location %q, want UTC", what, got, got.Location())
	}
	if d := got.Sub(want); d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("%s = %v, want %v (±1ms)", what, got, want)
	}
}

// sameBinding compares every field the caller controls (not ID, lease, created/updated).
func sameBinding(t *testing.T, what string, got, want binding.Binding) {
	t.Helper()
	eq(t, what+" Backend", got.Backend, want.Backend)
	eq(t, what+" Model", got.Model, want.Model)
	eq(t, what+" LocalID", got.LocalID, want.LocalID)
	eq(t, what+" ExternalID", got.ExternalID, want.ExternalID)
	eq(t, what+" Status", got.Status, want.Status)
	eq(t, what+" LastError", got.LastError, want.LastError)
	eq(t, what+" RetryCount", got.RetryCount, want.RetryCount)
	eq(t, what+" Hash", got.Hash, want.Hash)
	eq(t, what+" NoExport", got.NoExport, want.NoExport)
	sameTime(t, what+" SyncedAt", got.SyncedAt, want.SyncedAt)
	sameTime(t, what+" ExternalUpdatedAt", got.ExternalUpdatedAt, want.ExternalUpdatedAt)
}

// parallel runs fn(i) for i in [0,n) on n goroutines released together.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// seq makes n product bindings with external IDs "<prefix>-0000"….
func seq(prefix string, n int) []binding.Binding {
	bs := make([]binding.Binding, n)
	for i := range bs {
		bs[i] = binding.Binding{Backend: backendA, Model: modelP, ExternalID: fmt.Sprintf("%s-%04d", prefix, i)}
	}
	return bs
}

// batch upserts bs in batches of 100.
func (e *env) batch(t *testing.T, bs []binding.Binding) []binding.Binding {
	t.Helper()
	var out []binding.Binding
	for i := 0; i < len(bs); i += 100 {
		got, err := e.store.UpsertBatch(e.ctx, bs[i:min(i+100, len(bs))])
		noErr(t, "UpsertBatch", err)
		out = append(out, got...)
	}
	return out
}

// waitClock lets time pass for the store: through the advance hook when there is one,
// otherwise by sleeping (only used where the suite polls afterwards).
func (e *env) waitClock(d time.Duration) {
	if e.cfg.advance != nil {
		e.cfg.advance(e.store, d)
		return
	}
	time.Sleep(d)
}
