package binding

import (
	"context"
	"errors"
	"fmt"
)

// Binder translates IDs between the two sides for one backend, like OCA's Binder: the
// importer asks ToLocal, the exporter ToExternal (the mapper's relational fields use
// both). It only reads; bindings are written through the Store (Ensure, then MarkSuccess
// under a lease). It is a thin, stateless layer over a Store and safe for concurrent use.
type Binder struct {
	store   Store
	backend string
}

// NewBinder returns a Binder for backend over store.
func NewBinder(store Store, backend string) *Binder {
	return &Binder{store: store, backend: backend}
}

// ToLocal returns the local ID bound to externalID. When there is none (or the binding has
// no local ID yet) the error matches ErrNotFound and names backend, model and ID.
func (b *Binder) ToLocal(ctx context.Context, model, externalID string) (string, error) {
	got, err := b.store.GetByExternal(ctx, b.backend, model, externalID)
	if err == nil && got.LocalID != "" {
		return got.LocalID, nil
	}
	if err == nil || errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("binding: %s external ID %q on backend %q is not bound to a local record; import it first: %w",
			model, externalID, b.backend, ErrNotFound)
	}
	return "", fmt.Errorf("binding: look up local ID of %s external ID %q on backend %q: %w", model, externalID, b.backend, err)
}

// ToExternal returns the external ID bound to localID. When there is none (or the
// binding has no external ID yet) the error matches ErrNotFound and names backend, model
// and ID.
func (b *Binder) ToExternal(ctx context.Context, model, localID string) (string, error) {
	got, err := b.store.GetByLocal(ctx, b.backend, model, localID)
	if err == nil && got.ExternalID != "" {
		return got.ExternalID, nil
	}
	if err == nil || errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("binding: %s local ID %q on backend %q is not bound to an external record; export it first: %w",
			model, localID, b.backend, ErrNotFound)
	}
	return "", fmt.Errorf("binding: look up external ID of %s local ID %q on backend %q: %w", model, localID, b.backend, err)
}
