package adapter

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a Client's client-side rate limit, shared by every goroutine using the
// client. It combines a token bucket (golang.org/x/time/rate) with a pause: a time before
// which no request is sent at all. The client halves the rate and pauses on 429; hooks
// (RateLimitHook) adjust it from the API's own rate-limit headers. While a pause longer
// than WithMaxRetryAfter lasts, requests fail at once with ErrRateLimited instead of
// sleeping through it.
type Limiter struct {
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
func (l *Limiter) sleep(ctx context.Context, sleep func(context.Context, time.Duration) error, d time.Duration) error {
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

func newLimiter(r rate.Limit, burst int, now func() time.Time, maxWait time.Duration) *Limiter {
	if burst < 1 {
		burst = 1
	}
	l := &Limiter{lim: rate.NewLimiter(r, burst), now: now, maxWait: maxWait}
	l.base.Store(math.Float64bits(float64(r)))
	l.limited.Store(r != rate.Inf)
	return l
}

// Now returns the client's clock, for hooks that compute pauses.
func (l *Limiter) Now() time.Time { return l.now() }

// Rate returns the current rate (rate.Inf when unlimited).
func (l *Limiter) Rate() rate.Limit { return l.lim.Limit() }

// SetRate changes the current rate and burst. It becomes the new normal: slowing down
// after a 429 recovers towards it.
func (l *Limiter) SetRate(r rate.Limit, burst int) {
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
func (l *Limiter) PauseUntil(t time.Time) {
	n := t.UnixNano()
	for {
		cur := l.pause.Load()
		if cur >= n || l.pause.CompareAndSwap(cur, n) {
			return
		}
	}
}

// PausedUntil returns the end of the current pause (zero time when none).
func (l *Limiter) PausedUntil() time.Time {
	if n := l.pause.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// wait blocks (through sleep) until a request may go out, or ctx is done. A pause
// longer than maxWait fails at once with an error matching ErrRateLimited.
func (l *Limiter) wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
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
func (l *Limiter) observe(resp *http.Response) {
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

// RateLimitHook inspects every response (status and headers; the body is not read yet)
// and may adjust the client's Limiter. Hooks run on the request path: keep them cheap.
type RateLimitHook func(resp *http.Response, l *Limiter)

// RateLimitHeaders returns a hook for the common X-RateLimit-Remaining and
// X-RateLimit-Reset headers: when no requests remain, every goroutine pauses until the
// reset. Reset is read as seconds from now, or as a Unix time when it is that large;
// GitHub- and Twitter-style APIs use the latter.
func RateLimitHeaders() RateLimitHook {
	return func(resp *http.Response, l *Limiter) {
		rem := resp.Header.Get("X-RateLimit-Remaining")
		if rem == "" {
			return
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(rem), 64)
		if err != nil || n > 0 {
			return
		}
		reset, err := strconv.ParseFloat(strings.TrimSpace(resp.Header.Get("X-RateLimit-Reset")), 64)
		if err != nil || reset < 0 || math.IsInf(reset, 0) || math.IsNaN(reset) {
			return
		}
		now := l.Now()
		var until time.Time
		if reset > 1e9 { // a Unix timestamp
			until = time.Unix(0, int64(reset*1e9))
		} else {
			until = now.Add(time.Duration(reset * float64(time.Second)))
		}
		if until.After(now) {
			l.PauseUntil(until)
		}
	}
}

// ShopifyCallLimit returns a hook for Shopify's leaky bucket, reported as
// "X-Shopify-Shop-Api-Call-Limit: 32/40" (calls in the bucket / bucket size). The
// bucket leaks leakPerSecond calls a second (Shopify's standard plans: 2; 0 means 2).
// When fewer than a tenth of the bucket (at least 1 call) is free, every goroutine pauses
// long enough for the bucket to drain back to that reserve, so the client never reaches
// a 429.
func ShopifyCallLimit(leakPerSecond float64) RateLimitHook {
	if leakPerSecond <= 0 {
		leakPerSecond = 2
	}
	return func(resp *http.Response, l *Limiter) {
		v := resp.Header.Get("X-Shopify-Shop-Api-Call-Limit")
		if v == "" {
			return
		}
		usedS, sizeS, ok := strings.Cut(v, "/")
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
		drain := float64(reserve-free+1) / leakPerSecond
		l.PauseUntil(l.Now().Add(time.Duration(drain * float64(time.Second))))
	}
}
