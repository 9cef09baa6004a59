package adapter

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connkit/connkit/internal/audit"
	"github.com/connkit/connkit/synclog"
	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/time/rate"
)

// Client talks HTTP to one external API. It is safe for concurrent use; create one per
// backend and share it, so connections, the rate limit and OAuth2 tokens are shared too.
type Client struct {
	cfg  config
	base string // base URL with a trailing slash; "" when none
	// baseURL is base parsed, when a plain path can be joined to it without parsing the
	// result again (see fastURL); nil otherwise.
	baseURL *url.URL
	rc      *retryablehttp.Client
	// transport is the one under the attempt layer. The attempt layer deliberately does
	// not pass retryablehttp's CloseIdleConnections calls (made after every failed call)
	// down: that would drop every goroutine's pooled connections whenever one call fails.
	transport http.RoundTripper
	tokenC    *http.Client // one attempt per call, for OAuth2 token requests
	lim       *limiter
	red       *synclog.Redactor
	rec       synclog.Recorder // nil: no auditing
	log       *slog.Logger     // nil: no logging
	header    http.Header
	dialer    net.Dialer
	ref       refresher // cfg.auth when it can refresh

	// reqHeaders is the last request header and its redacted form: most calls send the
	// very same headers. The redacted map is shared by the entries that use it.
	reqHeaders atomic.Pointer[headerMemo]
	// respHeaders is the same for response headers (see redactResponseHeader).
	respHeaders atomic.Pointer[headerMemo]

	stats    clientStats
	timers   sync.Pool    // of *readTimer
	bodyHint atomic.Int64 // the length of the last body of unknown length (see readBody)
}

// addSecrets registers secrets with the redactor (which invalidates cached redactions:
// they are keyed on its Generation).
func (c *Client) addSecrets(v ...string) { c.red.AddSecrets(v...) }

// New returns a Client for the API at baseURL ("https://api.example.com/v1"); a
// Request.Path is joined to it. baseURL may be empty when every request uses
// an absolute URL. Without options the client has a 5 s connect timeout, a 15 s read
// timeout, 3 retries with backoff, a 32 MiB response limit, and no rate limit.
func New(baseURL string, opts ...Option) (*Client, error) {
	cfg := config{
		connectTimeout: defaultConnectTimeout,
		readTimeout:    defaultReadTimeout,
		maxRetries:     defaultMaxRetries,
		waitMin:        defaultRetryWaitMin,
		waitMax:        defaultRetryWaitMax,
		maxRetryAfter:  defaultMaxRetryAfter,
		maxBody:        defaultMaxResponseSize,
		auditLimit:     defaultAuditBodyLimit,
		idemHeader:     defaultIdempotencyHeader,
		sleep:          sleepCtx,
		rateLimit:      rate.Inf,
		header:         http.Header{},
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.realClock = cfg.now == nil
	if cfg.realClock {
		cfg.now = time.Now
	}
	if cfg.waitMin > cfg.waitMax {
		cfg.fail("WithRetryWait: the minimum wait %v exceeds the maximum %v", cfg.waitMin, cfg.waitMax)
	}
	// Errors quote the base URL without its query values and userinfo password, and
	// without the configured secrets: an API key in the URL is a common reason to fail.
	shown := func() string {
		red := cfg.redactor
		if red == nil {
			red = synclog.NewRedactor()
		}
		return red.URL(baseURL)
	}
	if len(cfg.errs) > 0 {
		return nil, fmt.Errorf("adapter.New(%q): %w", shown(), errors.Join(cfg.errs...))
	}
	c := &Client{cfg: cfg}
	if baseURL != "" {
		u, err := url.Parse(baseURL)
		switch {
		case err != nil:
			return nil, fmt.Errorf("adapter.New: base URL %q does not parse: %w", shown(), stripURLError(err))
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, fmt.Errorf("adapter.New: base URL %q must start with http:// or https://", shown())
		case u.Host == "":
			return nil, fmt.Errorf("adapter.New: base URL %q has no host", shown())
		case u.RawQuery != "" || u.Fragment != "":
			return nil, fmt.Errorf("adapter.New: base URL %q must not carry a query or fragment; use Request.Query, WithQuery or APIKeyQuery", shown())
		}
		c.base = strings.TrimRight(baseURL, "/") + "/"
		if b, err := url.Parse(c.base); err == nil && c.base == b.Scheme+"://"+b.Host+b.Path && b.RawPath == "" &&
			b.Host != "" && !strings.HasSuffix(b.Host, ":") {
			c.baseURL = b // the base is its parts verbatim: a path joined to it is a slice of the join
		}
	}

	c.header = cfg.header.Clone()
	if c.header.Get("User-Agent") == "" {
		c.header.Set("User-Agent", defaultUserAgent)
	}
	if c.header.Get("Accept") == "" {
		c.header.Set("Accept", "application/json")
	}

	c.red = cfg.redactor
	if c.red == nil {
		c.red = synclog.NewRedactor()
	}
	c.rec = cfg.recorder
	c.log = cfg.logger
	c.lim = newLimiter(cfg.rateLimit, cfg.burst, cfg.now, cfg.maxRetryAfter)
	c.lim.waited = &c.stats.limiterWait

	base := cfg.baseTransport
	if base == nil {
		tlsCfg := cfg.tlsConfig.Clone()
		if tlsCfg == nil {
			tlsCfg = &tls.Config{}
		}
		if tlsCfg.NextProtos == nil {
			tlsCfg.NextProtos = []string{"h2", "http/1.1"}
		}
		c.cfg.tlsConfig = tlsCfg
		base = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           c.dial,
			DialTLSContext:        c.dialTLS,
			TLSClientConfig:       tlsCfg, // used through proxies only
			TLSHandshakeTimeout:   cfg.connectTimeout,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	c.transport = base
	c.tokenC = &http.Client{Transport: base, Timeout: cfg.connectTimeout + cfg.readTimeout}
	if c.rec != nil {
		c.tokenC.Transport = &tokenAudit{c: c, base: base}
	}
	c.rc = &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: &attemptTransport{c: c, base: base}},
		RetryWaitMin: cfg.waitMin,
		RetryWaitMax: cfg.waitMax,
		// One more than configured: a 401 refresh-and-retry does not use up a retry.
		// checkRetry enforces the real limit.
		RetryMax:       cfg.maxRetries + 1,
		CheckRetry:     c.checkRetry,
		Backoff:        noBackoff, // prepareRetry waits, through the injectable sleeper
		PrepareRetry:   c.prepareRetry,
		RequestLogHook: countAttempt,
		ErrorHandler:   passthroughErrors,
	}

	if cfg.auth != nil {
		if s, ok := cfg.auth.(secretHolder); ok {
			c.addSecrets(s.Secrets()...)
		}
		if b, ok := cfg.auth.(clientBinder); ok {
			b.bindClient(c)
		}
		if r, ok := cfg.auth.(refresher); ok {
			c.ref = r
		}
	}
	return c, nil
}

