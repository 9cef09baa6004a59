package adapter

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func TestParseLimitHeaders(t *testing.T) {
	for in, want := range map[string]limitHeaders{
		"x-ratelimit": limitXRateLimit, "X-RateLimit": limitXRateLimit,
		"ietf": limitIETF, " IETF ": limitIETF, "shopify": limitShopify,
		"HubSpot": limitHubSpot, "": "", "none": "",
	} {
		got, err := parseLimitHeaders(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := parseLimitHeaders("github")
	require.ErrorIs(t, err, ErrInvalidRequest)
	assert.Contains(t, err.Error(), `"x-ratelimit", "ietf", "shopify"`)
	_, err = New("", WithLimitHeaders("leaky"))
	require.ErrorIs(t, err, ErrInvalidRequest)
}

// limitServer serves one style of headers, settable between calls.
type limitServer struct {
	mu     sync.Mutex
	header http.Header
}

func (s *limitServer) set(h http.Header) { s.mu.Lock(); s.header = h; s.mu.Unlock() }
func (s *limitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	for k, vs := range s.header {
		w.Header()[k] = vs
	}
	s.mu.Unlock()
	w.Write([]byte("{}"))
}

// Each style: a response that says the quota is used up pauses every goroutine until
// the reset, the next call waits it out, and a response with room left does not pause.
func TestLimitHeaderStyles(t *testing.T) {
	for _, tc := range []struct {
		style     limitHeaders
		exhausted func(now time.Time) http.Header
		wait      time.Duration
		roomy     http.Header
	}{
		{limitXRateLimit, func(time.Time) http.Header {
			return http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"30"}}
		}, 30 * time.Second, http.Header{"X-Ratelimit-Remaining": {"99"}, "X-Ratelimit-Reset": {"30"}}},
		{limitXRateLimit, func(now time.Time) http.Header { // GitHub: reset as a Unix time
			return http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)}}
		}, time.Minute, nil},
		{limitIETF, func(time.Time) http.Header {
			return http.Header{"Ratelimit-Policy": {`"default";q=100;w=60`}, "Ratelimit": {`"default";r=0;t=30`}}
		}, 30 * time.Second, http.Header{"Ratelimit": {`"default";r=50;t=30`}}},
		{limitIETF, func(time.Time) http.Header { // several policies: the exhausted one counts
			return http.Header{"Ratelimit": {`"burst";r=5;t=1, "daily";r=0;t=3600`}}
		}, time.Hour, http.Header{"Ratelimit": {`"burst";r=5;t=1, "daily";r=1000;t=3600`}}},
		{limitIETF, func(time.Time) http.Header { // the older trio
			return http.Header{"Ratelimit-Limit": {"100"}, "Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {"12"}}
		}, 12 * time.Second, http.Header{"Ratelimit-Remaining": {"3"}, "Ratelimit-Reset": {"12"}}},
		{limitIETF, func(time.Time) http.Header { // draft 05/06 dictionary form
			return http.Header{"Ratelimit": {"limit=100, remaining=0, reset=7"}}
		}, 7 * time.Second, nil},
		{limitShopify, func(time.Time) http.Header {
			return http.Header{"X-Shopify-Shop-Api-Call-Limit": {"39/40"}}
		}, 2 * time.Second, http.Header{"X-Shopify-Shop-Api-Call-Limit": {"10/40"}}}, // reserve 4 → drain 4 calls at 2/s
		{limitHubSpot, func(time.Time) http.Header { // 100 per 10 s, none left: reserve 10 → 11 slots at 10/s
			return http.Header{"X-Hubspot-Ratelimit-Max": {"100"}, "X-Hubspot-Ratelimit-Remaining": {"0"},
				"X-Hubspot-Ratelimit-Interval-Milliseconds": {"10000"}}
		}, 1100 * time.Millisecond, http.Header{"X-Hubspot-Ratelimit-Max": {"100"}, "X-Hubspot-Ratelimit-Remaining": {"60"},
			"X-Hubspot-Ratelimit-Interval-Milliseconds": {"10000"}}},
	} {
		t.Run(string(tc.style), func(t *testing.T) {
			ls := &limitServer{}
			srv := serve(t, ls)
			c, ft := newClient(t, srv.URL, WithLimitHeaders(string(tc.style)), WithMaxRetryAfter(2*time.Hour))
			t0 := ft.Now()
			ls.set(tc.exhausted(t0))
			_, err := c.Do(context.Background(), &Request{Path: "x"})
			require.NoError(t, err)
			assert.True(t, t0.Add(tc.wait).Equal(c.lim.PausedUntil()), "paused until %v, want +%v", c.lim.PausedUntil(), tc.wait)
			ls.set(tc.roomy)
			_, err = c.Do(context.Background(), &Request{Path: "x"})
			require.NoError(t, err)
			assert.Equal(t, []time.Duration{tc.wait}, ft.Waits(), "the next call waited out the pause")
			_, err = c.Do(context.Background(), &Request{Path: "x"})
			require.NoError(t, err)
			assert.Len(t, ft.Waits(), 1, "room left: no more pauses")
			assert.Equal(t, tc.wait, c.Stats().LimiterWait)
		})
	}
}

