package main

import (
	"strings"
	"testing"
)

func TestTopLevel(t *testing.T) {
	r := runIn(t, "").want(t, exitUsage)
	if r.stdout != "" || !strings.Contains(r.stderr, "Usage:\n  connkit <command>") {
		t.Fatalf("no arguments: stdout %q stderr %q", r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := runIn(t, "", args...).want(t, exitOK)
		for _, c := range commands {
			if !strings.Contains(r.stdout, "\n  "+c.name+" ") {
				t.Errorf("%v: help lacks %s:\n%s", args, c.name, r.stdout)
			}
		}
	}
	r = runIn(t, "", "frobnicate").want(t, exitUsage)
	if !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Fatalf("stderr = %q", r.stderr)
	}
	r = runIn(t, "", "help", "logs").want(t, exitOK)
	if !strings.HasPrefix(r.stdout, "Usage:\n  connkit logs") {
		t.Fatalf("help logs: %q", r.stdout)
	}
}

// TestEveryCommandHasHelp: --help prints the command's usage and flags to stdout and
// exits 0, before anything is opened.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, path := range [][]string{
		{"serve"}, {"push"}, {"validate"}, {"logs"},
		{"records"}, {"records", "list"}, {"records", "get"}, {"records", "import"}, {"records", "export"},
		{"bindings"}, {"bindings", "list"}, {"bindings", "retry"},
	} {
		for _, h := range []string{"--help", "-h"} {
			r := runIn(t, "", append(path, h)...)
			if r.code != exitOK || r.stderr != "" {
				t.Errorf("%v %s: exit %d, stderr %q", path, h, r.code, r.stderr)
				continue
			}
			if want := "Usage:\n  connkit " + strings.Join(path, " "); !strings.HasPrefix(r.stdout, want) {
				t.Errorf("%v %s: stdout does not start with %q:\n%s", path, h, want, r.stdout)
			}
			if len(path) == 2 || path[0] != "records" && path[0] != "bindings" {
				if !strings.Contains(r.stdout, "\nFlags:\n") {
					t.Errorf("%v: help lists no flags:\n%s", path, r.stdout)
				}
			}
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/x?sslmode=disable": "postgres://u:xxxxx@db:5432/x?sslmode=disable",
		"postgres://u@db/x":                             "postgres://u@db/x",
		"connkit.db":                                    "connkit.db",
		"postgres://db/x?password=a@b":                  "postgres://db/x?password=a@b",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":        "plain text",
		"héllo":             "héllo",
		"a\nb\tc":           `a\nb\tc`,
		"\x1b[31mred":       `\x1b[31mred`,
		"bad \xff byte":     `bad \xff byte`,
		"rtl \u202e switch": `rtl \u202e switch`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cleanBlock("a\nb\tc\x07"); got != "a\nb\tc\\a" {
		t.Errorf("cleanBlock = %q", got)
	}
}
