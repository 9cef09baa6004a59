package adapter

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/connkit/connkit/internal/audit"
	"github.com/connkit/connkit/synclog"
	"golang.org/x/time/rate"
)

// Defaults used by New; each option's documentation states its default.
const (
	// defaultConnectTimeout bounds dialing and the TLS handshake.
	defaultConnectTimeout = 5 * time.Second
	// defaultReadTimeout bounds waiting for and reading one response.
	defaultReadTimeout = 15 * time.Second
	// defaultMaxRetries is how many times a failed request is retried (4 attempts in all).
	defaultMaxRetries = 3
	// defaultRetryWaitMin and defaultRetryWaitMax bound the exponential backoff.
	defaultRetryWaitMin = 500 * time.Millisecond
	defaultRetryWaitMax = 30 * time.Second
	// defaultMaxRetryAfter is the longest Retry-After the client waits for; a server that
	// asks for more gets an ErrRateLimited error instead.
	defaultMaxRetryAfter = 2 * time.Minute
	// defaultMaxResponseSize bounds a response body (32 MiB).
	defaultMaxResponseSize = 32 << 20
	// defaultAuditBodyLimit bounds each body stored in an audit entry (64 KiB).
	defaultAuditBodyLimit = audit.DefaultBodyLimit
	// defaultIdempotencyHeader carries Request.IdempotencyKey.
	defaultIdempotencyHeader = "Idempotency-Key"
	// defaultUserAgent is sent unless a User-Agent header is configured.
	defaultUserAgent = "connkit-adapter/1"
)

// Option configures a Client in New.
type Option func(*config)

type config struct {
	connectTimeout time.Duration
	readTimeout    time.Duration
	maxRetries     int
	waitMin        time.Duration
	waitMax        time.Duration
	maxRetryAfter  time.Duration
	maxBody        int64
	auditLimit     int
	idemHeader     string
	autoIdem       bool
	auth           Auth
	backend        string
	recorder       synclog.Recorder
	redactor       *synclog.Redactor
	logger         *slog.Logger
	now            func() time.Time
	realClock      bool // now is time.Now (WithClock was not given one)
	sleep          func(context.Context, time.Duration) error
	rateLimit      rate.Limit
	burst          int
	limitHeaders   limitHeaders
	header         http.Header
	tlsConfig      *tls.Config
	baseTransport  http.RoundTripper
	errs           []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithTimeouts sets the connect timeout, how long dialing plus the TLS handshake may take
// (default 5 s), and the read timeout, how long the client waits for a response and
// reads its body, per attempt, once connected (default 15 s). A zero leaves that timeout
// as it is. Request.ConnectTimeout and Request.ReadTimeout override them per request.
func WithTimeouts(connect, read time.Duration) Option {
	return func(c *config) {
		if connect < 0 || read < 0 {
			c.fail("WithTimeouts(%v, %v): a timeout must not be negative", connect, read)
			return
		}
		if connect > 0 {
			c.connectTimeout = connect
		}
		if read > 0 {
			c.readTimeout = read
		}
	}
}

// WithRetries sets how many times a failed request is retried (default 3); 0 disables
// retries (a 401 answered by an OAuth2 Auth is still refreshed and retried once).
func WithRetries(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.fail("WithRetries(%d): the count cannot be negative", n)
			return
		}
		c.maxRetries = n
	}
}

// WithRetryWait sets the bounds of the exponential backoff between retries (defaults
// 500 ms and 30 s); zero keeps a bound's default. Each wait is min·2^(retry-1), capped at
// max, with jitter taking it down to as little as half.
func WithRetryWait(min, max time.Duration) Option {
	return func(c *config) {
		if min < 0 || max < 0 {
			c.fail("WithRetryWait(%v, %v): the waits cannot be negative", min, max)
			return
		}
		if min > 0 {
			c.waitMin = min
		}
		if max > 0 {
			c.waitMax = max
		}
	}
}

// WithMaxRetryAfter sets the longest Retry-After the client honours by waiting (default
// 2 minutes). A 429 or 503 asking for longer fails at once with ErrRateLimited.
func WithMaxRetryAfter(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("WithMaxRetryAfter(%v): the duration cannot be negative", d)
			return
		}
		c.maxRetryAfter = d
	}
}

// WithMaxResponseSize bounds a response body in bytes (default 32 MiB); a longer body
// fails with ErrResponseTooLarge.
func WithMaxResponseSize(n int64) Option {
	return func(c *config) {
		if n <= 0 {
			c.fail("WithMaxResponseSize(%d): the limit must be positive", n)
			return
		}
		c.maxBody = n
	}
}

// WithAuth sets the authentication strategy applied to every attempt.
func WithAuth(a Auth) Option { return func(c *config) { c.auth = a } }

// WithDefaultHeader adds a header sent with every request (Request.Header overrides it),
// for example a User-Agent (default "connkit-adapter/1") or an API version header.
func WithDefaultHeader(key, value string) Option {
	return func(c *config) { c.header.Add(key, value) }
}

