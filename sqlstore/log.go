package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connkit/connkit/internal/audit"
	"github.com/connkit/connkit/synclog"
)

// LogRecorder stores synclog entries in table connkit_sync_log. It implements
// synclog.Recorder and synclog.Querier; get one from DB.Log.
type LogRecorder struct {
	db  *DB
	cfg audit.Config[synclog.Entry]
}

var (
	_ synclog.Recorder = (*LogRecorder)(nil)
	_ synclog.Querier  = (*LogRecorder)(nil)
)

// Log returns a recorder writing to this database. It takes synclog's recorder options:
// synclog.WithBodyLimit caps the bytes kept of each request and response body (default
// 64 KiB; longer bodies are cut at a UTF-8 boundary and the entry is marked Truncated; 0
// keeps no body, a negative limit keeps bodies whole), and synclog.WithRedactor redacts
// each entry before it is stored (by default entries are stored as given: the adapter
// redacts the entries it builds).
func (db *DB) Log(opts ...synclog.Option) *LogRecorder {
	r := &LogRecorder{db: db, cfg: audit.Config[synclog.Entry]{BodyLimit: audit.DefaultBodyLimit}}
	audit.Apply(&r.cfg, opts)
	return r
}

const logCols = `id, started_at, backend, operation, direction, method, url, request_header, response_header,
	request_body, response_body, truncated, status, duration_us, attempts, error, model, record`

// Record implements synclog.Recorder. It prepares e for storage (an entry without a time
// is stamped with the DB's clock, the redactor runs, bodies are cut to the body limit and
// headers encoded, so the caller may reuse e's maps once Record returns) and queues it; a
// background writer of the DB stores the queued entries, in the order recorded, with one
// multi-row INSERT per batch whenever the database's write connection is free. Record
// therefore does not wait for the database: on SQLite it never waits for a transaction
// holding the single write connection, such as an import committing its bindings.
//
// Backpressure, not loss: when 1024 entries (or 16 MiB of them) are waiting, Record waits
// for room until ctx is done, and then returns an error without queuing e. It also returns
// an error after DB.Close, and reports once, through the next Record, that earlier entries
// could not be stored (Flush reports them too).
//
// Durability: Flush, DB.Close and the Query and Prune methods wait for the entries
// recorded before them. A process that crashes loses the entries not yet stored: at most
// the queue (1024 entries, 16 MiB) plus the batch being written (256 entries, 4 MiB); in
// practice the entries recorded while the last batch was being written.
//
// An entry is stored even when ctx is canceled after Record returns: the writer does not
// use the caller's context.
func (r *LogRecorder) Record(ctx context.Context, e synclog.Entry) error {
	if e.Time.IsZero() {
		e.Time = r.db.clock()
	}
	if r.cfg.Redact != nil {
		r.cfg.Redact(&e)
	}
	var cut bool
	e.RequestBody, cut = cutBody(e.RequestBody, r.cfg.BodyLimit)
	e.Truncated = e.Truncated || cut
	e.ResponseBody, cut = cutBody(e.ResponseBody, r.cfg.BodyLimit)
	e.Truncated = e.Truncated || cut
	reqH, respH := headerJSON(e.RequestHeader), headerJSON(e.ResponseHeader)
	row := logRow{
		started: r.db.timeArg(e.Time), backend: r.db.text(e.Backend), operation: r.db.text(e.Operation),
		direction: r.db.text(string(e.Direction)), method: r.db.text(e.Method), url: r.db.text(e.URL),
		reqH: reqH, respH: respH, reqB: e.RequestBody, respB: e.ResponseBody, truncated: e.Truncated,
		status: e.Status, durUS: e.Duration.Microseconds(), attempts: e.Attempts, error: r.db.text(e.Error),
		model: r.db.text(e.Model), record: r.db.text(e.Record),
	}
	row.size = 256 + len(row.backend) + len(row.operation) + len(row.method) + len(row.url) + len(row.error) +
		len(row.model) + len(row.record) + len(row.reqB) + len(row.respB)
	if s, ok := reqH.(string); ok {
		row.size += len(s)
	}
	if s, ok := respH.(string); ok {
		row.size += len(s)
	}
	var earlier, err error
	if w := r.db.logWriter(); w == nil {
		err = errLogClosed
	} else {
		earlier, err = w.add(ctx, row)
	}
	if err != nil {
		return fmt.Errorf("synclog: record %s %s of backend %q: %w", e.Method, e.URL, e.Backend, err)
	}
	if earlier != nil {
		return fmt.Errorf("synclog: %s %s of backend %q is queued, but earlier entries were lost: %w",
			e.Method, e.URL, e.Backend, earlier)
	}
	return nil
}

// Flush waits until every entry recorded in this database (through any of its recorders)
// before the call is stored, or until ctx is done. It returns the errors of the entries
// that could not be stored since the previous Flush: the writer retries a failing batch
// with backoff, then stores its entries one by one, and reports (and logs to the DB's
// logger, at level Error) those that still fail.
func (r *LogRecorder) Flush(ctx context.Context) error {
	w := r.db.logWriter()
	if w == nil {
		return nil // DB.Close flushed and reported
	}
	return w.flush(ctx)
}

// cutBody keeps at most limit bytes of s without splitting a UTF-8 sequence; a negative
// limit keeps s whole.
func cutBody(s string, limit int) (string, bool) {
	if limit < 0 || len(s) <= limit {
		return s, false
	}
	i := limit
	for i > 0 && i > limit-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}

