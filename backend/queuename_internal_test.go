package backend

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/report"
)

func TestQueueNameIsValidAndDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, name := range []string{"shop", "shop-eu", "Shop-EU", "shop.eu", "shop eu", "shop_eu", "ÉCOLE", "---",
		"a-very-long-backend-name-that-goes-on-and-on-past-what-river-accepts-as-a-queue-name"} {
		q := queueName(name)
		var w queue.Workers
		if err := w.SetQueue(q); err != nil {
			t.Errorf("queueName(%q) = %q: %v", name, q, err)
		}
		if other, dup := seen[q]; dup {
			t.Errorf("queueName(%q) = queueName(%q) = %q", name, other, q)
		}
		seen[q] = name
	}
	if got := queueName("shop-eu"); got != "connkit-shop-eu" {
		t.Errorf("a name River takes as it is keeps its spelling: got %q", got)
	}
}

// TestJobErrorPermanence: a job whose records all failed in a way a retry cannot change
// ends at once; one with any failure a retry may fix (or with failures it did not keep)
// is retried.
func TestJobErrorPermanence(t *testing.T) {
	rec := func(err error) error {
		return &report.RecordError{Op: "export", Model: "m", LocalID: "1", Step: "create", Err: err}
	}
	status := func(code int) error { return rec(&adapter.Error{Method: "POST", URL: "http://api/x", Status: code}) }
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"422 validation", &report.PartialError{Failed: 1, Errors: []error{status(422)}}, true},
		{"409 conflict and 404", &report.PartialError{Failed: 2, Errors: []error{status(409), status(404)}}, true},
		{"required value", &report.PartialError{Failed: 1, Errors: []error{rec(fmt.Errorf("name: %w", mapper.ErrRequired))}}, true},
		{"too many retries", &report.PartialError{Failed: 1, Errors: []error{rec(report.ErrTooManyRetries)}}, true},
		{"503", &report.PartialError{Failed: 1, Errors: []error{status(503)}}, false},
		{"429", &report.PartialError{Failed: 1, Errors: []error{status(429)}}, false},
		{"408", &report.PartialError{Failed: 1, Errors: []error{status(408)}}, false},
		{"422 and a reset", &report.PartialError{Failed: 2, Errors: []error{status(422), rec(errors.New("connection reset"))}}, false},
		{"more failures than kept", &report.PartialError{Failed: 3, Errors: []error{status(422)}}, false},
		{"missing dependency", &report.PartialError{Failed: 1, Errors: []error{rec(mapper.ErrMissingDependency)}}, false},
		{"unknown model", fmt.Errorf("x: %w", ErrUnknownModel), true},
		{"listing broke", errors.New("connection refused"), false},
	} {
		var perm interface{ Unwrap() error }
		got := JobError(tc.err)
		isPerm := errors.As(got, &perm) && got != tc.err
		if isPerm != tc.permanent {
			t.Errorf("%s: permanent = %v, want %v (%v)", tc.name, isPerm, tc.permanent, got)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: the job error no longer wraps the run's error", tc.name)
		}
	}
}

// identityKey's one-ID shortcut gives the key the general case gives (keys already
// stored in River must keep matching).
func TestIdentityKeyOneID(t *testing.T) {
	for _, id := range []string{"1", "gid://shopify/Product/1", `a"b\c`, "<&>", "\u2028", "bad\xffutf8", "", strings.Repeat("x", 80)} {
		got := identityKey("shop", "webhook", "shopify", []string{id})
		// The general case, as a two-ID list that compacts to one.
		want := identityKey("shop", "webhook", "shopify", []string{id, id})
		if got != want {
			t.Errorf("identityKey(%q) = %q, want %q", id, got, want)
		}
	}
}
