// Package statetest is the conformance suite for state.Store implementations. Every store
// in connkit runs it; run it against your own store too:
//
//	func TestMyStore(t *testing.T) {
//		statetest.Run(t, func(t *testing.T) state.Store { return newMyStore(t) })
//	}
package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/connkit/connkit/state"
)

// Run checks that the stores made by newStore behave as state.Store documents. newStore is
// called once per subtest and must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	t.Helper()
	ctx := context.Background()

	t.Run("GetMissing", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, "b", "cursor")
		if !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Get of a missing value: got %v, want ErrNotFound", err)
		}
	})

	t.Run("PutGetOverwrite", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "b", "cursor", []byte("page-1"))
		mustGet(t, s, "b", "cursor", "page-1")
		mustPut(t, s, "b", "cursor", []byte("page-2"))
		mustGet(t, s, "b", "cursor", "page-2")
	})

	t.Run("KeysAreScopedByBackend", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "eu", "cursor", []byte("eu-1"))
		mustPut(t, s, "us", "cursor", []byte("us-1"))
		mustPut(t, s, "", "cursor", []byte("global"))
		mustGet(t, s, "eu", "cursor", "eu-1")
		mustGet(t, s, "us", "cursor", "us-1")
		mustGet(t, s, "", "cursor", "global")
		if _, err := s.Get(ctx, "eu", "watermark"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Get of another name: got %v, want ErrNotFound", err)
		}
	})

	t.Run("ValuesAreCopied", func(t *testing.T) {
		s := newStore(t)
		v := []byte("abc")
		mustPut(t, s, "b", "n", v)
		v[0] = 'X'
		got := mustGet(t, s, "b", "n", "abc")
		got[0] = 'Y'
		mustGet(t, s, "b", "n", "abc")
	})

	t.Run("EmptyAndBinaryValues", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "b", "nil", nil)
		if got := mustGet(t, s, "b", "nil", ""); got == nil {
			t.Fatalf("Get of a value stored as nil: got nil slice, want empty non-nil")
		}
		bin := string([]byte{0, 1, 2, 0xff, 0xfe, 0})
		mustPut(t, s, "b", "bin", []byte(bin))
		mustGet(t, s, "b", "bin", bin)
	})

	t.Run("CompareAndSwap", func(t *testing.T) {
		s := newStore(t)
		cas := func(old, new []byte, want bool) {
			t.Helper()
			ok, err := s.CompareAndSwap(ctx, "b", "cursor", old, new)
			if err != nil {
				t.Fatalf("CompareAndSwap(%q, %q): %v", old, new, err)
			}
			if ok != want {
				t.Fatalf("CompareAndSwap(%q, %q) = %v, want %v", old, new, ok, want)
			}
		}
		cas([]byte("x"), []byte("y"), false) // missing, old set: no swap
		if _, err := s.Get(ctx, "b", "cursor"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("failed swap created the value: %v", err)
		}
		cas(nil, []byte("1"), true) // only if missing
		cas(nil, []byte("other"), false)
		mustGet(t, s, "b", "cursor", "1")
		cas([]byte("0"), []byte("2"), false)
		cas([]byte("1"), []byte("2"), true)
		mustGet(t, s, "b", "cursor", "2")
		cas([]byte("2"), []byte{}, true)
		cas(nil, []byte("3"), false) // an empty value exists: not missing
		cas([]byte{}, []byte("3"), true)
		mustGet(t, s, "b", "cursor", "3")
	})

	t.Run("CompareAndSwapConcurrent", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "b", "counter", []byte("0"))
		const workers, incs = 4, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done := 0; done < incs; {
					cur, err := s.Get(ctx, "b", "counter")
					if err != nil {
						errs <- err
						return
					}
					var n int
					fmt.Sscan(string(cur), &n)
					ok, err := s.CompareAndSwap(ctx, "b", "counter", cur, fmt.Append(nil, n+1))
					if err != nil {
						errs <- err
						return
					}
					if ok {
						done++
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		mustGet(t, s, "b", "counter", fmt.Sprint(workers*incs))
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "b", "cursor", []byte("1"))
		mustPut(t, s, "b", "keep", []byte("k"))
		if err := s.Delete(ctx, "b", "cursor"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(ctx, "b", "cursor"); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "b", "cursor"); err != nil {
			t.Fatalf("Delete of a missing value: got %v, want nil", err)
		}
		mustGet(t, s, "b", "keep", "k")
	})

	t.Run("EmptyNameIsRejected", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Get(ctx, "b", ""); !errors.Is(err, state.ErrEmptyName) {
			t.Errorf("Get: got %v, want ErrEmptyName", err)
		}
		if err := s.Put(ctx, "b", "", []byte("x")); !errors.Is(err, state.ErrEmptyName) {
			t.Errorf("Put: got %v, want ErrEmptyName", err)
		}
		if _, err := s.CompareAndSwap(ctx, "b", "", nil, []byte("x")); !errors.Is(err, state.ErrEmptyName) {
			t.Errorf("CompareAndSwap: got %v, want ErrEmptyName", err)
		}
		if err := s.Delete(ctx, "b", ""); !errors.Is(err, state.ErrEmptyName) {
			t.Errorf("Delete: got %v, want ErrEmptyName", err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, "b", "cursor", []byte("1"))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Put(cctx, "b", "cursor", []byte("2")); err == nil {
			t.Fatalf("Put with a canceled context succeeded")
		}
		mustGet(t, s, "b", "cursor", "1")
	})
}

func mustPut(t *testing.T, s state.Store, backend, name string, v []byte) {
	t.Helper()
	if err := s.Put(context.Background(), backend, name, v); err != nil {
		t.Fatalf("Put(%q, %q): %v", backend, name, err)
	}
}

func mustGet(t *testing.T, s state.Store, backend, name, want string) []byte {
	t.Helper()
	got, err := s.Get(context.Background(), backend, name)
	if err != nil {
		t.Fatalf("Get(%q, %q): %v", backend, name, err)
	}
	if string(got) != want {
		t.Fatalf("Get(%q, %q) = %q, want %q", backend, name, got, want)
	}
	return got
}
