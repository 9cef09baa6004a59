// Package binding remembers which local record is which external record, and how its last
// sync went. It is the Go counterpart of generic_connector's binding models and OCA's Binder.
//
// A [Binding] links (backend, model, local ID) to an external ID. A [Store] keeps bindings
// and enforces uniqueness on both sides; it also grants leases ([Store.Claim]) so that two
// workers never sync the same record at once. Stores: [NewMemory] for unit tests, and
// SQLite / Postgres in package sqlstore. Every store passes the conformance suite in package
// bindingtest.
//
// A [Binder] is the everyday view for one backend: ToLocal and ToExternal translate IDs
// (the mapper's relational fields use them).
//
// Leases: a worker holds a binding while it syncs the record ([Claimer.Hold] takes the
// lease, renews it in the background and tells the worker when it was lost), and every
// write that records an outcome names the lease it holds, so a worker whose lease was
// taken over gets ErrLeaseLost instead of overwriting the new holder's work (see [Store]).
//
// Errors match the sentinels ErrNotFound, ErrConflict, ErrLocked, ErrLeaseLost and
// ErrInvalid with errors.Is; for errors.As, a refused claim or write is a *LockedError, a
// lost lease a *LeaseLostError, and UpsertBatch's error a *BatchError.
package binding

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/connkit/connkit/internal/bindingrule"
)

// Status is the sync state of one binding.
type Status string

// The statuses a binding moves through.
const (
	StatusPending    Status = "pending"
	StatusInProgress Status = "in_progress"
	StatusSuccess    Status = "success"
	StatusFailed     Status = "failed"
	StatusSkipped    Status = "skipped"
)

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool { return bindingrule.ValidStatus(string(s)) }

