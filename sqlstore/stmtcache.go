package sqlstore

import (
	"context"
	"database/sql/driver"
	"reflect"
)

// SQLite connections keep the statements run on them by query text, so a query run
// again is not prepared again. Statements connkit runs through its own pool are
// prepared once already; the cache is for the rest, above all River's, whose SQLite
// driver passes every query as text: preparing its insert took ~40% of an enqueue.
//
// A cached statement is reused only when no rows of it are open (a second query of the
// same text while the first is being read gets a statement of its own), and the cache
// keeps at most stmtCacheSize statements per connection, dropping the least recently
// used. database/sql uses a connection from one goroutine at a time, so the cache needs
// no lock.

// stmtCacheSize bounds the statements one connection keeps.
const stmtCacheSize = 64

// cachingConnector hands out connections wrapped in cachingConn.
type cachingConnector struct{ driver.Connector }

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newCachingConn(conn), nil
}

// sqliteConn is what the cache needs of a driver connection: the optional interfaces
// database/sql uses that modernc's connection implements, so the wrapper hides none.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// sqliteStmt is what the cache needs of a prepared statement.
type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachingConn is the driver connection with its statement cache.
type cachingConn struct {
	inner sqliteConn
	stmts map[string]*cachedStmt
	clock uint64 // use counter, for least-recently-used eviction
}

type cachedStmt struct {
	st    sqliteStmt
	used  uint64
	open  bool // rows of it are being read
	stale bool // evicted or its connection closed while open: close it when its rows close
}

// newCachingConn wraps conn, or returns it as is when it lacks an interface the cache
// relies on (another driver).
func newCachingConn(conn driver.Conn) driver.Conn {
	inner, ok := conn.(sqliteConn)
	if !ok {
		return conn
	}
	return &cachingConn{inner: inner, stmts: make(map[string]*cachedStmt)}
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.inner.PrepareContext(ctx, query)
}
func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.inner.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.BeginTx(ctx, opts)
}
func (c *cachingConn) Ping(ctx context.Context) error         { return c.inner.Ping(ctx) }
func (c *cachingConn) ResetSession(ctx context.Context) error { return c.inner.ResetSession(ctx) }
func (c *cachingConn) IsValid() bool                          { return c.inner.IsValid() }

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	for q, s := range c.stmts {
		if s.open {
			s.stale = true
		} else {
			s.st.Close()
		}
		delete(c.stmts, q)
	}
	return c.inner.Close()
}

// stmt returns the cached statement of query, preparing it on first use; nil when the
// cached one has rows open (the caller then runs query uncached).
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	c.clock++
	if s, ok := c.stmts[query]; ok {
		if s.open {
			return nil, nil
		}
		s.used = c.clock
		return s, nil
	}
	ds, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(sqliteStmt)
	if !ok {
		ds.Close()
		return nil, nil
	}
	if len(c.stmts) >= stmtCacheSize {
		c.evict()
	}
	s := &cachedStmt{st: st, used: c.clock}
	c.stmts[query] = s
	return s, nil
}

// evict drops the least recently used statement.
func (c *cachingConn) evict() {
	var oldest string
	var at uint64
	for q, s := range c.stmts {
		if oldest == "" || s.used < at {
			oldest, at = q, s.used
		}
	}
	s := c.stmts[oldest]
	delete(c.stmts, oldest)
	if s.open {
		s.stale = true
	} else {
		s.st.Close()
	}
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err // the query does not prepare: running it uncached would fail alike
	}
	if s == nil {
		return c.inner.ExecContext(ctx, query, args)
	}
	return s.st.ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err // the query does not prepare: running it uncached would fail alike
	}
	if s == nil {
		return c.inner.QueryContext(ctx, query, args)
	}
	rows, err := s.st.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.open = true
	return &cachedRows{Rows: rows, s: s}, nil
}

// cachedRows marks its statement free again when closed. It forwards the column-type
// interfaces modernc's rows implement.
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.s.open = false
	if r.s.stale {
		r.s.st.Close()
	}
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
