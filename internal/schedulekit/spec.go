package schedulekit

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Spec is a parsed schedule: a fixed interval or a cron expression. Its ticks are a
// function of the spec alone (never of when a process started), so every node computes
// the same tick times and can agree on who runs each one. The zero Spec has no ticks.
type Spec struct {
	text  string
	every time.Duration // > 0 for an interval
	cron  cron.Schedule // non-nil for a cron expression
	utc   bool          // cron without CRON_TZ: read its fields in UTC
}

// ParseSpec parses a schedule:
//
//   - an interval: "@every 15m" or a bare Go duration "15m", a whole number of seconds, at
//     least 1s. Ticks are aligned to multiples of the interval (15m ticks at :00, :15, :30
//     and :45 UTC), not counted from a start time.
//   - a standard 5-field cron expression "minute hour day-of-month month day-of-week"
//     ("*/5 * * * *", "0 3 * * mon-fri") or a descriptor: @yearly (@annually), @monthly,
//     @weekly, @daily (@midnight), @hourly.
//   - either cron form prefixed by a time zone: "CRON_TZ=Europe/Paris 0 3 * * *" (TZ= is
//     accepted too). Without one, cron fields are read in UTC, so nodes in different local
//     zones agree.
//
// A bad spec returns an error matching ErrInvalid that quotes the spec.
func ParseSpec(spec string) (Spec, error) {
	s := strings.TrimSpace(spec)
	fail := func(format string, args ...any) (Spec, error) {
		return Spec{}, specError(spec, fmt.Errorf(format, args...))
	}
	if s == "" {
		return fail("empty spec; use an interval (\"@every 15m\") or a cron expression (\"0 3 * * *\")")
	}
	zone, body := "", s
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		var ok bool
		zone, body, ok = strings.Cut(s, " ")
		body = strings.TrimSpace(body)
		if !ok || body == "" {
			return fail("a time zone must be followed by a cron expression")
		}
	}
	if d, isInterval, err := parseInterval(body); isInterval {
		if err != nil {
			return Spec{}, specError(spec, err)
		}
		if zone != "" {
			return fail("a time zone has no meaning for an interval")
		}
		return Spec{text: s, every: d}, nil
	}
	sched, err := parseCron(s)
	if err != nil {
		return Spec{}, specError(spec, err)
	}
	return Spec{text: s, cron: sched, utc: zone == ""}, nil
}

// specError is the error of a spec that cannot be parsed: it matches ErrInvalid and the
// cause, and quotes the spec.
func specError(spec string, err error) error { return &invalidSpec{spec: spec, err: err} }

type invalidSpec struct {
	spec string
	err  error
}

func (e *invalidSpec) Error() string {
	return fmt.Sprintf("schedule: invalid spec %q: %v", e.spec, e.err)
}
func (e *invalidSpec) Unwrap() []error { return []error{ErrInvalid, e.err} }

// parseInterval reads "@every d" or a bare duration; isInterval reports whether s has
// one of these forms at all.
func parseInterval(s string) (d time.Duration, isInterval bool, err error) {
	text, every := strings.CutPrefix(s, "@every")
	if every {
		text = strings.TrimSpace(text)
	}
	d, perr := time.ParseDuration(text)
	switch {
	case perr != nil && every:
		return 0, true, fmt.Errorf("bad interval %q: %w", text, perr)
	case perr != nil:
		return 0, false, nil
	case d < time.Second:
		return 0, true, fmt.Errorf("interval %s is shorter than 1s", d)
	case d%time.Second != 0:
		return 0, true, fmt.Errorf("interval %s is not a whole number of seconds", d)
	}
	return d, true, nil
}

func parseCron(s string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil { // the parser has panicked on malformed input before
			sched, err = nil, fmt.Errorf("malformed cron expression")
		}
	}()
	sched, err = cron.ParseStandard(s)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "cron: "))
	}
	return sched, nil
}

// String returns the spec as parsed (trimmed).
func (s Spec) String() string { return s.text }

// Next returns the first tick strictly after t, or the zero time when there is none (a
// cron expression that matches no date within five years, such as "0 0 30 2 *", or the
// zero Spec).
func (s Spec) Next(t time.Time) time.Time {
	switch {
	case s.every > 0:
		return t.Truncate(s.every).Add(s.every)
	case s.cron != nil:
		if s.utc {
			t = t.UTC()
		}
		return s.cron.Next(t)
	}
	return time.Time{}
}

// Latest returns the last tick at or before now, given first, a tick at or before now.
// Ticks missed while nobody ran collapse into this one.
func (s Spec) Latest(first, now time.Time) time.Time {
	if s.every > 0 {
		return now.Truncate(s.every)
	}
	t := first
	// Find a start close to now by looking back over doubling windows, so a long outage
	// does not walk every missed tick of a frequent cron expression.
	for w := time.Minute; ; w *= 2 {
		start := now.Add(-w)
		if !start.After(t) {
			break
		}
		if n := s.Next(start); !n.IsZero() && !n.After(now) {
			t = n
			break
		}
	}
	for {
		n := s.Next(t)
		if n.IsZero() || n.After(now) {
			return t
		}
		t = n
	}
}
