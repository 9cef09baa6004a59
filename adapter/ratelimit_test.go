package adapter

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func TestRateLimitSharedAcrossGoroutines(t *testing.T) {
	s := &scripted{statuses: []int{200}}
	srv := serve(t, s)
	ft := newFakeTime()
	ft.advance = false // a frozen clock: every reservation queues behind the others
	c, err := New(srv.URL, append(ft.opts(), WithRateLimit(2, 1))...)
	require.NoError(t, err)

	const n = 10
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.Do(context.Background(), &Request{Path: "x"})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	waits := ft.Waits()
	slices.Sort(waits)
	// One request goes at once (burst 1); the others queue at 2/s on the one shared limiter.
	want := make([]time.Duration, 0, n-1)
	for i := 1; i < n; i++ {
		want = append(want, time.Duration(i)*500*time.Millisecond)
	}
	assert.Equal(t, want, waits)
	assert.Equal(t, int32(n), s.hits.Load())
}

func TestRateLimit429SlowsDownAndPauses(t *testing.T) {
	s := &scripted{statuses: []int{429, 200, 200, 200}}
	srv := serve(t, s)
	c, ft := newClient(t, srv.URL, WithRateLimit(10, 5))
	start := ft.Now()
	resp, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Attempts)
	// The 429 halved the rate; the success after it starts the recovery.
	assert.InDelta(t, 5*1.1, float64(c.lim.Rate()), 1e-9)
	assert.WithinDuration(t, start.Add(time.Second), c.lim.PausedUntil(), 0, "429 without Retry-After pauses everyone for a second")

	for range 10 {
		_, err := c.Do(context.Background(), &Request{Path: "x"})
		require.NoError(t, err)
	}
	assert.Equal(t, rate.Limit(10), c.lim.Rate(), "successes restore the configured rate")
}

func TestRateLimit429PausesUnlimitedClient(t *testing.T) {
	s := &scripted{statuses: []int{429, 200}, header: http.Header{"Retry-After": {"3"}}}
	srv := serve(t, s)
	c, ft := newClient(t, srv.URL)
	start := ft.Now()
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, rate.Inf, c.lim.Rate())
	assert.WithinDuration(t, start.Add(3*time.Second), c.lim.PausedUntil(), 0)
}

func TestRateLimitRepeated429sHitTheFloor(t *testing.T) {
	l := newLimiter(1, 1, time.Now, time.Hour)
	for range 20 {
		l.observe(&http.Response{StatusCode: 429, Header: http.Header{}})
	}
	assert.Equal(t, minSlowRate, l.Rate())
}

func TestLimiterSetRateAndPauseNeverShortens(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(rate.Inf, 1, func() time.Time { return now }, time.Hour)
	l.SetRate(3, 2)
	assert.Equal(t, rate.Limit(3), l.Rate())
	l.PauseUntil(now.Add(time.Minute))
	l.PauseUntil(now.Add(time.Second))
	assert.WithinDuration(t, now.Add(time.Minute), l.PausedUntil(), 0)
	assert.Equal(t, now, l.Now())
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(1, 1, func() time.Time { return now }, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sleep := func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	require.NoError(t, l.wait(ctx, sleep), "the first token is free")
	require.ErrorIs(t, l.wait(ctx, sleep), context.Canceled)
	// The canceled reservation was returned: the next caller does not wait twice as long.
	var got time.Duration
	require.NoError(t, l.wait(context.Background(), func(_ context.Context, d time.Duration) error { got = d; return nil }))
	assert.Equal(t, time.Second, got)
}

func TestLongPauseFailsFastInsteadOfSleeping(t *testing.T) {
	s := &scripted{statuses: []int{429, 200}, header: http.Header{"Retry-After": {"3600"}}}
	srv := serve(t, s)
	ft := newFakeTime()
	c, err := New(srv.URL, append(ft.opts(), WithMaxRetryAfter(time.Minute))...)
	require.NoError(t, err)
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrRateLimited)

	// Every goroutine now holds back for the hour the API asked for: by failing at once.
	resp, err := c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrRateLimited)
	assert.Nil(t, resp)
	assert.Contains(t, err.Error(), "holds requests for another 1h0m0s")
	assert.Equal(t, int32(1), s.hits.Load(), "nothing was sent")
	assert.Empty(t, ft.Waits(), "nobody slept")

	ft.mu.Lock()
	ft.now = ft.now.Add(time.Hour)
	ft.mu.Unlock()
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
}
