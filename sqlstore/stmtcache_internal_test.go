package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// cacheOf returns the statement cache of conn's driver connection.
func cacheOf(t *testing.T, conn *sql.Conn) map[string]*cachedStmt {
	t.Helper()
	var stmts map[string]*cachedStmt
	if err := conn.Raw(func(dc any) error {
		c, ok := dc.(*cachingConn)
		if !ok {
			return fmt.Errorf("driver connection is %T, want *cachingConn", dc)
		}
		stmts = c.stmts
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return stmts
}

// readInts reads rows of one integer column.
func readInts(t *testing.T, rows *sql.Rows) []int {
	t.Helper()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A query run as text is prepared once per connection; a second query of the same text
// while the first one's rows are still being read gets a statement of its own (reusing
// the cached one would reset it under the first reader); the cache stays bounded, and a
// statement evicted while its rows are open is closed once they are.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "connkit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE n (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	const insert = `INSERT INTO n (v) VALUES (?)`
	for i := range 5 {
		if _, err := conn.ExecContext(ctx, insert, i); err != nil {
			t.Fatal(err)
		}
	}
	stmts := cacheOf(t, conn)
	first := stmts[insert]
	if first == nil {
		t.Fatalf("the insert was not cached: %v", stmts)
	}

	// Two readers of one query text, read in turns: each sees every row.
	const query = `SELECT v FROM n ORDER BY v`
	r1, err := conn.QueryContext(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	if !r1.Next() {
		t.Fatal("no first row")
	}
	r2, err := conn.QueryContext(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	got2 := readInts(t, r2)
	r2.Close()
	got1 := readInts(t, r1) // rows 1..4, the first was read above
	r1.Close()
	if fmt.Sprint(got2) != "[0 1 2 3 4]" || fmt.Sprint(got1) != "[1 2 3 4]" {
		t.Fatalf("interleaved readers got %v and %v", got1, got2)
	}
	if s := stmts[query]; s == nil || s.open {
		t.Fatalf("the query's statement after its rows closed: %+v", s)
	}

	// Bounded: the least recently used goes; one evicted while read is closed after.
	r3, err := conn.QueryContext(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	held := stmts[query]
	for i := range stmtCacheSize + 10 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`SELECT %d`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(stmts); n > stmtCacheSize {
		t.Fatalf("%d statements cached, want at most %d", n, stmtCacheSize)
	}
	if stmts[query] != nil || !held.stale {
		t.Fatalf("the statement being read was not evicted as stale: %+v", held)
	}
	if got := readInts(t, r3); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("rows of an evicted statement: %v", got)
	}
	if err := r3.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readInts(t, must(conn.QueryContext(ctx, query))); fmt.Sprint(got) != "[0 1 2 3 4]" {
		t.Fatalf("the query after its statement was evicted: %v", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
