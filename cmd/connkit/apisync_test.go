package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Secrets of the test configs, set in the environment by configDir.
const (
	testToken = "tok-5ecret-8c1f22aa"  // the out config's bearer token
	testKey   = "key-5ecret-77d0e1b4f" // the in config's API key
)

// receiver is a fake external API: it records what it is sent and answers by fail.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recv
	fail func(body string) bool // answer 500 to these bodies
	n    int
}

type recv struct {
	Method, Path, Auth, Body string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, recv{r.Method, r.URL.Path, r.Header.Get("Authorization"), string(b)})
		rc.n++
		n, fail := rc.n, rc.fail
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if fail != nil && fail(string(b)) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"boom"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"ext-%d"}`, n)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []recv {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recv(nil), rc.reqs...)
}

func (rc *receiver) setFail(f func(string) bool) {
	rc.mu.Lock()
	rc.fail = f
	rc.mu.Unlock()
}

// outConfig is an outbound POST config pushing active partners to url.
func outConfig(url string, extra string) string {
	return `name: partners_out
direction: out
model: partner
url: ` + url + `/partners
methods: [POST]
auth: {type: bearer, token: "${CK_TEST_TOKEN}"}
retry: {max_attempts: 1}
filter: [[active, "=", true]]
lines:
  - {field: name, key: full_name, required: true}
  - {field: email, key: email}
` + extra
}

// inConfig is an inbound partner endpoint.
const inConfig = `name: partners_in
direction: in
model: partner
path: /api/partners
methods: [GET, POST]
auth: {type: api_key, in: header, name: X-API-Key, api_key: "${CK_TEST_KEY}"}
lines:
  - {field: name, key: name, required: true}
  - {field: email, key: email}
  - {field: active, key: active}
