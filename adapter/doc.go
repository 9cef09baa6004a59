// Package adapter is connkit's HTTP client for one external API: the Go counterpart of
// generic_connector's backend adapter and BJ API Sync's outbound requests.
//
// A [Client] (built with [New] and functional options) sends [Request]s with
// [Client.Do], which makes *Client a [Doer], and returns complete [Response]s:
// the body is read (up to a limit) and the connection released. On top of
// github.com/hashicorp/go-retryablehttp it adds:
//
//   - Timeouts as BJ API Sync defines them: a connect timeout (dial plus TLS handshake,
//     default 5 s) and a read timeout (waiting for and reading the response once
//     connected, default 15 s, per attempt), each overridable per request. The caller's
//     context always wins: when it ends, the error is ctx.Err(), never ErrTimeout.
//   - Retries with exponential backoff and jitter that honour Retry-After (seconds,
//     decimal seconds or an HTTP date) up to a maximum; connection errors, 408, 429 and 5xx except 501 are
//     retried. POST and PATCH are retried only with an idempotency key
//     ([Request.IdempotencyKey], [newIdempotencyKey], [WithIdempotencyKeys]) or when
//     they provably never left (the connection could not be made).
//   - A client-side rate limit (golang.org/x/time/rate, [WithRateLimit]) shared by all
//     goroutines, that slows down and pauses everyone on 429 and can follow the API's own
//     quota headers ([WithLimitHeaders]: X-RateLimit-*, IETF RateLimit, Shopify). A pause longer than the accepted
//     maximum fails calls at once with [ErrRateLimited] instead of sleeping through it.
//   - Authentication strategies ([Auth]): [BasicAuth], [BearerAuth], [APIKeyHeader],
//     [APIKeyQuery], [OAuth2ClientCredentials], [OAuth2RefreshToken] and [HMACAuth];
//     any type with an Apply method is a custom one.
//   - Typed errors: every failure is an [*Error] saying what was being done, to which
//     (redacted) URL, with which status, request ID and attempts; errors.Is matches
//     [ErrUnauthorized], [ErrNotFound], [ErrRateLimited], [ErrTimeout], [ErrServer], ….
//   - An audit trail: one synclog.Entry per call (not per attempt), with headers, URL,
//     bodies and error text redacted by a synclog.Redactor that knows the client's
//     credentials. Entries may share their (redacted) header maps: recorders must treat
//     them as read-only.
//
// Pagination over a [Doer] lives in this package's paginate files.
package adapter
