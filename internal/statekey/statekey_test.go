package statekey

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	if err := Check("", "cursor"); err != nil {
		t.Fatalf("Check(\"\", \"cursor\") = %v, want nil", err)
	}
	if err := Check("shop", ""); !errors.Is(err, ErrEmptyName) {
		t.Fatalf("Check(\"shop\", \"\") = %v, want ErrEmptyName", err)
	}
}
