//go:build unix

package importer_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/sqlstore"
)

// sqlProducts is a tiny durable local.Store: the app's own SQLite table.
type sqlProducts struct {
	db *sql.DB
	// killAfter > 0 makes the process SIGKILL itself right after that many keyed creates:
	// a crash between writing local records and writing their bindings.
	killAfter int64
	creates   atomic.Int64 // the batch creates on several goroutines
}

func openProducts(path string) (*sqlProducts, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY AUTOINCREMENT, ext_key TEXT UNIQUE, name TEXT, sku TEXT)`)
	return &sqlProducts{db: db}, err
}

var _ local.KeyedCreator[product] = (*sqlProducts)(nil)

func (s *sqlProducts) Get(ctx context.Context, id string) (product, error) {
	var p product
	err := s.db.QueryRowContext(ctx, `SELECT name, sku FROM products WHERE id = ?`, id).Scan(&p.Name, &p.SKU)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("product %s: %w", id, local.ErrNotFound)
	}
	return p, err
}

func (s *sqlProducts) Create(ctx context.Context, p product) (string, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO products (name, sku) VALUES (?, ?)`, p.Name, p.SKU)
	if err != nil {
		return "", err
	}
	id, err := res.LastInsertId()
	return strconv.FormatInt(id, 10), err
}

func (s *sqlProducts) CreateKeyed(ctx context.Context, key string, p product) (string, bool, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO products (ext_key, name, sku) VALUES (?, ?, ?) ON CONFLICT (ext_key) DO NOTHING RETURNING id`, key, p.Name, p.SKU).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.db.QueryRowContext(ctx, `SELECT id FROM products WHERE ext_key = ?`, key).Scan(&id)
		return strconv.FormatInt(id, 10), false, err
	}
	if err == nil && s.killAfter > 0 {
		if s.creates.Add(1) == s.killAfter {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	return strconv.FormatInt(id, 10), err == nil, err
}

func (s *sqlProducts) Update(ctx context.Context, id string, p product) error {
	res, err := s.db.ExecContext(ctx, `UPDATE products SET name = ?, sku = ? WHERE id = ?`, p.Name, p.SKU, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("product %s: %w", id, local.ErrNotFound)
	}
	return nil
}

func (s *sqlProducts) Delete(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM products WHERE id = ?`, id)
	return err
}

const (
	crashChildEnv = "CONNKIT_IMPORTER_CRASH_CHILD"
	crashDirEnv   = "CONNKIT_IMPORTER_CRASH_DIR"
	crashURLEnv   = "CONNKIT_IMPORTER_CRASH_URL"
	crashKillEnv  = "CONNKIT_IMPORTER_CRASH_KILL_AFTER"
)

// TestCrashChild is the importing process of TestCrashResume; it does nothing on its own.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashChildEnv) == "" {
		t.Skip("helper process of TestCrashResume")
	}
	ctx := context.Background()
	dir := os.Getenv(crashDirEnv)
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "connkit.db"))
	require.NoError(t, err)
	defer db.Close()
	app, err := openProducts(filepath.Join(dir, "app.db"))
	require.NoError(t, err)
	app.killAfter, _ = strconv.ParseInt(os.Getenv(crashKillEnv), 10, 64)
	c, err := adapter.New(os.Getenv(crashURLEnv), adapter.WithRetryWait(time.Millisecond, 10*time.Millisecond))
	require.NoError(t, err)
	imp, err := importer.New[product](db.Bindings(), app, "shop", "product", mapProduct)
	require.NoError(t, err)
	list := importer.ListFrom(c, adapter.Request{Path: "/products", Query: map[string][]string{"limit": {"50"}}},
		adapter.Cursor("next_cursor", "cursor"), "updated_at_min", adapter.WithRecordsPath("items"))
	batch, err := importer.NewBatch(imp, list, importer.WithWatermark(db.State(), "products.updated_at", time.Minute),
		importer.WithCommitSize(50), importer.WithProgress(func(p importer.Summary) {
			fmt.Printf("progress %d\n", p.Total())
		}))
	require.NoError(t, err)
	sum, err := batch.Run(ctx)
	require.NoError(t, err)
	require.Zero(t, sum.Failed)
	fmt.Printf("done created=%d skipped=%d\n", sum.Created, sum.Skipped)
}

func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes; skipped with -short")
	}
	n := 3000
	if raceEnabled {
		n = 600
	}
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	srv.Synthetic("products", n)
	dir := t.TempDir()
	child := func(env ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v")
		cmd.Env = append(append(os.Environ(), crashChildEnv+"=1", crashDirEnv+"="+dir, crashURLEnv+"="+srv.URL), env...)
		return cmd
	}
	app, err := openProducts(filepath.Join(dir, "app.db"))
	require.NoError(t, err)
	defer app.db.Close()
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "connkit.db"))
	require.NoError(t, err)
	defer db.Close()
	counts := func() (rows, bound int) {
		require.NoError(t, app.db.QueryRow(`SELECT count(*) FROM products`).Scan(&rows))
		c, err := db.Bindings().Counts(ctx, "shop", "product")
		require.NoError(t, err)
		return rows, c[binding.StatusSuccess]
	}

	// 1. The process kills itself in the middle of a page: local records written, their
	// bindings not yet.
	out, err := child(fmt.Sprintf("%s=%d", crashKillEnv, n/3+17)).CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	rows, bound := counts()
	t.Logf("self-kill: %d local rows, %d bound", rows, bound)
	// The other goroutines of the page (default concurrency 4) may each finish one more
	// create before the signal lands.
	require.GreaterOrEqual(t, rows, n/3+17)
	require.LessOrEqual(t, rows, n/3+17+3)
	require.Less(t, bound, rows, "crashed between the local writes and the binding writes")

	// 2. Killed from outside at some point of a slowed-down run.
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: 10 * time.Millisecond, Every: 1})
	cmd := child()
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(pipe)
	killed := false
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "progress "); ok {
			if v, _ := strconv.Atoi(d); v >= n/2 {
				time.Sleep(3 * time.Millisecond) // land inside the next page, wherever it is
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				killed = true
				break
			}
		}
	}
	_ = cmd.Wait()
	require.True(t, killed, "the second process reported progress before it was killed")
	rows, bound = counts()
	t.Logf("external kill: %d local rows, %d bound", rows, bound)
	require.Less(t, rows, n, "killed mid-way")

	// 3. A clean run finishes the job.
	srv.ClearFaults()
	out, err = child().CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "done created=")

	var distinct int
	require.NoError(t, app.db.QueryRow(`SELECT count(*), count(DISTINCT ext_key) FROM products`).Scan(&rows, &distinct))
	assert.Equal(t, n, rows, "every record exactly once")
	assert.Equal(t, n, distinct)
	c, err := db.Bindings().Counts(ctx, "shop", "product")
	require.NoError(t, err)
	assert.Equal(t, map[binding.Status]int{binding.StatusSuccess: n}, c)
	seen := map[string]bool{}
	for b, err := range db.Bindings().List(ctx, binding.Filter{Backend: "shop", Model: "product"}) {
		require.NoError(t, err)
		require.False(t, seen[b.LocalID], "local %s bound twice", b.LocalID)
		seen[b.LocalID] = true
	}
	assert.Len(t, seen, n)
}
