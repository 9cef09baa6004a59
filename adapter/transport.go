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
// A call is also the context of its requests, for every attempt: the caller's context,
// which answers callKey with the call and carries the call's httptrace hooks, and which
// is also canceled when the read timeout of the running attempt fires. Such a
// cancellation lasts until the attempt returns (see endAttempt), so retryablehttp, which
// checks the request's context between attempts, sees only the caller's cancellation.
// Doing it this way saves, per attempt, a context.WithCancelCause (and the child the
// transport registers under it), a context.WithValue for the trace and a copy of the
// request; the Request, Response and trace live inside the call for the same reason.
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

	reqv Request  // the call's copy of the Request
	resp Response // the Response handed to the caller
	url  url.URL  // the request's URL when Client.fastURL builds it

	// The call as a context.
	values     context.Context // the caller's context with the call's trace when it has one of its own (set by bind)
	trace      httptrace.ClientTrace
	stopCaller func() bool // stops the callback on the caller's cancellation, if any
	connected  atomic.Bool // the running attempt obtained a connection (stored under mu)
	conns      atomic.Int32
	mu         sync.Mutex // guards the fields below
	done       chan struct{}
	closed     bool        // done is (to be) closed: the caller gave up or the read timeout fired
	callerGone bool        // the caller's context is done: the call stays canceled
	fired      bool        // the running attempt's read timeout expired
	running    bool        // an attempt is running: its read timer may be armed
	timerSet   bool        // the running attempt has a read deadline
	waitConn   bool        // the read deadline passed before a connection: gotConn sets it again
	connAt     time.Time   // when the running attempt got a new connection; zero: at its start
	timer      *readTimer  // nil until the first attempt; back to the client's pool in release
	attemptSeq uint64      // the running attempt's number in its timer (readTimer.seq)
	afterFuncs []afterFunc // registered by contexts derived from the call (the transport's)
	afterBuf   [2]afterFunc
	afterSeq   uint64
}

type afterFunc struct {
	id uint64
	f  func()
}

// closedChan is the Done channel of a call that was canceled before anyone asked for it.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

type callKey struct{}

// bind makes st usable as a context: it installs the trace hooks and follows the
// caller's cancellation.
func (st *call) bind() {
	st.trace.GotConn = st.gotConn
	st.afterFuncs = st.afterBuf[:0]
	if clientTraceKey == nil || httptrace.ContextClientTrace(st.Context) != nil {
		st.values = httptrace.WithClientTrace(st.Context, &st.trace) // composes with a caller's trace
	}
	if st.Context.Done() != nil {
		st.stopCaller = context.AfterFunc(st.Context, st.callerDone)
	}
}

// Value answers callKey with the call and httptrace's key with its hooks (itself, which
// saves a context.WithValue per call, unless the caller's context has a trace to compose
// with), and asks the caller's context for everything else.
func (st *call) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return st
	}
	if st.values != nil {
		return st.values.Value(key)
	}
	if key == clientTraceKey {
		return &st.trace
	}
	return st.Context.Value(key)
}

// clientTraceKey is the context key under which net/http/httptrace keeps a request's
// ClientTrace (of an unexported type), found once by asking a probe context; nil when the
// probe cannot tell, and then every call uses httptrace.WithClientTrace.
var clientTraceKey = func() any {
	p := &keyProbe{Context: context.Background()}
	httptrace.ContextClientTrace(p)
	if p.key == nil {
		return nil
	}
	tr := &httptrace.ClientTrace{}
	if httptrace.WithClientTrace(context.Background(), tr).Value(p.key) != tr {
		return nil
	}
	return p.key
}()

// keyProbe is a context that records the first key it is asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

// Done implements context.Context: closed when the caller's context is done or the
// running attempt's read timeout fired.
func (st *call) Done() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done == nil {
		if st.closed {
			st.done = closedChan
		} else {
			st.done = make(chan struct{})
		}
	}
	return st.done
}

// Err implements context.Context. A fired read timeout reads as DeadlineExceeded; the
// call tells it from the caller's deadline by its fired flag, never by this error.
func (st *call) Err() error {
	if err := st.Context.Err(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return context.DeadlineExceeded
	}
	return nil
}

