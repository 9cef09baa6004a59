// Package batchhint lets connkit's own callers of binding.Store.UpsertBatch say, in the
// context, that they will not read the bindings it returns, so that a store may skip
// copying them. It is a hint: a store that ignores it is still correct, and a caller that
// sets it must not use the returned slice (a store that honours it returns nil).
package batchhint

import "context"

type unreadKey struct{}

// WithoutResults returns ctx marked: the caller does not read UpsertBatch's result.
func WithoutResults(ctx context.Context) context.Context {
	return context.WithValue(ctx, unreadKey{}, true)
}

// ResultsUnread reports whether ctx carries the WithoutResults mark.
func ResultsUnread(ctx context.Context) bool {
	v, _ := ctx.Value(unreadKey{}).(bool)
	return v
}
