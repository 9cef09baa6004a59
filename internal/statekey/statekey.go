// Package statekey validates the (backend, name) keys of connkit's state stores, so the
// memory store and the SQL store reject the same keys with the same error.
package statekey

import (
	"errors"
	"fmt"
)

// ErrEmptyName is state.ErrEmptyName (defined here so this package needs no import of
// package state, which imports it).
var ErrEmptyName = errors.New("state: empty name")

// Check validates a (backend, name) key; stores call it before touching anything. The
// backend may be empty (values shared by every backend); the name may not.
func Check(backend, name string) error {
	if name == "" {
		return fmt.Errorf("%w: backend %q: give the value a name such as \"cursor\"", ErrEmptyName, backend)
	}
	return nil
}
