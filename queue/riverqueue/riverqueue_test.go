package riverqueue_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"github.com/connkit/connkit/internal/pgtest"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/queuetest"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// failureLog returns a logger that keeps River's warnings and errors and prints them
// only if t fails, so that a rare failure (a start timeout under load) says which of
// River's steps timed out. Records after the test ended stay in the buffer: t.Log would
// panic then.
func failureLog(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() && buf.Len() > 0 {
			t.Logf("River logged:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// testOptions keep cases fast: short polls, tiny backoff, no start-up stagger.
func testOptions(t *testing.T, cfg queuetest.Config) []queue.Option {
	n := cfg.MaxWorkers
	if n == 0 {
		n = 4
	}
	opts := []queue.Option{
		queue.WithWorkers(n),
		queue.WithBackoff(10*time.Millisecond, 10*time.Millisecond),
		queue.WithLogger(failureLog(t)),
		riverqueue.WithRiverConfig(func(c *river.Config) {
			c.TestOnly = true
			c.FetchPollInterval = 50 * time.Millisecond
			c.FetchCooldown = 10 * time.Millisecond
		}),
	}
	if cfg.JobTimeout != 0 {
		opts = append(opts, queue.WithJobTimeout(cfg.JobTimeout))
	}
	return opts
}

// withSchema puts River's tables in schema.
func withSchema(schema string) queue.Option {
	return riverqueue.WithRiverConfig(func(c *river.Config) { c.Schema = schema })
}

var (
	templateOnce sync.Once
	templateDB   []byte
	templateErr  error
)

// migratedSQLiteFile returns a new SQLite file with connkit's and River's
// tables, copied from a template migrated once (migrating costs about a
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
		db, err := sqlstore.Open(context.Background(), "sqlite:"+path)
		if err != nil {
			templateErr = err
			return
		}
		if _, err := riverqueue.New(context.Background(), db, nil); err != nil {
			templateErr = err
			return
		}
		if templateErr = db.Close(); templateErr != nil { // checkpoints the WAL into the file
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

// openSQLite opens the connkit database at path, closed at cleanup.
func openSQLite(t testing.TB, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatalf("sqlstore.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("closing the database: %v", err)
		}
	})
	return db
}

// newOn makes a River queue on db, stopped at cleanup (before db closes).
func newOn(t testing.TB, db *sqlstore.DB, w *queue.Workers, opts ...queue.Option) riverqueue.Queue[*sql.Tx] {
	t.Helper()
	q, err := riverqueue.New(context.Background(), db, w, opts...)
	if err != nil {
		t.Fatalf("riverqueue.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Stop(ctx)
	})
	return q
}

func newSQLiteQueue(t *testing.T, w *queue.Workers, cfg queuetest.Config) queue.Queue {
	t.Helper()
	// Migrating again is a cheap no-op check on the copied template.
	return newOn(t, openSQLite(t, migratedSQLiteFile(t)), w, testOptions(t, cfg)...)
}

func TestSQLiteConformance(t *testing.T) {
	queuetest.Run(t, newSQLiteQueue)
}

// pgSchema creates a fresh schema, dropped at cleanup, and returns the server URL and
// the schema; it skips without CONNKIT_TEST_POSTGRES_URL.
func pgSchema(t testing.TB) (string, string) { return pgtest.Schema(t, "riverqueue_test_") }

// pgPool returns a pool on a fresh schema, dropped at cleanup, or skips.
func pgPool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	url, schema := pgSchema(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // before the schema is dropped
	return pool, schema
}

// pgDSN returns a connkit database DSN on a fresh schema, or skips.
func pgDSN(t testing.TB) string { return pgtest.DSN(t, "riverqueue_test_") }

// openPostgres opens a connkit database on a fresh schema, closed at
// cleanup, or skips.
func openPostgres(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), pgDSN(t))
	if err != nil {
		t.Fatalf("sqlstore.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// River on Postgres through database/sql (River's riverdatabasesql driver,
// polling instead of LISTEN) passes the same suite.
func TestPostgresDatabaseSQLConformance(t *testing.T) {
	if os.Getenv("CONNKIT_TEST_POSTGRES_URL") == "" {
		t.Skip("set CONNKIT_TEST_POSTGRES_URL to run Postgres tests")
	}
	queuetest.Run(t, func(t *testing.T, w *queue.Workers, cfg queuetest.Config) queue.Queue {
		return newOn(t, openPostgres(t), w, testOptions(t, cfg)...)
	})
}

func newPostgresQueue(t *testing.T, w *queue.Workers, cfg queuetest.Config) queue.Queue {
	t.Helper()
	pool, schema := pgPool(t)
	q, err := riverqueue.NewPostgres(context.Background(), pool, w, append(testOptions(t, cfg), withSchema(schema))...)
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

// Two clients on one database stand for two worker processes on two
// machines: each job runs exactly once, and both do some of the work.
func TestPostgresClientsShareWork(t *testing.T) {
	pool, schema := pgPool(t)
	const n = 100
	var mu sync.Mutex
	runs := map[int]int{}
	byClient := map[string]int{}
	all := make(chan struct{})
	newClient := func(name string) riverqueue.Queue[pgx.Tx] {
		w := &queue.Workers{}
		queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			runs[job.Args.N]++
			byClient[name]++
			if len(runs) == n && byClient["a"]+byClient["b"] == n {
				close(all)
			}
			return nil
		})
		q, err := riverqueue.NewPostgres(context.Background(), pool, w,
			append(testOptions(t, queuetest.Config{MaxWorkers: 2}), withSchema(schema))...)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	a, b := newClient("a"), newClient("b")
	ctx := context.Background()
	for i := range n {
		if _, err := a.Enqueue(ctx, echoArgs{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []riverqueue.Queue[pgx.Tx]{a, b} {
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		t.Fatal("jobs did not all run")
	}
	for _, q := range []riverqueue.Queue[pgx.Tx]{a, b} {
		if err := q.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if runs[i] != 1 {
			t.Errorf("job %d ran %d times", i, runs[i])
		}
	}
	if byClient["a"] == 0 || byClient["b"] == 0 {
		t.Logf("work split a=%d b=%d (one client took everything; allowed but unusual)", byClient["a"], byClient["b"])
	}
}

// Worker processes starting together on a fresh database all migrate: they
// must take turns, not fail on each other's half-created tables. One
// connection per pool also shows the lock does not starve the migrator.
func TestPostgresConcurrentMigrations(t *testing.T) {
	_, schema := pgPool(t)
	cfg, err := pgxpool.ParseConfig(os.Getenv("CONNKIT_TEST_POSTGRES_URL"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 1
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			_, err = riverqueue.NewPostgres(context.Background(), pool, &queue.Workers{}, withSchema(schema), queue.WithLogger(quiet))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("NewPostgres while others migrate: %v", err)
		}
	}
}

func TestConstructorsRefuseNil(t *testing.T) {
	ctx := context.Background()
	if _, err := riverqueue.New(ctx, nil, &queue.Workers{}); err == nil {
		t.Error("New(nil db) succeeded")
	}
	if _, err := riverqueue.NewPostgres(ctx, nil, &queue.Workers{}); err == nil {
		t.Error("NewPostgres(nil pool) succeeded")
	}
	db := openSQLite(t, migratedSQLiteFile(t))
	if _, err := riverqueue.New(ctx, db, &queue.Workers{}, queue.WithQueue("Bad Name", 1)); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("bad queue name: %v, want ErrInvalid", err)
	}
	if _, err := riverqueue.New(ctx, db, &queue.Workers{}, queue.WithRetention(5)); !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), "WithRetention") {
		t.Errorf("pool-only option: %v, want ErrInvalid naming it", err)
	}
	if err := queue.NewPool(&queue.Workers{}, riverqueue.WithoutMigrate()).Start(ctx); !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), "WithoutMigrate") {
		t.Errorf("River-only option on the pool: %v, want ErrInvalid naming it", err)
	}
}

func TestIdentityKeyIsNotSeenByWorker(t *testing.T) {
	w := &queue.Workers{}
	got := make(chan *queue.Job[strictArgs], 1)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[strictArgs]) error {
		got <- job
		return nil
	})
	q := newSQLiteQueue(t, w, queuetest.Config{})
	ctx := context.Background()
	info, err := q.Enqueue(ctx, strictArgs{ID: 7}, queue.WithIdentityKey("strict:7"))
	if err != nil {
		t.Fatal(err)
	}
	if string(info.Args) != `{"id":7}` || info.IdentityKey != "strict:7" {
		t.Errorf("JobInfo args %s key %q; want the caller's JSON and the key apart", info.Args, info.IdentityKey)
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case job := <-got:
		if job.Args.ID != 7 || job.IdentityKey != "strict:7" {
			t.Errorf("worker got %+v", job)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("job did not run (or failed to decode)")
	}
}

// echoArgs is the argument type of most tests here.
type echoArgs struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func (echoArgs) Kind() string { return "riverqueue_echo" }

// strictArgs refuses unknown fields, so a leaked identity field would fail.
type strictArgs struct {
	ID int `json:"id"`
}

func (strictArgs) Kind() string { return "strict" }

func (a *strictArgs) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v struct {
		ID int `json:"id"`
	}
	if err := dec.Decode(&v); err != nil {
		return err
	}
	a.ID = v.ID
	return nil
}
