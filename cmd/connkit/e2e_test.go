//go:build unix

package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests run the built binary, as a user or a script would.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/connkit once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "connkit-e2e-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "connkit")
		out, err := exec.Command(gobin, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		if errors.Is(buildErr, exec.ErrNotFound) {
			t.Skip("no go command to build the binary with")
		}
		t.Fatal(buildErr)
	}
	return binPath
}

// runBin runs the binary in dir with stdin and returns what it did.
func runBin(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestBinaryExitCodes: the process exit status means ok (0), failure (1) or usage (2).
func TestBinaryExitCodes(t *testing.T) {
	dir := t.TempDir()
	runBin(t, dir, "").want(t, exitUsage)
	runBin(t, dir, "", "nope").want(t, exitUsage)
	runBin(t, dir, "", "logs", "--nope").want(t, exitUsage)
	runBin(t, dir, "", "records", "list").want(t, exitUsage) // --model missing
	r := runBin(t, dir, "", "--help").want(t, exitOK)
	if !strings.Contains(r.stdout, "Commands:") {
		t.Fatalf("--help: %q", r.stdout)
	}
	r = runBin(t, dir, "", "records", "import", "--help").want(t, exitOK)
	if !strings.HasPrefix(r.stdout, "Usage:\n  connkit records import") {
		t.Fatalf("records import --help: %q", r.stdout)
	}
	runBin(t, dir, "[1]\n", "records", "import", "--model", "p").want(t, exitFailure)
	runBin(t, dir, "{\"a\":1}\n", "records", "import", "--model", "p").want(t, exitOK)
	// No setup: the default store was created in the working directory on first use.
	if _, err := os.Stat(filepath.Join(dir, defaultDB)); err != nil {
		t.Fatalf("default store: %v", err)
	}
	r = runBin(t, dir, "", "records", "export", "--model", "p").want(t, exitOK)
	if r.stdout != "{\"a\":1}\n" {
		t.Fatalf("export: %q", r.stdout)
	}
}

// TestBinaryServeStopsOnSignal: the built binary serves a request, and SIGINT or SIGTERM
// shut it down gracefully with exit status 0 (the store is left consistent: the record
// written before the signal is there).
func TestBinaryServeStopsOnSignal(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := configDir(t, map[string]string{"in.yaml": inConfig})
			work := t.TempDir()
			cmd := exec.Command(binary(t), "serve", "--config", dir, "--listen", "127.0.0.1:0")
			cmd.Dir = work
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var waitErr error
			go func() { waitErr = cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					cmd.Process.Kill()
					<-done
				}
			})
			base := waitServing(t, stderr.String, done)
			if status, body := send(t, "POST", base+"/api/partners", testKey, `{"name":"Ada"}`); status != http.StatusCreated {
				t.Fatalf("POST: %d %s", status, body)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("no exit after %v:\n%s", sig, stderr.String())
			}
			if waitErr != nil || cmd.ProcessState.ExitCode() != 0 {
				t.Fatalf("exit after %v: %v\nstderr:\n%s", sig, waitErr, stderr.String())
			}
			if s := stderr.String(); !strings.Contains(s, "connkit: shutting down\n") || !strings.HasSuffix(s, "connkit: stopped\n") {
				t.Fatalf("stderr:\n%s", s)
			}
			r := runBin(t, work, "", "records", "export", "--model", "partner").want(t, exitOK)
			if r.stdout != "{\"name\":\"Ada\"}\n" {
				t.Fatalf("records after the shutdown: %q", r.stdout)
			}
		})
	}
}

// TestBinaryPushAndValidate: push against an httptest receiver and validate of a bad
// config, through the built binary.
func TestBinaryPushAndValidate(t *testing.T) {
	rc := newReceiver(t)
	dir := configDir(t, map[string]string{"out.yaml": outConfig(rc.URL, "")})
	work := t.TempDir()
	runBin(t, work, threePartners, "records", "import", "--model", "partner").want(t, exitOK)
	r := runBin(t, work, "", "push", "--config", filepath.Join(dir, "out.yaml"), "--json").want(t, exitOK)
	if !strings.Contains(r.stdout, `"created":2`) || len(rc.requests()) != 2 {
		t.Fatalf("push: %s", r.stdout)
	}
	rc.setFail(func(string) bool { return true })
	runBin(t, work, `{"name":"Dee","active":true}`+"\n", "records", "import", "--model", "partner").want(t, exitOK)
	r = runBin(t, work, "", "push", "--config", filepath.Join(dir, "out.yaml")).want(t, exitFailure)
	if !strings.Contains(r.stderr, "connkit: record 4 (create)") {
		t.Fatalf("stderr: %s", r.stderr)
	}

	bad := configDir(t, map[string]string{"bad.yaml": "name: bad\ndirection: out\nmodel: p\nurl: https://x.example.com\nmethods: [POST]\nlines:\n  - {field: a, key: a, kind: plane}\n"})
	r = runBin(t, work, "", "validate", "--config", bad).want(t, exitFailure)
	if !strings.Contains(r.stderr, filepath.Join(bad, "bad.yaml")+":7: lines[0].kind: unknown kind \"plane\"") {
		t.Fatalf("validate: %s", r.stderr)
	}
}
