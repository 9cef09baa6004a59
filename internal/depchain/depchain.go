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

// The keys of the two kinds, boxed once: looking a chain up allocates nothing.
var (
	importKey any = key{Import}
	exportKey any = key{Export}
)

func keyOf(kind string) any {
	switch kind {
	case Import:
		return importKey
	case Export:
		return exportKey
	}
	return key{kind}
}

// Link is one record of a chain, and the context that carries the chain down to it. With
// allocates one; a caller that adds many records to chains (a page of an import) can keep
// Links in one slice and fill them with Link.With instead.
type Link struct {
	context.Context // the parent
	key             any
	backend, model  string
	id              string
	next            *Link // the previous record of the same kind's chain
}

// Value returns l for its kind's key, and asks the parent for any other key.
func (l *Link) Value(k any) any {
	if k == l.key {
		return l
	}
	return l.Context.Value(k)
}

// With makes l the link of (backend, model, id) in ctx's chain of kind and returns the
// context that carries it (l itself). l must be unused: a context it carried (which a
// callee may have kept) would change with it.
func (l *Link) With(ctx context.Context, kind, backend, model, id string) context.Context {
	k := keyOf(kind)
	parent, _ := ctx.Value(k).(*Link)
	*l = Link{Context: ctx, key: k, backend: backend, model: model, id: id, next: parent}
	return l
}

// With returns ctx with (backend, model, id) added to the chain of kind ("import",
// "export"); chains of different kinds do not see each other. It allocates once.
func With(ctx context.Context, kind, backend, model, id string) context.Context {
	return new(Link).With(ctx, kind, backend, model, id)
}

// Has reports whether (backend, model, id) is in ctx's chain of kind.
func Has(ctx context.Context, kind, backend, model, id string) bool {
	for l, _ := ctx.Value(keyOf(kind)).(*Link); l != nil; l = l.next {
		if l.id == id && l.model == model && l.backend == backend {
			return true
		}
	}
	return false
}
