package adapter

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/synclog"
)

func TestStatsCountEveryStage(t *testing.T) {
	var hits atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flaky": // 429 (Retry-After 2.0), 503, then 200
			switch hits.Add(1) {
			case 1:
				w.Header().Set("Retry-After", "2.0")
				w.WriteHeader(429)
			case 2:
				w.WriteHeader(503)
			default:
				io.WriteString(w, "{}")
			}
		case "/moved":
			w.WriteHeader(304)
		case "/missing":
			w.WriteHeader(404)
		default:
			io.WriteString(w, "{}")
		}
	}))
	c, ft := newClient(t, srv.URL, WithRateLimit(1, 1), WithRetryWait(100*time.Millisecond, time.Second))
	ctx := context.Background()
	_, err := c.Do(ctx, &Request{Path: "/flaky"})
	require.NoError(t, err)
	_, _ = c.Do(ctx, &Request{Path: "/moved"})
	_, err = c.Do(ctx, &Request{Path: "/missing"})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = c.Do(ctx, &Request{Path: "http://127.0.0.1:1/refused"})
	require.Error(t, err)

	s := c.Stats()
	assert.Equal(t, uint64(4), s.Requests)
	assert.Equal(t, uint64(3+1+1+4), s.Attempts, "flaky 3, moved 1, missing 1, refused 1+3 retries")
	assert.Equal(t, uint64(1), s.Responses2xx)
	assert.Equal(t, uint64(1), s.Responses3xx)
	assert.Equal(t, uint64(2), s.Responses4xx)
	assert.Equal(t, uint64(1), s.Responses5xx)
	assert.Equal(t, uint64(4), s.TransportErrors)
	assert.Equal(t, uint64(2+3), s.Retries)
	assert.Equal(t, uint64(1), s.RateLimited)
	assert.Equal(t, 2*time.Second, s.RetryAfterWait, "the 429's Retry-After")
	var total time.Duration
	for _, w := range ft.Waits() {
		total += w
	}
	assert.Equal(t, total, s.LimiterWait+s.RetryAfterWait+s.BackoffWait, "every wait is accounted for")
	assert.Positive(t, s.LimiterWait, "1 request/s: the limiter held calls back")
	assert.Positive(t, s.BackoffWait)
	assert.Zero(t, s.TransportResends)
}

func TestStatsConcurrent(t *testing.T) {
	srv := serve(t, &scripted{statuses: []int{200}})
	c, _ := newClient(t, srv.URL)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				_, _ = c.Do(context.Background(), &Request{Path: "x"})
			}
		})
	}
	wg.Wait()
	s := c.Stats()
	assert.Equal(t, uint64(80), s.Requests)
	assert.Equal(t, uint64(80), s.Attempts)
	assert.Equal(t, uint64(80), s.Responses2xx)
}

// net/http silently sends an idempotent request again when a reused keep-alive
// connection turns out closed. The client counts those re-sends (TransportResends): the
// server saw the request twice although the call made one attempt.
func TestStatsCountSilentTransportResends(t *testing.T) {
	var mu sync.Mutex
	perConn := map[string]int{}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		perConn[r.RemoteAddr]++
		n := perConn[r.RemoteAddr]
		mu.Unlock()
		if n == 2 { // the second request on a kept-alive connection: drop it unanswered
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, "{}")
	}))
	c, _ := newClient(t, srv.URL, WithRetries(0))
	ctx := context.Background()
	_, err := c.Do(ctx, &Request{Path: "/one"})
	require.NoError(t, err)
	resp, err := c.Do(ctx, &Request{Path: "/two"})
	require.NoError(t, err, "net/http re-sent the GET on a new connection")
	assert.Equal(t, 1, resp.Attempts)
	s := c.Stats()
	assert.Equal(t, uint64(2), s.Attempts)
	assert.Equal(t, uint64(1), s.TransportResends)
}

// The adapter logs nothing unless the application gives it a logger: not to slog's
// default logger either.
func TestSilentWithoutLogger(t *testing.T) {
	var logged atomic.Int32
	old := slog.Default()
	slog.SetDefault(slog.New(&captureHandler{fn: func(string, map[string]string) { logged.Add(1) }}))
	t.Cleanup(func() { slog.SetDefault(old) })
	srv := serve(t, &scripted{statuses: []int{503, 503, 200}})
	failing := recorderFunc(func(context.Context, synclog.Entry) error { return io.ErrClosedPipe })
	c, _ := newClient(t, srv.URL, WithRecorder(failing))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	_, _ = c.Do(context.Background(), &Request{Method: http.MethodPost, Path: "x", Body: "{}"})
	assert.Zero(t, logged.Load())
}

// A body of unknown length is read into a buffer the size of the previous one: one
// allocation for pages of similar size, and any size still reads whole.
func TestReadBodyHint(t *testing.T) {
	var hint atomic.Int64
	read := func(n int) []byte {
		want := bytes.Repeat([]byte("x"), n)
		resp := &http.Response{ContentLength: -1, Body: io.NopCloser(bytes.NewReader(want))}
		got, err := readBody(resp, 1<<20, &hint)
		require.NoError(t, err)
		require.Equal(t, want, got)
		return got
	}
	read(30000)
	assert.Equal(t, int64(30000), hint.Load())
	hinted := testing.AllocsPerRun(20, func() { read(29000) })
	unhinted := testing.AllocsPerRun(20, func() { hint.Store(0); read(29000) })
	assert.Less(t, hinted, unhinted-2, "the buffer grew instead of being sized from the hint")
	small := read(10)
	assert.Equal(t, int64(10), hint.Load())
	assert.LessOrEqual(t, cap(small), 4096, "a small body after a big one keeps the big buffer's capacity")
	read(100000)
	read(maxBodyHint * 2)
	assert.Equal(t, int64(maxBodyHint), hint.Load(), "the hint is bounded")
	_, err := readBody(&http.Response{ContentLength: -1, Body: io.NopCloser(bytes.NewReader(make([]byte, 2000)))}, 1000, &hint)
	var tl *tooLargeError
	require.ErrorAs(t, err, &tl, "the limit holds whatever the hint")
}
