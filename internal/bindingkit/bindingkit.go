// Package bindingkit holds the helpers connkit's own binding stores and runners share and
// users never need: time normalisation, the checks of bindings and filters (from
// internal/bindingrule, which the memory store uses too), Claim/Renew argument checks and the lease rule of
// binding.Store as a function of a stored binding. The memory store in package binding
// keeps private copies (binding cannot import this package, which imports it).
package bindingkit

import (
	"fmt"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/bindingrule"
)

// UTC returns t in UTC without its monotonic reading, truncated to the microsecond that
// every store keeps; the zero time stays zero. Stores normalise every time they store.
func UTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// ValidateClaim reports, as an error matching binding.ErrInvalid, Claim or Renew (op)
// arguments that cannot make a lease: an empty owner or a ttl that is not positive.
func ValidateClaim(op string, id int64, owner string, ttl time.Duration) error {
	if owner == "" {
		return fmt.Errorf("binding: %s binding %d: owner is empty; name the worker: %w", op, id, binding.ErrInvalid)
	}
	if ttl <= 0 {
		return fmt.Errorf("binding: %s binding %d for %q: ttl %s is not positive: %w", op, id, owner, ttl, binding.ErrInvalid)
	}
	return nil
}

// Validate reports, as an error matching binding.ErrInvalid, what makes b unstorable
// (see binding.Binding): stores call it before every write.
func Validate(b *binding.Binding) error {
	return bindingrule.Check(b.Backend, b.Model, string(b.Status), b.RetryCount)
}

// ValidateKeyed is Validate, prefixed with op, plus the rule that a binding looked up or
// inserted by its IDs needs at least one of them.
func ValidateKeyed(op string, b *binding.Binding) error {
	return bindingrule.CheckKeyed(op, b.Backend, b.Model, string(b.Status), b.RetryCount, b.ExternalID, b.LocalID)
}

// ValidateFilter reports, as an error matching binding.ErrInvalid, a filter List cannot
// run (see binding.Filter).
func ValidateFilter(f *binding.Filter) error {
	return bindingrule.CheckFilter(f.Statuses, f.RetryableBelow, f.Limit)
}

// CanRetry reports whether the failed binding b may be tried again under a limit of
// maxRetries consecutive failures. Bindings that are not failed can always be synced.
func CanRetry(b *binding.Binding, maxRetries int) bool {
	return b.Status != binding.StatusFailed || b.RetryCount < maxRetries
}

// Leased reports whether someone holds an unexpired lease on b at time now.
func Leased(b *binding.Binding, now time.Time) bool {
	return b.LeaseOwner != "" && now.Before(b.LeaseExpiresAt)
}

// LeaseError is the error of a write naming owner that the lease rule of binding.Store
// refuses on the stored b, whose lease the store judged unexpired (leased) or not: a
// *binding.LeaseLostError, a *binding.LockedError, or nil when the write may go ahead.
// SQL stores, which apply the rule in their WHERE clause, call it to explain a refusal.
func LeaseError(b *binding.Binding, owner string, leased bool) error {
	if owner != "" {
		if b.LeaseOwner != owner {
			return &binding.LeaseLostError{ID: b.ID, Owner: owner, Holder: b.LeaseOwner, Expires: b.LeaseExpiresAt}
		}
		return nil
	}
	if b.LeaseOwner != "" && leased {
		return &binding.LockedError{ID: b.ID, Owner: b.LeaseOwner, Expires: b.LeaseExpiresAt}
	}
	return nil
}
