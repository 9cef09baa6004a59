package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// A panic inside a write transaction must not keep SQLite's only write connection: every
// later write would wait for it forever.
func TestInTxReleasesTheConnectionOnPanic(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "connkit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not propagate")
			}
		}()
		db.inTx(ctx, func(*sql.Tx) error { panic("boom") })
	}()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := db.Bindings().Upsert(wctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "E1", LocalID: "L1"}); err != nil {
		t.Fatalf("write after a panicking transaction: %v", err)
	}
}