// clientBinder is implemented by auth strategies that need the client (token requests,
// registering fetched tokens as secrets).
type clientBinder interface{ bindClient(*Client) }

// Do sends req, retrying as configured, and returns the complete response. A status of
// 400 or more yields an *Error (matching ErrNotFound, ErrServer, …) together with the
// Response, so the caller can still read the body. Failures without a response return a
// nil Response. When ctx is canceled or expires the error matches ctx.Err(), never
// ErrTimeout. Every call, successful or not, produces one audit entry.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	// The call keeps its own copy of *req: one allocation for the call's state and its
	// Request, and the caller's Request does not escape.
	st := &call{}
	if req != nil {
		st.reqv = *req
	}
	return c.do(ctx, st, &st.reqv)
}

func (c *Client) do(ctx context.Context, st *call, req *Request) (*Response, error) {
	if req == nil {
		req = &Request{}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	st.Context, st.c, st.req, st.start = ctx, c, req, c.cfg.now()
	st.bind()
	defer st.release()
	c.stats.requests.Add(1)
	rreq, err := c.build(st)
	if err != nil {
		return nil, c.finish(ctx, st, nil, err)
	}
	resp, err := c.rc.Do(rreq)
	if resp != nil {
		st.finalURL = resp.Request.URL
	}
	var out *Response
	if resp != nil {
		st.resp = Response{
			StatusCode: resp.StatusCode,
			Header:     resp.Header,
			Body:       st.lastBody,
			URL:        resp.Request.URL,
			Method:     st.method,
			client:     c,
			op:         req.Operation,
		}
		out = &st.resp
	}
	if err == nil && resp == nil {
		err = errors.New("no response") // not expected from retryablehttp; never report success without one
	}
	ferr := c.finish(ctx, st, resp, err)
	if out != nil {
		out.Attempts = st.attempts
		out.Duration = st.duration
	}
	if ferr == nil {
		return out, nil
	}
	var e *Error
	if errors.As(ferr, &e) && e.Status >= 400 && out != nil {
		return out, ferr
	}
	return nil, ferr
}

// build turns the Request into a retryablehttp request, applying headers, body and the
// first attempt's credentials. The request's context is st itself: the caller's context
// that also answers callFrom.
func (c *Client) build(st *call) (*retryablehttp.Request, error) {
	r := st.req
	st.method = r.Method
	switch up := strings.ToUpper(st.method); up {
	case "":
		st.method = http.MethodGet
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace:
		st.method = up // "post" means POST; custom methods stay as written
	}
	st.connectTimeout, st.readTimeout = c.cfg.connectTimeout, c.cfg.readTimeout
	if r.ConnectTimeout > 0 {
		st.connectTimeout = r.ConnectTimeout
	}
	if r.ReadTimeout > 0 {
		st.readTimeout = r.ReadTimeout
	}
	rawURL, err := c.resolve(r.Path, r.Query)
	if err != nil {
		st.rawURL = r.Path
		return nil, err
	}
	st.rawURL = rawURL
	body, ctype, err := encodeBody(r.Body)
	if err != nil {
		return nil, err
	}
	st.reqBody = body
	var hreq *http.Request
	if u := c.fastURL(&st.url, r.Path, rawURL); u != nil {
		// The URL is built, not parsed again: NewRequest gets an empty one to replace.
		hreq, err = http.NewRequestWithContext(st, st.method, "", nil)
		if err == nil {
			hreq.URL, hreq.Host = u, u.Host
		}
	} else {
		hreq, err = http.NewRequestWithContext(st, st.method, rawURL, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, stripURLError(err))
	}
	st.hreq = hreq
	// The static value slices are shared, not copied: they have len == cap (Clone in
	// New), so Add on this request reallocates instead of writing into them.
	h := http.Header(maps.Clone(c.header)) // copies the small map whole, faster than inserting
	hreq.Header = h
	for k, vs := range r.Header {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if ctype != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", ctype)
	}
	key := r.IdempotencyKey
	if key == "" && c.cfg.autoIdem && !idempotentMethod(st.method) {
		key = newIdempotencyKey()
	}
	if key != "" {
		h.Set(c.cfg.idemHeader, key)
	}
	st.idempotent = key != "" || idempotentMethod(st.method)

	st.rreq.Request = hreq
	rreq := &st.rreq
	if body != nil {
		if err := rreq.SetBody(body); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
		}
	}
	if c.cfg.auth != nil {
		u := hreq.URL
		if err := c.cfg.auth.Apply(hreq); err != nil {
			st.authErr = err
			return nil, err
		}
		if hreq.URL != u {
			st.rawURL = hreq.URL.String() // the audit entry shows what was sent (redacted)
		}
	}
	return rreq, nil
}

