package adapter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stallServer answers after the client gives up: it blocks until the request's context
// ends (the client closed the connection) or the test ends.
func stallServer(t *testing.T, afterHeaders bool) (*atomic.Int32, string) {
	t.Helper()
	done := make(chan struct{})
	var hits atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if afterHeaders {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, `{"partial":`)
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done) })
	return &hits, srv.URL
}

func requireTimeout(t *testing.T, err error, phase string) *Error {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, ErrTimeout)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "a client-side timeout is not the caller's deadline")
	assert.NotErrorIs(t, err, context.Canceled)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Contains(t, err.Error(), phase+" timeout")
	var te *timeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, phase, te.phase)
	return e
}

func TestReadTimeoutWaitingForHeaders(t *testing.T) {
	hits, url := stallServer(t, false)
	c, _ := newClient(t, url, WithTimeouts(0, 50*time.Millisecond), WithRetries(0))
	_, err := c.Do(context.Background(), &Request{Path: "slow"})
	e := requireTimeout(t, err, "read")
	assert.Equal(t, 1, e.Attempts)
	assert.Equal(t, 0, e.Status, "no response arrived")
	assert.Equal(t, int32(1), hits.Load())
}

func TestReadTimeoutWhileReadingBody(t *testing.T) {
	_, url := stallServer(t, true)
	c, _ := newClient(t, url, WithTimeouts(0, 50*time.Millisecond), WithRetries(0))
	_, err := c.Do(context.Background(), &Request{Path: "slow-body"})
	e := requireTimeout(t, err, "read")
	assert.Equal(t, 200, e.Status, "the status line arrived before the body stalled")
}

func TestReadTimeoutIsRetriedForGET(t *testing.T) {
	hits, url := stallServer(t, false)
	c, ft := newClient(t, url, WithTimeouts(0, 20*time.Millisecond), WithRetries(2))
	_, err := c.Do(context.Background(), &Request{Path: "slow"})
	e := requireTimeout(t, err, "read")
	assert.Equal(t, 3, e.Attempts)
	assert.Equal(t, int32(3), hits.Load())
	assert.Len(t, ft.Waits(), 2)
	assert.Contains(t, err.Error(), "after 3 attempts")
}

func TestReadTimeoutPerRequestOverride(t *testing.T) {
	_, url := stallServer(t, false)
	c, _ := newClient(t, url, WithTimeouts(0, time.Hour), WithRetries(0))
	_, err := c.Do(context.Background(), &Request{Path: "slow", ConnectTimeout: 0, ReadTimeout: 30 * time.Millisecond})
	requireTimeout(t, err, "read")

	// And the other way: a short client default, a longer per-request timeout.
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond)
		io.WriteString(w, "{}")
	}))
	c2, _ := newClient(t, srv.URL, WithTimeouts(0, 10*time.Millisecond), WithRetries(0))
	resp, err := c2.Do(context.Background(), &Request{Path: "x", ReadTimeout: 5 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	_, err = c2.Do(context.Background(), &Request{Path: "x"})
	requireTimeout(t, err, "read")
}

func TestContextWinsOverReadTimeout(t *testing.T) {
	hits, url := stallServer(t, false)
	c, _ := newClient(t, url, WithTimeouts(0, time.Hour))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, &Request{Path: "slow"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, ErrTimeout)
	assert.Contains(t, err.Error(), "stopped by the caller's context: context deadline exceeded")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 1, e.Attempts, "no retry once the context is done")

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = c.Do(ctx, &Request{Path: "slow"})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrTimeout)
	assert.Equal(t, int32(2), hits.Load())

	// An already-canceled context sends nothing.
	_, err = c.Do(ctx, &Request{Path: "slow"})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int32(2), hits.Load())
}

// hangingTLSServer accepts TCP connections and never answers, so a TLS handshake hangs.
func hangingTLSServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return "https://" + ln.Addr().String()
}

func TestConnectTimeoutCoversTLSHandshake(t *testing.T) {
	url := hangingTLSServer(t)
	c, ft := newClient(t, url, WithTimeouts(50*time.Millisecond, time.Hour), WithRetries(1))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	e := requireTimeout(t, err, "connect")
	assert.Equal(t, 2, e.Attempts, "a connect timeout is retried")
	assert.Len(t, ft.Waits(), 1)

	// Per-request override.
	c2, _ := newClient(t, url, WithTimeouts(time.Hour, 0), WithRetries(0))
	_, err = c2.Do(context.Background(), &Request{Path: "x", ConnectTimeout: 30 * time.Millisecond, ReadTimeout: 0})
	requireTimeout(t, err, "connect")

	// The context wins.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = c2.Do(ctx, &Request{Path: "x"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, ErrTimeout)
}

func TestPOSTNotRetriedAfterReadTimeout(t *testing.T) {
	hits, url := stallServer(t, false)
	c, _ := newClient(t, url, WithTimeouts(0, 20*time.Millisecond), WithRetries(3))
	_, err := c.Do(context.Background(), &Request{Method: http.MethodPost, Path: "orders", Body: map[string]int{"qty": 1}})
	e := requireTimeout(t, err, "read")
	assert.Equal(t, 1, e.Attempts, "the POST may have been processed")
	assert.Equal(t, int32(1), hits.Load())

	// With an idempotency key it is retried, with the same key.
	hits.Store(0)
	_, err = c.Do(context.Background(), &Request{Method: http.MethodPost, Path: "orders", Body: map[string]int{"qty": 1}, IdempotencyKey: "k-1"})
	e = requireTimeout(t, err, "read")
	assert.Equal(t, 4, e.Attempts)
	assert.Equal(t, int32(4), hits.Load())
}

func TestTimeoutErrorIsNotContextError(t *testing.T) {
	te := &timeoutError{phase: "read", limit: time.Second}
	assert.True(t, errors.Is(te, ErrTimeout))
	assert.False(t, errors.Is(te, context.DeadlineExceeded))
	assert.True(t, te.Timeout())
}

func TestHTTPSAndHTTP2ThroughOwnTLSDialer(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Proto", r.Proto)
			io.WriteString(w, `{"ok":true}`)
		}))
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		t.Cleanup(srv.Close)
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		c, _ := newClient(t, srv.URL, WithTLSConfig(&tls.Config{RootCAs: pool}), WithTimeouts(0, time.Second))
		resp, err := c.Do(context.Background(), &Request{Path: "x"})
		require.NoError(t, err, "h2=%v", h2)
		want := "HTTP/1.1"
		if h2 {
			want = "HTTP/2.0"
		}
		assert.Equal(t, want, resp.Header.Get("X-Proto"))

		// Without the CA the certificate is refused, and not retried.
		bad, ft := newClient(t, srv.URL)
		_, err = bad.Do(context.Background(), &Request{Path: "x"})
		require.ErrorIs(t, err, ErrTransport)
		assert.Empty(t, ft.Waits(), "a certificate error is permanent")
	}
}