// WithIdempotencyKeys names the header that carries Request.IdempotencyKey ("" keeps the
// default, "Idempotency-Key") and, when generate is true, makes the client generate a key
// for every POST and PATCH that has none, so those requests are retried safely — when
// the API honours the key.
func WithIdempotencyKeys(header string, generate bool) Option {
	return func(c *config) {
		if header != "" {
			if strings.ContainsAny(header, " \t\r\n:") {
				c.fail("WithIdempotencyKeys(%q): not a header name", header)
				return
			}
			c.idemHeader = header
		}
		c.autoIdem = generate
	}
}

// WithRateLimit limits the client to perSecond requests per second with the given burst,
// shared by every goroutine using the client. Without it the client sends as fast as it is
// called, but still pauses all goroutines when the server answers 429.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(c *config) {
		if perSecond <= 0 || burst < 1 {
			c.fail("WithRateLimit(%v, %d): need a positive rate and a burst of at least 1", perSecond, burst)
			return
		}
		c.rateLimit, c.burst = rate.Limit(perSecond), burst
	}
}

// WithLimitHeaders makes the client follow the API's own rate-limit response headers,
// in one of these styles (the names a config file uses, in any letter case; default
// "none"):
//
//   - "x-ratelimit": X-RateLimit-Remaining and X-RateLimit-Reset (X-RateLimit-Limit is
//     informative): at 0 remaining, pause until the reset. The reset is seconds from now
//     (decimals allowed), or a Unix time when it is that large, as GitHub and Twitter
//     send it.
//   - "ietf": the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers): the
//     structured-field form `RateLimit: "default";r=0;t=30` (one item per policy, r
//     remaining, t seconds to reset; RateLimit-Policy is informative), the draft 05/06
//     dictionary `RateLimit: limit=100, remaining=0, reset=30`, and the older
//     RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset trio. When any policy has
//     nothing remaining, pause until the latest of their resets.
//   - "shopify": Shopify's leaky bucket, "X-Shopify-Shop-Api-Call-Limit: 32/40" (calls in
//     the bucket / bucket size), which leaks size/20 calls a second (40 → 2/s, 80 → 4/s,
//     400 → 20/s). When fewer than a tenth of the bucket (at least 1 call) is free, pause
//     until it has drained back to that reserve, so the client never reaches a 429.
//   - "hubspot": HubSpot's rolling window: X-HubSpot-RateLimit-Max requests per
//     X-HubSpot-RateLimit-Interval-Milliseconds, X-HubSpot-RateLimit-Remaining left. When
//     fewer than a tenth of the window (at least 1 request) remains, pause for the time
//     the window takes to free back to that reserve at its average rate (the whole
//     interval when Max is not sent), so the client never reaches a 429.
//
// A pause holds every goroutine using the client until the quota resets — or, when that
// is further away than WithMaxRetryAfter, the call fails at once with ErrRateLimited —
// instead of running into 429s. Without limit headers the client still slows down and
// pauses on 429 responses. An unknown style makes New fail with an error matching
// ErrInvalidRequest.
func WithLimitHeaders(style string) Option {
	return func(c *config) {
		s, err := parseLimitHeaders(style)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("WithLimitHeaders: %w", err))
			return
		}
		c.limitHeaders = s
	}
}

// WithBackendName names the backend in audit entries.
func WithBackendName(name string) Option { return func(c *config) { c.backend = name } }

// WithRecorder sends one audit entry per call to r (default: none).
func WithRecorder(r synclog.Recorder) Option { return func(c *config) { c.recorder = r } }

// WithRedactor sets the redactor for audit entries, logs and errors (default: a new
// synclog.NewRedactor()). Literal secrets beyond the Auth's (synclog.WithSecrets) are
// registered on it. The client registers its credentials on it with AddSecrets.
// Secrets added to r later, by the client or anyone else, apply to the following calls.
func WithRedactor(r *synclog.Redactor) Option { return func(c *config) { c.redactor = r } }

// WithLogger sets the logger for retries (debug level) and recorder failures (warn).
// Default: no logging.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock replaces the clock used for durations, Retry-After dates, HMAC timestamps and
// the rate limiter, and how the client waits between retries and for the rate limiter;
// nil keeps the real one. sleep must return ctx.Err() early when ctx is done. Meant for
// tests, to make backoff instant and time deterministic.
func WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
		if sleep != nil {
			c.sleep = sleep
		}
	}
}

// WithTLSConfig sets the TLS configuration (custom root CAs, client certificates).
func WithTLSConfig(cfg *tls.Config) Option { return func(c *config) { c.tlsConfig = cfg } }

// WithBaseTransport replaces the client's own HTTP transport, for example with a test
// double. The connect timeout then no longer applies: it lives in the client's dialer.
func WithBaseTransport(rt http.RoundTripper) Option {
	return func(c *config) { c.baseTransport = rt }
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
