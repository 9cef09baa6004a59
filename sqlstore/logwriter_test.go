package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

// holdWriter blocks the audit log's writes to db until the returned release is called:
// on SQLite it holds the single write connection in a transaction, on Postgres it locks
// the table against inserts.
func holdWriter(t *testing.T, db *sqlstore.DB) (release func()) {
	t.Helper()
	tx, err := db.SQL().BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if db.Dialect() == sqlstore.Postgres {
		if _, err := tx.Exec(`LOCK TABLE connkit_sync_log IN EXCLUSIVE MODE`); err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// urlsOf returns the URLs of the entries of backend, oldest first (Query yields newest
// first; equal times come back in ID order, which is the order they were stored in).
func urlsOf(t *testing.T, rec *sqlstore.LogRecorder, backend string) []string {
	t.Helper()
	got := queryAll(t, rec, synclog.Filter{Backend: backend})
	out := make([]string, len(got))
	for i, e := range got {
		out[len(got)-1-i] = e.URL
	}
	return out
}

func entryN(backend string, at time.Time, i int) synclog.Entry {
	return synclog.Entry{Time: at, Backend: backend, Direction: synclog.Outbound, Method: "GET",
		URL: fmt.Sprintf("https://api.example.com/items?page=%d", i), Status: 200, Attempts: 1}
}

// wantInOrder fails the test unless got (from urlsOf) holds the URLs of entryN 0 to n-1,
// in that order; what names the entries in the failure.
func wantInOrder(t *testing.T, what string, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s: %d entries stored, want %d", what, len(got), n)
	}
	for i, u := range got {
		if want := entryN("", time.Time{}, i).URL; u != want {
			t.Fatalf("%s: entry %d is %q, want %q: not in the order recorded", what, i, u, want)
		}
	}
}

// Every entry recorded before Flush is stored, in the order recorded, across several
// batches and more than a full queue; the caller may reuse an entry's header maps once
// Record returns.
func TestLogFlushStoresAllInOrder(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.open(t)
			rec := db.Log()
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			n := sqlstore.LogQueueRows + 2*sqlstore.LogBatchRows + 7
			h := http.Header{"Accept": {"v0"}}
			for i := range n {
				en := entryN("order", at, i)
				en.RequestHeader = h
				if err := rec.Record(ctx, en); err != nil {
					t.Fatalf("Record %d: %v", i, err)
				}
				h["Accept"][0] = fmt.Sprintf("v%d", i+1) // reused by the caller
			}
			if err := rec.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			wantInOrder(t, "order", urlsOf(t, rec, "order"), n)
			for i, en := range queryAll(t, rec, synclog.Filter{Backend: "order", Limit: 3}) {
				if want := fmt.Sprintf("v%d", n-1-i); en.RequestHeader.Get("Accept") != want {
					t.Fatalf("entry %s stored header %q, want %q as it was when recorded", en.URL, en.RequestHeader.Get("Accept"), want)
				}
			}
		})
	}
}

// Many goroutines recording through recorders of their own: nothing is lost, and the
// entries of each goroutine are stored in the order it recorded them.
func TestLogConcurrentRecorders(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.open(t)
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			const goroutines, each = 16, 150
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					rec := db.Log()
					for i := range each {
						if err := rec.Record(ctx, entryN(fmt.Sprintf("g%d", g), at, i)); err != nil {
							t.Errorf("goroutine %d, Record %d: %v", g, i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			// No Flush: Query waits for the entries recorded before it.
			rec := db.Log()
			for g := range goroutines {
				backend := fmt.Sprintf("g%d", g)
				wantInOrder(t, backend, urlsOf(t, rec, backend), each)
			}
		})
	}
}

// While the database's writer is held, Record queues up to the bound and then waits for
// room (a Record whose ctx ends while waiting fails and says so); once the writer is free
// again, every entry Record accepted is stored.
func TestLogBackpressure(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.open(t)
			rec := db.Log()
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			release := holdWriter(t, db)

			// Fill the queue: Records with a short deadline succeed until it is full.
			accepted := 0
			var full error
			for i := range sqlstore.LogQueueRows + sqlstore.LogBatchRows + 2 {
				rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				err := rec.Record(rctx, entryN("bp", at, i))
				cancel()
				if err != nil {
					full = err
					break
				}
				accepted++
			}
			if !errors.Is(full, context.DeadlineExceeded) || !strings.Contains(full.Error(), "queue is full") {
				t.Fatalf("after %d entries, Record = %v; want a queue-full error wrapping context.DeadlineExceeded", accepted, full)
			}
			// The queue holds LogQueueRows; the writer may have taken one batch out of it.
			if accepted < sqlstore.LogQueueRows || accepted > sqlstore.LogQueueRows+sqlstore.LogBatchRows {
				t.Fatalf("%d entries accepted while the writer was held, want between %d and %d",
					accepted, sqlstore.LogQueueRows, sqlstore.LogQueueRows+sqlstore.LogBatchRows)
			}

			// Records without a deadline wait (they do not drop the entry or fail).
			const more = 5
			var recorded atomic.Int32
			done := make(chan error, 1)
			go func() {
				for i := range more {
					if err := rec.Record(ctx, entryN("bp", at, accepted+i)); err != nil {
						done <- err
						return
					}
					recorded.Add(1)
				}
				done <- nil
			}()
			select {
			case err := <-done:
				t.Fatalf("Record returned (%v) while the queue was full and the writer held", err)
			case <-time.After(200 * time.Millisecond):
			}
			if n := recorded.Load(); n != 0 {
				t.Fatalf("%d Records returned while the queue was full", n)
			}

			release()
			if err := <-done; err != nil {
				t.Fatalf("Record after the writer was released: %v", err)
			}
			if err := rec.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			wantInOrder(t, "bp", urlsOf(t, rec, "bp"), accepted+more)
		})
	}
}

