package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The SQL audit log is written behind the request path. LogRecorder.Record turns an entry
// into a logRow (the header maps are encoded there, so the caller may reuse them once
// Record returns; everything else is an immutable string or number) and appends it to the
// DB's logWriter queue. One goroutine, started when the queue becomes non-empty and gone
// once it is empty again, takes the queued rows in order and stores up to logBatchRows of
// them with one multi-row INSERT whenever the write connection is free: on SQLite an
// import holding the single writer to commit its bindings no longer delays the next
// request, and the entries that queued meanwhile are stored with one commit.
const (
	// logQueueRows and logQueueBytes bound the rows waiting in memory (bodies, headers and
	// text counted): Record waits for room beyond them. A single row is always admitted.
	logQueueRows  = 1024
	logQueueBytes = 16 << 20
	// logBatchRows and logBatchBytes bound one INSERT: 256 rows × 17 columns stays under
	// SQLite's 32766 and Postgres's 65535 parameters.
	logBatchRows  = 256
	logBatchBytes = 4 << 20
	// logAttempts is how many times a batch is tried before its rows are tried one by one.
	logAttempts = 4
	// logCloseWait is how long DB.Close waits for queued rows to be stored before it
	// cancels the writes still waiting (for a write connection held elsewhere, say).
	logCloseWait = 30 * time.Second
	// logMaxErrs bounds the distinct write failures kept for Flush.
	logMaxErrs = 8
)

// errLogClosed is returned by Record after DB.Close.
var errLogClosed = errors.New("sqlstore: the database is closed")

// logRow is an entry ready to be stored: redacted, bodies cut, headers encoded.
type logRow struct {
	started                                           any // timeArg form
	backend, operation, direction, method, url, error string
	model, record                                     string
	reqH, respH                                       any // JSON text or nil
	reqB, respB                                       string
	truncated                                         bool
	status, attempts                                  int
	durUS                                             int64
	size                                              int // bytes held, for the queue bounds
}

func (r *logRow) args() []any {
	return []any{r.started, r.backend, r.operation, r.direction, r.method, r.url, r.reqH, r.respH,
		[]byte(r.reqB), []byte(r.respB), r.truncated, r.status, r.durUS, r.attempts, r.error, r.model, r.record}
}

func (r *logRow) String() string {
	return fmt.Sprintf("%s %s of backend %q", r.method, r.url, r.backend)
}

// logState is what a DB keeps about its audit log writer.
type logState struct {
	mu     sync.Mutex
	w      *logWriter
	key    string // what identifies the database across DB values (logKey)
	closed bool
}

// logKey names the database a DSN opens, so that a query through one DB waits for the
// rows other DBs of this process still have queued for the same database: a SQLite file
// by its absolute path, Postgres by the DSN. A private in-memory SQLite database has none.
func logKey(d Dialect, dsn string) string {
	if d == Postgres {
		return "postgres:" + dsn
	}
	path, _, memory, err := sqliteTarget(dsn)
	if err != nil || memory {
		return ""
	}
	path = strings.TrimPrefix(path, "file:")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return "sqlite:" + path
}

// busyLogWriters holds, per logKey, the writers of this process with rows queued.
var busyLogWriters = struct {
	mu sync.Mutex
	m  map[string]map[*logWriter]struct{}
}{m: map[string]map[*logWriter]struct{}{}}

func setLogWriterBusy(w *logWriter, busy bool) {
	if w.key == "" {
		return
	}
	busyLogWriters.mu.Lock()
	defer busyLogWriters.mu.Unlock()
	set := busyLogWriters.m[w.key]
	if busy {
		if set == nil {
			set = map[*logWriter]struct{}{}
			busyLogWriters.m[w.key] = set
		}
		set[w] = struct{}{}
		return
	}
	delete(set, w)
	if len(set) == 0 {
		delete(busyLogWriters.m, w.key)
	}
}

// logWriter returns the DB's log writer, creating it on first use; nil once the DB is closed.
func (db *DB) logWriter() *logWriter {
	s := &db.logs
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.w == nil {
		s.w = newLogWriter(db, s.key)
	}
	return s.w
}

