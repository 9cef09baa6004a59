package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

// BenchmarkLogRecord measures what recording an audit entry costs the request path on a
// SQLite file, against a hand-written baseline in the same run: a synchronous prepared
// INSERT of the same row, which is what Record did before entries were queued.
//
//   - writer=idle: nothing else writes. x-sync-insert is Record's time per entry over the
//     INSERT's; x-sync-insert-flushed adds the final Flush, so it compares throughput.
//
//   - writer=busy: another goroutine keeps committing transactions of 100 inserts (an
//     import committing bindings), so the single write connection is mostly taken; the
//     synchronous INSERT waits for each commit, Record does not.
//
//     go test -run '^$' -bench LogRecord ./sqlstore
func BenchmarkLogRecord(b *testing.B) {
	for _, busy := range []bool{false, true} {
		name := "writer=idle"
		if busy {
			name = "writer=busy"
		}
		b.Run(name, func(b *testing.B) { benchLogRecord(b, busy) })
	}
}

func benchLogRecord(b *testing.B, busy bool) {
	ctx := context.Background()
	db := mustOpen(b, "sqlite:"+filepath.Join(b.TempDir(), "connkit.db"))
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE bench_import (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if busy {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tx, err := db.SQL().BeginTx(ctx, nil)
				if err != nil {
					b.Error(err)
					return
				}
				for i := range 100 {
					if _, err := tx.ExecContext(ctx, `INSERT INTO bench_import (v) VALUES (?)`, fmt.Sprint(i)); err != nil {
						b.Error(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	entry := synclog.Entry{Backend: "crm", Operation: "import contact", Direction: synclog.Outbound, Method: "GET",
		URL:           "https://api.example.com/crm/v3/objects/contacts?limit=100&after=12345",
		RequestHeader: http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer [REDACTED]"}},
		ResponseHeader: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"abc"},
			"Ratelimit-Remaining": {"99"}},
		ResponseBody: string(make([]byte, 4<<10)), Status: 200, Attempts: 1, Duration: 50 * time.Millisecond}
	rec := db.Log()
	syncInsert, done := syncInserter(b, db)
	defer done()

	b.ResetTimer()
	// One after the other, so that neither waits for the other's writes.
	start := time.Now()
	for range b.N {
		if err := rec.Record(ctx, entry); err != nil {
			b.Fatal(err)
		}
	}
	record := time.Since(start)
	start = time.Now()
	if err := rec.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	flush := time.Since(start)
	start = time.Now()
	for range b.N {
		if err := syncInsert(entry); err != nil {
			b.Fatal(err)
		}
	}
	insert := time.Since(start)
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(record.Nanoseconds())/n, "ns-record/entry")
	b.ReportMetric(float64(insert.Nanoseconds())/n, "ns-sync-insert/entry")
	b.ReportMetric(float64(record)/float64(insert), "x-sync-insert")
	b.ReportMetric(float64(record+flush)/float64(insert), "x-sync-insert-flushed")
}

// syncInserter is the hand-written baseline: a prepared INSERT of one entry, after the
// work Record does first (encoding the headers), waiting for its commit.
func syncInserter(b *testing.B, db *sqlstore.DB) (insert func(synclog.Entry) error, done func()) {
	ins, err := db.SQL().PrepareContext(context.Background(), `INSERT INTO connkit_sync_log (started_at, backend,
		operation, direction, method, url, request_header, response_header, request_body, response_body, truncated,
		status, duration_us, attempts, error, model, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	return func(e synclog.Entry) error {
		_, err := ins.Exec(time.Now().UnixMicro(), e.Backend, e.Operation, string(e.Direction), e.Method, e.URL,
			headerText(e.RequestHeader), headerText(e.ResponseHeader), []byte(e.RequestBody), []byte(e.ResponseBody),
			false, e.Status, e.Duration.Microseconds(), e.Attempts, e.Error, e.Model, e.Record)
		return err
	}, func() { ins.Close() }
}

func headerText(h http.Header) any {
	if h == nil {
		return nil
	}
	b, _ := json.Marshal(h)
	return string(b)
}

// BenchmarkLogImportPipeline imitates the cursor import of a SQLite-backed connector
// (importer.Batch): a producer "fetches" 40 pages (a 20 ms sleep each), records the
// audit entry of each fetch and hands the page over (one page buffered); the consumer
// writes each page's records (a transaction of 300 inserts) and commits its bindings
// (another one) in a goroutine, overlapping the next page's writes. It compares the time
// of the whole import with three recorders: the SQL log (x-ring-sqllog), a hand-written
// synchronous INSERT, which waits its turn on the single write connection behind the
// page transactions (x-ring-syncinsert), and, as the baseline both are divided by, an
// in-memory Ring.
//
//	go test -run '^$' -bench LogImportPipeline -benchtime 1x ./sqlstore
func BenchmarkLogImportPipeline(b *testing.B) {
	const pages, latency, perPage = 40, 20 * time.Millisecond, 300
	ctx := context.Background()
	entry := synclog.Entry{Backend: "crm", Operation: "import contact", Direction: synclog.Outbound, Method: "GET",
		URL: "https://api.example.com/crm/v3/objects/contacts?limit=100", Status: 200, Attempts: 1,
		ResponseHeader: http.Header{"Content-Type": {"application/json"}}, ResponseBody: string(make([]byte, 16<<10))}
	row := string(make([]byte, 300))
	write := func(db *sqlstore.DB, p int, what string) error {
		tx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for i := range perPage {
			if _, err := tx.ExecContext(ctx, `INSERT INTO bench_import (v) VALUES (?)`, fmt.Sprint(what, p, i, row)); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
	run := func(db *sqlstore.DB, record func(context.Context, synclog.Entry) error) time.Duration {
		work := make(chan int, 1)
		go func() {
			defer close(work)
			for p := range pages {
				time.Sleep(latency)
				if err := record(ctx, entry); err != nil {
					b.Error(err)
				}
				work <- p
			}
		}()
		start := time.Now()
		var commit chan error
		for p := range work {
			if err := write(db, p, "record"); err != nil {
				b.Fatal(err)
			}
			if commit != nil {
				if err := <-commit; err != nil {
					b.Fatal(err)
				}
			}
			commit = make(chan error, 1)
			go func() { commit <- write(db, p, "binding") }()
		}
		if err := <-commit; err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	open := func(i int, kind string) *sqlstore.DB {
		db := mustOpen(b, "sqlite:"+filepath.Join(b.TempDir(), fmt.Sprintf("%s%d.db", kind, i)))
		if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE bench_import (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
			b.Fatal(err)
		}
		return db
	}
	var ring, sqlLog, syncIns time.Duration
	for i := range b.N {
		ring += run(open(i, "ring"), synclog.NewRing(pages).Record)

		db := open(i, "sqllog")
		rec := db.Log()
		sqlLog += run(db, rec.Record)
		if err := rec.Flush(ctx); err != nil { // outside the timing: the import is done
			b.Fatal(err)
		}

		db = open(i, "sync")
		syncInsert, done := syncInserter(b, db)
		syncIns += run(db, func(ctx context.Context, e synclog.Entry) error { return syncInsert(e) })
		done()
	}
	b.ReportMetric(float64(sqlLog)/float64(ring), "x-ring-sqllog")
	b.ReportMetric(float64(syncIns)/float64(ring), "x-ring-syncinsert")
}