`

// configDir writes the files into a new directory and sets the secrets' variables.
func configDir(t *testing.T, files map[string]string) string {
	t.Helper()
	t.Setenv("CK_TEST_TOKEN", testToken)
	t.Setenv("CK_TEST_KEY", testKey)
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func noSecrets(t *testing.T, what string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, testToken) || strings.Contains(s, testKey) {
			t.Fatalf("%s prints a secret:\n%s", what, s)
		}
	}
}

const threePartners = `{"name":"Ada","email":"ada@example.com","active":true}
{"name":"Bob","email":"bob@example.com","active":true}
{"name":"Cy","email":"cy@example.com","active":false}
`

func TestValidate(t *testing.T) {
	dir := configDir(t, map[string]string{"out.yaml": outConfig("https://crm.example.com", ""), "in.yaml": inConfig})
	r := runIn(t, "", "validate", "--config", dir).want(t, exitOK)
	if !strings.Contains(r.stdout, "partners_out") || !strings.Contains(r.stdout, "https://crm.example.com/partners") ||
		!strings.Contains(r.stdout, "/api/partners") || !strings.Contains(r.stderr, "2 config(s) valid") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	lines := runIn(t, "", "validate", "--config", dir, "--json").want(t, exitOK).jsonLines(t)
	if len(lines) != 1 || lines[0]["valid"] != true || len(lines[0]["configs"].([]any)) != 2 || len(lines[0]["problems"].([]any)) != 0 {
		t.Fatalf("--json: %v", lines)
	}
	if diff := cmp.Diff([]string{"configs", "problems", "valid"}, keys(lines[0])); diff != "" {
		t.Fatal(diff)
	}
	c := lines[0]["configs"].([]any)[0].(map[string]any)
	if diff := cmp.Diff([]string{"direction", "file", "methods", "model", "name", "target"}, keys(c)); diff != "" {
		t.Fatal(diff)
	}
	noSecrets(t, "validate", r.stdout, r.stderr)
}

// TestValidateBadConfigs: every problem is on its own line and names the file, the line
// and the field; --json gives the same as objects; secrets from the environment stay out.
func TestValidateBadConfigs(t *testing.T) {
	dir := configDir(t, map[string]string{
		"a-unknown.yaml": "name: a\ndirection: out\nmodle: partner\n",
		"b-kind.yaml":    "name: b\ndirection: in\nmodel: p\npath: /b\nmethods: [GET]\nlines:\n  - {field: x, key: x, kind: weird}\n",
		"c-syntax.json":  "{\"name\": \"c\",",
		"d-secret.yaml":  "name: d\ndirection: out\nmodel: p\nurl: \"${CK_TEST_TOKEN}\"\nmethods: [POST]\nlines: [{field: x, key: x}]\n",
		"e-method.yaml":  "name: e\ndirection: out\nmodel: p\nurl: https://x.example.com/\nmethods: [FETCH]\nlines: [{field: x, key: x}]\n",
		"notes.txt":      "not a config",
	})
	r := runIn(t, "", "validate", "--config", dir).want(t, exitFailure)
	noSecrets(t, "validate", r.stdout, r.stderr)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`a-unknown\.yaml:3: modle: `),
		regexp.MustCompile(`b-kind\.yaml:7: lines\[0\]\.kind: unknown kind "weird"`),
		regexp.MustCompile(`c-syntax\.json: \(file\): is not valid JSON or YAML`),
		regexp.MustCompile(`d-secret\.yaml:4: url: must be an absolute http or https URL`),
		regexp.MustCompile(`e-method\.yaml:5: methods\[0\]: unknown method "FETCH"`),
	} {
		if !want.MatchString(r.stderr) {
			t.Errorf("stderr lacks %s:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "notes.txt") {
		t.Errorf("a non-config file was read:\n%s", r.stderr)
	}

	lines := runIn(t, "", "validate", "--config", dir, "--json").want(t, exitReported).jsonLines(t)
	ps := lines[0]["problems"].([]any)
	if lines[0]["valid"] != false || len(ps) < 5 {
		t.Fatalf("--json: %v", lines[0])
	}
	for _, p := range ps {
		p := p.(map[string]any)
		if diff := cmp.Diff([]string{"config", "field", "file", "line", "problem"}, keys(p)); diff != "" {
			t.Fatal(diff)
		}
		if !strings.HasPrefix(p["file"].(string), dir) || p["field"] == "" || p["problem"] == "" {
			t.Errorf("problem without file or field: %v", p)
		}
	}

	// One file.
	r = runIn(t, "", "validate", "--config", filepath.Join(dir, "b-kind.yaml")).want(t, exitFailure)
	if strings.Count(r.stderr, "\n") != 2 || !strings.Contains(r.stderr, "1 problem(s) in 1 config file(s)") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	runIn(t, "", "validate").want(t, exitUsage)
	r = runIn(t, "", "validate", "--config", filepath.Join(dir, "missing")).want(t, exitFailure)
	if !strings.Contains(r.stderr, "no such file") || !strings.HasSuffix(r.stderr, "connkit: 1 problem(s) loading the configs\n") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	r = runIn(t, "", "validate", "--config", t.TempDir()).want(t, exitFailure)
	if !strings.Contains(r.stderr, "no config files") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

// exitReported is the exit status of a failure already explained: the same as a failure.
const exitReported = exitFailure

func TestPush(t *testing.T) {
	rc := newReceiver(t)
	dir := configDir(t, map[string]string{"out.yaml": outConfig(rc.URL, "")})
	cfg := filepath.Join(dir, "out.yaml")
	db, _ := tempDB(t)
	runIn(t, threePartners, "records", "import", "--db", db, "--model", "partner").want(t, exitOK)

	r := runIn(t, "", "push", "--db", db, "--config", cfg, "--progress", "1").want(t, exitOK)
	if r.stdout != "pushed partners_out: 2 created, 0 updated, 0 skipped, 0 failed\n" {
		t.Fatalf("stdout = %q", r.stdout)
	}
	// Progress: one plain line per record, stderr not being a terminal.
	if !strings.Contains(r.stderr, "connkit: push partners_out: 1 record(s) sent, 0 failed\n") ||
		!strings.Contains(r.stderr, "connkit: push partners_out: 2 record(s) sent, 0 failed\n") || strings.Contains(r.stderr, "\r") {
		t.Fatalf("progress:\n%q", r.stderr)
	}
	reqs := rc.requests()
	slices.SortFunc(reqs, func(a, b recv) int { return strings.Compare(a.Body, b.Body) }) // sent concurrently
	if len(reqs) != 2 || reqs[0].Method != "POST" || reqs[0].Path != "/partners" || reqs[0].Auth != "Bearer "+testToken ||
		reqs[0].Body != `{"full_name":"Ada","email":"ada@example.com"}` {
		t.Fatalf("requests: %+v", reqs)
	}
	bs := runIn(t, "", "bindings", "list", "--db", db, "--json").want(t, exitOK).jsonLines(t)
	if len(bs) != 2 || bs[0]["backend"] != "partners_out" || bs[0]["status"] != "success" || !strings.HasPrefix(bs[0]["external_id"].(string), "ext-") {
		t.Fatalf("bindings: %v", bs)
	}
	logs := runIn(t, "", "logs", "--db", db, "--config", "partners_out", "--json").want(t, exitOK)
	if n := len(logs.jsonLines(t)); n != 2 {
		t.Fatalf("%d log entries, want 2:\n%s", n, logs.stdout)
	}
	full := runIn(t, "", "logs", "--db", db, "--id", "1").want(t, exitOK)
	if !strings.Contains(full.stdout, "Authorization: Bearer [REDACTED]") {
		t.Fatalf("logged request:\n%s", full.stdout)
	}
	noSecrets(t, "push and logs", r.stdout, r.stderr, logs.stdout, full.stdout)

	// Unchanged records are skipped; --json shape.
	lines := runIn(t, "", "push", "--db", db, "--config", cfg, "--json").want(t, exitOK).jsonLines(t)
	if len(lines) != 1 {
		t.Fatalf("--json: %d lines", len(lines))
	}
	if diff := cmp.Diff([]string{"config", "created", "dry_run", "error", "errors", "failed", "skipped", "updated"}, keys(lines[0])); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	if lines[0]["skipped"].(interface{ String() string }).String() != "2" || lines[0]["dry_run"] != false {
		t.Fatalf("second push: %v", lines[0])
	}
	if len(rc.requests()) != 2 {
		t.Fatalf("unchanged records were sent again")
	}
}

// TestPushFailureAndRetry: a record the API refuses fails the push (exit 1, the record
// named on stderr, its binding failed); `bindings retry --config` sends that record, and
// only it, again.
func TestPushFailureAndRetry(t *testing.T) {
	rc := newReceiver(t)
	rc.setFail(func(body string) bool { return strings.Contains(body, "Bob") })
	dir := configDir(t, map[string]string{"out.yaml": outConfig(rc.URL, "")})
	cfg := filepath.Join(dir, "out.yaml")
	db, _ := tempDB(t)
	runIn(t, threePartners+`{"email":"noname@example.com","active":true}`+"\n", "records", "import", "--db", db, "--model", "partner").want(t, exitOK)

	r := runIn(t, "", "push", "--db", db, "--config", cfg).want(t, exitFailure)
	if r.stdout != "pushed partners_out: 1 created, 0 updated, 0 skipped, 2 failed\n" {
		t.Fatalf("stdout = %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "connkit: record 2 (create): ") || !strings.Contains(r.stderr, "500") ||
		!strings.Contains(r.stderr, "connkit: record 4 (map): ") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	lines := runIn(t, "", "push", "--db", db, "--config", cfg, "--json").want(t, exitFailure).jsonLines(t)
	errs := lines[0]["errors"].([]any)
	if len(errs) != 2 || errs[0].(map[string]any)["local_id"] != "2" || errs[0].(map[string]any)["step"] != "create" {
		t.Fatalf("errors: %v", errs)
	}
	if diff := cmp.Diff([]string{"error", "external_id", "local_id", "step"}, keys(errs[0].(map[string]any))); diff != "" {
		t.Fatal(diff)
	}
	failed := runIn(t, "", "bindings", "list", "--db", db, "--status", "failed", "--json").want(t, exitOK).jsonLines(t)
	if len(failed) != 2 || failed[0]["local_id"] == failed[1]["local_id"] || failed[0]["local_id"] != "2" && failed[0]["local_id"] != "4" ||
		failed[1]["local_id"] != "2" && failed[1]["local_id"] != "4" {
		t.Fatalf("failed bindings: %v", failed)
	}

	// The API accepts Bob now: the retry sends the failed records only.
	rc.setFail(nil)
	before := len(rc.requests())
	r = runIn(t, "", "bindings", "retry", "--db", db, "--config", cfg).want(t, exitFailure) // record 4 still has no name
	after := rc.requests()[before:]
	if len(after) != 1 || !strings.Contains(after[0].Body, "Bob") {
		t.Fatalf("retry sent %+v", after)
	}
	if r.stdout != "pushed partners_out: 1 created, 0 updated, 0 skipped, 1 failed\n" || !strings.Contains(r.stderr, "record 4 (map)") {
		t.Fatalf("retry: stdout %q stderr %q", r.stdout, r.stderr)
	}
	// --id narrows the retry; a retry with nothing failed left to send succeeds.
	ok := runIn(t, "", "bindings", "list", "--db", db, "--status", "success", "--json").want(t, exitOK).jsonLines(t)
	if len(ok) != 2 {
		t.Fatalf("successful bindings: %v", ok)
	}
	okID := string(ok[0]["id"].(json.Number))
	r = runIn(t, "", "bindings", "retry", "--db", db, "--config", cfg, "--id", okID).want(t, exitOK)
	if !strings.Contains(r.stderr, "no failed records to retry") || len(rc.requests()) != before+1 {
		t.Fatalf("retry --id %s: %q", okID, r.stderr)
	}
}

func TestPushDryRun(t *testing.T) {
	rc := newReceiver(t)
	dir := configDir(t, map[string]string{"out.yaml": outConfig(rc.URL, "")})
	cfg := filepath.Join(dir, "out.yaml")
	db, _ := tempDB(t)
	runIn(t, threePartners, "records", "import", "--db", db, "--model", "partner").want(t, exitOK)

	r := runIn(t, "", "push", "--db", db, "--config", cfg, "--dry-run").want(t, exitOK)
	noSecrets(t, "push --dry-run", r.stdout, r.stderr)
	for _, s := range []string{
		"POST " + rc.URL + "/partners  (record 1)\n", "  Authorization: Bearer [REDACTED]\n",
		"  {\"full_name\":\"Ada\",\"email\":\"ada@example.com\"}\n", "(record 2)",
		"dry run of partners_out: 2 created, 0 updated, 0 skipped, 0 failed\n",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("dry run output lacks %q:\n%s", s, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Cy") {
		t.Errorf("the filter was not applied:\n%s", r.stdout)
	}
	// Nothing sent, nothing written.
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("a dry run sent %d requests", n)
	}
	if out := runIn(t, "", "bindings", "list", "--db", db, "--json").want(t, exitOK).stdout; out != "" {
		t.Fatalf("a dry run wrote bindings:\n%s", out)
	}
	if out := runIn(t, "", "logs", "--db", db, "--json").want(t, exitOK).stdout; out != "" {
		t.Fatalf("a dry run wrote the log:\n%s", out)
	}
	lines := runIn(t, "", "push", "--db", db, "--config", cfg, "--dry-run", "--json").want(t, exitOK).jsonLines(t)
	reqs, _ := lines[0]["requests"].([]any)
	if lines[0]["dry_run"] != true || len(reqs) != 2 {
		t.Fatalf("--dry-run --json: %v", lines[0])
	}
	if diff := cmp.Diff([]string{"body", "header", "method", "record", "url"}, keys(reqs[0].(map[string]any))); diff != "" {
		t.Fatal(diff)
	}

	// After a real push, a dry run shows updates of the changed records only.
	runIn(t, "", "push", "--db", db, "--config", cfg).want(t, exitOK)
	r = runIn(t, "", "push", "--db", db, "--config", cfg, "--dry-run").want(t, exitOK)
	if !strings.HasSuffix(r.stdout, "dry run of partners_out: 0 created, 0 updated, 2 skipped, 0 failed\n") {
		t.Fatalf("dry run after a push:\n%s", r.stdout)
	}
	if n := len(rc.requests()); n != 2 {
		t.Fatalf("receiver saw %d requests, want the real push's 2", n)
	}
	// A store that does not exist is not created: the dry run starts from an empty one.
	missing := filepath.Join(t.TempDir(), "none.db")
	r = runIn(t, "", "push", "--db", missing, "--config", cfg, "--dry-run").want(t, exitOK)
	if r.stdout != "dry run of partners_out: 0 created, 0 updated, 0 skipped, 0 failed\n" {
		t.Fatalf("dry run on a missing store: %q", r.stdout)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the dry run created the store: %v", err)
	}
	r = runIn(t, "", "push", "--db", ":memory:", "--config", cfg, "--dry-run").want(t, exitFailure)
	if !strings.Contains(r.stderr, "--dry-run: it works on a SQLite file store") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestPushErrors(t *testing.T) {
	second := strings.Replace(outConfig("https://b.example.com", ""), "name: partners_out", "name: other_out", 1)
	dir := configDir(t, map[string]string{"out.yaml": outConfig("https://a.example.com", ""), "b.yaml": second, "in.yaml": inConfig})
	db, _ := tempDB(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"push", "--db", db}, exitUsage, "--config is required"},
		{[]string{"push", "--db", db, "--config", dir}, exitUsage, "holds 2 outbound configs (other_out, partners_out): pick one with --name"},
		{[]string{"push", "--db", db, "--config", dir, "--name", "partners_in"}, exitFailure, `has no outbound config named "partners_in" (outbound configs: other_out, partners_out)`},
		{[]string{"push", "--db", db, "--config", filepath.Join(dir, "in.yaml")}, exitFailure, "has no outbound config"},
		{[]string{"push", "--db", db, "--config", dir, "--progress", "-1"}, exitUsage, "--progress must not be negative"},
		{[]string{"bindings", "retry", "--db", db, "--config", dir, "--name", "partners_out", "--model", "order"}, exitUsage, `config "partners_out" pushes model "partner"`},
		{[]string{"bindings", "retry", "--db", db, "--id", "x"}, exitUsage, `"x" is not a binding ID`},
		{[]string{"bindings", "retry", "--db", db}, exitUsage, "--model is required"},
	} {
		r := runIn(t, "", tc.args...).want(t, tc.code)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, r.stderr, tc.msg)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingRE = regexp.MustCompile(`serving \d+ inbound config\(s\) on (http://\S+)`)

// waitServing waits for serve's "serving … on URL" line and returns the URL.
func waitServing(t *testing.T, stderr func() string, done <-chan struct{}) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingRE.FindStringSubmatch(stderr()); m != nil {
			return m[1]
		}
		select {
		case <-done:
			t.Fatalf("serve ended before serving:\n%s", stderr())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start:\n%s", stderr())
	return ""
}

// served is a `connkit serve` running in the background until stop (its SIGINT).
type served struct {
	base           string // the URL it serves on
	stdout, stderr *syncBuffer
	stop           context.CancelFunc
	done           chan struct{}
	code           int // its exit code, once done is closed
}

// startServe runs `connkit serve --listen 127.0.0.1:0 args…` and waits until it serves.
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	s := &served{stdout: &syncBuffer{}, stderr: &syncBuffer{}, stop: stop, done: make(chan struct{})}
	e := &env{stdin: strings.NewReader(""), stdout: s.stdout, stderr: s.stderr, now: time.Now}
	go func() {
		defer close(s.done)
		s.code = e.main(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...))
	}()
	s.base = waitServing(t, s.stderr.String, s.done)
	return s
}

