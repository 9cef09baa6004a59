package adapter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Every error the Client returns for a failed call is an *Error that
// matches one of these with errors.Is (or, for caller cancellation, context.Canceled /
// context.DeadlineExceeded).
var (
	// ErrUnauthorized: the API answered 401 or 403. Check the backend's credentials and
	// their scopes.
	ErrUnauthorized = errors.New("unauthorized: check the credentials and their permissions")
	// ErrNotFound: the API answered 404.
	ErrNotFound = errors.New("not found")
	// ErrTimeout: the API answered 408, or a client-side timeout fired (connect timeout
	// or read timeout). Cancellation or expiry of the caller's context is not ErrTimeout:
	// it surfaces as context.Canceled or context.DeadlineExceeded.
	ErrTimeout = errors.New("timeout")
	// ErrRateLimited: the API answered 429, or asked (Retry-After) for a longer wait than
	// the client accepts (see WithMaxRetryAfter).
	ErrRateLimited = errors.New("rate limited")
	// ErrServer: the API answered with a 5xx status.
	ErrServer = errors.New("server error")
	// ErrClientError: the API answered with a 4xx status not covered by a more specific
	// sentinel (400, 405, 409, 422, …). The Error's Body usually says what was wrong.
	ErrClientError = errors.New("client error")
	// ErrBadResponse: the response body was not the JSON the caller expected.
	ErrBadResponse = errors.New("bad response: body is not valid JSON")
	// ErrResponseTooLarge: the response body exceeded the client's limit (see
	// WithMaxResponseSize).
	ErrResponseTooLarge = errors.New("response too large")
	// ErrInvalidRequest: the request could not be built (bad URL, body that cannot be
	// encoded as JSON, invalid option). Nothing was sent.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrTransport: the request could not be completed because of a network error
	// (connection refused, reset, TLS failure, …) that was not a timeout.
	ErrTransport = errors.New("transport error")
)

// Error describes a failed call: what was being done, to which URL, and how it ended.
// Use errors.Is with the package's sentinels and errors.As to read the details.
type Error struct {
	// Op says what was being done (Request.Operation), "" when not set.
	Op string
	// Method and URL of the request. URL is the one the audit entry shows: secret query
	// parameters (by the redactor's shared list of names) and literal secrets replaced by
	// synclog.Redacted, the userinfo password removed, every other parameter readable.
	Method string
	URL    string
	// Status is the HTTP status of the last response, 0 when none arrived.
	Status int
	// RequestID is the server's request ID (X-Request-Id and similar headers), if any.
	RequestID string
	// Body is a redacted excerpt of the last response body.
	Body string
	// Attempts is how many times the request was sent.
	Attempts int
	// Err is the underlying cause: a network or timeout error, a context error, or nil
	// when the status code alone explains the failure.
	Err error

	kind error // sentinel this error matches
}

// bodyExcerptLimit bounds Error.Body.
const bodyExcerptLimit = 512

// msgBodyLimit bounds the part of Body repeated in Error().
const msgBodyLimit = 200

