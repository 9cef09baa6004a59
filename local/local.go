// Package local is the application's side of a sync: the small interface through which the
// importer writes the app's records and the exporter reads them.
//
// connkit never owns the app's data. The application implements [Store] over whatever it
// keeps (SQL tables, an ORM, another service); [Memory] is a concurrency-safe in-memory
// implementation for tests and examples.
package local

import (
	"context"
	"errors"
)

// ErrNotFound is returned (wrapped) by Store.Get, Update and Delete when no record has the
// given ID.
var ErrNotFound = errors.New("local: record not found")

// Store reads and writes the application's records of one model, typed as T. Implementations
// must be safe for concurrent use: the batch importer and exporter call them from several
// goroutines.
type Store[T any] interface {
	// Get returns the record with the given ID, or an error matching ErrNotFound.
	Get(ctx context.Context, id string) (T, error)
	// Create stores a new record and returns the ID the store gave it.
	Create(ctx context.Context, v T) (id string, err error)
	// Update replaces the record with the given ID, or fails with ErrNotFound.
	Update(ctx context.Context, id string, v T) error
	// Delete removes the record with the given ID, or fails with ErrNotFound.
	Delete(ctx context.Context, id string) error
}

// KeyedCreator is implemented by stores that can create a record idempotently: a second
// CreateKeyed with the same key returns the first record's ID (created false) instead of
// storing another record. The importer uses it when the store offers it, with a key derived
// from the backend, model and external ID, so that an import interrupted between writing
// the local record and writing its binding never creates that record twice when it is run
// again. A store backed by SQL typically keeps the key in a unique column.
//
// A key whose record has since been deleted must create a new record (created true): the
// importer recreates a local record the app deleted through the same key, and an ID that no
// longer exists would fail that import on every run.
type KeyedCreator[T any] interface {
	// CreateKeyed stores v unless a live record was created under key, and returns the ID
	// of the record now holding key; created reports whether v was stored.
	CreateKeyed(ctx context.Context, key string, v T) (id string, created bool, err error)
}

// ExistenceChecker is implemented by stores that can tell in one call which of many IDs
// still name live records. The batch importer uses it once per page to notice local
// records the app deleted while their bindings still point at them, and recreates them;
// without it, the importer reads each record it would otherwise skip as unchanged with
// Get. A store backed by SQL typically answers with one SELECT … WHERE id IN (…).
type ExistenceChecker interface {
	// Existing returns the subset of ids that name live records. Unknown, malformed and
	// repeated IDs are not errors: they are absent from (or appear once in) the result.
	Existing(ctx context.Context, ids []string) (map[string]struct{}, error)
}
