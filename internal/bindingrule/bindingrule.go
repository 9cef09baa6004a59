// Package bindingrule holds the checks every binding store applies to what it is given — a
// binding to write, a filter to list — so the memory store (package binding) and the SQL
// stores (package sqlstore) reject the same input with the same error. It sits below
// package binding, which imports it (internal/bindingkit, above binding, gives the SQL
// stores the same checks on binding values), so it knows a binding by its fields.
package bindingrule

import (
	"errors"
	"fmt"
)

// ErrInvalid is binding.ErrInvalid (defined here so that this package needs no import of
// package binding, which imports it).
var ErrInvalid = errors.New("binding: invalid")

// ValidStatus reports whether s is one of binding's Status constants.
func ValidStatus(s string) bool {
	switch s {
	case "pending", "in_progress", "success", "failed", "skipped":
		return true
	}
	return false
}

// Check reports, as an error matching ErrInvalid, what makes a binding unstorable: an
// empty backend or model, an unknown status (empty is allowed and means pending) or a
// negative retry count. Stores call it before every write; it does not require an ID
// because an Upsert by ID may leave both IDs empty (empty IDs never clear stored ones).
func Check(backend, model, status string, retryCount int) error {
	switch {
	case backend == "":
		return fmt.Errorf("binding: backend is empty; set Binding.Backend: %w", ErrInvalid)
	case model == "":
		return fmt.Errorf("binding: model is empty on backend %q; set Binding.Model: %w", backend, ErrInvalid)
	case status != "" && !ValidStatus(status):
		return fmt.Errorf("binding: unknown status %q for %s/%s; use one of the Status constants: %w",
			status, backend, model, ErrInvalid)
	case retryCount < 0:
		return fmt.Errorf("binding: negative retry count %d for %s/%s: %w", retryCount, backend, model, ErrInvalid)
	}
	return nil
}

// CheckKeyed is Check, prefixed with op, plus the rule that a binding looked up or
// inserted by its IDs needs at least one of them.
func CheckKeyed(op, backend, model, status string, retryCount int, externalID, localID string) error {
	if err := Check(backend, model, status, retryCount); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if externalID == "" && localID == "" {
		return fmt.Errorf("%s %s/%s: binding has neither an external nor a local ID; set at least one: %w",
			op, backend, model, ErrInvalid)
	}
	return nil
}

// CheckFilter reports, as an error matching ErrInvalid, a filter List cannot run: an
// unknown status, or a negative RetryableBelow or Limit.
func CheckFilter[S ~string](statuses []S, retryableBelow, limit int) error {
	for _, s := range statuses {
		if !ValidStatus(string(s)) {
			return fmt.Errorf("binding: filter has unknown status %q: %w", s, ErrInvalid)
		}
	}
	if retryableBelow < 0 {
		return fmt.Errorf("binding: filter RetryableBelow is negative (%d); use 0 for no limit: %w", retryableBelow, ErrInvalid)
	}
	if limit < 0 {
		return fmt.Errorf("binding: filter Limit is negative (%d); use 0 for no limit: %w", limit, ErrInvalid)
	}
	return nil
}