// Without WithLimitHeaders no style is read: the headers change nothing.
func TestLimitHeadersOffByDefault(t *testing.T) {
	ls := &limitServer{header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"30"},
		"Ratelimit": {`"default";r=0;t=30`}, "X-Shopify-Shop-Api-Call-Limit": {"40/40"}}}
	srv := serve(t, ls)
	c, ft := newClient(t, srv.URL)
	for range 3 {
		_, err := c.Do(context.Background(), &Request{Path: "x"})
		require.NoError(t, err)
	}
	assert.Empty(t, ft.Waits())
	assert.True(t, c.lim.PausedUntil().IsZero())
}

func TestShopifyCallLimitParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"40/40":   2500 * time.Millisecond,
		"36/40":   500 * time.Millisecond,
		"35/40":   0,
		"0/40":    0,
		"80/80":   2250 * time.Millisecond, // an 80-call bucket leaks 4/s
		"junk":    0,
		"1/0":     0,
		"x/40":    0,
		" 39/40 ": 2 * time.Second,
	} {
		l := newLimiter(rate.Inf, 1, func() time.Time { return now }, time.Hour)
		limitShopify.observe(http.Header{"X-Shopify-Shop-Api-Call-Limit": {v}}, l)
		if want == 0 {
			assert.True(t, l.PausedUntil().IsZero(), v)
		} else {
			assert.WithinDuration(t, now.Add(want), l.PausedUntil(), 0, v)
		}
	}
}

func TestHubSpotRateLimitParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		max, remaining, interval string
		want                     time.Duration
	}{
		{"100", "10", "10000", 100 * time.Millisecond}, // at the reserve: one slot at 10/s
		{"100", "11", "10000", 0},
		{"200", "0", "10000", 1050 * time.Millisecond}, // reserve 20: 21 slots at 20/s
		{"", "0", "10000", 10 * time.Second},           // no Max: the whole interval
		{"", "3", "10000", 0},
		{"5", "0", "1000", 400 * time.Millisecond}, // reserve 1 → 2 slots at 5/s
		{"100", "x", "10000", 0},
		{"100", "0", "0", 0},
		{"100", "-1", "10000", 0},
	} {
		l := newLimiter(rate.Inf, 1, func() time.Time { return now }, time.Hour)
		h := http.Header{}
		if tc.max != "" {
			h.Set("X-HubSpot-RateLimit-Max", tc.max)
		}
		h.Set("X-HubSpot-RateLimit-Remaining", tc.remaining)
		h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", tc.interval)
		limitHubSpot.observe(h, l)
		if tc.want == 0 {
			assert.True(t, l.PausedUntil().IsZero(), "%+v", tc)
		} else {
			assert.WithinDuration(t, now.Add(tc.want), l.PausedUntil(), 0, "%+v", tc)
		}
	}
}

func TestXRateLimitParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		remaining, reset string
		want             time.Time
	}{
		{"0", "30", now.Add(30 * time.Second)},
		{"0", "1.5", now.Add(1500 * time.Millisecond)},
		{"0", strconv.FormatInt(now.Add(time.Minute).Unix(), 10), now.Add(time.Minute)},
		{"5", "30", time.Time{}},
		{"0", "", time.Time{}},
		{"0", "-1", time.Time{}},
		{"", "30", time.Time{}},
		{"0", strconv.FormatInt(now.Add(-time.Minute).Unix(), 10), time.Time{}},
	} {
		l := newLimiter(rate.Inf, 1, func() time.Time { return now }, time.Hour)
		h := http.Header{}
		if tc.remaining != "" {
			h.Set("X-RateLimit-Remaining", tc.remaining)
		}
		h.Set("X-RateLimit-Reset", tc.reset)
		limitXRateLimit.observe(h, l)
		assert.WithinDuration(t, tc.want, l.PausedUntil(), 0, "%+v", tc)
	}
}

func TestIETFParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		`"default";r=0;t=30`:                   30 * time.Second,
		`default;r=0;t=30`:                     30 * time.Second,
		`"default";r=1;t=30`:                   0,
		`"default";r=0`:                        0, // no reset: nothing to wait for
		`"a";r=0;t=5, "b";r=0;t=9`:             9 * time.Second,
		`"a;,=x";r=0;t=4`:                      4 * time.Second, // quoted name with separators
		`"default" ; r=0 ; t=2.5`:              2500 * time.Millisecond,
		`garbage`:                              0,
		`"default";r=x;t=30`:                   0,
		`"default";r=0;t=-3`:                   0,
		`limit=10, remaining=0, reset=3`:       3 * time.Second,
		`"default";r=0;t=99999999999999999999`: maxRetryAfterValue,
	} {
		l := newLimiter(rate.Inf, 1, func() time.Time { return now }, time.Hour)
		limitIETF.observe(http.Header{"Ratelimit": {v}}, l)
		if want == 0 {
			assert.True(t, l.PausedUntil().IsZero(), v)
		} else {
			assert.True(t, now.Add(want).Equal(l.PausedUntil()), "%s: %v", v, l.PausedUntil())
		}
	}
}

// A paginator option given to a paginator it does not apply to fails the walk before
// anything is sent.
func TestPaginatorOptionMisuse(t *testing.T) {
	s := &scripted{statuses: []int{200}, body: `[]`}
	srv := serve(t, s)
	c, _ := newClient(t, srv.URL)
	var err error
	for _, e := range Records(context.Background(), c, Request{Path: "/"}, Offset("limit", "offset", 10, AllowOtherHosts())) {
		err = e
	}
	require.ErrorIs(t, err, ErrInvalidRequest)
	assert.Contains(t, err.Error(), "AllowOtherHosts does not apply to Offset")
	assert.Zero(t, s.hits.Load())
}
