// Package audit holds what connkit's audit recorders share: the settings synclog.Option
// fills (read by synclog's Ring and slog recorder and by sqlstore's log), the default body
// limit, and body truncation.
package audit

import (
	"strconv"
	"unicode/utf8"
)

// DefaultBodyLimit is how many bytes of each body the Ring, the SQL log and the adapter's
// audit entries keep unless told otherwise.
const DefaultBodyLimit = 64 << 10

// Config is what synclog's recorder options set. E is synclog.Entry (a type parameter
// only so that this package need not import synclog, which imports it). A recorder fills
// its defaults, then applies the options.
type Config[E any] struct {
	// BodyLimit is how many bytes of each body are kept: 0 keeps none, less than 0 keeps
	// bodies whole.
	BodyLimit int
	// Redact, when not nil, redacts an entry before it is kept.
	Redact func(*E)
}

// Apply fills c from opts, skipping nil options.
func Apply[E any, O ~func(*Config[E])](c *Config[E], opts []O) {
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
}

// Truncate cuts s to at most limit bytes on a UTF-8 boundary and appends
// "…[truncated N bytes]", N being the number of bytes removed. It reports whether it cut.
// A limit of 0 or less means no limit.
func Truncate(s string, limit int) (string, bool) {
	if limit <= 0 || len(s) <= limit {
		return s, false
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[truncated " + strconv.Itoa(len(s)-cut) + " bytes]", true
}

// Body applies a Config.BodyLimit to s with Truncate's marker: a limit of 0 drops s (and
// reports a cut when s was not empty), a negative one keeps s whole.
func Body(s string, limit int) (string, bool) {
	switch {
	case limit < 0:
		return s, false
	case limit == 0:
		return "", s != ""
	}
	return Truncate(s, limit)
}