// Error formats the error, for example
// "adapter: GET https://api.example.com/products?page_info=xyz&api_key=[REDACTED]: 503 Service Unavailable after 4 attempts (request id abc): server error".
func (e *Error) Error() string {
	var b strings.Builder
	b.Grow(128)
	b.WriteString("adapter: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.URL)
	b.WriteString(": ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		if t := http.StatusText(e.Status); t != "" {
			b.WriteByte(' ')
			b.WriteString(t)
		}
	} else if e.kind != nil {
		b.WriteString(e.kind.Error())
	} else if errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded) {
		b.WriteString("stopped by the caller's context")
	} else {
		b.WriteString("request failed")
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(e.RequestID)
		b.WriteByte(')')
	}
	if e.Status != 0 && e.kind != nil {
		b.WriteString(": ")
		b.WriteString(e.kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if body := strings.TrimSpace(e.Body); body != "" && e.Status >= 400 {
		if len(body) > msgBodyLimit {
			cut := msgBodyLimit
			for cut > 0 && !utf8.RuneStart(body[cut]) {
				cut-- // never split a character: the message stays valid UTF-8
			}
			body = body[:cut] + "…"
		}
		b.WriteString("; response: ")
		b.WriteString(body)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e matches a sentinel: the one its status or failure maps to, plus
// ErrServer for any 5xx and ErrRateLimited for any 429.
func (e *Error) Is(target error) bool {
	if target == nil {
		return false
	}
	if target == e.kind {
		return true
	}
	switch target {
	case ErrServer:
		return e.Status >= 500 && e.Status <= 599
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	}
	return false
}

// statusKind maps a failing status code to its sentinel; nil for success codes.
func statusKind(status int) error {
	switch {
	case status < 400:
		return nil
	case status == 401 || status == 403:
		return ErrUnauthorized
	case status == 404:
		return ErrNotFound
	case status == 408:
		return ErrTimeout
	case status == 429:
		return ErrRateLimited
	case status >= 500:
		return ErrServer
	default:
		return ErrClientError
	}
}

// timeoutError is a client-side timeout. It deliberately does not wrap
// context.DeadlineExceeded, so callers can tell it from their own deadline.
type timeoutError struct {
	phase string // "connect" or "read"
	limit time.Duration
}

func (e *timeoutError) Error() string {
	if e.phase == "connect" {
		return "connect timeout (" + e.limit.String() + ") exceeded while connecting to the server; raise it with WithTimeouts or Request.ConnectTimeout, or check that the host is reachable"
	}
	return "read timeout (" + e.limit.String() + ") exceeded while waiting for the response; raise it with WithTimeouts or Request.ReadTimeout"
}

// Timeout marks the error as a timeout for code that checks net.Error.
func (e *timeoutError) Timeout() bool { return true }

// Is makes errors.Is(err, ErrTimeout) hold for the cause on its own.
func (e *timeoutError) Is(target error) bool { return target == ErrTimeout }

// tooLargeError reports a body past the client's limit.
type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return "response body exceeds the limit of " + strconv.FormatInt(e.limit, 10) + " bytes; raise it with WithMaxResponseSize or page through the data"
}

func (e *tooLargeError) Is(target error) bool { return target == ErrResponseTooLarge }

// retryAfterError reports a Retry-After longer than the client accepts.
type retryAfterError struct {
	wait, max time.Duration
}

func (e *retryAfterError) Error() string {
	return "server asked to retry after " + e.wait.String() + ", more than the accepted maximum of " + e.max.String() + " (WithMaxRetryAfter); try again later"
}

// stripURLError removes *url.Error layers: their text repeats the unredacted URL.
func stripURLError(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) {
			return err
		}
		if ue == err {
			err = ue.Err
			continue
		}
		// A url.Error deeper in a chain: keep only the cause's text, no URL.
		return errors.New(strings.TrimSpace(ue.Err.Error()))
	}
}

// classifyTransportError picks the sentinel for an error that produced no response.
func classifyTransportError(err error) error {
	var te *timeoutError
	var tl *tooLargeError
	switch {
	case errors.As(err, &te):
		return ErrTimeout
	case errors.As(err, &tl):
		return ErrResponseTooLarge
	case errors.Is(err, ErrInvalidRequest):
		return ErrInvalidRequest
	case errors.Is(err, ErrRateLimited):
		return ErrRateLimited
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return ErrTransport
}

// requestIDHeaders are the headers APIs commonly put their request ID in, in the order
// they are tried. Header names are in canonical form.
var requestIDHeaders = []string{
	"X-Request-Id",
	"X-Shopify-Request-Id",
	"X-Amzn-Requestid",
	"X-Amz-Request-Id",
	"X-Correlation-Id",
	"Request-Id",
	"X-Github-Request-Id",
	"Cf-Ray",
}

// requestID returns the server's request ID from h, "" when none.
func requestID(h http.Header) string {
	for _, k := range requestIDHeaders {
		if v := h[k]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}