func send(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe: serve answers the inbound config, runs the on_create trigger of the
// outbound config in the background, and stops cleanly (exit 0) when its context ends.
func TestServe(t *testing.T) {
	rc := newReceiver(t)
	dir := configDir(t, map[string]string{
		"in.yaml":  inConfig,
		"out.yaml": outConfig(rc.URL, "triggers: {on_create: true}\n"),
	})
	db, _ := tempDB(t)
	srv := startServe(t, "--db", db, "--config", dir)
	base := srv.base

	status, body := send(t, "POST", base+"/api/partners", testKey, `{"name":"Ada","email":"ada@example.com","active":true}`)
	if status != http.StatusCreated {
		t.Fatalf("POST: %d %s", status, body)
	}
	if status, _ := send(t, "POST", base+"/api/partners", "wrong", `{"name":"Eve"}`); status != http.StatusUnauthorized {
		t.Fatalf("POST with a wrong key: %d", status)
	}
	if status, _ := send(t, "GET", base+"/nowhere", testKey, ""); status != http.StatusNotFound {
		t.Fatalf("GET of an unknown path: %d", status)
	}
	status, body = send(t, "GET", base+"/api/partners", testKey, "")
	if status != http.StatusOK || !strings.Contains(body, `"name":"Ada"`) {
		t.Fatalf("GET: %d %s", status, body)
	}
	// The on_create trigger pushes the new partner from the background queue.
	deadline := time.Now().Add(30 * time.Second)
	for len(rc.requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if reqs := rc.requests(); len(reqs) != 1 || !strings.Contains(reqs[0].Body, "Ada") {
		t.Fatalf("on_create push: %+v", reqs)
	}

	srv.stop()
	select {
	case <-srv.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if srv.code != exitOK || !strings.Contains(srv.stderr.String(), "connkit: stopped") {
		t.Fatalf("exit %d, stderr:\n%s", srv.code, srv.stderr.String())
	}
	noSecrets(t, "serve", srv.stderr.String(), srv.stdout.String())

	recs := runIn(t, "", "records", "list", "--db", db, "--model", "partner", "--json").want(t, exitOK).jsonLines(t)
	if len(recs) != 1 {
		t.Fatalf("records: %v", recs)
	}
	in := runIn(t, "", "logs", "--db", db, "--direction", "in", "--json").want(t, exitOK).jsonLines(t)
	if len(in) != 4 {
		t.Fatalf("inbound log entries: %v", in)
	}
	if ok := runIn(t, "", "logs", "--db", db, "--config", "partners_in", "--status", "ok", "--json").want(t, exitOK).jsonLines(t); len(ok) != 2 {
		t.Fatalf("successful entries of partners_in: %v", ok)
	}
}

func TestServeErrors(t *testing.T) {
	dir := configDir(t, map[string]string{"out.yaml": outConfig("https://a.example.com", "")})
	bad := configDir(t, map[string]string{"x.yaml": "name: x\n"})
	db, _ := tempDB(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"serve", "--db", db}, exitUsage, "--config is required"},
		{[]string{"serve", "--db", db, "--config", dir}, exitFailure, "nothing to serve"},
		{[]string{"serve", "--db", db, "--config", bad}, exitFailure, "x.yaml"},
		{[]string{"serve", "--db", db, "--config", dir, "--shutdown-timeout", "0s"}, exitUsage, "--shutdown-timeout must be positive"},
	} {
		r := runIn(t, "", tc.args...).want(t, tc.code)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, r.stderr, tc.msg)
		}
	}
	// An address in use is a failure, not a hang.
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	in := configDir(t, map[string]string{"in.yaml": inConfig})
	r := runIn(t, "", "serve", "--db", db, "--config", in, "--listen", ln.Addr().String()).want(t, exitFailure)
	if !strings.Contains(r.stderr, "listen on") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