// headerJSON encodes h as a JSON object of string arrays (nil: NULL), as json.Marshal
// does but without reflection (it runs for every delivery and logged request): keys
// sorted, invalid UTF-8 replaced by U+FFFD.
func headerJSON(h http.Header) any {
	if h == nil {
		return nil
	}
	keys := make([]string, 0, len(h))
	size := 2
	for k, vs := range h {
		keys = append(keys, k)
		size += len(k) + 6
		for _, v := range vs {
			size += len(v) + 3
		}
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		vs := h[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v)
		}
		b = append(b, ']')
	}
	return string(append(b, '}'))
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

// Query implements synclog.Querier: the entries matching f, newest first (ties broken by
// descending ID). It reads one page per query, so memory stays bounded.
//
// It first waits for the entries still queued in this process for the same database (by
// this DB, or by another DB opened on the same SQLite file or Postgres DSN), so that it
// sees every entry recorded before the call; entries queued by other processes are visible
// once their writer has stored them. On SQLite, do not query while holding a transaction
// on DB.SQL(): with entries queued, the wait needs the write connection it holds (ctx
// still ends the wait).
func (r *LogRecorder) Query(ctx context.Context, f synclog.Filter) iter.Seq2[synclog.Entry, error] {
	return func(yield func(synclog.Entry, error) bool) {
		if f.Limit < 0 {
			yield(synclog.Entry{}, fmt.Errorf("synclog: query: Limit is negative (%d); use 0 for no limit", f.Limit))
			return
		}
		if err := r.db.waitLogs(ctx); err != nil {
			yield(synclog.Entry{}, err)
			return
		}
		var where []string
		var args []any
		add := func(cond string, arg ...any) {
			where = append(where, cond)
			args = append(args, arg...)
		}
		if f.ID != 0 {
			add(`id = ?`, f.ID)
		}
		if f.Backend != "" {
			add(`backend = ?`, f.Backend)
		}
		if f.Operation != "" {
			add(`operation = ?`, f.Operation)
		}
		if f.Direction != "" {
			add(`direction = ?`, string(f.Direction))
		}
		if f.Status != 0 {
			add(`status = ?`, f.Status)
		}
		if f.StatusMin != 0 {
			add(`status >= ?`, f.StatusMin)
		}
		if f.StatusMax != 0 {
			add(`status <= ?`, f.StatusMax)
		}
		if f.FailedOnly {
			add(`(error <> '' OR status >= 400)`)
		}
		if !f.Since.IsZero() {
			add(`started_at >= ?`, r.db.timeArg(f.Since))
		}
		if !f.Until.IsZero() {
			add(`started_at < ?`, r.db.timeArg(f.Until))
		}
		if f.Model != "" {
			add(`model = ?`, f.Model)
		}
		if f.Record != "" {
			add(`record = ?`, f.Record)
		}
		base := `SELECT ` + logCols + ` FROM connkit_sync_log WHERE `
		if len(where) > 0 {
			base += strings.Join(where, ` AND `) + ` AND `
		}
		first := r.db.q(base + `1 = 1 ORDER BY started_at DESC, id DESC LIMIT ?`)
		next := r.db.q(base + `(started_at < ? OR (started_at = ? AND id < ?)) ORDER BY started_at DESC, id DESC LIMIT ?`)
		pages := keysetPages(f.Limit, r.db.pageSize, func(last *synclog.Entry, n int) ([]synclog.Entry, error) {
			var page []synclog.Entry
			var err error
			if last == nil {
				page, err = r.page(ctx, first, append(args[:len(args):len(args)], n))
			} else {
				t := r.db.timeArg(last.Time)
				page, err = r.page(ctx, next, append(args[:len(args):len(args)], t, t, last.ID, n))
			}
			if err != nil {
				return nil, fmt.Errorf("synclog: query: %w", err)
			}
			return page, nil
		})
		for e, err := range pages {
			if !yield(e, err) {
				return
			}
		}
	}
}

func (r *LogRecorder) page(ctx context.Context, query string, args []any) ([]synclog.Entry, error) {
	rows, err := r.db.rq.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []synclog.Entry
	for rows.Next() {
		var e synclog.Entry
		var dir, reqH, respH string
		var reqB, respB []byte
		var durUS int64
		if err := rows.Scan(&e.ID, nullTime{&e.Time}, &e.Backend, &e.Operation, &dir, &e.Method, &e.URL,
			nullString{&reqH}, nullString{&respH}, &reqB, &respB, &e.Truncated, &e.Status, &durUS, &e.Attempts,
			&e.Error, &e.Model, &e.Record); err != nil {
			return nil, err
		}
		e.Direction = synclog.Direction(dir)
		e.RequestBody, e.ResponseBody = string(reqB), string(respB)
		e.Duration = time.Duration(durUS) * time.Microsecond
		if e.RequestHeader, err = parseHeader(reqH); err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.ID, err)
		}
		if e.ResponseHeader, err = parseHeader(respH); err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.ID, err)
		}
		page = append(page, e)
	}
	return page, rows.Err()
}

func parseHeader(s string) (http.Header, error) {
	if s == "" {
		return nil, nil
	}
	var h http.Header
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("decode stored headers: %w", err)
	}
	return h, nil
}

// Prune deletes the entries that started before olderThan and reports how many it
// deleted: call it on a schedule to keep the log to a retention period. Like Query, it
// first waits for the entries queued before the call.
func (r *LogRecorder) Prune(ctx context.Context, olderThan time.Time) (int64, error) {
	if err := r.db.waitLogs(ctx); err != nil {
		return 0, err
	}
	res, err := r.db.wq.ExecContext(ctx, r.db.q(`DELETE FROM connkit_sync_log WHERE started_at < ?`), r.db.timeArg(olderThan))
	if err != nil {
		return 0, fmt.Errorf("synclog: prune entries before %s: %w", olderThan.Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("synclog: prune entries before %s: %w", olderThan.Format(time.RFC3339), err)
	}
	return n, nil
}
