package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/sqlstore"
)

// testNow is the clock in-process runs read (for "--since 1h").
var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// result is what one in-process run produced.
type result struct {
	code           int
	stdout, stderr string
}

// runIn runs the command in-process with stdin as its input.
func runIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCtx(t, t.Context(), stdin, args...)
}

func runCtx(t *testing.T, ctx context.Context, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, now: func() time.Time { return testNow }}
	code := e.main(ctx, args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	// A failure says so on stderr, on a line of its own starting with "connkit: " (other
	// lines may list problems as file:line: field: problem).
	if code != exitOK && !strings.HasPrefix(r.stderr, "connkit: ") && !strings.Contains(r.stderr, "\nconnkit: ") {
		t.Fatalf("stderr has no line starting with \"connkit: \":\n%s", r.stderr)
	}
	return r
}

// jsonLines decodes stdout as JSON lines.
func (r result) jsonLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("stdout line %q is not a JSON object: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// keys returns m's keys, sorted.
func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// tempDB returns the path of a fresh SQLite store and the store itself, open for seeding
// (closed at the end of the test).
func tempDB(t *testing.T) (string, *sqlstore.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "connkit.db")
	db, err := sqlstore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return path, db
}
