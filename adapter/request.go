package adapter

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Request describes one call to the external API; send it with Client.Do.
type Request struct {
	// Method is the HTTP method; GET when empty.
	Method string
	// Path is joined to the client's base URL, unless it is an absolute URL.
	Path string
	// Query is added to the URL's query string.
	Query url.Values
	// Header is added to the client's static headers (and overrides them).
	Header http.Header
	// Body is sent as the request body: []byte and string as they are, json.RawMessage as
	// JSON, anything else encoded as JSON. nil sends no body.
	Body any
	// IdempotencyKey, when set, is sent in the client's idempotency header and makes a
	// non-idempotent request (POST, PATCH) safe to retry.
	IdempotencyKey string
	// ConnectTimeout and ReadTimeout override the client's timeouts for this request.
	ConnectTimeout time.Duration
	ReadTimeout    time.Duration
	// Operation, Model and Record describe the call in the audit log.
	Operation string
	Model     string
	Record    string
}

// Response is a complete response: the body has been read (up to the client's limit) and
// the connection released.
type Response struct {
	// StatusCode is the HTTP status of the last attempt.
	StatusCode int
	// Header is the response header of the last attempt. It is the caller's: the audit
	// entry holds its own redacted copy.
	Header http.Header
	// Body is the whole response body, read up to the client's limit (WithMaxResponseSize).
	Body []byte
	// URL is the final request URL (secrets not stripped: do not log it; the audit log
	// and errors carry a redacted copy).
	URL *url.URL
	// Attempts is how many times the request was sent.
	Attempts int
	// Duration covers all attempts, including waits between retries.
	Duration time.Duration
	// Method is the request's HTTP method.
	Method string

	client *Client // for redacting errors about this response; nil in test doubles
	op     string  // Request.Operation
}

// Doer sends a Request and returns its complete Response. *Client implements it; paginators
// and tests accept any Doer.
type Doer interface {
	Do(ctx context.Context, req *Request) (*Response, error)
}
