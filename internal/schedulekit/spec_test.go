package schedulekit_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/internal/schedulekit"
	"github.com/connkit/connkit/schedule"
)

func TestParseSpecNext(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 7, 30, 0, time.UTC) // a Sunday
	for _, c := range []struct {
		spec string
		want time.Time
	}{
		{"@every 15m", time.Date(2026, 3, 1, 12, 15, 0, 0, time.UTC)},
		{"15m", time.Date(2026, 3, 1, 12, 15, 0, 0, time.UTC)},
		{"@every 1h30m", time.Date(2026, 3, 1, 13, 30, 0, 0, time.UTC)},
		{"@every 1s", time.Date(2026, 3, 1, 12, 7, 31, 0, time.UTC)},
		{"*/5 * * * *", time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC)},
		{"0 3 * * mon-fri", time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"@weekly", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)},
		{"CRON_TZ=Europe/Paris 0 3 * * *", time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)},
		{"TZ=America/New_York 0 9 * * *", time.Date(2026, 3, 1, 14, 0, 0, 0, time.UTC)},
		{"CRON_TZ=Asia/Tokyo @daily", time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC)},
		{"0 0 30 2 *", time.Time{}}, // February 30th never comes
	} {
		s, err := schedulekit.ParseSpec(c.spec)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", c.spec, err)
			continue
		}
		if got := s.Next(at); !got.Equal(c.want) {
			t.Errorf("ParseSpec(%q).Next(%v) = %v, want %v", c.spec, at, got, c.want)
		}
		// Nodes in different local zones compute the same ticks.
		kolkata, _ := time.LoadLocation("Asia/Kolkata")
		if got := s.Next(at.In(kolkata)); !got.Equal(c.want) {
			t.Errorf("ParseSpec(%q).Next in another zone = %v, want %v", c.spec, got, c.want)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	for _, c := range []struct{ spec, mention string }{
		{"", "empty"},
		{"   ", "empty"},
		{"every day", ""},
		{"61 * * * *", ""},
		{"* * * *", ""},
		{"* * * * * *", ""}, // seconds field: not the standard parser
		{"@every 1500ms", "whole number of seconds"},
		{"@every 500ms", "shorter than 1s"},
		{"0s", "shorter than 1s"},
		{"-5m", "shorter than 1s"},
		{"@every soon", "bad interval"},
		{"@fortnightly", ""},
		{"CRON_TZ=Mars/Olympus 0 3 * * *", ""},
		{"TZ=UTC", "followed by a cron expression"},
		{"CRON_TZ=UTC @every 1m", "time zone"},
	} {
		_, err := schedulekit.ParseSpec(c.spec)
		if !errors.Is(err, schedule.ErrInvalid) {
			t.Errorf("ParseSpec(%q): %v, want an error wrapping ErrInvalid", c.spec, err)
			continue
		}
		if !strings.Contains(err.Error(), `"`+c.spec+`"`) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("ParseSpec(%q) error %q should quote the spec and mention %q", c.spec, err, c.mention)
		}
	}
}

func ExampleParseSpec() {
	after := time.Date(2026, 3, 1, 12, 7, 30, 0, time.UTC)
	for _, text := range []string{"@every 15m", "*/5 * * * *", "@daily", "CRON_TZ=Europe/Paris 0 3 * * mon-fri"} {
		spec, err := schedulekit.ParseSpec(text)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-38s next %s\n", text, spec.Next(after).UTC().Format(time.RFC3339))
	}
	_, err := schedulekit.ParseSpec("0 25 * * *")
	fmt.Println(err)
	// Output:
	// @every 15m                             next 2026-03-01T12:15:00Z
	// */5 * * * *                            next 2026-03-01T12:10:00Z
	// @daily                                 next 2026-03-02T00:00:00Z
	// CRON_TZ=Europe/Paris 0 3 * * mon-fri   next 2026-03-02T02:00:00Z
	// schedule: invalid spec "0 25 * * *": end of range (25) above maximum (23): 25
}
