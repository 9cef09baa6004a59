// Package schedulekit holds what package schedule's stores (the memory store, sqlstore's
// SQL store) and apisync's config checks share: the spec parser and the entry-name rule,
// so every store accepts the same specs and names and rejects the others with the same
// error.
package schedulekit

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is schedule.ErrInvalid (defined here so this package needs no import of
// package schedule, which imports it).
var ErrInvalid = errors.New("schedule: invalid argument")

// maxNameLen bounds entry names (they are keys in SQL tables and log fields).
const maxNameLen = 200

// CheckName validates an entry name: 1 to 200 bytes of valid UTF-8 without control
// characters. Stores call it before writing; the error wraps ErrInvalid.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty entry name", ErrInvalid)
	case len(name) > maxNameLen:
		return fmt.Errorf("%w: entry name of %d bytes is longer than %d", ErrInvalid, len(name), maxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: entry name %q is not valid UTF-8", ErrInvalid, name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: entry name %q contains a control character", ErrInvalid, name)
	}
	return nil
}
