package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/state"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
)

// Dialect names the SQL engine behind a DB.
type Dialect int

// The supported engines.
const (
	SQLite Dialect = iota + 1
	Postgres
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// ErrUnsupportedDSN is returned (wrapped) by Open for a DSN naming no supported engine.
var ErrUnsupportedDSN = errors.New("sqlstore: unsupported DSN")

// DB is an open connkit database. It is safe for concurrent use; close it with Close.
type DB struct {
	dialect Dialect
	// w takes every write (and, on Postgres and in-memory SQLite, every read).
	w *sql.DB
	// r takes reads; it is w except for file-backed SQLite.
	r *sql.DB

	// wq and rq run queries on w and r; on SQLite they reuse prepared statements.
	wq, rq *pool

	now      func() time.Time
	log      *slog.Logger
	pageSize int

	logs logState // the audit log writer (logwriter.go)
}

type options struct {
	migrate     bool
	now         func() time.Time
	log         *slog.Logger
	busyTimeout time.Duration
	readConns   int
	maxConns    int
	pageSize    int
}

// Option configures Open.
type Option func(*options)

// WithoutMigrate makes Open leave the schema alone; call DB.Migrate yourself (for
// example from a deploy step) before using the stores.
func WithoutMigrate() Option { return func(o *options) { o.migrate = false } }

// withClock makes the stores read the time from now instead of time.Now: timestamps,
// lease expiry and the default entry time come from it. connkit's tests use it (through
// export_test.go) to expire leases without waiting.
func withClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithLogger sets where the DB reports what it did (applied migrations). The default
// discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithBusyTimeout sets how long a SQLite statement waits for a lock held by another
// connection or process before failing with SQLITE_BUSY (default 10s). Postgres ignores it.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.busyTimeout = d
		}
	}
}

// WithMaxConns caps open connections: the read pool of a file-backed SQLite database
// (default 4; the writer is always one connection), or the whole pool on Postgres
// (default 10).
func WithMaxConns(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.readConns, o.maxConns = n, n
		}
	}
}

// withPageSize sets how many rows List and Query read per round trip (default 500):
// memory use of an iteration is bounded by it. connkit's tests use a small page
// (through export_test.go) to cross page boundaries.
func withPageSize(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.pageSize = n
		}
	}
}

// Open connects to the database named by dsn and, unless WithoutMigrate is given,
// migrates its schema.
//
//   - "postgres://user@host/db?sslmode=disable" or "postgresql://…": Postgres (any pgx
//     connection string parameter works, including search_path).
//   - "sqlite:path/to/file.db", "file:path?…", "path/to/file.db": a SQLite file, created if
//     missing (its directory must exist).
//   - ":memory:": a private in-memory SQLite database, gone when the DB is closed.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	o := options{
		migrate:     true,
		now:         time.Now,
		log:         slog.New(slog.DiscardHandler),
		busyTimeout: 10 * time.Second,
		readConns:   4,
		maxConns:    10,
		pageSize:    500,
	}
	for _, opt := range opts {
		opt(&o)
	}
	db := &DB{now: o.now, log: o.log, pageSize: o.pageSize}
	var err error
	switch {
	case dsn == "":
		return nil, fmt.Errorf("%w: the DSN is empty; pass \"postgres://…\", \"sqlite:file.db\" or \":memory:\"", ErrUnsupportedDSN)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db.dialect = Postgres
		err = db.openPostgres(ctx, dsn, o)
	case strings.Contains(dsn, "://") && !strings.HasPrefix(dsn, "sqlite://") && !strings.HasPrefix(dsn, "file:"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return nil, fmt.Errorf("%w: scheme %q; use postgres:// or a SQLite path", ErrUnsupportedDSN, scheme)
	default:
		db.dialect = SQLite
		err = db.openSQLite(ctx, dsn, o)
	}
	if err != nil {
		return nil, err
	}
	db.logs.key = logKey(db.dialect, dsn)
	db.wq = newPool(db.w, db.dialect == SQLite)
	db.rq = db.wq
	if db.r != db.w {
		db.rq = newPool(db.r, true)
	}
	if o.migrate {
		if err := db.Migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

func (db *DB) openPostgres(ctx context.Context, dsn string, o options) error {
	w, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	w.SetMaxOpenConns(o.maxConns)
	w.SetMaxIdleConns(o.maxConns)
	w.SetConnMaxIdleTime(5 * time.Minute)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fmt.Errorf("sqlstore: connect to postgres %s: %w", redactDSN(dsn), err)
	}
	db.w, db.r = w, w
	return nil
}

// sqliteTarget turns the accepted SQLite DSN forms into the driver's "path?query" form and
// reports whether the database lives in memory.
func sqliteTarget(dsn string) (target string, query url.Values, memory bool, err error) {
	switch {
	case dsn == ":memory:":
		return ":memory:", url.Values{}, true, nil
	case strings.HasPrefix(dsn, "sqlite://"):
		dsn = strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "sqlite:"):
		dsn = strings.TrimPrefix(dsn, "sqlite:")
	}
	path, rawQuery, _ := strings.Cut(dsn, "?")
	if path == "" || path == "file:" {
		return "", nil, false, fmt.Errorf("%w: SQLite DSN %q names no file; use \":memory:\" for an in-memory database", ErrUnsupportedDSN, dsn)
	}
	query, err = url.ParseQuery(rawQuery)
	if err != nil {
		return "", nil, false, fmt.Errorf("%w: SQLite DSN %q has a malformed query: %v", ErrUnsupportedDSN, dsn, err)
	}
	memory = path == ":memory:" || path == "file::memory:" || query.Get("mode") == "memory"
	return path, query, memory, nil
}

