package synclog

import "github.com/connkit/connkit/internal/audit"

// Option configures a recorder: the [Ring] ([NewRing]), the slog recorder
// ([NewSlogRecorder]) and the SQL log (sqlstore's DB.Log) all take these options.
type Option func(*audit.Config[Entry])

// WithBodyLimit sets how many bytes of each request and response body the recorder keeps;
// longer bodies are cut on a UTF-8 boundary and the entry is marked Truncated. A limit of
// 0 keeps no body, a negative one keeps bodies whole. The default is 64 KiB for the Ring
// and the SQL log, and 0 (no bodies) for the slog recorder.
func WithBodyLimit(n int) Option {
	return func(c *audit.Config[Entry]) { c.BodyLimit = n }
}

// WithRedactor makes the recorder redact each entry with r before keeping it. The Ring and
// the SQL log redact nothing by default (entries built by the adapter and webhook packages
// are redacted already); the slog recorder uses a Redactor with the default rules. A nil r changes nothing.
func WithRedactor(r *Redactor) Option {
	return func(c *audit.Config[Entry]) {
		if r != nil {
			c.Redact = r.Entry
		}
	}
}