// resolve joins path to the base URL and adds the query.
func (c *Client) resolve(path string, q url.Values) (string, error) {
	var s string
	switch {
	case isAbsoluteURL(path):
		s = path
	case c.base == "":
		return "", fmt.Errorf("%w: path %q is relative but the client has no base URL; pass an absolute URL or set one in New", ErrInvalidRequest, path)
	case path == "":
		s = c.base[:len(c.base)-1]
	default:
		s = c.base + strings.TrimLeft(path, "/")
	}
	if len(q) > 0 {
		sep := "?"
		if strings.Contains(s, "?") {
			sep = "&"
		}
		s += sep + q.Encode()
	}
	return s, nil
}

// fastURL sets u to the URL that parsing rawURL (resolve's join of path to the base URL)
// gives, built from the parsed base URL, and returns it, when path is plain — only
// letters, digits and "-._~/" — so that parsing would change nothing; nil when it is not,
// and rawURL must be parsed.
func (c *Client) fastURL(u *url.URL, path, rawURL string) *url.URL {
	if c.baseURL == nil || path == "" || isAbsoluteURL(path) {
		return nil
	}
	for i := 0; i < len(path); i++ {
		if b := path[i]; !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~' || b == '/') {
			return nil
		}
	}
	*u = *c.baseURL
	end := len(rawURL)
	if i := strings.IndexByte(rawURL, '?'); i >= 0 {
		u.RawQuery, end = rawURL[i+1:], i
	}
	u.Path = rawURL[len(c.base)-len(u.Path) : end] // the base's path and the plain path, as joined
	return u
}

func isAbsoluteURL(p string) bool {
	return len(p) > 8 && (strings.EqualFold(p[:7], "http://") || strings.EqualFold(p[:8], "https://"))
}

// encodeBody returns the bytes to send and their content type.
func encodeBody(body any) ([]byte, string, error) {
	switch b := body.(type) {
	case nil:
		return nil, "", nil
	case []byte:
		return b, "", nil
	case string:
		return []byte(b), "", nil
	case json.RawMessage:
		if !json.Valid(b) {
			return nil, "", fmt.Errorf("%w: the json.RawMessage body is not valid JSON", ErrInvalidRequest)
		}
		return b, "application/json", nil
	default:
		out, err := json.Marshal(b)
		if err != nil {
			return nil, "", fmt.Errorf("%w: encoding the %T body as JSON: %w", ErrInvalidRequest, body, err)
		}
		return out, "application/json", nil
	}
}

