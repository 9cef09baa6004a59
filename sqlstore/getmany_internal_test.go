package sqlstore

import (
	"context"
	"fmt"
	"testing"
)

// GetManyByExternal must not fill the prepared statement cache (maxPrepared texts, after
// which new queries run unprepared) with one IN-list text per lookup size.
func TestGetManyByExternalPreparesFewStatements(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.Bindings()
	before := len(db.rq.stmts)
	var ids []string
	for n := 1; n <= 2*sqliteInChunk+1; n++ {
		ids = append(ids, fmt.Sprint("e", n))
		if _, err := s.GetManyByExternal(ctx, "shop", "product", ids); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(db.rq.stmts) - before; got > 8 {
		t.Fatalf("lookups of 1 to %d IDs prepared %d statements, want at most 8", len(ids), got)
	}
}

func TestInListSize(t *testing.T) {
	for n := 1; n <= sqliteInChunk; n++ {
		size := inListSize(n)
		if size < n || size > sqliteInChunk {
			t.Fatalf("inListSize(%d) = %d, want in [%d, %d]", n, size, n, sqliteInChunk)
		}
	}
}
