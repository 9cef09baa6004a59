package bindingrule_test

import (
	"errors"
	"testing"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/bindingrule"
)

// The status list here must stay the one of package binding.
func TestValidStatusIsBindingsStatuses(t *testing.T) {
	for _, s := range []binding.Status{binding.StatusPending, binding.StatusInProgress, binding.StatusSuccess,
		binding.StatusFailed, binding.StatusSkipped} {
		if !bindingrule.ValidStatus(string(s)) {
			t.Errorf("ValidStatus(%q) = false", s)
		}
	}
	for _, s := range []string{"", "done", "Success", "pending "} {
		if bindingrule.ValidStatus(s) {
			t.Errorf("ValidStatus(%q) = true", s)
		}
	}
	if !errors.Is(bindingrule.Check("", "m", "", 0), binding.ErrInvalid) {
		t.Error("bindingrule.ErrInvalid is not binding.ErrInvalid")
	}
}

func TestCheckKeyedNeedsAnID(t *testing.T) {
	if err := bindingrule.CheckKeyed("upsert", "shop", "product", "", 0, "", ""); !errors.Is(err, binding.ErrInvalid) {
		t.Errorf("CheckKeyed without IDs = %v, want ErrInvalid", err)
	}
	if err := bindingrule.CheckKeyed("upsert", "shop", "product", "", 0, "", "7"); err != nil {
		t.Errorf("CheckKeyed with a local ID = %v", err)
	}
	if err := bindingrule.CheckFilter([]binding.Status{"nope"}, 0, 0); !errors.Is(err, binding.ErrInvalid) {
		t.Errorf("CheckFilter of an unknown status = %v", err)
	}
}