func (db *DB) openSQLite(ctx context.Context, dsn string, o options) error {
	path, query, memory, err := sqliteTarget(dsn)
	if err != nil {
		return err
	}
	conf := func(q url.Values, write bool) string {
		q = cloneValues(q)
		q.Set("_busy_timeout", strconv.FormatInt(o.busyTimeout.Milliseconds(), 10))
		q.Set("_foreign_keys", "1")
		if !memory {
			q.Set("_journal_mode", "WAL")
			q.Set("_synchronous", "NORMAL") // durable across application crashes in WAL mode
			q.Add("_pragma", "temp_store(MEMORY)")
		}
		if write {
			q.Set("_txlock", "immediate")
		} else {
			q.Set("_query_only", "1")
		}
		if path == ":memory:" {
			return "file::memory:?" + q.Encode()
		}
		return path + "?" + q.Encode()
	}
	w, err := openSQLiteDB(conf(query, true))
	if err != nil {
		return fmt.Errorf("sqlstore: open sqlite %q: %w", path, err)
	}
	// One writer: writes in this process queue in database/sql instead of spinning on
	// SQLite's busy handler, and an in-memory database keeps its one connection forever.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := pingSQLite(ctx, w, o.busyTimeout); err != nil {
		w.Close()
		hint := "does its directory exist?"
		if isBusy(err) {
			hint = "another process held a lock longer than the busy timeout"
		}
		return fmt.Errorf("sqlstore: open sqlite %q (%s): %w", path, hint, err)
	}
	db.w, db.r = w, w
	if memory {
		return nil
	}
	r, err := openSQLiteDB(conf(query, false))
	if err != nil {
		w.Close()
		return fmt.Errorf("sqlstore: open sqlite %q for reading: %w", path, err)
	}
	r.SetMaxOpenConns(o.readConns)
	r.SetMaxIdleConns(o.readConns)
	if err := pingSQLite(ctx, r, o.busyTimeout); err != nil {
		w.Close()
		r.Close()
		return fmt.Errorf("sqlstore: open sqlite %q for reading: %w", path, err)
	}
	db.r = r
	return nil
}

// openSQLiteDB is sql.Open("sqlite", dsn) with each connection's statement cache
// (stmtcache.go).
func openSQLiteDB(dsn string) (*sql.DB, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(cachingConnector{c}), nil
}

// pingSQLite opens the first connection. Switching a new file to WAL takes an exclusive
// lock and SQLite does not always wait on busy_timeout for it, so when several processes
// open a new file at once, some get SQLITE_BUSY here: retry them within the busy timeout.
func pingSQLite(ctx context.Context, db *sql.DB, busyTimeout time.Duration) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// redactDSN hides the secrets of a URL DSN for error messages: the userinfo password and
// every query parameter whose name mentions a password (password, sslpassword…).
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "pass") {
				q[k] = []string{"xxxxx"}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Dialect reports which engine the DB runs on.
func (db *DB) Dialect() Dialect { return db.dialect }

// SQL returns the underlying pool for queries connkit does not offer. On SQLite it is the
// single write connection: keep transactions on it short, and never hold one open while
// calling connkit stores, which need the same connection.
func (db *DB) SQL() *sql.DB { return db.w }

// Close stores the audit log entries still queued (see LogRecorder.Record; it gives up on
// them after 30 seconds), then closes every connection. Its error includes the entries
// that could not be stored.
func (db *DB) Close() error {
	logErr := db.closeLogs()
	db.wq.close()
	if db.rq != db.wq {
		db.rq.close()
	}
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return errors.Join(logErr, err)
}

// Bindings returns the binding store kept in this database (table connkit_bindings). It
// is safe for concurrent use and across processes sharing the database.
//
// Leases: Claim, Renew and the lease rule of binding.Store are single conditional
// statements, so they hold across processes. On Postgres, lease times (the expiry Claim
// and Renew set, and "unexpired" in the lease rule) come from the database clock (now()),
// so processes whose clocks disagree still agree on who holds a lease. On SQLite, one
// machine, they come from the process clock.
func (db *DB) Bindings() binding.Store { return &bindingStore{db: db} }

// State returns the sync state store kept in this database (table connkit_sync_state).
func (db *DB) State() state.Store { return &stateStore{db: db} }

// clock returns the current time in the form every store keeps: UTC, microseconds.
func (db *DB) clock() time.Time { return utc(db.now()) }

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// q rewrites a query written with "?" placeholders for the DB's dialect. Queries in this
// package never contain "?" inside literals.
func (db *DB) q(query string) string {
	if db.dialect != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// timeArg converts a time to its stored form; the zero time is NULL.
func (db *DB) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = utc(t)
	if db.dialect == Postgres {
		return t
	}
	return t.UnixMicro()
}

// nullTime scans either stored form of a time (integer microseconds or a timestamp) and
// NULL as the zero time.
type nullTime struct{ t *time.Time }

// Scan implements sql.Scanner.
func (n nullTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n.t = time.Time{}
	case int64:
		*n.t = time.UnixMicro(v).UTC()
	case time.Time:
		*n.t = utc(v)
	default:
		return fmt.Errorf("sqlstore: cannot read %T as a time", src)
	}
	return nil
}

