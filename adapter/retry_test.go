package adapter

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetriesWithExponentialBackoff(t *testing.T) {
	s := &scripted{statuses: []int{503, 502, 500, 200}}
	srv := serve(t, s)
	c, ft := newClient(t, srv.URL, WithRetryWait(100*time.Millisecond, 10*time.Second))
	resp, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 4, resp.Attempts)
	assert.Equal(t, int32(4), s.hits.Load())
	waits := ft.Waits()
	require.Len(t, waits, 3)
	for i, w := range waits {
		full := 100 * time.Millisecond << i
		assert.GreaterOrEqual(t, w, full/2, "retry %d", i+1)
		assert.LessOrEqual(t, w, full, "retry %d", i+1)
	}
	assert.GreaterOrEqual(t, resp.Duration, waits[0]+waits[1]+waits[2], "duration includes the waits (fake clock)")
}

func TestBackoffCapsAtMax(t *testing.T) {
	c, _ := newClient(t, "http://x", WithRetryWait(time.Second, 4*time.Second))
	for n := 1; n <= 40; n++ {
		w := c.backoff(n)
		full := min(time.Second<<min(n-1, 10), 4*time.Second)
		assert.GreaterOrEqual(t, w, full/2)
		assert.LessOrEqual(t, w, full)
	}
}

func TestRetriesExhausted(t *testing.T) {
	s := &scripted{statuses: []int{503}, header: http.Header{"X-Request-Id": {"abc"}}, body: " "}
	srv := serve(t, s)
	c, ft := newClient(t, srv.URL)
	resp, err := c.Do(context.Background(), &Request{Path: "products", Query: url.Values{"page_info": {"xyz"}}})
	require.Error(t, err)
	assert.Equal(t, "adapter: GET "+srv.URL+"/products?page_info=xyz: 503 Service Unavailable after 4 attempts (request id abc): server error", err.Error())
	require.ErrorIs(t, err, ErrServer)
	require.NotNil(t, resp, "status errors come with the response")
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, 4, resp.Attempts)
	assert.Len(t, ft.Waits(), 3)
	assert.Equal(t, int32(4), s.hits.Load())
}

func TestRetryAfterSeconds(t *testing.T) {
	s := &scripted{statuses: []int{429, 200}, header: http.Header{"Retry-After": {"7"}}}
	srv := serve(t, s)
	c, ft := newClient(t, srv.URL)
	resp, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Attempts)
	assert.Equal(t, []time.Duration{7 * time.Second}, ft.Waits(), "Retry-After replaces the backoff, and the limiter's pause has passed by then")
}

func TestRetryAfterHTTPDate(t *testing.T) {
	ft := newFakeTime()
	date := ft.Now().Add(30 * time.Second).Format(http.TimeFormat)
	s := &scripted{statuses: []int{503, 200}, header: http.Header{"Retry-After": {date}}}
	srv := serve(t, s)
	c, err := New(srv.URL, ft.opts()...)
	require.NoError(t, err)
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{30 * time.Second}, ft.Waits())
}

func TestRetryAfterBeyondMaxFailsFast(t *testing.T) {
	for _, status := range []int{429, 503} {
		s := &scripted{statuses: []int{status, 200}, header: http.Header{"Retry-After": {"3600"}}}
		srv := serve(t, s)
		c, ft := newClient(t, srv.URL, WithMaxRetryAfter(time.Minute))
		resp, err := c.Do(context.Background(), &Request{Path: "x"})
		require.ErrorIs(t, err, ErrRateLimited, "status %d", status)
		assert.Equal(t, status, resp.StatusCode)
		assert.Empty(t, ft.Waits(), "no hour-long sleep")
		assert.Equal(t, int32(1), s.hits.Load())
		assert.Contains(t, err.Error(), "retry after 1h0m0s, more than the accepted maximum of 1m0s")
		if status == 503 {
			assert.ErrorIs(t, err, ErrServer)
		}
	}
}

func TestStatusesNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 405, 409, 422, 501} {
		s := &scripted{statuses: []int{status, 200}}
		srv := serve(t, s)
		c, ft := newClient(t, srv.URL)
		_, err := c.Do(context.Background(), &Request{Path: "x"})
		require.Error(t, err, "status %d", status)
		assert.Equal(t, int32(1), s.hits.Load(), "status %d must not be retried", status)
		assert.Empty(t, ft.Waits())
	}
}

