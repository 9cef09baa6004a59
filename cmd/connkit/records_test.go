package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/sqlstore"
)

// partners starts with a byte order mark (skipped) and has a blank line and a CRLF line.
const partners = "\ufeff" + `{"email":"ada@example.com","name":"Ada","tags":["vip"],"big":12345678901234567890}

{"email":"bob@example.com","name":"Bob","note":"héllo"}` + "\r\n" + `{"email":"cy@example.com","name":"Cy"}
`

func TestRecordsImportListGetExport(t *testing.T) {
	db, _ := tempDB(t)
	r := runIn(t, partners, "records", "import", "--db", db, "--model", "res.partner").want(t, exitOK)
	if r.stdout != "imported 3 record(s) into model \"res.partner\"\n" {
		t.Fatalf("stdout = %q", r.stdout)
	}

	lines := runIn(t, "", "records", "list", "--db", db, "--model", "res.partner", "--json").want(t, exitOK).jsonLines(t)
	if len(lines) != 3 {
		t.Fatalf("list --json: %d lines", len(lines))
	}
	if diff := cmp.Diff([]string{"created_at", "data", "id", "updated_at", "version"}, keys(lines[0])); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	if lines[0]["id"] != "1" || lines[2]["id"] != "3" || lines[0]["version"].(json.Number) != "1" {
		t.Fatalf("lines = %v", lines)
	}
	// Big numbers keep every digit.
	if n := lines[0]["data"].(map[string]any)["big"].(json.Number); n != "12345678901234567890" {
		t.Fatalf("big = %s", n)
	}

	table := runIn(t, "", "records", "list", "--db", db, "--model", "res.partner", "--limit", "2").want(t, exitOK).stdout
	if rows := strings.Split(strings.TrimSpace(table), "\n"); len(rows) != 3 || !strings.Contains(rows[2], `"Bob"`) {
		t.Fatalf("table:\n%s", table)
	}

	got := runIn(t, "", "records", "get", "2", "--db", db, "--model", "res.partner").want(t, exitOK).stdout
	if got != "{\n  \"email\": \"bob@example.com\",\n  \"name\": \"Bob\",\n  \"note\": \"héllo\"\n}\n" {
		t.Fatalf("get:\n%s", got)
	}
	one := runIn(t, "", "records", "get", "--db", db, "--model", "res.partner", "--json", "3").want(t, exitOK).jsonLines(t)
	if len(one) != 1 || one[0]["id"] != "3" || one[0]["created_at"] == "" || one[0]["data"].(map[string]any)["name"] != "Cy" {
		t.Fatalf("get --json: %v", one)
	}

	// Export, then import the export into another model: the same records.
	out := filepath.Join(t.TempDir(), "partners.jsonl")
	runIn(t, "", "records", "export", "--db", db, "--model", "res.partner", "--file", out).want(t, exitOK)
	exported, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	stdout := runIn(t, "", "records", "export", "--db", db, "--model", "res.partner").want(t, exitOK).stdout
	if stdout != string(exported) || strings.Count(stdout, "\n") != 3 {
		t.Fatalf("export to stdout %q, to a file %q", stdout, exported)
	}
	runIn(t, "", "records", "import", "--db", db, "--model", "copy", "--file", out).want(t, exitOK)
	again := runIn(t, "", "records", "export", "--db", db, "--model", "copy").want(t, exitOK).stdout
	if again != stdout {
		t.Fatalf("round trip:\n%s\nvs\n%s", again, stdout)
	}
}

func TestRecordsImportIsAllOrNothing(t *testing.T) {
	db, _ := tempDB(t)
	for _, tc := range []struct {
		name, input, msg string
	}{
		{"invalid JSON", "{\"a\":1}\n{\"a\":\n", "stdin:2: not valid JSON"},
		{"an array", "{\"a\":1}\n\n[1,2]\n", "stdin:3: want a JSON object, got JSON"},
		{"a string", "\"x\"\n", "stdin:1: want a JSON object, got String"},
		{"two values on a line", "{\"a\":1} {\"b\":2}\n", "stdin:1: not valid JSON"},
		{"a line too long", "{\"a\":1}\n{\"s\":\"" + strings.Repeat("x", maxLine) + "\"}\n", "stdin:2: line is longer than 16 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runIn(t, tc.input, "records", "import", "--db", db, "--model", "p").want(t, exitFailure)
			if !strings.Contains(r.stderr, tc.msg) || !strings.Contains(r.stderr, "nothing was imported") {
				t.Fatalf("stderr = %q, want %q", cut(r.stderr, 200), tc.msg)
			}
			if out := runIn(t, "", "records", "export", "--db", db, "--model", "p").want(t, exitOK).stdout; out != "" {
				t.Fatalf("a failed import stored records:\n%s", out)
			}
		})
	}
}