// nullString scans NULL as "" and stores "" as NULL.
type nullString struct{ s *string }

// Scan implements sql.Scanner.
func (n nullString) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*n.s = ""
	case string:
		*n.s = v
	case []byte:
		*n.s = string(v)
	default:
		return fmt.Errorf("sqlstore: cannot read %T as a string", src)
	}
	return nil
}

// text makes free-form text (error messages, log fields) storable: Postgres TEXT rejects
// NUL bytes and invalid UTF-8, which would lose the whole write, so on Postgres they
// become U+FFFD. Identifiers are never cleaned: a bad one must fail, not alias another.
func (db *DB) text(s string) string {
	if db.dialect != Postgres || (utf8.ValidString(s) && !strings.Contains(s, "\x00")) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func strArg(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// querier is what *sql.DB, *sql.Tx and stmtCache have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// pool runs queries on a *sql.DB. With prepare set (SQLite, where parsing a statement
// costs about as much as running it) it keeps one prepared statement per query text;
// database/sql prepares it again on each connection that needs it. Postgres skips this:
// pgx already caches prepared statements per connection.
type pool struct {
	db      *sql.DB
	prepare bool
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
}

// maxPrepared bounds the statements a pool keeps: List and Query build their WHERE
// clauses from the filter, so the set of query texts is finite but can be large.
const maxPrepared = 256

func newPool(db *sql.DB, prepare bool) *pool {
	return &pool{db: db, prepare: prepare, stmts: make(map[string]*sql.Stmt)}
}

// stmt returns the prepared statement of query, or nil when the pool does not prepare.
func (p *pool) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if !p.prepare {
		return nil, nil
	}
	if s := p.cached(query); s != nil {
		return s, nil
	}
	p.mu.Lock()
	full := len(p.stmts) >= maxPrepared
	p.mu.Unlock()
	if full {
		return nil, nil // rare filter combinations run unprepared
	}
	// Prepare without holding mu: preparing waits for a free connection, and the
	// goroutine holding SQLite's write connection may need mu (cached) to finish.
	s, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.stmts[query]; ok {
		s.Close()
		return prev, nil
	}
	p.stmts[query] = s
	return s, nil
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.stmts {
		s.Close()
	}
	clear(p.stmts)
}

func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := p.stmt(ctx, query)
	if err != nil || s == nil {
		return p.db.ExecContext(ctx, query, args...)
	}
	return s.ExecContext(ctx, args...)
}

func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := p.stmt(ctx, query)
	if err != nil || s == nil {
		return p.db.QueryContext(ctx, query, args...)
	}
	return s.QueryContext(ctx, args...)
}

func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := p.stmt(ctx, query)
	if err != nil || s == nil {
		return p.db.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// cached returns the pool's prepared statement of query if it has one; it never
// prepares, so it is safe while a transaction holds the only connection.
func (p *pool) cached(query string) *sql.Stmt {
	if !p.prepare {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stmts[query]
}

// stmtCache binds the pool's prepared statements to one transaction, once per query.
// Queries the pool has not prepared yet are prepared on the transaction and remembered
// in misses, for warm to prepare on the pool once the transaction has ended (preparing
// on the pool inside it would wait forever for SQLite's single write connection).
type stmtCache struct {
	tx     *sql.Tx
	pool   *pool
	stmts  map[string]*sql.Stmt
	misses []string
}

func newStmtCache(tx *sql.Tx, p *pool) *stmtCache {
	return &stmtCache{tx: tx, pool: p, stmts: make(map[string]*sql.Stmt)}
}

func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	var s *sql.Stmt
	if ps := c.pool.cached(query); ps != nil {
		s = c.tx.StmtContext(ctx, ps)
	} else {
		var err error
		if s, err = c.tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		c.misses = append(c.misses, query)
	}
	c.stmts[query] = s
	return s, nil
}

// warm prepares queries on the pool; errors only mean they stay unprepared.
func (p *pool) warm(ctx context.Context, queries []string) {
	for _, q := range queries {
		p.stmt(ctx, q)
	}
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := c.stmt(ctx, query)
	if err != nil {
		// Let the error surface from Scan, as database/sql does.
		return c.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// inTx runs fn in a write transaction, committing when it returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	// Also when fn panics: on SQLite the transaction holds the only write connection.
	// After Commit it is a no-op.
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
