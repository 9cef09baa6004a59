package adapter

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 9, defect 1: decimal Retry-After values ("2.0" from Shopify, "1.5" elsewhere)
// were ignored by every reader of the header.

func TestDecimalRetryAfterIsHonoured(t *testing.T) {
	for _, tc := range []struct {
		status int
		value  string
		want   time.Duration
	}{
		{429, "2.0", 2 * time.Second},
		{503, "1.5", 1500 * time.Millisecond},
		{429, "0.0005", time.Millisecond}, // rounded up to the next whole millisecond
	} {
		s := &scripted{statuses: []int{tc.status, 200}, header: http.Header{"Retry-After": {tc.value}}}
		srv := serve(t, s)
		c, ft := newClient(t, srv.URL)
		start := ft.Now()
		resp, err := c.Do(context.Background(), &Request{Path: "x"})
		require.NoError(t, err, tc.value)
		assert.Equal(t, 2, resp.Attempts, tc.value)
		assert.Equal(t, []time.Duration{tc.want}, ft.Waits(), "status %d, Retry-After %q", tc.status, tc.value)
		if tc.status == 429 {
			assert.True(t, start.Add(tc.want).Equal(c.lim.PausedUntil()), "the limiter pauses for the same %q", tc.value)
		}
	}
}

func TestDecimalRetryAfterBeyondMaxFailsFast(t *testing.T) {
	for _, status := range []int{429, 503} {
		s := &scripted{statuses: []int{status, 200}, header: http.Header{"Retry-After": {"3600.0"}}}
		srv := serve(t, s)
		c, ft := newClient(t, srv.URL, WithMaxRetryAfter(time.Minute))
		_, err := c.Do(context.Background(), &Request{Path: "x"})
		require.ErrorIs(t, err, ErrRateLimited, "status %d", status)
		assert.Contains(t, err.Error(), "retry after 1h0m0s")
		assert.Empty(t, ft.Waits())
		assert.Equal(t, int32(1), s.hits.Load())
	}
	// The limiter's pause is refused the same way: a second call fails without sending.
	s := &scripted{statuses: []int{429, 200}, header: http.Header{"Retry-After": {"3600.0"}}}
	srv := serve(t, s)
	c, ft := newClient(t, srv.URL, WithMaxRetryAfter(time.Minute))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrRateLimited)
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrRateLimited)
	assert.Contains(t, err.Error(), "holds requests for another 1h0m0s")
	assert.Equal(t, int32(1), s.hits.Load())
	assert.Empty(t, ft.Waits())
}

func TestZeroOrBadRetryAfterStillBacksOff(t *testing.T) {
	for _, v := range []string{"0", "0.0", "-1", "soon", "1e3", "Wed, 31 Dec 2025 23:00:00 GMT"} {
		s := &scripted{statuses: []int{503, 503, 200}, header: http.Header{"Retry-After": {v}}}
		srv := serve(t, s)
		c, ft := newClient(t, srv.URL, WithRetryWait(100*time.Millisecond, time.Second))
		_, err := c.Do(context.Background(), &Request{Path: "x"})
		require.NoError(t, err, v)
		waits := ft.Waits()
		require.Len(t, waits, 2, "Retry-After %q", v)
		for _, w := range waits {
			assert.GreaterOrEqual(t, w, 50*time.Millisecond, "Retry-After %q must not retry without a pause", v)
		}
	}
}

func TestParseRetryAfterForms(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"0":                             0,
		"7":                             7 * time.Second,
		" 120 ":                         2 * time.Minute,
		"2.0":                           2 * time.Second,
		"1.5":                           1500 * time.Millisecond,
		"0.25":                          250 * time.Millisecond,
		"1.0001":                        1001 * time.Millisecond,
		".5":                            500 * time.Millisecond,
		"3.":                            3 * time.Second,
		"3600.0":                        time.Hour,
		"99999999999999999999":          maxRetryAfterValue,
		"Thu, 01 Jan 2026 00:01:00 GMT": time.Minute,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0, // in the past
	} {
		got, ok := parseRetryAfter(in, now)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-5", "-0.5", "soon", "1e3", "0x10", "Inf", "NaN", "1.5.0", ".", "+3", "1_000", "١"} {
		_, ok := parseRetryAfter(in, now)
		assert.False(t, ok, in)
	}
}

// FuzzParseRetryAfter checks the parser on any input: it never panics, never returns a
// negative or over-long wait, and reads decimal seconds exactly, rounded up to the
// millisecond. Seeds are in testdata/fuzz/FuzzParseRetryAfter and below.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "2.0", "1.5", "3600.0", " 120 ", ".5", "3.", "-1", "soon",
		"1e3", "Thu, 01 Jan 2026 00:01:00 GMT", "Thursday, 01-Jan-26 00:01:00 GMT", "Thu Jan  1 00:01:00 2026",
		"0.0005", "99999999999999999999.9", "1.00000000000000000001"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in string) {
		d, ok := parseRetryAfter(in, now)
		if !ok {
			if d != 0 {
				t.Fatalf("%q: not ok but %v", in, d)
			}
			return
		}
		if d < 0 || d > maxRetryAfterValue {
			t.Fatalf("%q: wait %v out of range", in, d)
		}
		v := strings.TrimSpace(in)
		if v == "" || strings.ContainsAny(v, "eExXpPnN_+-") {
			return // dates only past this point have letters; numbers are plain
		}
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs > float64(maxRetryAfterValue/time.Second) {
			return
		}
		ms := secs * 1000
		got := float64(d / time.Millisecond)
		if d%time.Millisecond != 0 || got < math.Floor(ms) || got > math.Ceil(ms)+1 {
			t.Fatalf("%q: %v is not %v s rounded up to the millisecond", in, d, secs)
		}
	})
}
