package adapter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The call is the context of all its attempts, and a fired read timeout cancels it only
// until the attempt returns. These tests pin what that must not change.

// After a read timeout fired on the first attempt, the caller canceling during the second
// is reported as the caller's cancellation, not as a timeout.
func TestCancelAfterReadTimeoutIsNotErrTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	var hits atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 2 {
			cancel() // the caller gives up while the second attempt waits
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	c, _ := newClient(t, srv.URL, WithTimeouts(0, 30*time.Millisecond), WithRetries(5))
	_, err := c.Do(ctx, &Request{Path: "slow"})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrTimeout)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 2, e.Attempts, "no retry once the caller gave up")
}

// A read timeout on one attempt leaves the next attempt a full read timeout, under a
// context that is not canceled: the second attempt succeeds.
func TestAttemptAfterReadTimeoutRunsUncanceled(t *testing.T) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	var hits atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-done:
			}
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	ctx, cancel := context.WithCancel(context.Background()) // a caller context that can end
	defer cancel()
	c, _ := newClient(t, srv.URL, WithTimeouts(0, 30*time.Millisecond), WithRetries(2))
	resp, err := c.Do(ctx, &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Attempts)
	assert.Equal(t, 200, resp.StatusCode)
	assert.NoError(t, ctx.Err())
}

// The caller's own httptrace hooks still run: the client's trace composes with them.
func TestCallerTraceHooksRun(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{}`)
	}))
	c, _ := newClient(t, srv.URL)
	var got atomic.Int32
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { got.Add(1) },
	})
	_, err := c.Do(ctx, &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, int32(1), got.Load())
}

// slowHandshakeProxy forwards TCP connections to target after holding each for delay, so
// that a TLS handshake through it (part of connecting) takes at least delay.
func slowHandshakeProxy(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(delay)
				b, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer b.Close()
				go io.Copy(b, c)
				io.Copy(c, b)
			}()
		}
	}()
	return "https://" + ln.Addr().String()
}

// The read timeout starts once the connection is made: a TLS handshake that takes longer
// than the read timeout (but not the connect timeout) does not make the request fail.
func TestSlowConnectDoesNotEatReadTimeout(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	const read = 250 * time.Millisecond
	url := slowHandshakeProxy(t, srv.Listener.Addr().String(), 3*read)
	c, _ := newClient(t, url, WithTLSConfig(&tls.Config{RootCAs: pool}), WithTimeouts(time.Minute, read), WithRetries(0))
	resp, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 1, resp.Attempts)
}

// A read timeout that expired for one attempt must not cancel the next attempt, even when
// the timer's function runs late; and an expired read timeout cancels the call only until
// the attempt ends.
func TestStaleReadTimerDoesNotCancelNextAttempt(t *testing.T) {
	c, _ := newClient(t, "http://127.0.0.1:1", WithTimeouts(0, time.Hour))
	st := &call{Context: context.Background(), c: c, readTimeout: time.Hour}
	st.bind()
	defer st.release()

	st.beginAttempt()
	rt, first := st.timer, st.attemptSeq
	require.NotNil(t, rt)
	st.endAttempt()

	st.beginAttempt()
	require.Same(t, rt, st.timer, "the timer serves the call's next attempt")
	st.connected.Store(true)
	st.expire(rt, first) // the first attempt's expiry, late
	assert.NoError(t, st.Err(), "a stale expiry canceled the running attempt")

	st.expire(rt, st.attemptSeq) // the running attempt's own
	assert.ErrorIs(t, st.Err(), context.DeadlineExceeded)
	select {
	case <-st.Done():
	default:
		t.Fatal("Done not closed after the read timeout fired")
	}
	assert.True(t, st.endAttempt(), "the attempt reports its read timeout")
	assert.NoError(t, st.Err(), "the read timeout ends with its attempt")
	select {
	case <-st.Done():
		t.Fatal("Done closed for the next attempt")
	default:
	}
}

// The read timer is lazy: an attempt does not re-arm a timer that is due before its
// deadline, and a timer that fires before the running attempt's deadline (it was due for
// an earlier, shorter one) arms itself again for it instead of expiring the attempt.
func TestReadTimerRearmsForLaterDeadline(t *testing.T) {
	c, _ := newClient(t, "http://127.0.0.1:1", WithTimeouts(0, time.Hour))
	st := &call{Context: context.Background(), c: c, readTimeout: 20 * time.Millisecond}
	st.bind()
	defer st.release()

	st.beginAttempt()
	rt := st.timer
	rt.mu.Lock()
	early := rt.due
	rt.mu.Unlock()
	st.endAttempt()

	st.readTimeout = time.Hour
	st.beginAttempt()
	st.connected.Store(true)
	rt.mu.Lock()
	assert.Equal(t, early, rt.due, "a timer due before the deadline was armed again")
	deadline := rt.deadline
	rt.mu.Unlock()

	require.Eventually(t, func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return rt.due == deadline
	}, 10*time.Second, 5*time.Millisecond, "the timer did not arm itself for the running attempt's deadline")
	assert.NoError(t, st.Err(), "the early timer expired an attempt whose deadline is ahead")
	assert.False(t, st.endAttempt())
}

// Without a trace of the caller's, the call answers httptrace's key itself: the
// transport finds the call's hooks with no context.WithValue.
func TestCallAnswersTraceKey(t *testing.T) {
	require.NotNil(t, clientTraceKey, "the probe did not find httptrace's context key")
	c, _ := newClient(t, "http://127.0.0.1:1")
	st := &call{Context: context.Background(), c: c}
	st.bind()
	defer st.release()
	assert.Nil(t, st.values)
	assert.Same(t, &st.trace, httptrace.ContextClientTrace(st))
	assert.NotNil(t, httptrace.ContextClientTrace(st).GotConn)
}