func TestStatusesRetried(t *testing.T) {
	for _, status := range []int{408, 429, 500, 502, 503, 504, 599} {
		s := &scripted{statuses: []int{status, 200}}
		srv := serve(t, s)
		c, _ := newClient(t, srv.URL)
		resp, err := c.Do(context.Background(), &Request{Path: "x"})
		require.NoError(t, err, "status %d", status)
		assert.Equal(t, 2, resp.Attempts, "status %d", status)
	}
}

func TestRetriesDisabled(t *testing.T) {
	s := &scripted{statuses: []int{503, 200}}
	srv := serve(t, s)
	c, _ := newClient(t, srv.URL, WithRetries(0))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrServer)
	assert.Equal(t, int32(1), s.hits.Load())
}

func TestPOSTWithoutKeyNotRetriedAfter5xx(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodPatch} {
		s := &scripted{statuses: []int{503, 200}}
		srv := serve(t, s)
		c, _ := newClient(t, srv.URL)
		_, err := c.Do(context.Background(), &Request{Method: method, Path: "orders", Body: map[string]int{"qty": 1}})
		require.ErrorIs(t, err, ErrServer, method)
		assert.Equal(t, int32(1), s.hits.Load(), "%s without a key must not be repeated", method)
	}
	// PUT and DELETE are idempotent.
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		s := &scripted{statuses: []int{503, 200}}
		srv := serve(t, s)
		c, _ := newClient(t, srv.URL)
		_, err := c.Do(context.Background(), &Request{Method: method, Path: "orders/1"})
		require.NoError(t, err, method)
		assert.Equal(t, int32(2), s.hits.Load())
	}
}

func TestPOSTWithKeyRetriedWithSameKey(t *testing.T) {
	s := &scripted{statuses: []int{500, 503, 201}, seen: make(chan *http.Request, 10)}
	srv := serve(t, s)
	c, _ := newClient(t, srv.URL, WithIdempotencyKeys("X-Idem", false))
	resp, err := c.Do(context.Background(), &Request{Method: http.MethodPost, Path: "orders", Body: map[string]int{"qty": 1}, IdempotencyKey: "key-123"})
	require.NoError(t, err)
	assert.Equal(t, 3, resp.Attempts)
	close(s.seen)
	var keys []string
	for r := range s.seen {
		keys = append(keys, r.Header.Get("X-Idem"))
	}
	assert.Equal(t, []string{"key-123", "key-123", "key-123"}, keys)
}

func TestAutoIdempotencyKey(t *testing.T) {
	s := &scripted{statuses: []int{502, 201}, seen: make(chan *http.Request, 10)}
	srv := serve(t, s)
	c, _ := newClient(t, srv.URL, WithIdempotencyKeys("", true))
	resp, err := c.Do(context.Background(), &Request{Method: http.MethodPost, Path: "orders", Body: "{}"})
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Attempts)
	first, second := <-s.seen, <-s.seen
	key := first.Header.Get(defaultIdempotencyHeader)
	assert.Len(t, key, 36)
	assert.Equal(t, key, second.Header.Get(defaultIdempotencyHeader))

	// GET gets no key.
	_, err = c.Do(context.Background(), &Request{Path: "orders"})
	require.NoError(t, err)
	assert.Empty(t, (<-s.seen).Header.Get(defaultIdempotencyHeader))
}

// closedAddr returns a loopback address nothing listens on: dials are refused at once.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestPOSTWithoutKeyRetriedWhenConnectionRefused(t *testing.T) {
	c, ft := newClient(t, "http://"+closedAddr(t))
	_, err := c.Do(context.Background(), &Request{Method: http.MethodPost, Path: "orders", Body: "{}"})
	require.ErrorIs(t, err, ErrTransport)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 4, e.Attempts, "the request never left, so repeating it is safe")
	assert.Len(t, ft.Waits(), 3)
	assert.Contains(t, err.Error(), "connection refused")
}

func TestContextCanceledDuringBackoff(t *testing.T) {
	s := &scripted{statuses: []int{503}}
	srv := serve(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := New(srv.URL, WithClock(nil, func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}))
	require.NoError(t, err)
	_, err = c.Do(ctx, &Request{Path: "x"})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrTimeout)
	assert.Equal(t, int32(1), s.hits.Load())
}

func TestRetryDebugLog(t *testing.T) {
	s := &scripted{statuses: []int{503, 200}}
	srv := serve(t, s)
	var mu sync.Mutex
	var msgs []string
	h := &captureHandler{fn: func(msg string, attrs map[string]string) {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, msg+" reason="+attrs["reason"]+" attempt="+attrs["attempt"])
	}}
	c, _ := newClient(t, srv.URL, WithLogger(newSlog(h)))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, []string{"adapter: retrying request reason=status 503 attempt=" + strconv.Itoa(2)}, msgs)
}
