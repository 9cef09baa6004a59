package adapter

import (
	"net/http"
	"net/url"
	"time"
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

// WithQueryValues adds every parameter in v.
func WithQueryValues(v url.Values) RequestOption {
	return func(r *Request) {
		if r.Query == nil {
			r.Query = url.Values{}
		}
		for k, vs := range v {
			r.Query[k] = append(r.Query[k], vs...)
		}
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
// PATCH safe to retry. Use NewIdempotencyKey for a fresh one, and keep it when the caller
// repeats the same logical operation later.
func WithIdempotencyKey(key string) RequestOption {
	return func(r *Request) { r.IdempotencyKey = key }
}

// WithTimeouts overrides the client's connect and read timeouts for this request; zero
// keeps the client's value.
func WithTimeouts(connect, read time.Duration) RequestOption {
	return func(r *Request) {
		if connect > 0 {
			r.ConnectTimeout = connect
		}
		if read > 0 {
			r.ReadTimeout = read
		}
	}
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
