package report_test

import (
	"errors"
	"testing"

	"github.com/connkit/connkit/report"
)

func TestCountsAddAndTotal(t *testing.T) {
	a := report.Counts{Created: 1, Updated: 2, Skipped: 3, Duplicates: 6, Failed: 4, Enqueued: 5}
	b := report.Counts{Created: 10, Updated: 20, Skipped: 30, Duplicates: 60, Failed: 40, Enqueued: 50}
	if got, want := a.Add(b), (report.Counts{Created: 11, Updated: 22, Skipped: 33, Duplicates: 66, Failed: 44, Enqueued: 55}); got != want {
		t.Fatalf("Add = %+v, want %+v", got, want)
	}
	if got := a.Total(); got != 21 {
		t.Fatalf("Total = %d, want 21", got)
	}
}

func TestPartial(t *testing.T) {
	if err := report.Partial(0, nil); err != nil {
		t.Fatalf("Partial(0) = %v, want nil", err)
	}
	cause := errors.New("record 7: sku is invalid")
	err := report.Partial(3, []error{cause})
	var pe *report.PartialError
	if !errors.As(err, &pe) || pe.Failed != 3 {
		t.Fatalf("Partial(3) = %#v, want a *PartialError with Failed 3", err)
	}
	if !errors.Is(err, cause) {
		t.Fatal("the record error is not reachable with errors.Is")
	}
	if got, want := err.Error(), "3 record(s) failed; first: record 7: sku is invalid"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if got, want := report.Partial(2, nil).Error(), "2 record(s) failed"; got != want {
		t.Fatalf("Error() without errors = %q, want %q", got, want)
	}
}
