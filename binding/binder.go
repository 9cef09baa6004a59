package binding

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Binder translates IDs between the two sides for one backend, like OCA's Binder: the
// importer asks ToLocal, the exporter ToExternal, and both call Bind once a record is
// synced. It is a thin, stateless layer over a Store and safe for concurrent use.
type Binder struct {
	store   Store
	backend string
}

// NewBinder returns a Binder for backend over store.
func NewBinder(store Store, backend string) *Binder {
	return &Binder{store: store, backend: backend}
}

// Backend returns the backend the Binder works for.
func (b *Binder) Backend() string { return b.backend }

// Store returns the underlying store.
func (b *Binder) Store() Store { return b.store }

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

// BindOption adds sync details to Bind.
type BindOption func(*Success)

// WithHash records the content hash of the synced payload.
func WithHash(hash string) BindOption { return func(s *Success) { s.Hash = hash } }

// WithExternalUpdatedAt records the external record's modification time.
func WithExternalUpdatedAt(t time.Time) BindOption {
	return func(s *Success) { s.ExternalUpdatedAt = t }
}

// WithSyncedAt sets the sync time instead of the store's clock.
func WithSyncedAt(t time.Time) BindOption { return func(s *Success) { s.At = t } }

// Bind links localID and externalID for model and marks the binding successful. It
// updates the binding already holding externalID, else the one holding localID (so an
// export learns its external ID), else creates one. Both IDs are required. It fails with
// ErrConflict when the two IDs already belong to two different bindings.
func (b *Binder) Bind(ctx context.Context, model, localID, externalID string, opts ...BindOption) (Binding, error) {
	if localID == "" || externalID == "" {
		return Binding{}, fmt.Errorf("binding: bind %s on backend %q: local ID %q and external ID %q must both be set: %w",
			model, b.backend, localID, externalID, ErrInvalid)
	}
	s := Success{LocalID: localID, ExternalID: externalID}
	for _, o := range opts {
		o(&s)
	}
	wrap := func(err error) error {
		return fmt.Errorf("binding: bind %s local ID %q to external ID %q on backend %q: %w",
			model, localID, externalID, b.backend, err)
	}
	id, err := b.find(ctx, model, localID, externalID)
	if err != nil {
		return Binding{}, wrap(err)
	}
	if id == 0 {
		got, _, err := b.store.Ensure(ctx, Binding{Backend: b.backend, Model: model, LocalID: localID, ExternalID: externalID})
		if err != nil {
			return Binding{}, wrap(err)
		}
		id = got.ID
	}
	got, err := b.store.MarkSuccess(ctx, id, s)
	if err != nil {
		return Binding{}, wrap(err)
	}
	return got, nil
}

// find returns the ID of the binding holding externalID, else localID, else 0.
func (b *Binder) find(ctx context.Context, model, localID, externalID string) (int64, error) {
	byExt, err := b.store.GetByExternal(ctx, b.backend, model, externalID)
	if err == nil {
		return byExt.ID, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	byLocal, err := b.store.GetByLocal(ctx, b.backend, model, localID)
	if err == nil {
		return byLocal.ID, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	return 0, nil
}
