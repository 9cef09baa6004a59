package adapter

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// call is the state of one logical call across its attempts. Attempts run one after
// another, so only fields touched from transport goroutines need synchronisation.
//
// A call is also the context of its requests: the caller's context, which answers
// callKey with the call. That saves the allocation of a context.WithValue per call, and
// the Request, Response and first attempt live inside it for the same reason.
type call struct {
	context.Context // the caller's

	c     *Client
	req   *Request
	hreq  *http.Request
	rreq  retryablehttp.Request
	start time.Time

	method                      string
	rawURL                      string
	reqBody                     []byte
	idempotent                  bool
	connectTimeout, readTimeout time.Duration

	attempts  int
	retries   int  // retries spent (a 401 refresh does not count)
	refreshed bool // the one 401 refresh-and-retry happened
	sent      bool // the last attempt obtained a connection: it may have reached the server
	tooLarge  bool
	nextWait  time.Duration
	// retryAfterWait: nextWait is the server's Retry-After, not backoff
	retryAfterWait bool
	reason         string
	stopErr        error // why a retryable answer was not retried (Retry-After too long)
	authErr        error // credentials could not be obtained or refreshed
	duration       time.Duration

	// The last attempt, for the response, errors and the audit entry.
	lastURL       *url.URL
	lastReqHeader http.Header
	lastStatus    int
	lastHeader    http.Header
	lastBody      []byte
	finalURL      *url.URL

	reqv      Request  // the Request, when the call built it (Get, Post, …)
	resp      Response // the Response handed to the caller
	first     attempt  // the first attempt's timer state
	firstUsed bool
}

type callKey struct{}

// Value answers callKey with the call and asks the caller's context for everything else.
func (st *call) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return st
	}
	return st.Context.Value(key)
}

// release drops what the call no longer needs once Do returns, so that a Response the
// caller keeps does not keep the request body and the request alive with it.
func (st *call) release() {
	st.hreq, st.rreq, st.reqBody, st.lastReqHeader, st.lastURL = nil, retryablehttp.Request{}, nil, nil, nil
}

func callFrom(ctx context.Context) *call {
	st, _ := ctx.Value(callKey{}).(*call)
	return st
}

// countAttempt is the retryablehttp request hook: it runs once before every attempt.
func countAttempt(_ retryablehttp.Logger, req *http.Request, i int) {
	if st := callFrom(req.Context()); st != nil {
		st.attempts = i + 1
	}
}

func noBackoff(time.Duration, time.Duration, int, *http.Response) time.Duration { return 0 }

func passthroughErrors(resp *http.Response, err error, _ int) (*http.Response, error) {
	return resp, err
}

// attemptTransport runs one attempt: rate limit, read timeout, body buffering.
type attemptTransport struct {
	c    *Client
	base http.RoundTripper
}

// errReadTimeout is the cancellation cause set when the read timer fires.
var errReadTimeout = errors.New("adapter: read timeout")

// attempt times one round trip: its read timer starts once a connection is obtained, so
// a slow dial does not eat into the read timeout.
type attempt struct {
	d         time.Duration
	cancel    context.CancelCauseFunc
	trace     httptrace.ClientTrace
	connected atomic.Bool
	conns     atomic.Int32 // connections obtained: more than one is a silent re-send
	mu        sync.Mutex
	timer     *time.Timer
	done      bool
}

func (a *attempt) gotConn(httptrace.GotConnInfo) {
	a.conns.Add(1)
	a.connected.Store(true)
	a.mu.Lock()
	if !a.done && a.timer == nil {
		a.timer = time.AfterFunc(a.d, a.fire)
	}
	a.mu.Unlock()
}

func (a *attempt) fire() { a.cancel(errReadTimeout) }

func (a *attempt) stop() {
	a.mu.Lock()
	a.done = true
	if a.timer != nil {
		a.timer.Stop()
	}
	a.mu.Unlock()
}

