package main

import (
	"github.com/connkit/connkit/internal/pgtest"
	"strings"
	"testing"

	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

const pgEnv = "CONNKIT_TEST_POSTGRES_URL"

// pgDSN returns a DSN on a fresh schema of the test Postgres, or skips.
func pgDSN(t *testing.T) string { return pgtest.DSN(t, "connkit_cli_") }

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
