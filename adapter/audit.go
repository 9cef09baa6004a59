package adapter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/connkit/connkit/internal/audit"
	"github.com/connkit/connkit/synclog"
)

// Auditing: one synclog.Entry per call, built from redacted parts. The request headers
// are usually the very same on every call, so their redacted copy is cached whole.

// record writes the call's audit entry.
func (c *Client) record(ctx context.Context, st *call, resp *http.Response, e *Error) {
	if c.rec == nil {
		return
	}
	ent := synclog.Entry{
		Time:      st.start,
		Backend:   c.cfg.backend,
		Operation: st.req.Operation,
		Direction: synclog.Outbound,
		Method:    st.method,
		Duration:  st.duration,
		Attempts:  st.attempts,
		Model:     st.req.Model,
		Record:    st.req.Record,
		Status:    st.lastStatus,
	}
	switch {
	case st.finalURL != nil && st.hreq != nil && st.finalURL == st.hreq.URL:
		ent.URL = c.red.URL(st.rawURL) // no redirect, no URL-changing auth: skip String()
	case st.finalURL != nil:
		ent.URL = c.red.URL(st.finalURL.String())
	case st.lastURL != nil:
		ent.URL = c.red.URL(st.lastURL.String())
	default:
		ent.URL = c.red.URL(st.rawURL)
	}
	reqHeader := st.lastReqHeader
	if reqHeader == nil && st.hreq != nil {
		reqHeader = st.hreq.Header
	}
	ent.RequestHeader = c.redactRequestHeader(reqHeader)
	respHeader := st.lastHeader
	if resp != nil {
		ent.Status, respHeader = resp.StatusCode, resp.Header
	}
	ent.ResponseHeader = c.redactResponseHeader(respHeader)
	var cut1, cut2 bool
	if len(st.reqBody) > 0 {
		ent.RequestBody, cut1 = audit.Truncate(c.red.Body(st.reqBody, contentType(reqHeader)), c.cfg.auditLimit)
	}
	if len(st.lastBody) > 0 {
		ent.ResponseBody, cut2 = audit.Truncate(c.red.Body(st.lastBody, contentType(respHeader)), c.cfg.auditLimit)
	}
	ent.Truncated = cut1 || cut2
	if e != nil {
		ent.Error = e.Error() // built from redacted parts
	}
	c.emit(ctx, &ent)
}

// contentType is h.Get("Content-Type") without canonicalizing the constant key.
func contentType(h http.Header) string {
	if v := h["Content-Type"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// emit hands ent to the recorder; a recorder failure is logged, never returned.
func (c *Client) emit(ctx context.Context, ent *synclog.Entry) {
	rctx := ctx
	if ctx.Done() != nil {
		rctx = context.WithoutCancel(ctx) // record the call even when the caller gave up
	}
	if err := c.rec.Record(rctx, *ent); err != nil && c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "adapter: audit recorder failed",
			slog.String("backend", c.cfg.backend), slog.String("url", ent.URL), slog.String("error", c.red.String(err.Error())))
	}
}

// tokenOperation is the Operation of the audit entries of OAuth2 token requests.
const tokenOperation = "oauth2 token"

// tokenBodyLimit is how much of a token response is read: golang.org/x/oauth2 reads no
// more either.
const tokenBodyLimit = 1 << 20

