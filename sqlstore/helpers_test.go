package sqlstore_test

import (
	"context"
	"github.com/connkit/connkit/internal/pgtest"
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

// pgSchemaDSN returns a DSN on a fresh schema of the test Postgres, or skips.
func pgSchemaDSN(t testing.TB) string { return pgtest.DSN(t, "connkit_sqlstore_") }
