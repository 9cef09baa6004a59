package synclog

import (
	"context"
	"errors"
	"log/slog"

	"github.com/connkit/connkit/internal/audit"
)

// slogRecorder is the Recorder returned by NewSlogRecorder.
type slogRecorder struct {
	logger *slog.Logger
	cfg    audit.Config[Entry]
}

// NewSlogRecorder returns a Recorder that logs each entry to l (slog.Default() when nil)
// with the attributes backend, operation, direction, method, url, status, duration,
// attempts, error, model and record (id too once assigned), at level Info for success,
// Warn for a 4xx status and Error for a 5xx status or a transport error. It never fails.
//
// Each line's message is "http exchange". Options: [WithBodyLimit] adds the request and
// response bodies (redacted, cut to the limit) to each line: the default, 0, logs no
// bodies, since they make lines long and may hold personal data; [WithRedactor] (default
// a Redactor with the default rules; entries are redacted again here because a log line
// leaves the process: the cost is small next to the I/O).
func NewSlogRecorder(l *slog.Logger, opts ...Option) Recorder {
	s := &slogRecorder{logger: l, cfg: audit.Config[Entry]{}}
	audit.Apply(&s.cfg, opts)
	if s.cfg.Redact == nil {
		s.cfg.Redact = defaultRedactor().Entry
	}
	return s
}

// level returns the level an entry is logged at.
func (s *slogRecorder) level(e *Entry) slog.Level {
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
func (s *slogRecorder) Record(ctx context.Context, e Entry) error {
	l := s.logger
	if l == nil {
		l = slog.Default()
	}
	level := s.level(&e)
	if !l.Enabled(ctx, level) {
		return nil
	}
	s.cfg.Redact(&e)
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
	if s.cfg.BodyLimit != 0 {
		req, cut1 := audit.Truncate(e.RequestBody, s.cfg.BodyLimit)
		resp, cut2 := audit.Truncate(e.ResponseBody, s.cfg.BodyLimit)
		attrs = append(attrs, slog.String("request_body", req), slog.String("response_body", resp))
		if e.Truncated || cut1 || cut2 {
			attrs = append(attrs, slog.Bool("truncated", true))
		}
	}
	l.LogAttrs(ctx, level, "http exchange", attrs...)
	return nil
}

// Multi returns a Recorder that hands every entry to each of rs in order (nil recorders
// are skipped) and joins their errors with errors.Join. Every recorder gets the entry even
// when an earlier one fails. Multi() with no recorder drops every entry.
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
		return discard
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