// idempotentMethod reports whether repeating a request with this method is harmless
// (RFC 9110 §9.2.2).
func idempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// finish turns the outcome into an *Error (or nil), fills the call's timing and writes
// the audit entry.
func (c *Client) finish(ctx context.Context, st *call, resp *http.Response, err error) error {
	if c.cfg.realClock {
		st.duration = time.Since(st.start) // one clock read, not two
	} else {
		st.duration = c.cfg.now().Sub(st.start)
	}
	var e *Error
	switch {
	case err != nil:
		e = c.newError(st, resp)
		err = stripURLError(err)
		if ctxErr := ctx.Err(); ctxErr != nil {
			// The caller gave up: that is what the error says, not a timeout.
			e.Err, e.kind = ctxErr, nil
			break
		}
		switch {
		case st.authErr != nil:
			e.Err = st.authErr
			e.kind = authKind(st.authErr)
		case e.Status != 0 && st.tooLarge:
			e.Err = err
			e.kind = ErrResponseTooLarge
		default:
			e.Err = err
			e.kind = classifyTransportError(err)
		}
	case resp != nil && resp.StatusCode >= 400:
		e = c.newError(st, resp)
		e.kind = statusKind(resp.StatusCode)
		if st.stopErr != nil {
			e.kind, e.Err = ErrRateLimited, st.stopErr
		} else if st.authErr != nil {
			e.Err = st.authErr
		}
	}
	if e != nil {
		if e.Err != nil {
			if msg := e.Err.Error(); c.red.String(msg) != msg {
				e.Err = &redactedError{msg: c.red.String(msg), cause: e.Err}
			}
		}
		err = e
	} else {
		err = nil
	}
	c.record(ctx, st, resp, e)
	return err
}

func (c *Client) newError(st *call, resp *http.Response) *Error {
	e := &Error{Op: st.req.Operation, Method: st.method, Attempts: st.attempts}
	u := st.finalURL
	if u == nil && st.hreq != nil {
		u = st.hreq.URL
	}
	if u != nil {
		e.URL = c.red.URL(u.String())
	} else {
		e.URL = c.red.URL(st.rawURL)
	}
	status, header := st.lastStatus, st.lastHeader
	if resp != nil {
		status, header = resp.StatusCode, resp.Header
	}
	e.Status = status
	if header != nil {
		e.RequestID = c.red.String(requestID(header))
		if len(st.lastBody) > 0 {
			b := c.red.Body(st.lastBody, header.Get("Content-Type"))
			e.Body, _ = audit.Truncate(b, bodyExcerptLimit)
		}
	}
	return e
}

// authKind picks the sentinel for a failure to obtain credentials.
func authKind(err error) error {
	var to interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.Canceled):
		return nil
	case errors.As(err, &to) && to.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout // the token request timed out (the caller's own deadline is handled before)
	}
	return ErrUnauthorized
}

// redactedError carries a cause whose text held a secret.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// validJSON returns an *Error matching ErrBadResponse when the body is not valid JSON
// (an empty body included).
func (r *Response) validJSON() error {
	if len(r.Body) == 0 {
		return r.badJSON(errors.New("the body is empty"))
	}
	if !json.Valid(r.Body) {
		return r.badJSON(fmt.Errorf("the body (Content-Type %q) is not valid JSON", r.Header.Get("Content-Type")))
	}
	return nil
}

// badJSON builds the ErrBadResponse error for this response.
func (r *Response) badJSON(cause error) error {
	red := defaultRedactor()
	if r.client != nil {
		red = r.client.red
	}
	e := &Error{Method: r.Method, Status: r.StatusCode, Attempts: r.Attempts, Err: cause, kind: ErrBadResponse, Op: r.op}
	if r.URL != nil {
		e.URL = red.URL(r.URL.String())
	}
	if e.Method == "" {
		e.Method = http.MethodGet
	}
	if r.Header != nil {
		e.RequestID = requestID(r.Header)
	}
	if c := r.client; c != nil {
		e.RequestID = c.red.String(e.RequestID)
		b := c.red.Body(r.Body, r.Header.Get("Content-Type"))
		e.Body, _ = audit.Truncate(b, bodyExcerptLimit)
		if msg := cause.Error(); c.red.String(msg) != msg {
			e.Err = &redactedError{msg: c.red.String(msg), cause: cause}
		}
	}
	return e
}
