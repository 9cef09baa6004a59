//go:build unix

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
