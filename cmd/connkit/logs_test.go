package main

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/synclog"
)

// seedLog stores five entries (IDs 1–5, one minute apart, the newest at testNow-1m) and
// returns the store's path.
func seedLog(t *testing.T) string {
	t.Helper()
	path, db := tempDB(t)
	base := testNow.Add(-5 * time.Minute)
	entries := []synclog.Entry{
		// An out config's export through the hub: the backend is the config, the operation the step.
		{Backend: "partners_out", Operation: "export", Direction: synclog.Outbound, Method: "POST", URL: "https://api.example.com/partners", Status: 201,
			RequestHeader: http.Header{"Authorization": {"Bearer [REDACTED]"}, "Content-Type": {"application/json"}},
			RequestBody:   `{"name":"Ada"}`, ResponseBody: `{"id":"p-1"}`, Model: "partner", Record: "1", Attempts: 1},
		// apisync's own sends: backend and operation are the config (listed once).
		{Backend: "partners_out", Operation: "partners_out", Direction: synclog.Outbound, Method: "POST", URL: "https://api.example.com/partners", Status: 422,
			ResponseBody: `{"error":"email missing"}`, Model: "partner", Record: "2", Attempts: 1},
		// Inbound: the backend is "apisync", the operation the config.
		{Backend: "apisync", Operation: "orders_in", Direction: synclog.Inbound, Method: "POST", URL: "/api/orders", Status: 200, Attempts: 1},
		{Backend: "partners_out", Operation: "export", Direction: synclog.Outbound, Method: "POST", URL: "https://api.example.com/partners",
			Error: "dial tcp: connection refused", Attempts: 3, Model: "partner", Record: "3"},
		{Backend: "apisync", Operation: "orders_in", Direction: synclog.Inbound, Method: "PUT", URL: "/api/orders/\x1b[31mred", Status: 404,
			ResponseBody: "line one\nline two \x1b]0;title\x07", Attempts: 1},
	}
	for i, e := range entries {
		e.Time = base.Add(time.Duration(i) * time.Minute)
		e.Duration = time.Duration(i+1) * 10 * time.Millisecond
		if err := db.Log().Record(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func ids(t *testing.T, lines []map[string]any) []int {
	t.Helper()
	var out []int
	for _, l := range lines {
		n, err := strconv.Atoi(string(l["id"].(json.Number)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestLogsFilters(t *testing.T) {
	db := seedLog(t)
	for _, tc := range []struct {
		name string
		args []string
		want []int
	}{
		{"all, newest first", nil, []int{5, 4, 3, 2, 1}},
		{"out config", []string{"--config", "partners_out"}, []int{4, 2, 1}},
		{"out config, failed", []string{"--config", "partners_out", "--status", "failed"}, []int{4, 2}},
		{"in config", []string{"--config", "orders_in"}, []int{5, 3}},
		{"backend", []string{"--backend", "apisync"}, []int{5, 3}},
		{"failed", []string{"--status", "failed"}, []int{5, 4, 2}},
		{"ok", []string{"--status", "ok"}, []int{3, 1}},
		{"ok with a limit counts kept entries", []string{"--status", "ok", "--limit", "1"}, []int{3}},
		{"code", []string{"--status", "422"}, []int{2}},
		{"class", []string{"--status", "4xx"}, []int{5, 2}},
		{"direction", []string{"--direction", "in"}, []int{5, 3}},
		{"since a duration ago", []string{"--since", "150s"}, []int{5, 4}},
		{"since and until", []string{"--since", testNow.Add(-4 * time.Minute).Format(time.RFC3339), "--until", testNow.Add(-2 * time.Minute).Format(time.RFC3339)}, []int{3, 2}},
		{"record", []string{"--model", "partner", "--record", "2"}, []int{2}},
		{"limit", []string{"--limit", "2"}, []int{5, 4}},
		{"none", []string{"--config", "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runIn(t, "", append([]string{"logs", "--db", db, "--json"}, tc.args...)...).want(t, exitOK)
			if diff := cmp.Diff(tc.want, ids(t, r.jsonLines(t))); diff != "" {
				t.Fatalf("IDs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogsJSONShape(t *testing.T) {
	db := seedLog(t)
	lines := runIn(t, "", "logs", "--db", db, "--json", "--config", "partners_out", "--status", "201").want(t, exitOK).jsonLines(t)
	if len(lines) != 1 {
		t.Fatalf("got %d lines", len(lines))
	}
	want := []string{"attempts", "backend", "direction", "duration_ms", "error", "id", "method", "model", "operation", "record", "status", "time", "truncated", "url"}
	if diff := cmp.Diff(want, keys(lines[0])); diff != "" {
		t.Fatalf("keys of a list line (-want +got):\n%s", diff)
	}
	l := lines[0]
	if l["time"] != testNow.Add(-5*time.Minute).Format(time.RFC3339Nano) || l["duration_ms"].(json.Number) != "10" || l["status"].(json.Number) != "201" {
		t.Fatalf("line = %v", l)
	}

	full := runIn(t, "", "logs", "--db", db, "--id", "1", "--json").want(t, exitOK).jsonLines(t)
	if len(full) != 1 {
		t.Fatalf("--id --json wrote %d lines, want one object", len(full))
	}
	want = append(want, "request_body", "request_header", "response_body", "response_header")
	if diff := cmp.Diff(len(want), len(keys(full[0]))); diff != "" {
		t.Fatalf("keys of --id: %v", keys(full[0]))
	}
	if full[0]["request_body"] != `{"name":"Ada"}` || full[0]["response_body"] != `{"id":"p-1"}` {
		t.Fatalf("bodies: %v", full[0])
	}
	h := full[0]["request_header"].(map[string]any)
	if h["Authorization"].([]any)[0] != "Bearer [REDACTED]" {
		t.Fatalf("request_header = %v", h)
	}
}

func TestLogsTable(t *testing.T) {
	db := seedLog(t)
	r := runIn(t, "", "logs", "--db", db).want(t, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], "5 ") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "dial tcp: connection refused") || !strings.Contains(r.stdout, "partners_out") {
		t.Fatalf("table lacks the error or the config:\n%s", r.stdout)
	}
	// A URL holding an escape sequence is printed escaped, not sent to the terminal.
	if strings.ContainsRune(r.stdout, '\x1b') || !strings.Contains(r.stdout, `/api/orders/\x1b[31mred`) {
		t.Fatalf("control characters reach the terminal:\n%q", r.stdout)
	}

	empty := runIn(t, "", "logs", "--db", db, "--config", "nope").want(t, exitOK)
	if !strings.Contains(empty.stderr, "no log entries match") {
		t.Fatalf("stderr = %q", empty.stderr)
	}
}

func TestLogsEntryInFull(t *testing.T) {
	db := seedLog(t)
	r := runIn(t, "", "logs", "--db", db, "--id", "1").want(t, exitOK)
	for _, s := range []string{"partners_out", "POST https://api.example.com/partners", "201",
		"Request headers:\n  Authorization: Bearer [REDACTED]\n  Content-Type: application/json",
		"Request body:\n  {\"name\":\"Ada\"}", "Response headers:\n  (none)", "Response body:\n  {\"id\":\"p-1\"}", "partner 1"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("entry lacks %q:\n%s", s, r.stdout)
		}
	}
	// Bodies keep their lines but lose escape sequences.
	r = runIn(t, "", "logs", "--db", db, "--id", "5").want(t, exitOK)
	if strings.ContainsAny(r.stdout, "\x1b\x07") || !strings.Contains(r.stdout, "  line one\n  line two \\x1b]0;title\\a") {
		t.Fatalf("body:\n%q", r.stdout)
	}
}

func TestLogsErrors(t *testing.T) {
	db := seedLog(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--id", "99"}, exitFailure, "no such log entry: 99"},
		{[]string{"--id", "-1"}, exitUsage, "--id must be positive"},
		{[]string{"--id", "1", "--status", "ok"}, exitUsage, "--id shows one entry: it takes no filter (--status)"},
		{[]string{"--status", "weird"}, exitUsage, `--status must be ok, failed`},
		{[]string{"--status", "700"}, exitUsage, `--status must be ok, failed`},
		{[]string{"--since", "yesterday"}, exitUsage, `--since: "yesterday" is not a time`},
		{[]string{"--since", "-1h"}, exitUsage, `must not be negative`},
		{[]string{"--since", "1h", "--until", "2h"}, exitUsage, `must be before --until`},
		{[]string{"--config", "a", "--backend", "b"}, exitUsage, "--config and --backend exclude each other"},
		{[]string{"--direction", "sideways"}, exitUsage, `--direction must be in or out`},
		{[]string{"--limit", "-1"}, exitUsage, `--limit must not be negative`},
		{[]string{"--nope"}, exitUsage, `unknown flag --nope`},
		{[]string{"--limit", "many"}, exitUsage, `invalid value "many" for flag --limit`},
		{[]string{"--limit"}, exitUsage, `flag needs a value: --limit`},
		{[]string{"extra"}, exitUsage, `unexpected argument "extra"`},
	} {
		r := runIn(t, "", append([]string{"logs", "--db", db}, tc.args...)...).want(t, tc.code)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, r.stderr, tc.msg)
		}
		if tc.code == exitUsage && !strings.Contains(r.stderr, "Run 'connkit logs --help'") {
			t.Errorf("%v: usage error without the help hint: %q", tc.args, r.stderr)
		}
	}
}

func TestFindEntryStopsOnQueryError(t *testing.T) {
	boom := errors.New("boom")
	_, err := findEntry(t.Context(), failingQuerier{boom}, 1)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

type failingQuerier struct{ err error }

func (q failingQuerier) Query(_ context.Context, _ synclog.Filter) iter.Seq2[synclog.Entry, error] {
	return func(yield func(synclog.Entry, error) bool) { yield(synclog.Entry{}, q.err) }
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-12-07T10:00:00Z":      time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		"2026-12-07T10:00:00+02:00": time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC),
		"2026-12-07":                time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC),
		"2026-12-07 10:30:00":       time.Date(2026, 12, 7, 10, 30, 0, 0, time.UTC),
		"90m":                       testNow.Add(-90 * time.Minute),
	} {
		got, err := parseTime(in, testNow)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "tomorrow", "2026-13-01", "-5m"} {
		if _, err := parseTime(in, testNow); err == nil {
			t.Errorf("parseTime(%q) succeeded", in)
		}
	}
}

// sliceQuerier answers queries from a newest-first slice, then fails with err if set. It
// filters on the fields queryLog sets (Backend, Operation); the tests set no others.
type sliceQuerier struct {
	entries []synclog.Entry
	err     error
}

func (q sliceQuerier) Query(_ context.Context, f synclog.Filter) iter.Seq2[synclog.Entry, error] {
	return func(yield func(synclog.Entry, error) bool) {
		for _, e := range q.entries {
			if (f.Backend != "" && e.Backend != f.Backend) || (f.Operation != "" && e.Operation != f.Operation) {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
		if q.err != nil {
			yield(synclog.Entry{}, q.err)
		}
	}
}

func TestMergeNewest(t *testing.T) {
	t0 := testNow
	es := []synclog.Entry{
		{ID: 6, Time: t0.Add(3 * time.Second), Backend: "c"},
		{ID: 9, Time: t0.Add(2 * time.Second), Operation: "c"},               // tie on time: higher ID first
		{ID: 5, Time: t0.Add(2 * time.Second), Backend: "c", Operation: "c"}, // in both lists: once
		{ID: 4, Time: t0.Add(time.Second), Backend: "other"},
		{ID: 3, Time: t0, Operation: "c"},
		{ID: 1, Time: t0, Backend: "c"},
	}
	var got []int64
	for e, err := range queryLog(t.Context(), sliceQuerier{entries: es}, synclog.Filter{}, "c") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.ID)
	}
	if diff := cmp.Diff([]int64{6, 9, 5, 3, 1}, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// An error of either list ends the merge with it.
	boom := errors.New("boom")
	var last error
	n := 0
	for _, err := range queryLog(t.Context(), sliceQuerier{entries: es[:2], err: boom}, synclog.Filter{}, "c") {
		n++
		last = err
	}
	if !errors.Is(last, boom) || n > 3 {
		t.Fatalf("merge with a failing list: %d items, last error %v", n, last)
	}
	// Stopping early stops both lists.
	for range queryLog(t.Context(), sliceQuerier{entries: es}, synclog.Filter{}, "c") {
		break
	}
}