// waitLogs waits until the rows queued before the call, by this DB and by every other DB of
// the process writing to the same database, are stored or given up. Write failures are
// not reported here (Flush reports them); only ctx ends the wait early.
func (db *DB) waitLogs(ctx context.Context) error {
	var ws []*logWriter
	s := &db.logs
	s.mu.Lock()
	own, key := s.w, s.key
	s.mu.Unlock()
	if own != nil {
		ws = append(ws, own)
	}
	if key != "" {
		busyLogWriters.mu.Lock()
		for w := range busyLogWriters.m[key] {
			if w != own {
				ws = append(ws, w)
			}
		}
		busyLogWriters.mu.Unlock()
	}
	for _, w := range ws {
		if err := w.wait(ctx, w.mark()); err != nil {
			return err
		}
	}
	return nil
}

// closeLogs stops the DB's log writer: later Records fail, and the rows already queued are
// stored (within logCloseWait). It returns the write failures not yet reported by Flush.
func (db *DB) closeLogs() error {
	s := &db.logs
	s.mu.Lock()
	w := s.w
	s.closed = true
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	return w.close()
}

// logWriter queues the rows of one DB and stores them in batches.
type logWriter struct {
	db  *DB
	key string
	// ctx is the context of the writes; close cancels it when its wait runs out.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	queue    []logRow
	bytes    int
	queued   uint64        // rows ever admitted
	done     uint64        // rows stored or given up, in queue order
	running  bool          // a goroutine is draining the queue
	closed   bool          // Record refuses rows
	progress chan struct{} // closed (and replaced) whenever done grows or room frees up
	errs     []error       // failures not yet returned by Flush
	dropped  int           // failures beyond logMaxErrs not kept in errs
	unseen   error         // failures not yet returned by a Record
}

func newLogWriter(db *DB, key string) *logWriter {
	ctx, cancel := context.WithCancel(context.Background())
	return &logWriter{db: db, key: key, ctx: ctx, cancel: cancel, progress: make(chan struct{})}
}

// signal wakes everyone waiting for progress; w.mu is held.
func (w *logWriter) signal() {
	close(w.progress)
	w.progress = make(chan struct{})
}

// add queues row, waiting for room until ctx is done; err says why row was not queued.
// earlier is a failure to store earlier rows that no Record has reported yet.
func (w *logWriter) add(ctx context.Context, row logRow) (earlier, err error) {
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return nil, errLogClosed
		}
		if len(w.queue) == 0 || (len(w.queue) < logQueueRows && w.bytes+row.size <= logQueueBytes) {
			break
		}
		ch, waiting := w.progress, len(w.queue)
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("the audit log queue is full (%d entries waiting for the database) and ctx ended: %w",
				waiting, context.Cause(ctx))
		}
		w.mu.Lock()
	}
	w.queue = append(w.queue, row)
	w.bytes += row.size
	w.queued++
	if !w.running {
		w.running = true
		setLogWriterBusy(w, true)
		go w.run()
	}
	earlier = w.unseen
	w.unseen = nil
	w.mu.Unlock()
	return earlier, nil
}

// mark returns the count of rows queued so far, to wait for.
func (w *logWriter) mark() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// wait waits until the first n rows ever queued are stored or given up.
func (w *logWriter) wait(ctx context.Context, n uint64) error {
	w.mu.Lock()
	for w.done < n {
		ch := w.progress
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("synclog: wait for queued audit entries: %w", context.Cause(ctx))
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

// flush waits for the rows queued before the call and returns (and forgets) the write
// failures since the last flush.
func (w *logWriter) flush(ctx context.Context) error {
	if err := w.wait(ctx, w.mark()); err != nil {
		return err
	}
	return w.takeErrs()
}

func (w *logWriter) takeErrs() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	errs := w.errs
	if w.dropped > 0 {
		errs = append(errs, fmt.Errorf("sqlstore: %d more audit log write failures (see the DB's logger)", w.dropped))
	}
	w.errs, w.dropped = nil, 0
	return errors.Join(errs...)
}

func (w *logWriter) close() error {
	w.mu.Lock()
	w.closed = true
	n := w.queued
	w.signal() // Records waiting for room see closed
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), logCloseWait)
	err := w.wait(ctx, n)
	cancel()
	if err != nil {
		// Cancel the writes still waiting; the failures they then report are kept.
		w.cancel()
		w.wait(context.Background(), n)
	}
	w.cancel()
	return w.takeErrs()
}

