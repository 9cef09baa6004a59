package adapter

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a Client's client-side rate limit, shared by every goroutine using the
// client. It combines a token bucket (golang.org/x/time/rate) with a pause: a time before
// which no request is sent at all. The client halves the rate and pauses on 429; hooks
// (RateLimitHook) adjust it from the API's own rate-limit headers. While a pause longer
// than WithMaxRetryAfter lasts, requests fail at once with ErrRateLimited instead of
// sleeping through it.
type limiter struct {
	lim     *rate.Limiter
	base    atomic.Uint64 // the normal rate, as math.Float64bits
	limited atomic.Bool   // the current rate is finite
	slowed  atomic.Bool   // the current rate is below base after a 429
	pause   atomic.Int64  // Unix nanoseconds before which nothing is sent; 0: none
	now     func() time.Time
	maxWait time.Duration // longer pauses fail fast instead of sleeping
	waited  *atomic.Int64 // the client's LimiterWait counter; nil outside a client
}

// sleep waits d through sleep and counts it.
func (l *limiter) sleep(ctx context.Context, sleep func(context.Context, time.Duration) error, d time.Duration) error {
	if l.waited != nil {
		l.waited.Add(int64(d))
	}
	return sleep(ctx, d)
}

// pausedError reports a pause longer than the client accepts to wait.
type pausedError struct{ wait, max time.Duration }

func (e *pausedError) Error() string {
	return "the API's rate limit holds requests for another " + e.wait.Round(time.Second).String() +
		", more than the accepted maximum of " + e.max.String() + " (WithMaxRetryAfter); try again later"
}

// Is makes the error match ErrRateLimited.
func (e *pausedError) Is(target error) bool { return target == ErrRateLimited }

// minSlowRate is the floor the rate is halved to after repeated 429s.
const minSlowRate = rate.Limit(0.05)

func newLimiter(r rate.Limit, burst int, now func() time.Time, maxWait time.Duration) *limiter {
	if burst < 1 {
		burst = 1
	}
	l := &limiter{lim: rate.NewLimiter(r, burst), now: now, maxWait: maxWait}
	l.base.Store(math.Float64bits(float64(r)))
	l.limited.Store(r != rate.Inf)
	return l
}

// Now returns the client's clock, for hooks that compute pauses.
func (l *limiter) Now() time.Time { return l.now() }

// Rate returns the current rate (rate.Inf when unlimited).
func (l *limiter) Rate() rate.Limit { return l.lim.Limit() }

// SetRate changes the current rate and burst. It becomes the new normal: slowing down
// after a 429 recovers towards it.
func (l *limiter) SetRate(r rate.Limit, burst int) {
	now := l.now()
	if burst >= 1 {
		l.lim.SetBurstAt(now, burst)
	}
	l.lim.SetLimitAt(now, r)
	l.base.Store(math.Float64bits(float64(r)))
	l.limited.Store(r != rate.Inf)
	l.slowed.Store(false)
}

// PauseUntil holds back every request until t. An earlier pause never shortens a later
// one.
func (l *limiter) PauseUntil(t time.Time) {
	n := t.UnixNano()
	for {
		cur := l.pause.Load()
		if cur >= n || l.pause.CompareAndSwap(cur, n) {
			return
		}
	}
}

// PausedUntil returns the end of the current pause (zero time when none).
func (l *limiter) PausedUntil() time.Time {
	if n := l.pause.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// wait blocks (through sleep) until a request may go out, or ctx is done. A pause
// longer than maxWait fails at once with an error matching ErrRateLimited.
func (l *limiter) wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
	if p := l.pause.Load(); p != 0 {
		if d := time.Unix(0, p).Sub(l.now()); d > 0 {
			if d > l.maxWait {
				return &pausedError{wait: d, max: l.maxWait}
			}
			if err := l.sleep(ctx, sleep, d); err != nil {
				return err
			}
		}
	}
	if !l.limited.Load() {
		return nil
	}
	now := l.now()
	r := l.lim.ReserveN(now, 1)
	if !r.OK() {
		return nil // burst 0 cannot happen: newLimiter enforces 1
	}
	if d := r.DelayFrom(now); d > 0 {
		if err := l.sleep(ctx, sleep, d); err != nil {
			r.CancelAt(l.now())
			return err
		}
	}
	return nil
}

