package bindingtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/connkit/connkit/binding"
)

func init() {
	register("RandomOpsKeepIndexesConsistent", func(t *testing.T, e *env) {
		// A fixed-seed mix of writes over a small ID space, so that IDs move between
		// bindings, conflict and get freed; afterwards every lookup path must agree.
		s, ctx := e.store, e.ctx
		r := rand.New(rand.NewPCG(1, 2))
		id := func(prefix string) string {
			if r.IntN(5) == 0 {
				return ""
			}
			return fmt.Sprint(prefix, r.IntN(8))
		}
		model := func() string { return []string{modelP, modelC}[r.IntN(2)] }
		var live []int64
		pick := func() int64 {
			if len(live) == 0 || r.IntN(10) == 0 {
				return 999_999 // missing
			}
			return live[r.IntN(len(live))]
		}
		ok := func(op string, err error) {
			t.Helper()
			if err != nil && !errors.Is(err, binding.ErrConflict) && !errors.Is(err, binding.ErrNotFound) && !errors.Is(err, binding.ErrInvalid) {
				t.Fatalf("%s: unexpected error %v", op, err)
			}
		}
		for range 400 {
			switch r.IntN(6) {
			case 0, 1:
				b, err := s.Upsert(ctx, binding.Binding{Backend: backendA, Model: model(), ExternalID: id("E"), LocalID: id("L")})
				ok("Upsert", err)
				if err == nil {
					live = append(live, b.ID)
				}
			case 2:
				b, _, err := s.Ensure(ctx, binding.Binding{Backend: backendA, Model: model(), ExternalID: id("E"), LocalID: id("L")})
				ok("Ensure", err)
				if err == nil {
					live = append(live, b.ID)
				}
			case 3:
				_, err := s.MarkSuccess(ctx, pick(), binding.Success{ExternalID: id("E"), LocalID: id("L")})
				ok("MarkSuccess", err)
			case 4:
				_, err := s.Upsert(ctx, binding.Binding{ID: pick(), Backend: backendA, Model: model(), ExternalID: id("E"), LocalID: id("L")})
				ok("Upsert by ID", err)
			case 5:
				bs := make([]binding.Binding, 1+r.IntN(4))
				for i := range bs {
					bs[i] = binding.Binding{Backend: backendA, Model: model(), ExternalID: id("E"), LocalID: id("L")}
				}
				if r.IntN(4) == 0 {
					ok("Delete", s.Delete(ctx, pick()))
					continue
				}
				got, err := s.UpsertBatch(ctx, bs)
				ok("UpsertBatch", err)
				for _, b := range got {
					live = append(live, b.ID)
				}
			}
		}
		all := e.list(t, binding.Filter{})
		if len(all) == 0 {
			t.Fatal("random ops left no bindings")
		}
		type key struct{ model, id string }
		exts, locals := map[key]int64{}, map[key]int64{}
		for _, b := range all {
			if b.ExternalID == "" && b.LocalID == "" {
				t.Fatalf("binding %d lost both IDs", b.ID)
			}
			if b.ExternalID != "" {
				k := key{b.Model, b.ExternalID}
				if other, dup := exts[k]; dup {
					t.Fatalf("external ID %v bound twice: %d and %d", k, other, b.ID)
				}
				exts[k] = b.ID
			}
			if b.LocalID != "" {
				k := key{b.Model, b.LocalID}
				if other, dup := locals[k]; dup {
					t.Fatalf("local ID %v bound twice: %d and %d", k, other, b.ID)
				}
				locals[k] = b.ID
			}
		}
		for _, m := range []string{modelP, modelC} {
			for i := range 8 {
				for _, side := range []struct {
					idx map[key]int64
					id  string
					get func(string, string, string) (binding.Binding, error)
				}{
					{exts, fmt.Sprint("E", i), func(b, m, x string) (binding.Binding, error) { return s.GetByExternal(ctx, b, m, x) }},
					{locals, fmt.Sprint("L", i), func(b, m, x string) (binding.Binding, error) { return s.GetByLocal(ctx, b, m, x) }},
				} {
					got, err := side.get(backendA, m, side.id)
					want, bound := side.idx[key{m, side.id}]
					switch {
					case bound && err != nil:
						t.Fatalf("lookup of %s/%s: %v, but List shows it on binding %d", m, side.id, err, want)
					case bound && got.ID != want:
						t.Fatalf("lookup of %s/%s = binding %d, List shows %d", m, side.id, got.ID, want)
					case !bound && !errors.Is(err, binding.ErrNotFound):
						t.Fatalf("lookup of unbound %s/%s = %+v, %v; want ErrNotFound", m, side.id, got, err)
					}
				}
			}
		}
	})
}
