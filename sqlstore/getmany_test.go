package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/connkit/connkit/binding"
)

// seedGetMany stores n product bindings "e-0000"… of backend "shop" (every third one with a
// local ID too), the same external IDs under another model and backend (which lookups must
// not return), and a binding with a local ID only (which an empty external ID must not
// find). It returns the product bindings by external ID.
func seedGetMany(t *testing.T, s binding.Store, n int) map[string]binding.Binding {
	t.Helper()
	ctx := context.Background()
	stored := make(map[string]binding.Binding, n)
	for start := 0; start < n; start += 500 {
		var bs, other []binding.Binding
		for i := start; i < min(start+500, n); i++ {
			b := binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprintf("e-%04d", i), Hash: fmt.Sprint("h", i)}
			if i%3 == 0 {
				b.LocalID = fmt.Sprint("l", i)
			}
			bs = append(bs, b)
			other = append(other,
				binding.Binding{Backend: "shop", Model: "customer", ExternalID: b.ExternalID},
				binding.Binding{Backend: "other", Model: "product", ExternalID: b.ExternalID})
		}
		got, err := s.UpsertBatch(ctx, bs)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range got {
			stored[b.ExternalID] = b
		}
		if _, err := s.UpsertBatch(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", LocalID: "local-only"}); err != nil {
		t.Fatal(err)
	}
	return stored
}

// checkGetMany asks for ids and compares the answer with the stored bindings.
func checkGetMany(t *testing.T, s binding.Store, stored map[string]binding.Binding, ids []string) {
	t.Helper()
	got, err := s.GetManyByExternal(context.Background(), "shop", "product", ids)
	if err != nil {
		t.Fatalf("GetManyByExternal(%d IDs): %v", len(ids), err)
	}
	if got == nil {
		t.Fatalf("GetManyByExternal(%d IDs) returned a nil map", len(ids))
	}
	want := map[string]bool{}
	for _, id := range ids {
		if _, ok := stored[id]; ok {
			want[id] = true
		}
	}
	if len(got) != len(want) {
		t.Fatalf("GetManyByExternal(%d IDs): %d bindings, want %d", len(ids), len(got), len(want))
	}
	for id := range want {
		g, ok := got[id]
		if !ok {
			t.Fatalf("GetManyByExternal(%d IDs): %q missing", len(ids), id)
		}
		w := stored[id]
		if g.ID != w.ID || g.ExternalID != id || g.LocalID != w.LocalID || g.Hash != w.Hash || g.Model != "product" || g.Backend != "shop" {
			t.Fatalf("GetManyByExternal(%d IDs)[%q] = %+v, want %+v", len(ids), id, g, w)
		}
	}
}

// Lookups around the chunk size (500 IDs per SQLite statement) and the IN-list lengths
// it rounds up to (1, 4, 16, 64, 256): every ID of every chunk is answered, once.
func TestGetManyByExternalChunks(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s := e.open(t).Bindings()
			stored := seedGetMany(t, s, 1300)
			for _, n := range []int{0, 1, 2, 4, 5, 17, 255, 256, 257, 499, 500, 501, 999, 1000, 1001, 1200} {
				t.Run(fmt.Sprint(n), func(t *testing.T) {
					// Bound IDs, walked backwards so chunks do not follow the ID order.
					ids := make([]string, 0, n)
					for i := n - 1; i >= 0; i-- {
						ids = append(ids, fmt.Sprintf("e-%04d", i))
					}
					checkGetMany(t, s, stored, ids)
					// Every other ID unbound: the chunk's absent IDs must not disturb the rest.
					for i := range ids {
						if i%2 == 1 {
							ids[i] = fmt.Sprint("absent-", i)
						}
					}
					checkGetMany(t, s, stored, ids)
				})
			}
		})
	}
}

func TestGetManyByExternalDuplicatesAndEmpty(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s := e.open(t).Bindings()
			stored := seedGetMany(t, s, 600)
			var ids []string
			for i := range 501 {
				ids = append(ids, fmt.Sprintf("e-%04d", i), "")
			}
			// Every ID again, so duplicates land in other chunks than their first copy.
			ids = append(ids, ids...)
			checkGetMany(t, s, stored, ids)

			checkGetMany(t, s, stored, []string{"", "", ""}) // not the local-only binding
			checkGetMany(t, s, stored, []string{"e-0007", "e-0007", "e-0007", "e-0007", "e-0007"})
			checkGetMany(t, s, stored, []string{"", "e-0001", "", "absent"})
			checkGetMany(t, s, stored, nil)

			// IDs that would be SQL if spliced into the query are only values.
			checkGetMany(t, s, stored, []string{"e-0001' OR '1'='1", "e-0002\") OR 1=1 --", "?", "$1", "e-0003"})
		})
	}
}

// A failed lookup names the store, scope and size, and wraps the cause.
func TestGetManyByExternalErrors(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, ":memory:")
	s := db.Bindings()
	seedGetMany(t, s, 3)
	if _, err := db.SQL().ExecContext(ctx, `DROP TABLE connkit_bindings`); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetManyByExternal(ctx, "shop", "product", []string{"e-0000", "e-0001", "e-0001"})
	if err == nil {
		t.Fatal("GetManyByExternal on a dropped table succeeded")
	}
	for _, want := range []string{"binding:", "shop/product", "2 "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.GetManyByExternal(cctx, "shop", "product", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetManyByExternal(nil) with a cancelled context: %v, want context.Canceled", err)
	}
}
