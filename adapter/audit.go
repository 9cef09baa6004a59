package adapter

import (
	"context"
	"log/slog"
	"net/http"

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
	ent.ResponseHeader = c.red.Header(respHeader)
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

// redactRequestHeader is c.red.Header with a whole-header cache, valid while the
// redactor's secrets do not change. The returned map may be shared with other audit
// entries: recorders treat entry headers as read-only.
func (c *Client) redactRequestHeader(h http.Header) http.Header {
	gen := c.red.Generation()
	if m := c.reqHeaders.Load(); m != nil && m.gen == gen && sameHeader(m.raw, h) {
		return m.red
	}
	red := c.red.Header(h)
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