// Binding links one local record to one external record on one backend.
//
// Stores refuse to write a binding, with an error matching ErrInvalid, whose Backend or
// Model is empty, whose Status is not one of the Status constants (empty is allowed and
// means pending) or whose RetryCount is negative; a binding looked up or inserted by its
// IDs (Ensure, Upsert without an ID) needs at least one of ExternalID and LocalID.
type Binding struct {
	// ID is assigned by the store on insert and never changes.
	ID int64
	// Backend and Model scope the binding: "shop-eu", "product".
	Backend string
	Model   string
	// LocalID and ExternalID identify the record on each side. Either may be empty while
	// the record exists on one side only (an import not yet written, an export not yet sent).
	LocalID    string
	ExternalID string
	// Status of the last sync, with its error text when it failed.
	Status    Status
	LastError string
	// RetryCount counts consecutive failures; a success resets it.
	RetryCount int
	// SyncedAt is when the last successful sync finished.
	SyncedAt time.Time
	// ExternalUpdatedAt is the external record's own modification time at the last sync,
	// used to skip records that did not change.
	ExternalUpdatedAt time.Time
	// Hash is a content hash of the last synced payload, the other way to skip unchanged records.
	Hash string
	// NoExport excludes the record from export.
	NoExport bool
	// LeaseOwner and LeaseExpiresAt describe the current claim, if any (see Store.Claim).
	// Stores set them; in a binding passed to Upsert or UpsertBatch, LeaseOwner names the
	// lease the writer holds ("" for none) and LeaseExpiresAt is ignored.
	LeaseOwner     string
	LeaseExpiresAt time.Time
	// CreatedAt and UpdatedAt are maintained by the store.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// leased reports whether someone holds an unexpired lease on b at time now (a private
// copy of bindingkit.Leased, which this package cannot import).
func (b *Binding) leased(now time.Time) bool {
	return b.LeaseOwner != "" && now.Before(b.LeaseExpiresAt)
}

// Success carries what MarkSuccess records.
type Success struct {
	// Owner names the lease the writer holds ("" for none); see Store for the rule.
	Owner string
	// LocalID and ExternalID, when not empty, are set on the binding (an export learns the
	// external ID from the create response; an import learns the local ID from the app).
	LocalID    string
	ExternalID string
	// Hash and ExternalUpdatedAt describe the synced payload.
	Hash              string
	ExternalUpdatedAt time.Time
	// At is the sync time; the store's clock is used when zero.
	At time.Time
}

// Failure carries what MarkFailed records.
type Failure struct {
	// Owner names the lease the writer holds ("" for none); see Store for the rule.
	Owner string
	// Error is the error text stored as the binding's LastError.
	Error string
}

// Filter selects bindings in List. Zero fields match everything. A filter with an unknown
// status, or a negative RetryableBelow or Limit, is invalid (ErrInvalid).
type Filter struct {
	Backend string
	Model   string
	// Statuses keeps bindings whose status is any of these.
	Statuses []Status
	// RetryableBelow, when > 0, keeps failed bindings whose RetryCount is below it
	// (the retry queue: failed records that may be tried again).
	RetryableBelow int
	// ChangedSince keeps bindings updated at or after this time.
	ChangedSince time.Time
	// Limit caps the number of bindings yielded (0: no limit).
	Limit int
}

// Store keeps bindings. Implementations are safe for concurrent use, and the SQL ones are
// safe across processes sharing one database.
//
// Uniqueness: at most one binding has a given (Backend, Model, ExternalID) and at most one a
// given (Backend, Model, LocalID), for non-empty IDs. Writes that would break this fail with
// an error matching ErrConflict.
//
// Leases guard writes. Upsert and UpsertBatch (for each item that updates a stored
// binding), MarkSuccess, MarkFailed and SetStatus name the lease the writer holds:
// Binding.LeaseOwner, Success.Owner, Failure.Owner, the owner argument. A write naming
// owner O is applied only while the stored binding's LeaseOwner is O (expired or not: no
// one else has claimed it since); otherwise it writes nothing and fails with a
// *LeaseLostError (ErrLeaseLost). A write naming no owner is applied only while no one
// holds an unexpired lease; otherwise it fails with a *LockedError (ErrLocked). Inserts
// are not checked. These writes never change the lease itself: Claim, Renew and Release
// do. Checks come in this order: invalid arguments, a missing binding, two IDs bound to
// two bindings, the lease, then uniqueness of the written IDs.
//
// Times: the memory store and the SQLite store read the lease clock in the process (one
// machine); the Postgres store takes lease times (expiry, and "unexpired" above) from the
// database clock, so processes whose clocks disagree still agree on who holds a lease.
type Store interface {
	// Get returns the binding with the given ID, or an error matching ErrNotFound.
	Get(ctx context.Context, id int64) (Binding, error)
	// GetByExternal returns the binding of an external ID, or ErrNotFound.
	GetByExternal(ctx context.Context, backend, model, externalID string) (Binding, error)
	// GetByLocal returns the binding of a local ID, or ErrNotFound.
	GetByLocal(ctx context.Context, backend, model, localID string) (Binding, error)
	// GetManyByExternal returns the bindings of many external IDs at once, keyed by
	// external ID; IDs without a binding (and empty IDs) are absent from the map, which is
	// not an error. Repeated IDs are allowed. Batch importers use it to read a page's
	// bindings in one round trip instead of one per record.
	GetManyByExternal(ctx context.Context, backend, model string, externalIDs []string) (map[string]Binding, error)

	// Ensure returns the binding matching b's ExternalID (or, when that is empty, its
	// LocalID), inserting b when there is none. created reports an insert. It is atomic:
	// concurrent Ensure calls for one key produce one binding. b.ID is ignored; an empty
	// Status is stored as StatusPending. Ensure fails with ErrInvalid when b is invalid or
	// has neither ID (see Binding), and with ErrConflict when the insert would reuse b's other ID.
	Ensure(ctx context.Context, b Binding) (got Binding, created bool, err error)
	// Upsert writes b: when b.ID is set, that binding (ErrNotFound if it does not exist);
	// otherwise the binding matching b's ExternalID, else the one matching its LocalID;
	// otherwise a new one (which needs at least one of the two IDs, or ErrInvalid). Every
	// field is written except ID, CreatedAt and the lease, with one exception: an empty
	// LocalID or ExternalID in b never clears a value the stored binding has. An empty
	// Status is written as StatusPending. It returns the stored binding, or ErrConflict when
	// b's IDs belong to two different bindings. b.LeaseOwner names the writer's lease (see
	// the lease rule above).
	Upsert(ctx context.Context, b Binding) (Binding, error)
	// UpsertBatch upserts every binding in bs with Upsert's rules, in order (a later item
	// sees the earlier ones), and returns the stored bindings in the same order. It is all
	// or nothing: on error nothing is written, and the error is a *BatchError naming the
	// index of the failing binding. Items are checked on their own first: when any item is
	// invalid (ErrInvalid), the error names the first invalid one, even if an earlier item
	// would conflict; otherwise it names the first item that fails in order. bs is the
	// caller's again once UpsertBatch returns (callers reuse it): a store must not keep it.
	UpsertBatch(ctx context.Context, bs []Binding) ([]Binding, error)

	// MarkSuccess sets the status to success, clears LastError, resets RetryCount and
	// records s. Empty fields of s (IDs, Hash, zero ExternalUpdatedAt) keep the stored
	// values; a zero s.At means now. Setting an ID bound elsewhere fails with ErrConflict.
	// s.Owner names the writer's lease (see the lease rule above).
	MarkSuccess(ctx context.Context, id int64, s Success) (Binding, error)
	// MarkFailed sets the status to failed, stores f.Error as LastError and adds one to
	// RetryCount. f.Owner names the writer's lease (see the lease rule above).
	MarkFailed(ctx context.Context, id int64, f Failure) (Binding, error)
	// SetStatus sets the status (pending, in_progress, skipped…) without touching the rest.
	// owner names the writer's lease (see the lease rule above).
	SetStatus(ctx context.Context, id int64, owner string, s Status) error

	// Claim leases the binding to owner until now+ttl. A binding leased to someone else
	// and not yet expired yields an error matching ErrLocked (a *LockedError). Claiming a
	// binding one already holds extends the lease. An empty owner or a ttl that is not
	// positive is ErrInvalid.
	Claim(ctx context.Context, id int64, owner string, ttl time.Duration) (Binding, error)
	// Renew extends owner's lease to now+ttl, only while owner still holds it (its
	// LeaseOwner is owner, expired or not). When someone else claimed it, or it was
	// released, Renew changes nothing and fails with a *LeaseLostError (ErrLeaseLost); a
	// missing binding is ErrNotFound. Unlike Claim, it never takes a lease that was lost.
	Renew(ctx context.Context, id int64, owner string, ttl time.Duration) (Binding, error)
	// Release ends owner's lease. Releasing a lease one does not hold, or releasing a
	// binding that no longer exists, is a no-op.
	Release(ctx context.Context, id int64, owner string) error

	// Delete removes the binding; deleting a missing one yields ErrNotFound.
	Delete(ctx context.Context, id int64) error
	// List yields the bindings matching f (every set field must match) in ascending ID
	// order. Stores page internally, so memory stays bounded however many bindings match,
	// and hold no lock or connection while yielding: the loop body may write to the store.
	// An invalid filter (see Filter) yields a single error matching ErrInvalid.
	List(ctx context.Context, f Filter) iter.Seq2[Binding, error]
	// Counts returns how many bindings of backend and model are in each status; an empty
	// backend or model counts them all. Statuses no binding has may be absent from the map.
	Counts(ctx context.Context, backend, model string) (map[Status]int, error)
}

// Sentinel errors returned (wrapped) by stores.
var (
	// ErrNotFound: no binding matches.
	ErrNotFound = errors.New("binding: not found")
	// ErrConflict: the write would bind an ID that is already bound elsewhere.
	ErrConflict = errors.New("binding: conflict")
	// ErrLocked: someone else holds the binding's lease.
	ErrLocked = errors.New("binding: locked")
	// ErrLeaseLost: the writer named a lease it no longer holds (it expired and another
	// worker claimed it, or it was released). Nothing was written: the new holder's sync
	// wins; the worker should stop and leave the record to it.
	ErrLeaseLost = errors.New("binding: lease lost")
	// ErrInvalid: the caller passed a binding, filter or argument that cannot be stored
	// or used (missing backend or model, unknown status, no ID at all…). Nothing was written.
	ErrInvalid = bindingrule.ErrInvalid
)

// LockedError is returned by Claim, and by a write naming no lease, when another owner
// holds an unexpired lease.
type LockedError struct {
	// ID is the binding asked for.
	ID int64
	// Owner holds the lease until Expires; retry after that, or skip the record.
	Owner   string
	Expires time.Time
}

// Error implements error.
func (e *LockedError) Error() string {
	return fmt.Sprintf("binding %d is locked by %q until %s", e.ID, e.Owner, e.Expires.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLocked) true for a *LockedError.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LeaseLostError is returned by Renew and by writes naming a lease the writer no longer
// holds.
type LeaseLostError struct {
	// ID is the binding written.
	ID int64
	// Owner is the lease the writer named.
	Owner string
	// Holder holds the lease now ("" when no one does) until Expires.
	Holder  string
	Expires time.Time
}

// Error implements error.
func (e *LeaseLostError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("binding %d: lease of %q was lost (released or taken over and released); nothing was written", e.ID, e.Owner)
	}
	return fmt.Sprintf("binding %d: lease of %q was lost to %q (until %s); nothing was written",
		e.ID, e.Owner, e.Holder, e.Expires.Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLeaseLost) true for a *LeaseLostError.
func (e *LeaseLostError) Is(target error) bool { return target == ErrLeaseLost }

// checkLease applies the lease rule of Store to a write naming owner on the stored b at now.
func checkLease(b *Binding, owner string, now time.Time) error {
	if owner != "" {
		if b.LeaseOwner != owner {
			return &LeaseLostError{ID: b.ID, Owner: owner, Holder: b.LeaseOwner, Expires: b.LeaseExpiresAt}
		}
		return nil
	}
	if b.leased(now) {
		return &LockedError{ID: b.ID, Owner: b.LeaseOwner, Expires: b.LeaseExpiresAt}
	}
	return nil
}