// DB.Close stores what is still queued; Records after it fail.
func TestLogCloseFlushes(t *testing.T) {
	dsns := map[string]func(t *testing.T) string{
		"sqlite-file": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "connkit.db") },
		"postgres":    func(t *testing.T) string { return pgSchemaDSN(t) },
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := dsn(t)
			db, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			rec := db.Log()
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			release := holdWriter(t, db)
			const n = 700
			for i := range n {
				if err := rec.Record(ctx, entryN("close", at, i)); err != nil {
					t.Fatalf("Record %d: %v", i, err)
				}
			}
			closed := make(chan error, 1)
			go func() { closed <- db.Close() }()
			select {
			case err := <-closed:
				t.Fatalf("Close returned (%v) before the queued entries could be stored", err)
			case <-time.After(100 * time.Millisecond):
			}
			release()
			if err := <-closed; err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := rec.Record(ctx, entryN("close", at, n)); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Fatalf("Record after Close = %v, want an error saying the database is closed", err)
			}

			db2 := mustOpen(t, dsn)
			got := urlsOf(t, db2.Log(), "close")
			if len(got) != n {
				t.Fatalf("%d entries stored after Close, want %d", len(got), n)
			}
		})
	}
}

// A query through another DB opened on the same database waits for the entries this
// process still has queued for it.
func TestLogQuerySeesOtherHandles(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	// A third connection holds SQLite's write lock for a while: a's writer waits on it.
	lock, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite:")+"?_txlock=immediate&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	tx, err := lock.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if err := a.Log().Record(ctx, entryN("other", at, i)); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		tx.Rollback()
	}()
	if got := urlsOf(t, b.Log(), "other"); len(got) != 3 {
		t.Fatalf("a query through another DB saw %d entries, want the 3 recorded before it", len(got))
	}
}

// A batch the database refuses is retried, then stored entry by entry: the one bad entry
// is reported (by Flush, by the next Record and to the DB's logger), the others stored.
func TestLogWriteErrorSurfaces(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var logs bytes.Buffer
			var mu sync.Mutex
			logger := slog.New(slog.NewTextHandler(&lockedBuf{b: &logs, mu: &mu}, nil))
			db := e.open(t, sqlstore.WithLogger(logger))
			reject := `CREATE TRIGGER reject_bad BEFORE INSERT ON connkit_sync_log WHEN NEW.backend = 'bad'
				BEGIN SELECT RAISE(ABORT, 'bad entry refused'); END`
			if db.Dialect() == sqlstore.Postgres {
				reject = `ALTER TABLE connkit_sync_log ADD CONSTRAINT reject_bad CHECK (backend <> 'bad')`
			}
			if _, err := db.SQL().ExecContext(ctx, reject); err != nil {
				t.Fatal(err)
			}
			rec := db.Log()
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			release := holdWriter(t, db) // so that the bad entry shares a batch with good ones
			for i, backend := range []string{"good", "good", "bad", "good", "good"} {
				if err := rec.Record(ctx, entryN(backend, at, i)); err != nil {
					t.Fatalf("Record %d: %v", i, err)
				}
			}
			release()
			err := rec.Flush(ctx)
			if err == nil || !strings.Contains(err.Error(), "1 audit entries not stored") || !strings.Contains(err.Error(), "page=2") {
				t.Fatalf("Flush = %v, want an error about the bad entry (page=2)", err)
			}
			if err := rec.Flush(ctx); err != nil {
				t.Fatalf("second Flush = %v, want nil: the failure was reported", err)
			}
			if err := rec.Record(ctx, entryN("good", at, 5)); err == nil || !strings.Contains(err.Error(), "is queued, but earlier entries were lost") ||
				!strings.Contains(err.Error(), "page=2") {
				t.Fatalf("next Record = %v, want it to report the earlier failure", err)
			}
			if err := rec.Record(ctx, entryN("good", at, 6)); err != nil {
				t.Fatalf("Record after the failure was reported: %v", err)
			}
			got := urlsOf(t, rec, "good")
			want := []string{entryN("", at, 0).URL, entryN("", at, 1).URL, entryN("", at, 3).URL,
				entryN("", at, 4).URL, entryN("", at, 5).URL, entryN("", at, 6).URL}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("stored %v, want %v", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "audit log entries lost") {
				t.Fatalf("the loss was not logged at level Error:\n%s", logs.String())
			}
		})
	}
}

// The entry of a request whose context has ended is stored all the same (the writer does
// not use the caller's context), while waits for the writer end with their own ctx.
func TestLogContexts(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			db := e.open(t)
			rec := db.Log()
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			release := holdWriter(t, db)
			canceled, cancel := context.WithCancel(context.Background())
			cancel()
			if err := rec.Record(canceled, entryN("ctx", at, 0)); err != nil {
				t.Fatalf("Record with a canceled ctx and room in the queue: %v", err)
			}
			short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := rec.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Flush while the writer is held = %v, want context.DeadlineExceeded", err)
			}
			var queryErr error
			for _, err := range rec.Query(short, synclog.Filter{}) {
				queryErr = err
				break
			}
			if !errors.Is(queryErr, context.DeadlineExceeded) {
				t.Fatalf("Query while the writer is held = %v, want context.DeadlineExceeded", queryErr)
			}
			release()
			if got := urlsOf(t, rec, "ctx"); len(got) != 1 {
				t.Fatalf("%d entries stored, want the one recorded with a canceled ctx", len(got))
			}
		})
	}
}

type lockedBuf struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
