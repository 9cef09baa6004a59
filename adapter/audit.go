package adapter

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/connkit/connkit/synclog"
)

// Auditing: one synclog.Entry per call, built from redacted parts. Redaction is the
// costliest part of the hot path, so header values are redacted once and cached.

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
	ent.ResponseHeader = c.redactHeader(respHeader)
	var cut1, cut2 bool
	if len(st.reqBody) > 0 {
		ent.RequestBody, cut1 = synclog.Truncate(c.red.Body(st.reqBody, reqHeader.Get("Content-Type")), c.cfg.auditLimit)
	}
	if len(st.lastBody) > 0 {
		ent.ResponseBody, cut2 = synclog.Truncate(c.red.Body(st.lastBody, respHeader.Get("Content-Type")), c.cfg.auditLimit)
	}
	ent.Truncated = cut1 || cut2
	if e != nil {
		ent.Error = e.Error() // built from redacted parts
	}
	rctx := ctx
	if ctx.Done() != nil {
		rctx = context.WithoutCancel(ctx) // record the call even when the caller gave up
	}
	if err := c.rec.Record(rctx, ent); err != nil && c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "adapter: audit recorder failed",
			slog.String("backend", c.cfg.backend), slog.String("url", ent.URL), slog.String("error", c.red.String(err.Error())))
	}
}

type headerMemo struct {
	gen      uint64
	raw, red http.Header
}

// redactRequestHeader is redactHeader with a whole-header shortcut. The returned map may
// be shared with other audit entries: recorders treat entry headers as read-only.
func (c *Client) redactRequestHeader(h http.Header) http.Header {
	gen := c.secretGen.Load()
	if m := c.reqHeaders.Load(); m != nil && m.gen == gen && sameHeader(m.raw, h) {
		return m.red
	}
	red := c.redactHeader(h)
	c.reqHeaders.Store(&headerMemo{gen: gen, raw: h.Clone(), red: red})
	return red
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if av[i] != bv[i] {
				return false
			}
		}
	}
	return true
}

type headerKey struct{ name, value string }

// redactMemo maps (header name, raw value) to the redacted value.
type redactMemo struct {
	mu  sync.RWMutex
	gen uint64
	m   map[headerKey]string
}

// memoLimit bounds the memo; unique values (request IDs, signatures) refill it.
const memoLimit = 1024

// redactHeader is c.red.Header with a cache: only values not seen before go through the
// redactor. Secrets registered directly on a shared redactor after New are not noticed
// by the cache; register them with WithSecrets or before New.
func (c *Client) redactHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	all := make([]string, n)
	out := make(http.Header, len(h))
	gen := c.secretGen.Load()
	var misses http.Header
	c.memo.mu.RLock()
	valid := c.memo.gen == gen
	for k, vs := range h {
		nv := all[:len(vs):len(vs)]
		all = all[len(vs):]
		out[k] = nv
		for i, v := range vs {
			if r, ok := c.memo.m[headerKey{k, v}]; ok && valid {
				nv[i] = r
				continue
			}
			if misses == nil {
				misses = http.Header{}
			}
			misses[k] = vs
			break
		}
	}
	c.memo.mu.RUnlock()
	if misses == nil {
		return out
	}
	red := c.red.Header(misses)
	c.memo.mu.Lock()
	if c.memo.m == nil || c.memo.gen != gen || len(c.memo.m) >= memoLimit {
		c.memo.m, c.memo.gen = make(map[headerKey]string, 64), gen
	}
	for k, vs := range misses {
		rv := red[k]
		copy(out[k], rv)
		for i, v := range vs {
			c.memo.m[headerKey{k, v}] = rv[i]
		}
	}
	c.memo.mu.Unlock()
	return out
}
