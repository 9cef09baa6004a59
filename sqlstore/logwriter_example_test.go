package sqlstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

// Record queues the entry and returns; a background writer stores it. Flush waits until
// the entries recorded so far are stored and reports any that could not be.
func ExampleLogRecorder_Flush() {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // Close stores what is still queued, too

	rec := db.Log()
	for page := range 3 {
		e := synclog.Entry{Backend: "crm", Method: "GET", URL: fmt.Sprintf("https://crm.example/contacts?page=%d", page), Status: 200}
		if err := rec.Record(ctx, e); err != nil {
			log.Print(err) // an audit failure never fails the exchange it describes
		}
	}
	if err := rec.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	var n int
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM connkit_sync_log`).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "entries stored")
	// Output: 3 entries stored
}