// run drains the queue, one batch at a time, then exits.
func (w *logWriter) run() {
	var batch []logRow
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			w.running = false
			setLogWriterBusy(w, false)
			w.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(w.queue) && n < logBatchRows && (n == 0 || size+w.queue[n].size <= logBatchBytes) {
			size += w.queue[n].size
			n++
		}
		batch = append(batch[:0], w.queue[:n]...)
		rest := copy(w.queue, w.queue[n:])
		clear(w.queue[rest:])
		w.queue = w.queue[:rest]
		w.bytes -= size
		w.signal() // room for waiting Records
		w.mu.Unlock()

		err := w.store(batch)

		w.mu.Lock()
		w.done += uint64(n)
		if err != nil {
			if len(w.errs) < logMaxErrs {
				w.errs = append(w.errs, err)
			} else {
				w.dropped++
			}
			w.unseen = err
		}
		w.signal()
		w.mu.Unlock()
		clear(batch)
	}
}

// store writes batch, retrying it with backoff; when it keeps failing, each row is tried
// alone so that one bad row does not lose the others. It returns what could not be stored.
func (w *logWriter) store(batch []logRow) error {
	var err error
	for attempt := range logAttempts {
		if err = w.insert(batch); err == nil {
			return nil
		}
		w.db.log.Warn("sqlstore: storing audit log entries failed; retrying", "entries", len(batch),
			"attempt", attempt+1, "error", err)
		if !w.sleep(time.Duration(20<<(2*attempt)) * time.Millisecond) { // 20, 80, 320, 1280 ms
			break
		}
	}
	var lost []*logRow
	if len(batch) > 1 {
		// Three rows failing in a row means the database, not a row, is the problem: the
		// rest share their fate instead of each waiting out the same error.
		streak := 0
		for i := range batch {
			if streak < 3 && w.ctx.Err() == nil {
				var rerr error
				if rerr = w.insert(batch[i : i+1]); rerr == nil {
					streak = 0
					continue
				}
				err, streak = rerr, streak+1
			}
			lost = append(lost, &batch[i])
		}
	} else {
		lost = []*logRow{&batch[0]}
	}
	if len(lost) == 0 {
		return nil
	}
	err = fmt.Errorf("synclog: %d audit entries not stored (the first: %s): %w", len(lost), lost[0], err)
	w.db.log.Error("sqlstore: audit log entries lost", "entries", len(lost), "first", lost[0].String(), "error", err)
	return err
}

// sleep waits d unless the writer's context ends first.
func (w *logWriter) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.ctx.Done():
		return false
	}
}

const (
	logInsert = `INSERT INTO connkit_sync_log (started_at, backend, operation, direction, method, url,
		request_header, response_header, request_body, response_body, truncated, status, duration_us,
		attempts, error, model, record) VALUES `
	logValues = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// insert stores rows with one INSERT statement (atomic on its own).
func (w *logWriter) insert(rows []logRow) error {
	if len(rows) == 1 {
		// The one-row statement is prepared once on SQLite.
		_, err := w.db.wq.ExecContext(w.ctx, w.db.q(logInsert+logValues), rows[0].args()...)
		return err
	}
	var b strings.Builder
	b.Grow(len(logInsert) + len(rows)*(len(logValues)+2))
	b.WriteString(logInsert)
	args := make([]any, 0, len(rows)*17)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(logValues)
		args = append(args, rows[i].args()...)
	}
	// Not through the statement cache: each batch length is a statement of its own.
	_, err := w.db.w.ExecContext(w.ctx, w.db.q(b.String()), args...)
	return err
}
