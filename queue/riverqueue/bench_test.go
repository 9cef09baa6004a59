package riverqueue_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/connkit/connkit/queue"
)

// BenchmarkSQLiteEnqueue measures Enqueue on the River SQLite queue against
// a hand-written baseline: one INSERT of the JSON args into a plain table in
// the same kind of file with the same settings. The River sub-benchmark
// reports its cost as a multiple of the baseline (x-baseline).
func BenchmarkSQLiteEnqueue(b *testing.B) {
	ctx := context.Background()
	dsn := func(path string) string {
		return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	}
	var baselineNs float64
	b.Run("baseline", func(b *testing.B) {
		db, err := sql.Open("sqlite", dsn(filepath.Join(b.TempDir(), "plain.db")))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(`CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, args BLOB NOT NULL, state TEXT NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := range b.N {
			raw, _ := json.Marshal(echoArgs{N: i})
			if _, err := db.ExecContext(ctx, `INSERT INTO jobs (kind, args, state) VALUES (?, ?, 'available')`, "riverqueue_echo", raw); err != nil {
				b.Fatal(err)
			}
		}
		baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("river", func(b *testing.B) {
		w := &queue.Workers{}
		queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error { return nil })
		q := newOn(b, openSQLite(b, filepath.Join(b.TempDir(), "river.db")), w)
		b.ResetTimer()
		for i := range b.N {
			if _, err := q.Enqueue(ctx, echoArgs{N: i}); err != nil {
				b.Fatal(err)
			}
		}
		if baselineNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x-baseline")
		}
	})
}
