package riverqueue_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/queuetest"
	"github.com/connkit/connkit/queue/riverqueue"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions keep cases fast: short polls, tiny backoff, no start-up stagger.
func testOptions(cfg queuetest.Config) []riverqueue.Option {
	n := cfg.MaxWorkers
	if n == 0 {
		n = 4
	}
	return []riverqueue.Option{
		riverqueue.WithWorkers(n),
		riverqueue.WithBackoff(queuetest.FastBackoff),
		riverqueue.WithFetchPollInterval(50 * time.Millisecond),
		riverqueue.WithLogger(quiet),
		riverqueue.WithRiverConfig(func(c *river.Config) {
			c.TestOnly = true
			c.FetchCooldown = 10 * time.Millisecond
		}),
	}
}

var (
	templateOnce sync.Once
	templateDB   []byte
	templateErr  error
)

// migratedSQLiteFile returns a new SQLite file with River's tables, copied
// from a template migrated once through OpenSQLite (migrating costs about a
// second per database under -race).
func migratedSQLiteFile(t *testing.T) string {
	t.Helper()
	templateOnce.Do(func() {
		dir, err := os.MkdirTemp("", "riverqueue-template")
		if err != nil {
			templateErr = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "template.db")
		q, err := riverqueue.OpenSQLite(context.Background(), path, queue.NewWorkers(), riverqueue.WithLogger(quiet))
		if err != nil {
			templateErr = err
			return
		}
		if templateErr = q.Close(); templateErr != nil { // checkpoints the WAL into the file
			return
		}
		templateDB, templateErr = os.ReadFile(path)
	})
	if templateErr != nil {
		t.Fatalf("preparing migrated SQLite template: %v", templateErr)
	}
	path := filepath.Join(t.TempDir(), "jobs.db")
	if err := os.WriteFile(path, templateDB, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newSQLiteQueue(t *testing.T, w *queue.Workers, cfg queuetest.Config) queue.Queue {
	t.Helper()
	// Migrating again is a cheap no-op check on the copied template.
	q, err := riverqueue.OpenSQLite(context.Background(), migratedSQLiteFile(t), w, testOptions(cfg)...)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

func TestSQLiteConformance(t *testing.T) {
	queuetest.Run(t, newSQLiteQueue)
}

// pgPool returns a pool on a fresh schema, dropped at cleanup, or skips.
func pgPool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	url := os.Getenv("CONNKIT_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("set CONNKIT_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run Postgres tests")
	}
	ctx := context.Background()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "queue_test_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return pool, schema
}

func newPostgresQueue(t *testing.T, w *queue.Workers, cfg queuetest.Config) queue.Queue {
	t.Helper()
	pool, schema := pgPool(t)
	q, err := riverqueue.NewPostgres(context.Background(), pool, w, append(testOptions(cfg), riverqueue.WithSchema(schema))...)
	if err != nil {
		t.Fatalf("NewPostgres: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return q
}

func TestPostgresConformance(t *testing.T) {
	if os.Getenv("CONNKIT_TEST_POSTGRES_URL") == "" {
		t.Skip("set CONNKIT_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run Postgres tests")
	}
	queuetest.Run(t, newPostgresQueue)
}
