// Package pgtest gives connkit's tests a Postgres schema of their own: the one way they
// reach the test database named by $CONNKIT_TEST_POSTGRES_URL, and skip without it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Env names the variable holding the test database's URL.
const Env = "CONNKIT_TEST_POSTGRES_URL"

// Schema creates a schema named prefix plus a random suffix in the test database, drops it
// (with everything in it) when the test ends, and returns the database URL and the
// schema's name. It skips the test when Env is unset.
func Schema(t testing.TB, prefix string) (base, schema string) {
	t.Helper()
	base = os.Getenv(Env)
	if base == "" {
		t.Skipf("Postgres tests need %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", Env)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema = prefix + hex.EncodeToString(rnd[:])
	exec(t, base, "CREATE SCHEMA "+schema, t.Fatalf)
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA "+schema+" CASCADE", t.Errorf) })
	return base, schema
}

// DSN returns a connkit DSN whose search_path is a fresh schema (see Schema).
func DSN(t testing.TB, prefix string) string {
	t.Helper()
	base, schema := Schema(t, prefix)
	return WithSearchPath(t, base, schema)
}

// WithSearchPath returns base with its search_path set to schema.
func WithSearchPath(t testing.TB, base, schema string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", Env, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func exec(t testing.TB, base, stmt string, fail func(string, ...any)) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		fail("connect to %s: %v", Env, err)
		return
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, stmt); err != nil {
		fail("%s: %v", stmt, err)
	}
}