func TestRecordsImportKey(t *testing.T) {
	db, _ := tempDB(t)
	in := "{\"sku\":\"A\",\"n\":1}\n{\"sku\":\"B\",\"n\":2}\n"
	r := runIn(t, in, "records", "import", "--db", db, "--model", "p", "--key", "sku", "--json").want(t, exitOK)
	if r.stdout != "{\"created\":2,\"existing\":0}\n" {
		t.Fatalf("first import: %q", r.stdout)
	}
	in += "{\"sku\":\"C\",\"n\":3}\n"
	r = runIn(t, in, "records", "import", "--db", db, "--model", "p", "--key", "sku").want(t, exitOK)
	if r.stdout != "imported 1 record(s) into model \"p\" (2 already there)\n" {
		t.Fatalf("second import: %q", r.stdout)
	}
	if n := len(runIn(t, "", "records", "list", "--db", db, "--model", "p", "--json").want(t, exitOK).jsonLines(t)); n != 3 {
		t.Fatalf("%d records, want 3", n)
	}
	for _, tc := range []struct{ input, msg string }{
		{"{\"sku\":\"D\"}\n{\"n\":5}\n", `stdin:2: the key field "sku" is missing`},
		{"{\"sku\":\"\"}\n", `stdin:1: the key field "sku" must be a non-empty string or a number, got ""`},
		{"{\"sku\":{\"x\":1}}\n", `must be a non-empty string or a number, got {"x":1}`},
	} {
		r := runIn(t, tc.input, "records", "import", "--db", db, "--model", "p", "--key", "sku").want(t, exitFailure)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("stderr = %q, want %q", r.stderr, tc.msg)
		}
	}
	if n := len(runIn(t, "", "records", "list", "--db", db, "--model", "p", "--json").want(t, exitOK).jsonLines(t)); n != 3 {
		t.Fatalf("%d records after failed imports, want 3", n)
	}
}

// TestRecordsCorruptRow: a row that does not decode is named on stderr, the others are
// still listed and exported, the exit status says something went wrong, and an export to
// a file leaves the previous file alone.
func TestRecordsCorruptRow(t *testing.T) {
	path, db := tempDB(t)
	runIn(t, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", "records", "import", "--db", path, "--model", "p").want(t, exitOK)
	s, err := sqlstore.Records[json.RawMessage](t.Context(), db, "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`UPDATE ` + s.Table() + ` SET data = '{broken' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, "", "records", "list", "--db", path, "--model", "p", "--json").want(t, exitFailure)
	if ids := r.jsonLines(t); len(ids) != 2 || ids[0]["id"] != "1" || ids[1]["id"] != "3" {
		t.Fatalf("listed %v", ids)
	}
	if !strings.Contains(r.stderr, `record 2 of model "p"`) || !strings.Contains(r.stderr, "1 record(s) of model \"p\" do not decode") {
		t.Fatalf("stderr = %q", r.stderr)
	}
	r = runIn(t, "", "records", "export", "--db", path, "--model", "p").want(t, exitFailure)
	if r.stdout != "{\"a\":1}\n{\"a\":3}\n" {
		t.Fatalf("export = %q", r.stdout)
	}
	file := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(file, []byte("previous\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runIn(t, "", "records", "export", "--db", path, "--model", "p", "--file", file).want(t, exitFailure)
	if b, _ := os.ReadFile(file); string(b) != "previous\n" {
		t.Fatalf("a failed export replaced the file: %q", b)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".connkit-export-*")); len(m) > 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestRecordsErrors(t *testing.T) {
	db, _ := tempDB(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"records"}, exitUsage, "records needs a subcommand"},
		{[]string{"records", "drop"}, exitUsage, `unknown records subcommand "drop"`},
		{[]string{"records", "list", "--db", db}, exitUsage, "--model is required"},
		{[]string{"records", "get", "--db", db, "--model", "p"}, exitUsage, "records get takes one record ID, got 0"},
		{[]string{"records", "get", "--db", db, "--model", "p", "1", "2"}, exitUsage, "records get takes one record ID, got 2"},
		{[]string{"records", "get", "--db", db, "--model", "p", "7"}, exitFailure, `record "7" of model "p" not found`},
		{[]string{"records", "get", "--db", db, "--model", "p", "--json", "7"}, exitFailure, `record "7" of model "p": not found`},
		{[]string{"records", "list", "--db", db, "--model", "a\x01b"}, exitFailure, `invalid model name`},
		{[]string{"records", "import", "--db", db, "--model", "p", "--file", "/nonexistent/x.jsonl"}, exitFailure, "no such file"},
		{[]string{"records", "import", "--db", db, "--model", "p", "x.jsonl"}, exitUsage, "use --file"},
		{[]string{"records", "list", "--db", filepath.Join(t.TempDir(), "no", "dir", "x.db"), "--model", "p"}, exitFailure, "open the store"},
	} {
		r := runIn(t, "", tc.args...).want(t, tc.code)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, r.stderr, tc.msg)
		}
	}
}
