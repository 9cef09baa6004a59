package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

const pgEnv = "CONNKIT_TEST_POSTGRES_URL"

// pgDSN returns a DSN for a fresh schema of the test Postgres (dropped after the test),
// or skips the test when there is none.
func pgDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(pgEnv)
	if base == "" {
		t.Skipf("Postgres tests need %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", pgEnv)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	schema := "connkit_cli_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
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
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestPostgresStore: the inspection commands work on a postgres:// store too.
func TestPostgresStore(t *testing.T) {
	dsn := pgDSN(t)
	runIn(t, "{\"sku\":\"A\"}\n{\"sku\":\"B\"}\n", "records", "import", "--db", dsn, "--model", "res.product", "--key", "sku").want(t, exitOK)
	lines := runIn(t, "", "records", "list", "--db", dsn, "--model", "res.product", "--json").want(t, exitOK).jsonLines(t)
	if len(lines) != 2 || lines[1]["id"] != "2" {
		t.Fatalf("list: %v", lines)
	}
	one := runIn(t, "", "records", "get", "--db", dsn, "--model", "res.product", "--json", "2").want(t, exitOK).jsonLines(t)
	if len(one) != 1 || one[0]["created_at"] != lines[1]["created_at"] || one[0]["version"].(interface{ String() string }).String() != "1" {
		t.Fatalf("get --json %v, list %v", one, lines[1])
	}
	if out := runIn(t, "", "records", "export", "--db", dsn, "--model", "res.product").want(t, exitOK).stdout; out != "{\"sku\":\"A\"}\n{\"sku\":\"B\"}\n" {
		t.Fatalf("export: %q", out)
	}

	db, err := sqlstore.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Log().Record(t.Context(), synclog.Entry{Backend: "b", Operation: "op", Direction: synclog.Outbound, Method: "GET", URL: "https://x/1", Status: 500, Time: testNow}); err != nil {
		t.Fatal(err)
	}
	seedBindings(t, db)
	if out := runIn(t, "", "logs", "--db", dsn, "--id", "1").want(t, exitOK).stdout; !strings.Contains(out, "GET https://x/1") {
		t.Fatalf("logs --id: %s", out)
	}
	if n := len(runIn(t, "", "bindings", "list", "--db", dsn, "--status", "failed", "--json").want(t, exitOK).jsonLines(t)); n != 2 {
		t.Fatalf("%d failed bindings", n)
	}
	// A store that cannot be reached fails, without printing the password of its URL.
	r := runIn(t, "", "records", "list", "--db", "postgres://postgres:hunter2@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", "--model", "x").want(t, exitFailure)
	if strings.Contains(r.stderr, "hunter2") || !strings.Contains(r.stderr, "postgres://postgres:xxxxx@127.0.0.1:1/test") {
		t.Fatalf("a password in --db was printed: %s", r.stderr)
	}
}
