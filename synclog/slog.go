package synclog

import (
	"context"
	"errors"
	"log/slog"
)

// DefaultSlogBodyLimit is how many bytes of each body a SlogRecorder logs when bodies are
// enabled, unless WithSlogBodyLimit says otherwise.
const DefaultSlogBodyLimit = 4 << 10

// SlogRecorder is a [Recorder] that writes one log/slog line per entry. Build it with
// [NewSlogRecorder].
type SlogRecorder struct {
	logger    *slog.Logger
	msg       string
	bodies    bool
	bodyLimit int
	redactor  *Redactor
}

// SlogOption configures a [SlogRecorder].
type SlogOption func(*SlogRecorder)

// WithSlogBodies adds the request and response bodies (redacted, cut to the body limit)
// to each line. Off by default: bodies make log lines long and may hold personal data.
func WithSlogBodies(on bool) SlogOption { return func(s *SlogRecorder) { s.bodies = on } }

// WithSlogBodyLimit sets how many bytes of each body are logged (default 4 KiB; zero or
// less logs bodies whole).
func WithSlogBodyLimit(n int) SlogOption { return func(s *SlogRecorder) { s.bodyLimit = n } }

// WithSlogRedactor sets the Redactor applied to every entry before it is logged (default
// [DefaultRedactor]). Entries are redacted again here because a log line leaves the
// process: the cost is small next to the I/O.
func WithSlogRedactor(r *Redactor) SlogOption {
	return func(s *SlogRecorder) {
		if r != nil {
			s.redactor = r
		}
	}
}

// WithSlogMessage sets the log message (default "http exchange").
func WithSlogMessage(msg string) SlogOption { return func(s *SlogRecorder) { s.msg = msg } }

// NewSlogRecorder returns a Recorder that logs each entry to l (slog.Default() when nil)
// with the attributes backend, operation, direction, method, url, status, duration,
// attempts, error, model and record (id too once assigned), at level Info for success,
// Warn for a 4xx status and Error for a 5xx status or a transport error.
func NewSlogRecorder(l *slog.Logger, opts ...SlogOption) Recorder {
	s := &SlogRecorder{
		logger:    l,
		msg:       "http exchange",
		bodyLimit: DefaultSlogBodyLimit,
		redactor:  DefaultRedactor(),
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

// Level returns the level an entry is logged at.
func (s *SlogRecorder) Level(e *Entry) slog.Level {
	switch {
	case e.Error != "" || e.Status >= 500:
		return slog.LevelError
	case e.Status >= 400:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// Record logs e. It never fails.
func (s *SlogRecorder) Record(ctx context.Context, e Entry) error {
	l := s.logger
	if l == nil {
		l = slog.Default()
	}
	level := s.Level(&e)
	if !l.Enabled(ctx, level) {
		return nil
	}
	s.redactor.Entry(&e)
	attrs := make([]slog.Attr, 0, 16)
	if e.ID != 0 {
		attrs = append(attrs, slog.Int64("id", e.ID))
	}
	attrs = append(attrs,
		slog.String("backend", e.Backend),
		slog.String("operation", e.Operation),
		slog.String("direction", string(e.Direction)),
		slog.String("method", e.Method),
		slog.String("url", e.URL),
		slog.Int("status", e.Status),
		slog.Duration("duration", e.Duration),
		slog.Int("attempts", e.Attempts),
	)
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	if e.Model != "" {
		attrs = append(attrs, slog.String("model", e.Model))
	}
	if e.Record != "" {
		attrs = append(attrs, slog.String("record", e.Record))
	}
	if s.bodies {
		req, cut1 := Truncate(e.RequestBody, s.bodyLimit)
		resp, cut2 := Truncate(e.ResponseBody, s.bodyLimit)
		attrs = append(attrs, slog.String("request_body", req), slog.String("response_body", resp))
		if e.Truncated || cut1 || cut2 {
			attrs = append(attrs, slog.Bool("truncated", true))
		}
	}
	l.LogAttrs(ctx, level, s.msg, attrs...)
	return nil
}

// Multi returns a Recorder that hands every entry to each of rs in order (nil recorders
// are skipped) and joins their errors with errors.Join. Every recorder gets the entry even
// when an earlier one fails.
func Multi(rs ...Recorder) Recorder {
	var flat multi
	for _, r := range rs {
		switch r := r.(type) {
		case nil:
		case multi:
			flat = append(flat, r...)
		default:
			flat = append(flat, r)
		}
	}
	switch len(flat) {
	case 0:
		return Discard
	case 1:
		return flat[0]
	}
	return flat
}

type multi []Recorder

func (m multi) Record(ctx context.Context, e Entry) error {
	var errs []error
	for _, r := range m {
		if err := r.Record(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
