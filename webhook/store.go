package webhook

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"time"
)

// Status is where a delivery is in its processing.
type Status string

// Delivery statuses. A delivery is stored pending before the sender is answered, and ends
// processed, ignored (no handler for its event type) or failed (its handler returned an
// error on the last attempt allowed; it can still be retried on purpose).
const (
	StatusPending   Status = "pending"
	StatusProcessed Status = "processed"
	StatusIgnored   Status = "ignored"
	StatusFailed    Status = "failed"
)

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusProcessed, StatusIgnored, StatusFailed:
		return true
	}
	return false
}

// Delivery is one webhook request as it was received, and what became of it.
type Delivery struct {
	// Endpoint names the receiver that took the delivery ("shopify"); with ID it is the
	// delivery's key.
	Endpoint string
	// ID is the sender's delivery ID (the receiver's ID header), or, when the sender
	// sends none, "sha256:" and the hex SHA-256 of the body.
	ID string
	// Event is the event type ("products/update"), from a header or the body; may be empty.
	Event string
	// Header holds the request headers with signatures and credentials redacted.
	Header http.Header
	// Body is the raw request body, byte for byte.
	Body []byte
	// ReceivedAt is when the receiver stored the delivery.
	ReceivedAt time.Time

	// Status, Attempts (processing attempts so far), LastError (of the last failed attempt)
	// and UpdatedAt (of the last status change) track processing.
	Status    Status
	Attempts  int
	LastError string
	UpdatedAt time.Time
	// Generation counts the delivery's resets (Store.Reset adds one). An attempt records
	// its outcome for the generation it read, so the outcome of an attempt that was
	// running when the delivery was replayed cannot overwrite the replay.
	Generation int
}

// Outcome is what one processing attempt of a delivery came to, recorded by Store.Finish.
type Outcome struct {
	// Generation is the delivery's Generation when the attempt read it. Finish records
	// nothing, and fails with ErrStale, when the delivery has been reset since.
	Generation int
	// Status is the status the attempt leaves the delivery in.
	Status Status
	// Error is the attempt's error text; "" clears LastError.
	Error string
	// At is when the attempt ended; zero is the store's clock.
	At time.Time
}

// Filter selects deliveries in Store.List. Zero fields match everything.
type Filter struct {
	Endpoint string
	Status   Status
	// ReceivedBefore keeps deliveries received strictly before it.
	ReceivedBefore time.Time
	// Limit caps how many are yielded (0: no cap).
	Limit int
}

// Errors returned (wrapped) by stores.
var (
	// ErrNotFound: no delivery has the given endpoint and ID.
	ErrNotFound = errors.New("webhook: delivery not found")
	// ErrInvalid: an argument cannot be stored (empty endpoint or ID, unknown status).
	ErrInvalid = errors.New("webhook: invalid delivery")
	// ErrStale: Store.Finish was given the outcome of an attempt that read an earlier
	// generation of the delivery (it was reset during the attempt); nothing was recorded.
	ErrStale = errors.New("webhook: delivery reset during the attempt")
)

// Store keeps deliveries. Implementations are safe for concurrent use, and SQL ones
// across processes sharing a database. Package webhooktest holds the conformance suite
// every implementation passes.
type Store interface {
	// Insert stores d (with d.Status pending when empty) unless a delivery with the same
	// Endpoint and ID exists. inserted is false for such a duplicate, which is left as it
	// was and returned in stored; otherwise stored is d as written. It is atomic:
	// concurrent inserts of one key store one delivery.
	Insert(ctx context.Context, d Delivery) (stored Delivery, inserted bool, err error)
	// Get returns one delivery, or an error matching ErrNotFound.
	Get(ctx context.Context, endpoint, id string) (Delivery, error)
	// Finish records the outcome of one processing attempt (status, error text, time) and
	// adds one to Attempts, atomically, if the delivery's Generation is still
	// o.Generation; otherwise it changes nothing and returns an error matching ErrStale.
	// ErrNotFound when the delivery does not exist.
	Finish(ctx context.Context, endpoint, id string, o Outcome) (Delivery, error)
	// Reset sets a delivery back to pending to be processed again (retry of a failed one,
	// replay of a processed or ignored one) and adds one to its Generation, keeping
	// Attempts and LastError.
	Reset(ctx context.Context, endpoint, id string, at time.Time) (Delivery, error)
	// List yields the deliveries matching f, oldest received first (ties by ID). Stores
	// page internally, so memory stays bounded, and hold no lock or connection while
	// yielding.
	List(ctx context.Context, f Filter) iter.Seq2[Delivery, error]
	// Purge deletes the deliveries received before before whose status is one of
	// statuses (all statuses when none is given) and returns how many it deleted.
	Purge(ctx context.Context, before time.Time, statuses ...Status) (int, error)
}

// BatchInserter is a [Store] that stores many deliveries at once. A receiver made
// [WithSpool] moves its backlog into such a store a batch at a time (one transaction in
// the SQL store), rather than one Insert per delivery.
type BatchInserter interface {
	// InsertBatch stores, atomically, each of ds that no stored delivery and no earlier
	// one of ds has the Endpoint and ID of, as Insert stores one; inserted[i] reports
	// whether ds[i] was stored. Duplicates are left as they were. On an error nothing is
	// stored; a delivery the store cannot take fails the batch with an error matching
	// ErrInvalid.
	InsertBatch(ctx context.Context, ds []Delivery) (inserted []bool, err error)
}
