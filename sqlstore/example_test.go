package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

// Open a SQLite file (created and migrated on open) and use the three stores it holds.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "connkit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "connkit.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// Bindings: which local record is which external one.
	bindings := db.Bindings()
	b, created, err := bindings.Ensure(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "gid://shop/Product/1"})
	if err != nil {
		log.Fatal(err)
	}
	b, err = bindings.MarkSuccess(ctx, b.ID, binding.Success{LocalID: "42", Hash: "sha256:…"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(created, b.Status, b.LocalID)

	// State: the cursor an incremental import resumes from.
	if err := db.State().Put(ctx, "shop", "product.cursor", []byte("page-7")); err != nil {
		log.Fatal(err)
	}
	cursor, _ := db.State().Get(ctx, "shop", "product.cursor")
	fmt.Println(string(cursor))

	// Log: the audit trail of HTTP exchanges.
	rec := db.Log()
	if err := rec.Record(ctx, synclog.Entry{Backend: "shop", Method: "GET", URL: "https://shop.example/products/1", Status: 200}); err != nil {
		log.Fatal(err)
	}
	for e, err := range rec.Query(ctx, synclog.Filter{Backend: "shop", Limit: 10}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Method, e.URL, e.Status)
	}

	v, _ := db.SchemaVersion(ctx)
	fmt.Println(db.Dialect(), v > 0)
	// Output:
	// true success 42
	// page-7
	// GET https://shop.example/products/1 200
	// sqlite true
}

// Two workers share one database; the lease keeps them off the same record.
func ExampleDB_Bindings_claim() {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	s := db.Bindings()
	b, _ := s.Upsert(ctx, binding.Binding{Backend: "crm", Model: "contact", LocalID: "c-1"})

	if _, err := s.Claim(ctx, b.ID, "worker-1", time.Minute); err != nil {
		log.Fatal(err)
	}
	_, err = s.Claim(ctx, b.ID, "worker-2", time.Minute)
	var locked *binding.LockedError
	if errors.As(err, &locked) {
		fmt.Println("locked by", locked.Owner)
	}
	_ = s.Release(ctx, b.ID, "worker-1")
	if _, err := s.Claim(ctx, b.ID, "worker-2", time.Minute); err == nil {
		fmt.Println("worker-2 got it")
	}
	// Output:
	// locked by worker-1
	// worker-2 got it
}

// Keep the audit trail to a retention period.
func ExampleLogRecorder_Prune() {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	rec := db.Log(synclog.WithBodyLimit(1 << 10))
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	_ = rec.Record(ctx, synclog.Entry{Time: now.AddDate(0, 0, -40), Backend: "shop", Method: "GET", URL: "https://shop.example/old"})
	_ = rec.Record(ctx, synclog.Entry{Time: now, Backend: "shop", Method: "GET", URL: "https://shop.example/new"})

	n, err := rec.Prune(ctx, now.AddDate(0, 0, -30))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pruned", n)
	// Output:
	// pruned 1
}

// A batch importer reads a page's bindings in one query, then writes the page in one
// transaction.
func ExampleDB_Bindings_getManyByExternal() {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	s := db.Bindings()
	if _, err := s.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "p-2", LocalID: "20"}); err != nil {
		log.Fatal(err)
	}

	page := []string{"p-1", "p-2", "p-3"}
	known, err := s.GetManyByExternal(ctx, "shop", "product", page)
	if err != nil {
		log.Fatal(err)
	}
	var writes []binding.Binding
	for i, ext := range page {
		b, ok := known[ext]
		if !ok {
			b = binding.Binding{Backend: "shop", Model: "product", ExternalID: ext, LocalID: fmt.Sprint(i+1, "0")}
		}
		b.Status = binding.StatusSuccess
		writes = append(writes, b)
	}
	stored, err := s.UpsertBatch(ctx, writes)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(known), "known")
	for _, b := range stored {
		fmt.Println(b.ExternalID, b.LocalID, b.Status)
	}
	// Output:
	// 1 known
	// p-1 10 success
	// p-2 20 success
	// p-3 30 success
}