// TestServeGracefulShutdown: a request in flight when the signal comes is answered in
// full before serve returns.
func TestServeGracefulShutdown(t *testing.T) {
	dir := configDir(t, map[string]string{"in.yaml": inConfig})
	db, _ := tempDB(t)
	srv := startServe(t, "--db", db, "--config", dir)
	base := srv.base

	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", base+"/api/partners", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- answer{status: resp.StatusCode, body: string(b)}
	}()
	if _, err := io.WriteString(pw, `{"name":`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the server read the headers: the connection is active
	srv.stop()
	for !strings.Contains(srv.stderr.String(), "shutting down") {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-srv.done:
		t.Fatal("serve returned with a request in flight")
	case <-time.After(100 * time.Millisecond):
	}
	io.WriteString(pw, `"Ada"}`)
	pw.Close()
	a := <-answered
	if a.err != nil || a.status != http.StatusCreated {
		t.Fatalf("the request in flight: %d %q %v", a.status, a.body, a.err)
	}
	<-srv.done
	if srv.code != exitOK {
		t.Fatalf("exit %d:\n%s", srv.code, srv.stderr.String())
	}
	if recs := runIn(t, "", "records", "export", "--db", db, "--model", "partner").want(t, exitOK).stdout; recs != "{\"name\":\"Ada\"}\n" {
		t.Fatalf("records: %q", recs)
	}
}