// AfterFunc lets contexts derived from the call (the transport derives one per round
// trip) follow its cancellation without a goroutine each: context.WithCancel uses it.
func (st *call) AfterFunc(f func()) (stop func() bool) {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	st.afterSeq++
	id := st.afterSeq
	st.afterFuncs = append(st.afterFuncs, afterFunc{id: id, f: f})
	st.mu.Unlock()
	return func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		for i, a := range st.afterFuncs {
			if a.id == id {
				st.afterFuncs = append(st.afterFuncs[:i], st.afterFuncs[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancelLocked closes done and returns the registered functions to run, which the caller
// runs after unlocking (they call Err).
func (st *call) cancelLocked() []afterFunc {
	if st.closed {
		return nil
	}
	st.closed = true
	if st.done != nil {
		close(st.done)
	}
	fs := st.afterFuncs
	st.afterFuncs = nil
	return fs
}

func runAfter(fs []afterFunc) {
	for _, a := range fs {
		a.f() // the transport's cancel functions: quick, and they do not block
	}
}

// callerDone runs once the caller's context is done.
func (st *call) callerDone() {
	st.mu.Lock()
	st.callerGone = true
	fs := st.cancelLocked()
	st.mu.Unlock()
	runAfter(fs)
}

// The read timeout of an attempt runs from the moment it obtains a connection, so that a
// slow dial does not eat into it. The deadline is set when the attempt starts (setting it
// from the GotConn hook, inside the transport, measured slower) and, when it passes, an
// attempt that connected late gets more time: until connAt + the read timeout, or a full
// read timeout from the connection when there is none yet.
//
// The timer behind the deadline is lazy. Arming a runtime timer wakes the thread
// sleeping in the network poller (a system call and a context switch, per attempt, which
// measured as the largest cost the client added to a request), and most attempts end long
// before their deadline. So a readTimer stays armed across attempts and calls: an attempt
// only writes its deadline into it, and re-arms it only when it is due later than that
// deadline. When it fires before the running attempt's deadline it re-arms itself for it;
// when no attempt is running it does nothing.

// readTimer is the lazy timer of the attempts of the calls it is lent to, one call at a
// time. Calls borrow one from their client's pool, which saves creating a timer per
// call.
type readTimer struct {
	t  *time.Timer
	mu sync.Mutex // guards the fields below; taken after a call's mu, never before
	st *call      // the call it is lent to; nil in the pool
	// deadline is the running attempt's (on the mono clock); 0 when none is running or
	// it has expired.
	deadline int64
	due      int64  // when t fires (mono); 0 when it is not armed (or is firing)
	seq      uint64 // numbers the attempts that used the timer
}

// monoBase is the origin of mono.
var monoBase = time.Now()

// mono reads the monotonic clock, in nanoseconds since monoBase: one clock read, where
// time.Now makes two (the wall clock too). Always positive.
func mono() int64 { return int64(time.Since(monoBase)) + 1 }

// fire runs when the timer expires: it re-arms the timer for a running attempt whose
// deadline is still ahead, and expires one whose deadline passed.
func (rt *readTimer) fire() {
	rt.mu.Lock()
	rt.due = 0
	st := rt.st
	if rt.deadline == 0 || st == nil {
		rt.mu.Unlock()
		return
	}
	if d := rt.deadline - mono(); d > 0 {
		rt.t.Reset(time.Duration(d))
		rt.due = rt.deadline
		rt.mu.Unlock()
		return
	}
	seq := rt.seq
	rt.deadline = 0 // expire sets a new one if it gives the attempt more time
	rt.mu.Unlock()
	st.expire(rt, seq)
}

// armLocked sets the deadline of the running attempt, re-arming the timer only when it is
// not due by then. The caller holds rt.mu.
func (rt *readTimer) armLocked(deadline, now int64) {
	rt.deadline = deadline
	if rt.due == 0 || rt.due > deadline {
		rt.t.Reset(time.Duration(deadline - now))
		rt.due = deadline
	}
}

// arm sets the running attempt's deadline to d from now; st.mu is held.
func (st *call) arm(d time.Duration) {
	rt := st.timer
	now := mono()
	rt.mu.Lock()
	rt.armLocked(now+int64(d), now)
	rt.mu.Unlock()
}

// expire runs when the deadline of attempt seq passed; an attempt that already returned
// is left alone (its number is not the running attempt's).
func (st *call) expire(rt *readTimer, seq uint64) {
	st.mu.Lock()
	if !st.running || !st.timerSet || st.timer != rt || st.attemptSeq != seq {
		st.mu.Unlock()
		return
	}
	if !st.connected.Load() {
		st.waitConn = true // gotConn sets the deadline again
		st.mu.Unlock()
		return
	}
	if !st.connAt.IsZero() {
		rem := time.Until(st.connAt.Add(st.readTimeout))
		st.connAt = time.Time{}
		if rem > 0 {
			st.arm(rem)
			st.mu.Unlock()
			return
		}
	}
	st.fired = true
	fs := st.cancelLocked()
	st.mu.Unlock()
	runAfter(fs)
}

// gotConn notes that the running attempt has a connection; a new one (not from the pool)
// moves the start of its read timeout to now. Only the first connection of an attempt
// counts: a silent re-send does not get a fresh read timeout.
func (st *call) gotConn(info httptrace.GotConnInfo) {
	if st.conns.Add(1) > 1 {
		return
	}
	var now time.Time
	if !info.Reused {
		now = time.Now()
	}
	st.mu.Lock()
	st.connAt = now
	st.connected.Store(true)
	if st.waitConn && st.running && st.timerSet && !st.closed {
		// The deadline passed while connecting: a full read timeout from now.
		st.waitConn, st.connAt = false, time.Time{}
		st.arm(st.readTimeout)
	}
	st.mu.Unlock()
}

// readTimer lends st a read timer.
func (c *Client) readTimer(st *call) *readTimer {
	rt, _ := c.timers.Get().(*readTimer)
	if rt == nil {
		rt = &readTimer{}
		rt.t = time.AfterFunc(time.Hour, rt.fire)
		rt.t.Stop()
	}
	rt.mu.Lock()
	rt.st = st
	rt.mu.Unlock()
	return rt
}

// beginAttempt marks an attempt as running and sets its read deadline.
func (st *call) beginAttempt() {
	st.conns.Store(0)
	st.connected.Store(false)
	st.mu.Lock()
	st.running, st.fired, st.waitConn, st.connAt = true, false, false, time.Time{}
	st.timerSet = !st.closed
	if st.timerSet {
		if st.timer == nil {
			st.timer = st.c.readTimer(st)
		}
		rt := st.timer
		now := mono()
		rt.mu.Lock()
		rt.seq++
		st.attemptSeq = rt.seq
		rt.armLocked(now+int64(st.readTimeout), now)
		rt.mu.Unlock()
	}
	st.mu.Unlock()
}

// endAttempt clears the attempt's read deadline (the timer stays armed for the next one)
// and reports whether it expired. A cancellation by the read timeout ends with the
// attempt; the caller's lasts.
func (st *call) endAttempt() (fired bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.timerSet {
		rt := st.timer
		rt.mu.Lock()
		rt.deadline = 0
		rt.mu.Unlock()
	}
	fired = st.fired
	st.running, st.timerSet, st.fired = false, false, false
	if fired && !st.callerGone {
		st.closed, st.done = false, nil // a fresh channel for the next attempt
	}
	return fired
}

// release drops what the call no longer needs once Do returns, so that a Response the
// caller keeps does not keep the request body and the request alive with it.
func (st *call) release() {
	if st.stopCaller != nil {
		st.stopCaller()
	}
	if rt := st.timer; rt != nil {
		st.timer = nil
		rt.mu.Lock()
		rt.st, rt.deadline = nil, 0
		rt.mu.Unlock()
		st.c.timers.Put(rt)
	}
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

	st.beginAttempt()
	c.stats.attempts.Add(1)
	resp, err := t.base.RoundTrip(req)
	if n := st.conns.Load(); n > 1 {
		// net/http sent the request again on a new connection after a reused one
		// closed (idempotent requests only): count it, the server may have seen both.
		c.stats.resends.Add(uint64(n - 1))
	}
	if err != nil {
		c.stats.countResponse(0)
		if resp != nil && resp.Body != nil {
			resp.Body.Close() // a RoundTripper that breaks the contract must not leak a connection
		}
		fired := st.endAttempt()
		st.sent = st.connected.Load()
		return nil, t.attemptError(st, fired, err)
	}
	st.lastStatus, st.lastHeader = resp.StatusCode, resp.Header
	c.stats.countResponse(resp.StatusCode)
	c.lim.observe(resp)
	if c.cfg.limitHeaders != "" {
		c.cfg.limitHeaders.observe(resp.Header, c.lim)
	}
	body, err := readBody(resp, c.cfg.maxBody, &c.bodyHint)
	fired := st.endAttempt()
	st.sent = true
	if err != nil {
		var tl *tooLargeError
		if errors.As(err, &tl) {
			st.tooLarge = true
			return nil, err
		}
		return nil, t.attemptError(st, fired, err)
	}
	st.lastBody = body
	// The body lives on in st.lastBody; retryablehttp and redirects only drain this.
	resp.Body = http.NoBody
	return resp, nil
}

// attemptError says why an attempt failed: the caller's context first, then our own
// read timeout, then whatever the transport reported.
func (t *attemptTransport) attemptError(st *call, fired bool, err error) error {
	if err := st.Context.Err(); err != nil {
		return err
	}
	if fired {
		return &timeoutError{phase: "read", limit: st.readTimeout}
	}
	return err
}

// maxBodyHint bounds the starting buffer of a body of unknown length.
const maxBodyHint = 256 << 10

// readBody reads the whole body, up to limit bytes, and closes it. A body of unknown length
// (chunked) is read into a buffer the size of the previous one (hint, up to maxBodyHint),
// plus an eighth: a client that lists pages of similar size then reads each in one
// allocation instead of growing a buffer from 4 KiB.
func readBody(resp *http.Response, limit int64, hint *atomic.Int64) ([]byte, error) {
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
	size := int64(4096)
	if h := hint.Load(); h > size {
		size = min(h+h/8, limit+1)
	}
	buf := make([]byte, 0, size)
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
			if n := int64(len(buf)); n != hint.Load() {
				hint.Store(min(n, maxBodyHint))
			}
			if cap(buf)-len(buf) > len(buf)/4+4096 {
				// The hint was far too big: the caller may keep the body, so it gets one
				// that does not hold the spare capacity.
				buf = append([]byte(nil), buf...)
			}
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