// tokenAudit records the OAuth2 token requests, which go through the client's transport
// but not through Do, in the audit trail: one entry per request, redacted like every
// other exchange — the client secret (Basic header or client_secret field), the refresh
// token sent, and the tokens received.
type tokenAudit struct {
	c    *Client
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *tokenAudit) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	ent := synclog.Entry{
		Time:          c.cfg.now(),
		Backend:       c.cfg.backend,
		Operation:     tokenOperation,
		Direction:     synclog.Outbound,
		Method:        req.Method,
		URL:           c.red.URL(req.URL.String()),
		RequestHeader: c.red.Header(req.Header),
		Attempts:      1,
	}
	var cut1, cut2 bool
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(rc, tokenBodyLimit))
			rc.Close()
			ent.RequestBody, cut1 = audit.Truncate(c.red.Body(b, req.Header.Get("Content-Type")), c.cfg.auditLimit)
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		// Read the body here, to record it, and hand the same bytes on.
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, tokenBodyLimit))
		resp.Body.Close()
		ent.Status, ent.ResponseHeader = resp.StatusCode, c.red.Header(resp.Header)
		if rerr != nil {
			resp, err = nil, fmt.Errorf("reading the token response: %w", rerr)
		} else {
			resp.Body = io.NopCloser(bytes.NewReader(b))
			ent.ResponseBody, cut2 = audit.Truncate(c.red.Body(b, resp.Header.Get("Content-Type")), c.cfg.auditLimit)
		}
	}
	ent.Truncated = cut1 || cut2
	ent.Duration = c.cfg.now().Sub(ent.Time)
	if err != nil {
		ent.Error = c.red.String(stripURLError(err).Error())
	}
	c.emit(req.Context(), &ent)
	return resp, err
}

// defaultRedactor redacts texts quoted from responses that no Client of this package
// produced (paginating over another Doer): the default rules, no literal secrets.
var defaultRedactor = sync.OnceValue(func() *synclog.Redactor { return synclog.NewRedactor() })

type headerMemo struct {
	gen uint64
	// keys and vals are the raw header, flattened: comparing a header with them costs a
	// lookup per key, where ranging over a map costs more than the lookups.
	keys []string
	vals [][]string
	red  http.Header
	hit  atomic.Bool // the memo served at least one header
}

func newHeaderMemo(gen uint64, h, red http.Header) *headerMemo {
	m := &headerMemo{gen: gen, red: red, keys: make([]string, 0, len(h)), vals: make([][]string, 0, len(h))}
	for k, v := range h {
		m.keys = append(m.keys, k)
		m.vals = append(m.vals, append([]string(nil), v...))
	}
	return m
}

// same reports whether h holds exactly the memo's raw header.
func (m *headerMemo) same(h http.Header) bool {
	if len(h) != len(m.keys) {
		return false
	}
	for i, k := range m.keys {
		// The keys are distinct and as many as h has: h has no others.
		hv, ok := h[k]
		mv := m.vals[i]
		if !ok || len(hv) != len(mv) {
			return false
		}
		for j := range mv {
			if hv[j] != mv[j] {
				return false
			}
		}
	}
	return true
}

// redactRequestHeader is c.red.Header with a whole-header cache, valid while the
// redactor's secrets do not change. The returned map may be shared with other audit
// entries: recorders treat entry headers as read-only.
func (c *Client) redactRequestHeader(h http.Header) http.Header {
	gen := audit.RedactorGeneration(c.red)
	if m := c.reqHeaders.Load(); m != nil && m.gen == gen && m.same(h) {
		return m.red
	}
	red := c.red.Header(h)
	c.reqHeaders.Store(newHeaderMemo(gen, h, red))
	return red
}

// redactResponseHeader is c.red.Header with the same whole-header cache for response
// headers, which repeat less: an API that sends a Date header repeats them within each
// second, one that sends a fresh request ID never does. So a miss replaces the memo only
// when the memo it replaces served at least once (or is stale): with ever-changing
// headers the cache costs one comparison, not a copy per response.
func (c *Client) redactResponseHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	gen := audit.RedactorGeneration(c.red)
	m := c.respHeaders.Load()
	if m != nil && m.gen == gen && m.same(h) {
		if !m.hit.Load() {
			m.hit.Store(true)
		}
		return m.red
	}
	red := c.red.Header(h)
	if m == nil || m.gen != gen || m.hit.Load() {
		c.respHeaders.Store(newHeaderMemo(gen, h, red))
	}
	return red
}