// TestPushInterrupted: a push whose context ends (SIGINT) stops, says so, and fails.
func TestPushInterrupted(t *testing.T) {
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a gone client once the body is read
		arrived <- struct{}{}
		select { // never answers: the client gives up when the push is interrupted
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	dir := configDir(t, map[string]string{"out.yaml": outConfig(srv.URL, "")})
	db, _ := tempDB(t)
	runIn(t, threePartners, "records", "import", "--db", db, "--model", "partner").want(t, exitOK)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	r := runCtx(t, ctx, "", "push", "--db", db, "--config", filepath.Join(dir, "out.yaml")).want(t, exitFailure)
	if !strings.Contains(r.stderr, "connkit: the push stopped: interrupted: ") {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
}

// TestServeEnablesSchedules: --enable-schedules enables the schedule triggers of the
// outbound configs, and the choice is kept in the store.
func TestServeEnablesSchedules(t *testing.T) {
	rc := newReceiver(t)
	dir := configDir(t, map[string]string{"in.yaml": inConfig, "out.yaml": outConfig(rc.URL, "triggers: {schedule: \"@every 1h\"}\n")})
	path, db := tempDB(t)
	srv := startServe(t, "--db", path, "--config", dir, "--enable-schedules")
	srv.stop()
	<-srv.done
	if srv.code != exitOK || !strings.Contains(srv.stderr.String(), `connkit: schedule of "partners_out" enabled (@every 1h)`) {
		t.Fatalf("exit %d:\n%s", srv.code, srv.stderr.String())
	}
	s, err := db.Schedules().Get(t.Context(), "partners_out/push")
	if err != nil || !s.Enabled {
		t.Fatalf("stored schedule: %+v, %v", s, err)
	}
}
