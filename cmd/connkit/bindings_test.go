package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/sqlstore"
)

// seedBindings stores four bindings: partner 1 success, partner 2 failed, partner 3
// pending, order 1 failed (IDs 1–4).
func seedBindings(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	ctx := t.Context()
	for _, b := range []binding.Binding{
		{Backend: "shop", Model: "partner", LocalID: "1", ExternalID: "p-1", Status: binding.StatusSuccess},
		{Backend: "shop", Model: "partner", LocalID: "2", Status: binding.StatusFailed, LastError: "exporting partner 2: 422 email missing", RetryCount: 2},
		{Backend: "shop", Model: "partner", LocalID: "3", Status: binding.StatusPending},
		{Backend: "crm", Model: "order", LocalID: "1", Status: binding.StatusFailed, LastError: "boom\x1b[2J", RetryCount: 1},
	} {
		if _, err := db.Bindings().Upsert(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Bindings().MarkSuccess(ctx, 1, binding.Success{}); err != nil {
		t.Fatal(err)
	}
}

func TestBindingsList(t *testing.T) {
	path, db := tempDB(t)
	seedBindings(t, db)
	for _, tc := range []struct {
		name string
		args []string
		want []string // local IDs as model/id
	}{
		{"all", nil, []string{"partner/1", "partner/2", "partner/3", "order/1"}},
		{"model", []string{"--model", "partner"}, []string{"partner/1", "partner/2", "partner/3"}},
		{"failed", []string{"--status", "failed"}, []string{"partner/2", "order/1"}},
		{"model and failed", []string{"--model", "partner", "--status", "failed"}, []string{"partner/2"}},
		{"statuses", []string{"--status", "pending, success"}, []string{"partner/1", "partner/3"}},
		{"backend", []string{"--backend", "crm"}, []string{"order/1"}},
		{"limit", []string{"--limit", "1"}, []string{"partner/1"}},
		{"none", []string{"--model", "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := runIn(t, "", append([]string{"bindings", "list", "--db", path, "--json"}, tc.args...)...).want(t, exitOK).jsonLines(t)
			var got []string
			for _, l := range lines {
				got = append(got, l["model"].(string)+"/"+l["local_id"].(string))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}

	lines := runIn(t, "", "bindings", "list", "--db", path, "--json").want(t, exitOK).jsonLines(t)
	if diff := cmp.Diff([]string{"backend", "external_id", "id", "last_error", "local_id", "model", "no_export", "retry_count", "status", "synced_at", "updated_at"},
		keys(lines[0])); diff != "" {
		t.Fatalf("keys of a synced binding (-want +got):\n%s", diff)
	}
	if _, ok := lines[1]["synced_at"]; ok {
		t.Fatalf("a never-synced binding has synced_at: %v", lines[1])
	}
	if lines[1]["status"] != "failed" || lines[1]["last_error"] != "exporting partner 2: 422 email missing" {
		t.Fatalf("line = %v", lines[1])
	}

	table := runIn(t, "", "bindings", "list", "--db", path).want(t, exitOK).stdout
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if len(rows) != 5 || !strings.HasPrefix(rows[0], "ID ") || !strings.Contains(rows[2], "422 email missing") {
		t.Fatalf("table:\n%s", table)
	}
	if strings.ContainsRune(table, '\x1b') || !strings.Contains(table, `boom\x1b[2J`) {
		t.Fatalf("an error text reaches the terminal unescaped:\n%q", table)
	}
	if r := runIn(t, "", "bindings", "list", "--db", path, "--model", "nope").want(t, exitOK); !strings.Contains(r.stderr, "no bindings match") {
		t.Fatalf("stderr = %q", r.stderr)
	}
}

func TestBindingsErrors(t *testing.T) {
	path, _ := tempDB(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"bindings"}, exitUsage, "bindings needs a subcommand"},
		{[]string{"bindings", "fix"}, exitUsage, `unknown bindings subcommand "fix"`},
		{[]string{"bindings", "list", "--db", path, "--status", "broken"}, exitUsage, `--status: unknown status "broken"`},
		{[]string{"bindings", "list", "--db", path, "--limit", "-2"}, exitUsage, `--limit must not be negative`},
		{[]string{"bindings", "list", "--db", path, "x"}, exitUsage, `unexpected argument "x"`},
	} {
		r := runIn(t, "", tc.args...).want(t, tc.code)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, r.stderr, tc.msg)
		}
	}
}
