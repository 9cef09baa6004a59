// Package synclog is connkit's audit trail: every HTTP exchange with an external system,
// outbound (connkit calls the API) and inbound (the API calls connkit), recorded as an
// [Entry] with secrets redacted. It is the Go counterpart of BJ API Sync's bj.api.log.
//
// A [Recorder] receives entries. connkit ships an in-memory ring ([Ring]), a log/slog
// recorder ([SlogRecorder]) and SQL recorders (package sqlstore). Recorders that can be
// searched also implement [Querier].
package synclog

import (
	"context"
	"iter"
	"net/http"
	"time"
)

// Direction says who started an exchange.
type Direction string

const (
	// Outbound is a request connkit sent to an external API.
	Outbound Direction = "out"
	// Inbound is a request an external system sent to connkit (webhooks, apisync endpoints).
	Inbound Direction = "in"
)

// Entry is one recorded HTTP exchange. Header and body fields hold redacted copies: the
// code that builds an entry runs it through a [Redactor] before handing it to a Recorder.
type Entry struct {
	// ID is assigned by the recorder that stores the entry (0 until then).
	ID int64
	// Time is when the exchange started.
	Time time.Time
	// Backend names the configured connection the exchange belongs to.
	Backend string
	// Operation names what was being done: an apisync config name, "import product", ….
	Operation string
	// Direction is Outbound or Inbound.
	Direction Direction
	// Method and URL of the request; the URL has secret query parameters redacted.
	Method string
	URL    string
	// RequestHeader and ResponseHeader are redacted copies.
	RequestHeader  http.Header
	ResponseHeader http.Header
	// RequestBody and ResponseBody are redacted and cut to the recorder's body limit.
	RequestBody  string
	ResponseBody string
	// Truncated reports that at least one body was cut.
	Truncated bool
	// Status is the HTTP status code, 0 when no response arrived.
	Status int
	// Duration covers all attempts, including waits between retries.
	Duration time.Duration
	// Attempts is how many times the request was sent (1 without retries).
	Attempts int
	// Error is the error text when the exchange failed, "" otherwise.
	Error string
	// Model and Record name the record the exchange concerned, when known
	// (for example "product" and an external or local ID).
	Model  string
	Record string
}

// Failed reports whether the exchange ended in an error or a status of 400 or more.
func (e *Entry) Failed() bool { return e.Error != "" || e.Status >= 400 }

// Recorder receives audit entries. Implementations must be safe for concurrent use.
// Record should not block for long: it runs on the request path. An error from Record is
// logged by the caller; it never fails the exchange it describes.
type Recorder interface {
	Record(ctx context.Context, e Entry) error
}

// recorderFunc adapts a function to the Recorder interface.
type recorderFunc func(ctx context.Context, e Entry) error

// Record calls f(ctx, e).
func (f recorderFunc) Record(ctx context.Context, e Entry) error { return f(ctx, e) }

// discard is the Recorder Multi returns when given none: it drops every entry.
var discard Recorder = recorderFunc(func(context.Context, Entry) error { return nil })

// Filter selects entries in a query. Zero fields match everything.
type Filter struct {
	// ID selects the one entry with that ID (0: any).
	ID int64
	// Backend, Operation and Direction match Entry fields exactly.
	Backend   string
	Operation string
	Direction Direction
	// Status matches one exact status code; StatusMin/StatusMax match a range (inclusive).
	Status    int
	StatusMin int
	StatusMax int
	// FailedOnly keeps entries for which Entry.Failed is true.
	FailedOnly bool
	// Since and Until bound Entry.Time: Since inclusive, Until exclusive.
	Since time.Time
	Until time.Time
	// Model and Record select the entries about one record.
	Model  string
	Record string
	// Limit caps the number of entries returned (0: no limit). Entries come newest first.
	Limit int
}

// match reports whether e passes every set field of f (Limit is not considered).
func (f Filter) match(e *Entry) bool {
	switch {
	case f.ID != 0 && e.ID != f.ID,
		f.Backend != "" && e.Backend != f.Backend,
		f.Operation != "" && e.Operation != f.Operation,
		f.Direction != "" && e.Direction != f.Direction,
		f.Status != 0 && e.Status != f.Status,
		f.StatusMin != 0 && e.Status < f.StatusMin,
		f.StatusMax != 0 && e.Status > f.StatusMax,
		f.FailedOnly && !e.Failed(),
		!f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until),
		f.Model != "" && e.Model != f.Model,
		f.Record != "" && e.Record != f.Record:
		return false
	}
	return true
}

// Querier is implemented by recorders whose entries can be searched.
type Querier interface {
	// Query yields the entries matching f, newest first.
	Query(ctx context.Context, f Filter) iter.Seq2[Entry, error]
}
