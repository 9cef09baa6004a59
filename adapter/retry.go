package adapter

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Retry policy
//
// Retried: connection errors and client-side timeouts, 408, 429, and 5xx except 501 —
// at most WithRetries times, waiting WithRetryWait's exponential backoff with jitter, or
// exactly what Retry-After asks on a 429 or 503 (seconds, decimal seconds rounded up to
// the millisecond, or an HTTP date) when that is no more than WithMaxRetryAfter; a longer
// demand fails at once with ErrRateLimited. A Retry-After that is zero, in the past or
// unreadable counts as absent: the backoff applies, so no retry goes out without a pause.
//
// Non-idempotent requests (POST, PATCH and other methods outside RFC 9110's idempotent
// set) are retried only when they carry an idempotency key, or when the attempt failed
// before a connection was obtained, so the request cannot have reached the server.

// retryableStatus reports whether a response status is worth another attempt.
func retryableStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code == http.StatusNotImplemented:
		return false
	default:
		return code >= 500 && code <= 599
	}
}

// checkRetry is the retryablehttp CheckRetry policy.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err() // the context always wins
	}
	st := callFrom(ctx)
	if st == nil {
		return false, err
	}
	if err != nil {
		var tl *tooLargeError
		var cv *tls.CertificateVerificationError
		switch {
		case errors.As(err, &tl), errors.As(err, &cv), errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrRateLimited):
			return false, nil // permanent
		case !st.idempotent && st.sent:
			c.notRetried(ctx, st, "error after the request may have reached the server")
			return false, nil // repeating could duplicate it
		}
		return c.scheduleRetry(st, 0, false, "error: "+c.red.String(stripURLError(err).Error())), nil
	}
	code := resp.StatusCode
	if code == http.StatusUnauthorized && c.ref != nil && !st.refreshed {
		st.refreshed = true
		ok, rerr := c.ref.Refresh(ctx, resp.Request)
		if rerr != nil {
			st.authErr = rerr
			return false, nil
		}
		if ok {
			st.nextWait, st.reason, st.retryAfterWait = 0, "401: credentials refreshed", false
			return true, nil
		}
		return false, nil
	}
	if !retryableStatus(code) {
		return false, nil
	}
	var wait time.Duration
	var hasWait bool
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		wait, hasWait = retryAfter(resp.Header, c.cfg.now())
		if hasWait && wait > c.cfg.maxRetryAfter {
			st.stopErr = &retryAfterError{wait: wait, max: c.cfg.maxRetryAfter}
			return false, nil
		}
	}
	if !st.idempotent {
		c.notRetried(ctx, st, "status "+strconv.Itoa(code))
		return false, nil // the server saw the request
	}
	return c.scheduleRetry(st, wait, hasWait, "status "+strconv.Itoa(code)), nil
}

// notRetried logs why a retryable failure of a non-idempotent request was not retried:
// it is the caller's to resolve (check the remote state, or send an idempotency key).
func (c *Client) notRetried(ctx context.Context, st *call, reason string) {
	if c.log == nil {
		return
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "adapter: not retrying a non-idempotent request without an idempotency key",
		slog.String("backend", c.cfg.backend),
		slog.String("method", st.method),
		slog.String("url", c.red.URL(st.rawURL)),
		slog.String("reason", reason))
}

// scheduleRetry books one retry if any are left.
func (c *Client) scheduleRetry(st *call, wait time.Duration, fixed bool, reason string) bool {
	if st.retries >= c.cfg.maxRetries {
		return false
	}
	st.retries++
	if !fixed {
		wait = c.backoff(st.retries)
	}
	st.nextWait, st.reason, st.retryAfterWait = wait, reason, fixed
	return true
}

// backoff is the wait before retry n (1-based): waitMin·2^(n-1) capped at waitMax, with
// "equal jitter" (between half and all of it) so clients that failed together do not
// retry together.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.waitMin
	for i := 1; i < n && d < c.cfg.waitMax; i++ {
		d *= 2
	}
	if d > c.cfg.waitMax {
		d = c.cfg.waitMax
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// prepareRetry runs before every retry: it waits, then re-applies credentials to a
// private copy of the headers (the previous attempt's request may still be referenced by
// the transport).
func (c *Client) prepareRetry(req *http.Request) error {
	ctx := req.Context()
	st := callFrom(ctx)
	if st == nil {
		return nil
	}
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "adapter: retrying request",
			slog.String("backend", c.cfg.backend),
			slog.String("method", st.method),
			slog.String("url", c.red.URL(req.URL.String())),
			slog.Int("attempt", st.attempts+1),
			slog.Duration("wait", st.nextWait),
			slog.String("reason", st.reason))
	}
	c.stats.retries.Add(1)
	if st.nextWait > 0 {
		if st.retryAfterWait {
			c.stats.retryAfter.Add(int64(st.nextWait))
		} else {
			c.stats.backoffW.Add(int64(st.nextWait))
		}
		if err := c.cfg.sleep(ctx, st.nextWait); err != nil {
			return err
		}
	}
	req.Header = req.Header.Clone()
	if c.cfg.auth != nil {
		if err := c.cfg.auth.Apply(req); err != nil {
			st.authErr = err
			return err
		}
	}
	return nil
}

// maxRetryAfterValue caps what parseRetryAfter returns: a year.
const maxRetryAfterValue = 365 * 24 * time.Hour

// retryAfter reads the Retry-After header of h. It is the one reader of the header: the
// retry policy, the rate limiter and the refusal of waits past WithMaxRetryAfter all use
// it. ok is false when the header is absent, unreadable, zero or a date already past: a
// "retry now" is not taken literally (the caller falls back on its own backoff), so
// "Retry-After: 0" cannot burn every retry without a pause.
func retryAfter(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	v := h["Retry-After"]
	if len(v) == 0 {
		return 0, false
	}
	wait, ok = parseRetryAfter(v[0], now)
	return wait, ok && wait > 0
}

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): delay seconds or an HTTP
// date. Seconds may carry a decimal fraction, as Shopify ("2.0") and others ("1.5") send
// them although the RFC asks for an integer: the value is rounded up to the next whole
// millisecond. Signs, exponents, hex and anything but ASCII digits and one '.' are
// refused. Waits are capped at a year; a date in the past means no wait (0, true).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, ok := parseDecimalSeconds(v); ok {
		return d, true
	}
	if v[0] >= '0' && v[0] <= '9' || v[0] == '.' {
		return 0, false // a malformed number, not a date
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return min(d, maxRetryAfterValue), true
}

// parseDecimalSeconds reads "digits[.digits]" (either side may be empty, not both) as a
// duration rounded up to the millisecond, capped at maxRetryAfterValue.
func parseDecimalSeconds(v string) (time.Duration, bool) {
	const capSecs = int64(maxRetryAfterValue / time.Second)
	intPart, frac, hasDot := strings.Cut(v, ".")
	if intPart == "" && frac == "" {
		return 0, false
	}
	var secs int64
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if secs <= capSecs {
			secs = secs*10 + int64(c-'0')
		}
	}
	var ms int64
	if hasDot {
		up := false
		for i := 0; i < len(frac); i++ {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			switch {
			case i < 3:
				ms = ms*10 + int64(c-'0')
			case c != '0':
				up = true
			}
		}
		for i := len(frac); i < 3; i++ {
			ms *= 10
		}
		if up {
			ms++
		}
	}
	if secs >= capSecs {
		return maxRetryAfterValue, true
	}
	return min(time.Duration(secs)*time.Second+time.Duration(ms)*time.Millisecond, maxRetryAfterValue), true
}
