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
	ins, err := db.SQL().PrepareContext(ctx, `INSERT INTO connkit_sync_log (started_at, backend, operation,
		direction, method, url, request_header, response_header, request_body, response_body, truncated, status,
		duration_us, attempts, error, model, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	defer ins.Close()
	syncInsert := func(e synclog.Entry) error {
		// The work Record did before queuing: encode headers, insert, wait for the commit.
		reqH, respH := headerText(e.RequestHeader), headerText(e.ResponseHeader)
		_, err := ins.ExecContext(ctx, time.Now().UnixMicro(), e.Backend, e.Operation, string(e.Direction),
			e.Method, e.URL, reqH, respH, []byte(e.RequestBody), []byte(e.ResponseBody), false, e.Status,
			e.Duration.Microseconds(), e.Attempts, e.Error, e.Model, e.Record)
		return err
	}

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

func headerText(h http.Header) any {
	if h == nil {
		return nil
	}
	b, _ := json.Marshal(h)
	return string(b)
}
