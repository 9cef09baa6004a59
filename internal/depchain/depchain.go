// Package depchain tracks, in a context, which records an import or export is syncing
// on the way down its dependencies, so that a cycle (an order whose customer refers back
// to the order) is noticed instead of recursing forever.
package depchain

import "context"

type key struct{ kind string }

// The chain kinds: records being imported, records being exported.
const (
	Import = "import"
	Export = "export"
)

type link struct {
	id   string
	next *link
}

// With returns ctx with (backend, model, id) added to the chain of kind ("import",
// "export"); chains of different kinds do not see each other.
func With(ctx context.Context, kind, backend, model, id string) context.Context {
	parent, _ := ctx.Value(key{kind}).(*link)
	return context.WithValue(ctx, key{kind}, &link{id: join(backend, model, id), next: parent})
}

// Has reports whether (backend, model, id) is in ctx's chain of kind.
func Has(ctx context.Context, kind, backend, model, id string) bool {
	k := join(backend, model, id)
	for l, _ := ctx.Value(key{kind}).(*link); l != nil; l = l.next {
		if l.id == k {
			return true
		}
	}
	return false
}

func join(backend, model, id string) string { return backend + "\x00" + model + "\x00" + id }
