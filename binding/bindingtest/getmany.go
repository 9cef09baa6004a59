package bindingtest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/connkit/connkit/binding"
)

func init() {
	register("GetManyByExternalReturnsBoundOnly", func(t *testing.T, e *env) {
		want := full()
		stored := e.upsert(t, want)
		e.upsert(t, binding.Binding{ExternalID: "E2", LocalID: "L2"})
		// Same external ID under another model and backend: must not leak in.
		e.upsert(t, binding.Binding{Model: modelC, ExternalID: "E3"})
		e.upsert(t, binding.Binding{Backend: backendB, ExternalID: "E4"})

		got, err := e.store.GetManyByExternal(e.ctx, backendA, modelP, []string{"E1", "missing", "E2", "E3", "E4", ""})
		noErr(t, "GetManyByExternal", err)
		eq(t, "len", len(got), 2)
		b, ok := got["E1"]
		if !ok {
			t.Fatalf("E1 missing from %v", got)
		}
		eq(t, "E1 ID", b.ID, stored.ID)
		sameBinding(t, "E1", b, want)
		sameTime(t, "E1 CreatedAt", b.CreatedAt, stored.CreatedAt)
		eq(t, "E2 LocalID", got["E2"].LocalID, "L2")
		for _, k := range []string{"missing", "E3", "E4", ""} {
			if _, ok := got[k]; ok {
				t.Fatalf("%q is in the result: %+v", k, got[k])
			}
		}
	})

	register("GetManyByExternalEmptyAndDuplicates", func(t *testing.T, e *env) {
		got, err := e.store.GetManyByExternal(e.ctx, backendA, modelP, nil)
		noErr(t, "GetManyByExternal(nil)", err)
		eq(t, "len of nil lookup", len(got), 0)
		if got == nil {
			t.Fatal("GetManyByExternal(nil) returned a nil map; want an empty one")
		}
		e.upsert(t, binding.Binding{ExternalID: "E1"})
		got, err = e.store.GetManyByExternal(e.ctx, backendA, modelP, []string{"E1", "E1", "", "E1"})
		noErr(t, "GetManyByExternal(dups)", err)
		eq(t, "len with duplicates", len(got), 1)
	})

	register("GetManyByExternalManyKeys", func(t *testing.T, e *env) {
		// More keys than SQL stores put in one statement: they must chunk.
		const n = 1234
		all := e.batch(t, seq("m", n))
		ids := make([]string, 0, 2*n)
		for i := n - 1; i >= 0; i-- {
			ids = append(ids, fmt.Sprintf("m-%04d", i), fmt.Sprintf("absent-%d", i))
		}
		got, err := e.store.GetManyByExternal(e.ctx, backendA, modelP, ids)
		noErr(t, "GetManyByExternal", err)
		eq(t, "len", len(got), n)
		for _, b := range all {
			g, ok := got[b.ExternalID]
			if !ok {
				t.Fatalf("%s missing", b.ExternalID)
			}
			eq(t, b.ExternalID+" ID", g.ID, b.ID)
		}
	})

	register("GetManyByExternalReturnsCopies", func(t *testing.T, e *env) {
		e.upsert(t, binding.Binding{ExternalID: "E1", Hash: "h1"})
		got, err := e.store.GetManyByExternal(e.ctx, backendA, modelP, []string{"E1"})
		noErr(t, "GetManyByExternal", err)
		b := got["E1"]
		b.Hash = "mutated"
		got["E1"] = b
		again, err := e.store.GetByExternal(e.ctx, backendA, modelP, "E1")
		noErr(t, "GetByExternal", err)
		eq(t, "Hash after mutating a returned copy", again.Hash, "h1")
	})

	register("GetManyByExternalCancelled", func(t *testing.T, e *env) {
		e.upsert(t, binding.Binding{ExternalID: "E1"})
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		_, err := e.store.GetManyByExternal(ctx, backendA, modelP, []string{"E1"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("GetManyByExternal with a cancelled context: %v, want context.Canceled", err)
		}
	})
}
