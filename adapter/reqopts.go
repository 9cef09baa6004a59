package adapter

import (
	"net/http"
	"net/url"
)

// WithQuery adds a query parameter (repeat it for several values).
func WithQuery(key, value string) RequestOption {
	return func(r *Request) {
		if r.Query == nil {
			r.Query = url.Values{}
		}
		r.Query.Add(key, value)
	}
}

// WithHeader sets a request header, replacing the client's default for that name.
func WithHeader(key, value string) RequestOption {
	return func(r *Request) {
		if r.Header == nil {
			r.Header = http.Header{}
		}
		r.Header.Set(key, value)
	}
}

// WithIdempotencyKey sends key in the client's idempotency header, which makes a POST or
// PATCH safe to retry. Use newIdempotencyKey for a fresh one, and keep it when the caller
// repeats the same logical operation later.
func WithIdempotencyKey(key string) RequestOption {
	return func(r *Request) { r.IdempotencyKey = key }
}

// WithOperation names what the request does ("import product") in errors and the audit
// log.
func WithOperation(op string) RequestOption {
	return func(r *Request) { r.Operation = op }
}

// WithRecord names the record the request concerns, for the audit log.
func WithRecord(model, id string) RequestOption {
	return func(r *Request) { r.Model, r.Record = model, id }
}
