package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/state"
	"github.com/connkit/connkit/synclog"
)

func TestOpenRejectsBadDSN(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"", "mysql://root@localhost/db", "sqlite:", "file:"} {
		db, err := sqlstore.Open(ctx, dsn)
		if !errors.Is(err, sqlstore.ErrUnsupportedDSN) {
			if db != nil {
				db.Close()
			}
			t.Errorf("Open(%q): got %v, want ErrUnsupportedDSN", dsn, err)
		}
	}
	missingDir := filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")
	if db, err := sqlstore.Open(ctx, missingDir); err == nil {
		db.Close()
		t.Errorf("Open of a file in a missing directory succeeded")
	} else if !strings.Contains(err.Error(), "x.db") {
		t.Errorf("Open error %q does not name the file", err)
	}
}

func TestOpenDSNForms(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{
		"sqlite:" + filepath.Join(dir, "a.db"),
		"sqlite://" + filepath.Join(dir, "b.db"),
		"file:" + filepath.Join(dir, "c.db") + "?cache=private",
		filepath.Join(dir, "d.db"),
		":memory:",
	} {
		db := mustOpen(t, dsn)
		if db.Dialect() != sqlstore.SQLite {
			t.Errorf("Open(%q).Dialect() = %v, want sqlite", dsn, db.Dialect())
		}
		if v, err := db.SchemaVersion(context.Background()); err != nil || v != sqlstore.LatestSchemaVersion() {
			t.Errorf("Open(%q): SchemaVersion = %d, %v; want %d", dsn, v, err, sqlstore.LatestSchemaVersion())
		}
	}
}

