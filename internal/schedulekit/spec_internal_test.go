package schedulekit

import (
	"testing"
	"time"
)

func TestLatestCollapsesMissedTicks(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 7, 30, 0, time.UTC)
	for _, c := range []struct {
		spec  string
		first time.Time
		want  time.Time
	}{
		{"@every 15m", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)},
		// a year of every-minute ticks collapses to the last one (without walking them all)
		{"* * * * *", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 3, 1, 12, 7, 0, 0, time.UTC)},
		{"0 3 * * *", time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), time.Date(2027, 3, 1, 3, 0, 0, 0, time.UTC)},
		{"0 3 * * *", time.Date(2027, 3, 1, 3, 0, 0, 0, time.UTC), time.Date(2027, 3, 1, 3, 0, 0, 0, time.UTC)},
		{"0 0 29 2 *", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"0 0 1 1 *", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"0 0-1 * * *", time.Date(2027, 2, 27, 0, 0, 0, 0, time.UTC), time.Date(2027, 3, 1, 1, 0, 0, 0, time.UTC)},
	} {
		s, err := ParseSpec(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Latest(c.first, now); !got.Equal(c.want) {
			t.Errorf("%q: latest(%v, %v) = %v, want %v", c.spec, c.first, now, got, c.want)
		}
	}
}
