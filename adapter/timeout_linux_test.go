//go:build linux

package adapter

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unacceptingListener returns a loopback address whose listen queue is full: the kernel
// drops further SYNs, so a dial hangs until its timeout. Linux only (listen backlog 0).
func unacceptingListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue; the first dial that does not complete shows it is full.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the listen queue on this kernel; connect-timeout test skipped")
	return ""
}

func TestConnectTimeoutOnDial(t *testing.T) {
	addr := unacceptingListener(t)
	c, ft := newClient(t, "http://"+addr, WithTimeouts(50*time.Millisecond, time.Hour), WithRetries(2))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	e := requireTimeout(t, err, "connect")
	assert.Equal(t, 3, e.Attempts)
	assert.Len(t, ft.Waits(), 2)

	// A POST without an idempotency key is retried too: it never left.
	_, err = c.Do(context.Background(), &Request{Method: http.MethodPost, Path: "orders", Body: "{}"})
	e = requireTimeout(t, err, "connect")
	assert.Equal(t, 3, e.Attempts)

	// Per-request override and the context winning.
	c2, _ := newClient(t, "http://"+addr, WithTimeouts(time.Hour, 0), WithRetries(0))
	_, err = c2.Do(context.Background(), &Request{Path: "x", ConnectTimeout: 30 * time.Millisecond, ReadTimeout: 0})
	requireTimeout(t, err, "connect")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = c2.Do(ctx, &Request{Path: "x"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, ErrTimeout)
}