func TestMigrations(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.open(t, sqlstore.WithoutMigrate())
			if v, err := db.SchemaVersion(ctx); err != nil || v != 0 {
				t.Fatalf("fresh DB: SchemaVersion = %d, %v; want 0", v, err)
			}
			for i := range 2 { // the second run is a no-op
				if err := db.Migrate(ctx); err != nil {
					t.Fatalf("Migrate #%d: %v", i+1, err)
				}
				if v, err := db.SchemaVersion(ctx); err != nil || v != sqlstore.LatestSchemaVersion() {
					t.Fatalf("after Migrate #%d: SchemaVersion = %d, %v; want %d", i+1, v, err, sqlstore.LatestSchemaVersion())
				}
			}
			var rows int
			if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM connkit_schema_migrations`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != sqlstore.LatestSchemaVersion() {
				t.Fatalf("connkit_schema_migrations has %d rows, want %d", rows, sqlstore.LatestSchemaVersion())
			}

			// A newer program migrated this database: refuse it, change nothing.
			future := sqlstore.LatestSchemaVersion() + 1
			if _, err := db.SQL().ExecContext(ctx, fmt.Sprintf(`INSERT INTO connkit_schema_migrations (version, name, applied_at) VALUES (%d, 'from the future', 0)`, future)); err != nil {
				t.Fatal(err)
			}
			err := db.Migrate(ctx)
			if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
				t.Fatalf("Migrate of a newer schema: got %v, want ErrSchemaTooNew", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(future)) {
				t.Errorf("error %q does not name the version %d", err, future)
			}
			if v, _ := db.SchemaVersion(ctx); v != future {
				t.Fatalf("SchemaVersion = %d after refused Migrate, want %d", v, future)
			}
		})
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := "sqlite:" + filepath.Join(t.TempDir(), "c.db")
	db := mustOpen(t, path)
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO connkit_schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db2, err := sqlstore.Open(ctx, path); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
		if db2 != nil {
			db2.Close()
		}
		t.Fatalf("Open of a newer schema: got %v, want ErrSchemaTooNew", err)
	}
}

func TestConcurrentMigratePostgres(t *testing.T) {
	dsn := pgSchemaDSN(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sqlstore.Open(ctx, dsn)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
}

func TestReopenSQLiteKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")

	db := mustOpen(t, dsn)
	b, err := db.Bindings().Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "E1", LocalID: "L1", Hash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Log().Record(ctx, synclog.Entry{Backend: "shop", Method: "GET", URL: "https://x/p/1", Status: 200}); err != nil {
		t.Fatal(err)
	}
	if err := db.State().Put(ctx, "shop", "cursor", []byte("c-42")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpen(t, dsn)
	got, err := db.Bindings().GetByExternal(ctx, "shop", "product", "E1")
	if err != nil || got.ID != b.ID || got.LocalID != "L1" || got.Hash != "h" {
		t.Fatalf("after reopen: binding = %+v, %v; want %+v", got, err, b)
	}
	var n int
	for e, err := range db.Log().Query(ctx, synclog.Filter{Backend: "shop"}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.URL != "https://x/p/1" {
			t.Fatalf("after reopen: entry URL %q", e.URL)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("after reopen: %d log entries, want 1", n)
	}
	if v, err := db.State().Get(ctx, "shop", "cursor"); err != nil || string(v) != "c-42" {
		t.Fatalf("after reopen: state = %q, %v", v, err)
	}
}

// Two *DB handles on one file stand in for two processes: each has its own connections,
// so nothing but SQLite's file locking coordinates them.
func TestLeaseAcrossHandles(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")
	clk := newClock()
	a := mustOpen(t, dsn, sqlstore.WithClock(clk.Now)).Bindings()
	b := mustOpen(t, dsn, sqlstore.WithClock(clk.Now)).Bindings()

	bd, err := a.Upsert(ctx, binding.Binding{Backend: "shop", Model: "order", ExternalID: "O1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, bd.ID, "worker-a", time.Minute); err != nil {
		t.Fatalf("claim by a: %v", err)
	}
	_, err = b.Claim(ctx, bd.ID, "worker-b", time.Minute)
	var locked *binding.LockedError
	if !errors.As(err, &locked) || locked.Owner != "worker-a" || !errors.Is(err, binding.ErrLocked) {
		t.Fatalf("claim by b: got %v, want *LockedError held by worker-a", err)
	}
	if !locked.Expires.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("LockedError.Expires = %v, want %v", locked.Expires, clk.Now().Add(time.Minute))
	}
	clk.Advance(time.Minute) // the lease expires exactly now
	got, err := b.Claim(ctx, bd.ID, "worker-b", time.Minute)
	if err != nil || got.LeaseOwner != "worker-b" {
		t.Fatalf("claim by b after expiry: %+v, %v", got, err)
	}
	if _, err := a.Claim(ctx, bd.ID, "worker-a", time.Minute); !errors.Is(err, binding.ErrLocked) {
		t.Fatalf("claim by a while b holds it: got %v, want ErrLocked", err)
	}
	if err := b.Release(ctx, bd.ID, "worker-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Claim(ctx, bd.ID, "worker-a", time.Minute); err != nil {
		t.Fatalf("claim by a after release: %v", err)
	}
}

// Concurrent claims from two handles: exactly one wins.
func TestConcurrentClaimAcrossHandles(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")
	stores := []binding.Store{mustOpen(t, dsn).Bindings(), mustOpen(t, dsn).Bindings()}
	bd, err := stores[0].Upsert(ctx, binding.Binding{Backend: "shop", Model: "order", ExternalID: "O1"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	wins := 0
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := stores[i%2].Claim(ctx, bd.ID, fmt.Sprintf("w%d", i), time.Hour)
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, binding.ErrLocked):
				t.Errorf("claim w%d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d claimers won, want exactly 1", wins)
	}
}

// Many writers on one SQLite file, through one handle and through two: no SQLITE_BUSY.
func TestSQLiteConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")
	stores := []binding.Store{mustOpen(t, dsn).Bindings(), mustOpen(t, dsn).Bindings()}
	const writers, each = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			for i := range each {
				// Half the keys are shared between writers, so updates race on rows too.
				ext := fmt.Sprintf("w%d-%d", w, i)
				if i%2 == 0 {
					ext = fmt.Sprintf("shared-%d", i)
				}
				if _, err := s.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: ext, Hash: fmt.Sprint(w)}); err != nil {
					errs <- fmt.Errorf("writer %d upsert %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	counts, err := stores[0].Counts(ctx, "shop", "product")
	if err != nil {
		t.Fatal(err)
	}
	if want := writers*each/2 + each/2; counts[binding.StatusPending] != want {
		t.Fatalf("%d bindings, want %d", counts[binding.StatusPending], want)
	}
}

func TestStateAcrossHandles(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")
	a, b := mustOpen(t, dsn).State(), mustOpen(t, dsn).State()
	if ok, err := a.CompareAndSwap(ctx, "shop", "wm", nil, []byte("1")); !ok || err != nil {
		t.Fatalf("CAS on a: %v, %v", ok, err)
	}
	if ok, err := b.CompareAndSwap(ctx, "shop", "wm", nil, []byte("x")); ok || err != nil {
		t.Fatalf("CAS on b of an existing value: %v, %v; want false", ok, err)
	}
	if ok, err := b.CompareAndSwap(ctx, "shop", "wm", []byte("1"), []byte("2")); !ok || err != nil {
		t.Fatalf("CAS on b: %v, %v", ok, err)
	}
	if v, err := a.Get(ctx, "shop", "wm"); err != nil || string(v) != "2" {
		t.Fatalf("Get on a = %q, %v; want 2", v, err)
	}
	if _, err := a.Get(ctx, "shop", "none"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get of a missing value: %v", err)
	}
}

// Several processes starting at once on a new file: all open, the schema is migrated once.
func TestConcurrentOpenSQLite(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sqlstore.Open(context.Background(), dsn)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("opener %d: %v", i, err)
		}
	}
	db := mustOpen(t, dsn)
	var rows int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM connkit_schema_migrations`).Scan(&rows); err != nil || rows != sqlstore.LatestSchemaVersion() {
		t.Fatalf("connkit_schema_migrations has %d rows (%v), want %d", rows, err, sqlstore.LatestSchemaVersion())
	}
}

// A Postgres that cannot be reached, or a DSN that cannot be parsed, fails Open with an
// error that names the server but no password, wherever the DSN carries it.
func TestOpenPostgresErrorsHideSecrets(t *testing.T) {
	for _, dsn := range []string{
		"postgres://connkit:s3cret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
		"postgres://connkit@127.0.0.1:1/none?sslmode=disable&connect_timeout=2&password=s3cret",
		"postgresql://connkit@127.0.0.1:1/none?connect_timeout=2&sslmode=disable&sslpassword=s3cret",
		"postgres://connkit:s3cret@127.0.0.1:notaport/none?sslmode=disable",
		"postgres://connkit:s3cret@127.0.0.1:1/none?sslmode=bogus",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		db, err := sqlstore.Open(ctx, dsn)
		cancel()
		if err == nil {
			db.Close()
			t.Fatalf("Open(%q) succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): error leaks the password: %v", dsn, err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("Open(%q): error does not name the server: %v", dsn, err)
		}
	}
}
