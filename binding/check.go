package binding

import (
	"fmt"
	"time"
)

// Validate reports, as an error matching ErrInvalid, what makes b unstorable: an empty
// Backend or Model, an unknown Status (empty is allowed and means pending) or a negative
// RetryCount. Stores call it before every write; it does not require an ID because an
// Upsert by b.ID may leave both IDs empty (empty IDs never clear stored ones).
func (b *Binding) Validate() error {
	switch {
	case b.Backend == "":
		return fmt.Errorf("binding: backend is empty; set Binding.Backend: %w", ErrInvalid)
	case b.Model == "":
		return fmt.Errorf("binding: model is empty on backend %q; set Binding.Model: %w", b.Backend, ErrInvalid)
	case b.Status != "" && !b.Status.Valid():
		return fmt.Errorf("binding: unknown status %q for %s/%s; use one of the Status constants: %w",
			b.Status, b.Backend, b.Model, ErrInvalid)
	case b.RetryCount < 0:
		return fmt.Errorf("binding: negative retry count %d for %s/%s: %w", b.RetryCount, b.Backend, b.Model, ErrInvalid)
	}
	return nil
}

// validateKeyed is Validate plus the rule that a binding looked up or inserted by its IDs
// needs at least one of them.
func (b *Binding) validateKeyed(op string) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if b.ExternalID == "" && b.LocalID == "" {
		return fmt.Errorf("%s %s/%s: binding has neither an external nor a local ID; set at least one: %w",
			op, b.Backend, b.Model, ErrInvalid)
	}
	return nil
}

// Validate reports, as an error matching ErrInvalid, a filter List cannot run: an unknown
// status, or a negative RetryableBelow or Limit.
func (f *Filter) Validate() error {
	for _, s := range f.Statuses {
		if !s.Valid() {
			return fmt.Errorf("binding: filter has unknown status %q: %w", s, ErrInvalid)
		}
	}
	if f.RetryableBelow < 0 {
		return fmt.Errorf("binding: filter RetryableBelow is negative (%d); use 0 for no limit: %w", f.RetryableBelow, ErrInvalid)
	}
	if f.Limit < 0 {
		return fmt.Errorf("binding: filter Limit is negative (%d); use 0 for no limit: %w", f.Limit, ErrInvalid)
	}
	return nil
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