// RoundTrip implements http.RoundTripper.
func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	st := callFrom(ctx)
	if st == nil {
		return t.base.RoundTrip(req)
	}
	c := t.c
	if err := c.lim.wait(ctx, c.cfg.sleep); err != nil {
		return nil, err
	}
	st.lastURL, st.lastReqHeader = req.URL, req.Header
	st.lastStatus, st.lastHeader, st.lastBody, st.sent, st.tooLarge = 0, nil, nil, false, false

	// A late timer of an earlier attempt may still fire into its attempt: only the first
	// attempt (which has no earlier one) uses the state inside the call.
	a := &st.first
	if st.firstUsed {
		a = &attempt{}
	}
	st.firstUsed = true
	a.d = st.readTimeout
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.cancel = cancel
	a.trace.GotConn = a.gotConn
	actx = httptrace.WithClientTrace(actx, &a.trace)

	c.stats.attempts.Add(1)
	resp, err := t.base.RoundTrip(req.WithContext(actx))
	if n := a.conns.Load(); n > 1 {
		// net/http sent the request again on a new connection after a reused one
		// closed (idempotent requests only): count it, the server may have seen both.
		c.stats.resends.Add(uint64(n - 1))
	}
	if err != nil {
		c.stats.countResponse(0)
		if resp != nil && resp.Body != nil {
			resp.Body.Close() // a RoundTripper that breaks the contract must not leak a connection
		}
		a.stop()
		st.sent = a.connected.Load()
		return nil, t.attemptError(ctx, actx, a, err)
	}
	st.lastStatus, st.lastHeader = resp.StatusCode, resp.Header
	c.stats.countResponse(resp.StatusCode)
	c.lim.observe(resp)
	if c.cfg.limitHeaders != "" {
		c.cfg.limitHeaders.observe(resp.Header, c.lim)
	}
	body, err := readBody(resp, c.cfg.maxBody)
	a.stop()
	st.sent = true
	if err != nil {
		var tl *tooLargeError
		if errors.As(err, &tl) {
			st.tooLarge = true
			return nil, err
		}
		return nil, t.attemptError(ctx, actx, a, err)
	}
	st.lastBody = body
	// The body lives on in st.lastBody; retryablehttp and redirects only drain this.
	resp.Body = http.NoBody
	return resp, nil
}

// attemptError says why an attempt failed: the caller's context first, then our own
// read timeout, then whatever the transport reported.
func (t *attemptTransport) attemptError(ctx, actx context.Context, a *attempt, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if context.Cause(actx) == errReadTimeout {
		return &timeoutError{phase: "read", limit: a.d}
	}
	return err
}

// readBody reads the whole body, up to limit bytes, and closes it.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	if resp.Body == http.NoBody {
		return nil, nil
	}
	if cl := resp.ContentLength; cl >= 0 {
		if cl > limit {
			return nil, &tooLargeError{limit: limit}
		}
		// One spare byte: ReadFull then stops at EOF, which hands the connection back
		// to the pool before the read returns.
		buf := make([]byte, cl+1)
		n, err := io.ReadFull(resp.Body, buf)
		switch {
		case err == io.ErrUnexpectedEOF && int64(n) == cl, err == io.EOF && cl == 0:
			if cl == 0 {
				return nil, nil
			}
			return buf[:cl], nil
		case err == nil:
			return nil, errors.New("response body longer than its Content-Length")
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			return nil, errors.New("response body cut short: the connection closed before Content-Length bytes arrived")
		default:
			return nil, err
		}
	}
	buf := make([]byte, 0, 4096)
	lr := io.LimitedReader{R: resp.Body, N: limit + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, &tooLargeError{limit: limit}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// connectTimeoutFor returns the connect timeout for the call that is dialing.
func (c *Client) connectTimeoutFor(ctx context.Context) time.Duration {
	if st := callFrom(ctx); st != nil && st.connectTimeout > 0 {
		return st.connectTimeout
	}
	return c.cfg.connectTimeout
}

// dial opens a TCP connection within the connect timeout. The transport passes the
// request's context values (not its cancellation), so per-request timeouts reach here.
func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := c.connectTimeoutFor(ctx)
	dctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	conn, err := c.dialer.DialContext(dctx, network, addr)
	if err != nil {
		if ctx.Err() == nil && (dctx.Err() != nil || isTimeout(err)) {
			return nil, &timeoutError{phase: "connect", limit: d}
		}
		return nil, err
	}
	return conn, nil
}

// dialTLS dials and completes the TLS handshake within one connect timeout.
func (c *Client) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	d := c.connectTimeoutFor(ctx)
	dctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	raw, err := c.dialer.DialContext(dctx, network, addr)
	if err != nil {
		if ctx.Err() == nil && (dctx.Err() != nil || isTimeout(err)) {
			return nil, &timeoutError{phase: "connect", limit: d}
		}
		return nil, err
	}
	cfg := c.cfg.tlsConfig
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(dctx); err != nil {
		raw.Close()
		if ctx.Err() == nil && (dctx.Err() != nil || isTimeout(err)) {
			return nil, &timeoutError{phase: "connect", limit: d}
		}
		return nil, err
	}
	return tc, nil
}

// isTimeout reports whether err says a deadline passed.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
