package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/sqlstore"
)

const pgEnv = "CONNKIT_TEST_POSTGRES_URL"

// fakeClock is a settable clock shared by a test and the DB under test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// engine opens fresh, empty databases of one kind.
type engine struct {
	name string
	open func(t testing.TB, opts ...sqlstore.Option) *sqlstore.DB
}

func engines(t testing.TB) []engine {
	es := []engine{
		{"sqlite-file", func(t testing.TB, opts ...sqlstore.Option) *sqlstore.DB {
			return mustOpen(t, "sqlite:"+filepath.Join(t.TempDir(), "connkit.db"), opts...)
		}},
		{"sqlite-memory", func(t testing.TB, opts ...sqlstore.Option) *sqlstore.DB {
			return mustOpen(t, ":memory:", opts...)
		}},
	}
	es = append(es, engine{"postgres", func(t testing.TB, opts ...sqlstore.Option) *sqlstore.DB {
		return mustOpen(t, pgSchemaDSN(t), opts...)
	}})
	return es
}

func mustOpen(t testing.TB, dsn string, opts ...sqlstore.Option) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// pgSchemaDSN creates a fresh schema in the test Postgres database, drops it at cleanup,
// and returns a DSN whose search_path points at it. It skips the test when the env var
// is unset.
func pgSchemaDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	if base == "" {
		t.Skipf("Postgres tests need %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", pgEnv)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	schema := "connkit_sqlstore_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", pgEnv, err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", pgEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