// observe adapts to a response: on 429 it halves a finite rate and pauses everyone for
// the Retry-After (or a second when there is none); later successes restore the rate
// step by step.
func (l *limiter) observe(resp *http.Response) {
	if resp.StatusCode == http.StatusTooManyRequests {
		now := l.now()
		wait, ok := retryAfter(resp.Header, now)
		if !ok {
			wait = time.Second
		}
		l.PauseUntil(now.Add(wait))
		if l.limited.Load() {
			cur := l.lim.Limit()
			next := max(cur/2, minSlowRate)
			l.lim.SetLimitAt(now, next)
			l.slowed.Store(true)
		}
		return
	}
	if resp.StatusCode < 400 && l.slowed.Load() {
		cur := l.lim.Limit()
		next := cur * 1.1
		if base := rate.Limit(math.Float64frombits(l.base.Load())); next >= base {
			next = base
			l.slowed.Store(false)
		}
		l.lim.SetLimitAt(l.now(), next)
	}
}

// limitHeaders is a style of rate-limit response headers the client follows (see
// WithLimitHeaders), named as a config file names it.
type limitHeaders string

// The styles; WithLimitHeaders documents them.
const (
	limitXRateLimit limitHeaders = "x-ratelimit"
	limitIETF       limitHeaders = "ietf"
	limitShopify    limitHeaders = "shopify"
	limitHubSpot    limitHeaders = "hubspot"
)

// parseLimitHeaders reads a style's name ("x-ratelimit", "ietf", "shopify", "hubspot"; "" or
// "none" for none), ignoring case and surrounding space. An unknown name is an error
// matching ErrInvalidRequest.
func parseLimitHeaders(name string) (limitHeaders, error) {
	switch n := limitHeaders(strings.ToLower(strings.TrimSpace(name))); n {
	case "", "none":
		return "", nil
	case limitXRateLimit, limitIETF, limitShopify, limitHubSpot:
		return n, nil
	}
	return "", fmt.Errorf(`%w: unknown rate-limit header style %q; use "x-ratelimit", "ietf", "shopify", "hubspot" or "none"`, ErrInvalidRequest, name)
}

// observe adjusts l from the quota headers of one response.
func (s limitHeaders) observe(h http.Header, l *limiter) {
	switch s {
	case limitXRateLimit:
		observeRemainingReset(h, "X-Ratelimit-Remaining", "X-Ratelimit-Reset", l)
	case limitIETF:
		observeIETF(h, l)
	case limitShopify:
		observeShopify(h, l)
	case limitHubSpot:
		observeHubSpot(h, l)
	}
}

// observeRemainingReset pauses until the reset when no requests remain.
func observeRemainingReset(h http.Header, remainingKey, resetKey string, l *limiter) {
	rem := h[remainingKey]
	if len(rem) == 0 {
		return
	}
	if left, ok := parseDecimalSeconds(strings.TrimSpace(rem[0])); !ok || left > 0 {
		return
	}
	reset := h[resetKey]
	if len(reset) == 0 {
		return
	}
	now := l.Now()
	if until, ok := parseReset(strings.TrimSpace(reset[0]), now); ok && until.After(now) {
		l.PauseUntil(until)
	}
}

// parseReset reads a reset as decimal seconds from now, or as a Unix time (seconds) when
// it is past 10^9.
func parseReset(v string, now time.Time) (time.Time, bool) {
	d, ok := parseDecimalSeconds(v)
	if !ok {
		return time.Time{}, false
	}
	if d >= maxRetryAfterValue {
		f, err := strconv.ParseFloat(v, 64)
		if err == nil && f > 1e9 && f < 1e11 {
			return time.Unix(0, int64(f*1e9)), true
		}
	}
	return now.Add(d), true
}

