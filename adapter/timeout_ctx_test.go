package adapter

import (
	"context"
	"io"
	"net/http"
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
	c, _ := newClient(t, srv.URL, WithReadTimeout(30*time.Millisecond), WithRetries(5))
	_, err := c.Get(ctx, "slow")
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
	c, _ := newClient(t, srv.URL, WithReadTimeout(30*time.Millisecond), WithRetries(2))
	resp, err := c.Get(ctx, "x")
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
	_, err := c.Get(ctx, "x")
	require.NoError(t, err)
	assert.Equal(t, int32(1), got.Load())
}
