package binding

import (
	"fmt"
	"time"

	"github.com/connkit/connkit/internal/bindingrule"
)

// validate applies bindingrule.Check to b (see Binding for the rules).
func (b *Binding) validate() error {
	return bindingrule.Check(b.Backend, b.Model, string(b.Status), b.RetryCount)
}

// validateKeyed is validate plus the rule that a binding looked up or inserted by its IDs
// needs at least one of them.
func (b *Binding) validateKeyed(op string) error {
	return bindingrule.CheckKeyed(op, b.Backend, b.Model, string(b.Status), b.RetryCount, b.ExternalID, b.LocalID)
}

// validate reports, as an error matching ErrInvalid, a filter List cannot run.
func (f *Filter) validate() error {
	return bindingrule.CheckFilter(f.Statuses, f.RetryableBelow, f.Limit)
}

// match reports whether b passes every set field of f (the memory store's List; SQL stores
// translate f into a WHERE clause instead). Filter's field docs are the reference, which
// bindingtest's model implements on its own.
func (f *Filter) match(b *Binding) bool {
	if f.Backend != "" && b.Backend != f.Backend {
		return false
	}
	if f.Model != "" && b.Model != f.Model {
		return false
	}
	if len(f.Statuses) > 0 {
		ok := false
		for _, s := range f.Statuses {
			if b.Status == s {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.RetryableBelow > 0 && (b.Status != StatusFailed || b.RetryCount >= f.RetryableBelow) {
		return false
	}
	if !f.ChangedSince.IsZero() && b.UpdatedAt.Before(f.ChangedSince) {
		return false
	}
	return true
}

// validateClaim reports, as an error matching ErrInvalid, Claim or Renew arguments that
// cannot make a lease: an empty owner or a ttl that is not positive.
func validateClaim(op string, id int64, owner string, ttl time.Duration) error {
	if owner == "" {
		return fmt.Errorf("binding: %s binding %d: owner is empty; name the worker: %w", op, id, ErrInvalid)
	}
	if ttl <= 0 {
		return fmt.Errorf("binding: %s binding %d for %q: ttl %s is not positive: %w", op, id, owner, ttl, ErrInvalid)
	}
	return nil
}

// BatchError is the error UpsertBatch returns: which item failed and why. It unwraps to
// the cause, so errors.Is(err, ErrConflict) works through it.
type BatchError struct {
	// Index of the failing binding in the batch.
	Index int
	// Err is why it failed.
	Err error
}

// Error implements error.
func (e *BatchError) Error() string {
	return fmt.Sprintf("binding: upsert batch item %d (nothing was written): %v", e.Index, e.Err)
}

// Unwrap returns the cause.
func (e *BatchError) Unwrap() error { return e.Err }

// utc returns t in UTC without its monotonic reading, truncated to the microsecond that
// every store keeps; the zero time stays zero. (internal/bindingkit.UTC for the other stores.)
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}