// observeIETF reads the RateLimit header (structured list or draft dictionary), or the
// older RateLimit-Remaining / RateLimit-Reset trio.
func observeIETF(h http.Header, l *limiter) {
	vs := h["Ratelimit"]
	if len(vs) == 0 {
		observeRemainingReset(h, "Ratelimit-Remaining", "Ratelimit-Reset", l)
		return
	}
	var wait time.Duration
	exhausted := false
	dict := map[string]string{}
	for _, member := range splitUnquoted(strings.Join(vs, ","), ',') {
		parts := splitUnquoted(member, ';')
		first := strings.TrimSpace(parts[0])
		if k, v, ok := strings.Cut(first, "="); ok && len(parts) == 1 && !strings.HasPrefix(first, `"`) {
			dict[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			continue
		}
		var r, t string
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(p, "=")
			switch strings.TrimSpace(k) {
			case "r":
				r = strings.TrimSpace(v)
			case "t":
				t = strings.TrimSpace(v)
			}
		}
		if d, ok := quotaExhausted(r, t); ok {
			exhausted, wait = true, max(wait, d)
		}
	}
	if d, ok := quotaExhausted(dict["remaining"], dict["reset"]); ok {
		exhausted, wait = true, max(wait, d)
	}
	if exhausted {
		l.PauseUntil(l.Now().Add(wait))
	}
}

// quotaExhausted reports whether remaining is 0, with the wait until reset (> 0).
func quotaExhausted(remaining, reset string) (time.Duration, bool) {
	left, ok := parseDecimalSeconds(remaining)
	if !ok || left > 0 {
		return 0, false
	}
	d, ok := parseDecimalSeconds(reset)
	return d, ok && d > 0
}

// splitUnquoted splits s at sep outside double-quoted strings.
func splitUnquoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// observeShopify reads X-Shopify-Shop-Api-Call-Limit.
func observeShopify(h http.Header, l *limiter) {
	vs := h["X-Shopify-Shop-Api-Call-Limit"]
	if len(vs) == 0 {
		return
	}
	usedS, sizeS, ok := strings.Cut(vs[0], "/")
	if !ok {
		return
	}
	used, err1 := strconv.Atoi(strings.TrimSpace(usedS))
	size, err2 := strconv.Atoi(strings.TrimSpace(sizeS))
	if err1 != nil || err2 != nil || size <= 0 || used < 0 {
		return
	}
	reserve := max(size/10, 1)
	free := size - used
	if free > reserve {
		return
	}
	leak := max(float64(size)/20, 1) // calls a second
	drain := float64(reserve-free+1) / leak
	l.PauseUntil(l.Now().Add(time.Duration(drain * float64(time.Second))))
}

// observeHubSpot paces a rolling window from X-HubSpot-RateLimit-* (see WithLimitHeaders, "hubspot").
func observeHubSpot(h http.Header, l *limiter) {
	remS, intS := h.Get("X-HubSpot-RateLimit-Remaining"), h.Get("X-HubSpot-RateLimit-Interval-Milliseconds")
	if remS == "" || intS == "" {
		return
	}
	remaining, err1 := strconv.Atoi(strings.TrimSpace(remS))
	intervalMS, err2 := strconv.Atoi(strings.TrimSpace(intS))
	if err1 != nil || err2 != nil || remaining < 0 || intervalMS <= 0 {
		return
	}
	interval := time.Duration(intervalMS) * time.Millisecond
	maxReq, err := strconv.Atoi(strings.TrimSpace(h.Get("X-HubSpot-RateLimit-Max")))
	if err != nil || maxReq <= 0 {
		if remaining == 0 {
			l.PauseUntil(l.Now().Add(interval))
		}
		return
	}
	reserve := max(maxReq/10, 1)
	if remaining > reserve {
		return
	}
	wait := time.Duration(int64(interval) * int64(reserve-remaining+1) / int64(maxReq))
	l.PauseUntil(l.Now().Add(min(wait, interval)))
}
