package bindingkit_test

import (
	"errors"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/bindingkit"
)

func TestUTC(t *testing.T) {
	if got := bindingkit.UTC(time.Time{}); !got.IsZero() {
		t.Fatalf("UTC(zero) = %v", got)
	}
	in := time.Date(2025, 1, 1, 12, 0, 0, 1_234_567, time.FixedZone("X", 3600))
	if got := bindingkit.UTC(in); got.Location() != time.UTC || got.Nanosecond() != 1_234_000 || !got.Equal(in.Truncate(time.Microsecond)) {
		t.Fatalf("UTC(%v) = %v", in, got)
	}
}

func TestLeaseError(t *testing.T) {
	b := &binding.Binding{ID: 3, LeaseOwner: "w1"}
	if err := bindingkit.LeaseError(b, "w1", true); err != nil {
		t.Fatalf("holder: %v", err)
	}
	if err := bindingkit.LeaseError(b, "w2", false); !errors.Is(err, binding.ErrLeaseLost) {
		t.Fatalf("other owner: %v", err)
	}
	if err := bindingkit.LeaseError(b, "", true); !errors.Is(err, binding.ErrLocked) {
		t.Fatalf("no owner, leased: %v", err)
	}
	if err := bindingkit.LeaseError(b, "", false); err != nil {
		t.Fatalf("no owner, expired: %v", err)
	}
	if err := bindingkit.ValidateClaim("claim", 1, "", time.Second); !errors.Is(err, binding.ErrInvalid) {
		t.Fatalf("ValidateClaim(empty owner) = %v", err)
	}
	if err := bindingkit.ValidateClaim("renew", 1, "w", 0); !errors.Is(err, binding.ErrInvalid) {
		t.Fatalf("ValidateClaim(ttl 0) = %v", err)
	}
}
