//go:build unix

package apisync_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/sqlstore"
)

const (
	crashRoleEnv = "CONNKIT_APISYNC_CRASH_CHILD"
	crashDSNEnv  = "CONNKIT_APISYNC_CRASH_DSN"
	crashURLEnv  = "CONNKIT_APISYNC_CRASH_URL"
)

func crashConfigs(t *testing.T, url string) []apisync.Config {
	return parseAll(t, crmEnv, crmConfig(url, "triggers: {on_create: true}\n"))
}

// TestCrashChild is the app process of TestCrashBetweenWriteAndPush: it writes a record
// (the on_create push is enqueued in the same transaction) and SIGKILLs itself right
// after the commit, before any process worked the job.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashRoleEnv) == "" {
		t.Skip("child process of TestCrashBetweenWriteAndPush")
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, os.Getenv(crashDSNEnv))
	require.NoError(t, err)
	s, err := apisync.Open(ctx, db, crashConfigs(t, os.Getenv(crashURLEnv)), apisync.WithQueueOptions())
	require.NoError(t, err)
	id, err := s.Create(ctx, "res.partner", apisync.Record{"name": "Crash", "customer_rank": 1, "active": true})
	require.NoError(t, err)
	fmt.Println("committed " + id)
	_ = os.Stdout.Sync()
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// A crash between the write and the push loses nothing: the record and its push job
// commit together; the next process to start pushes the record exactly once.
func TestCrashBetweenWriteAndPush(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process; skipped with -short")
	}
	t.Run("sqlite", func(t *testing.T) { crashBetweenWriteAndPush(t, "sqlite:"+filepath.Join(t.TempDir(), "app.db")) })
	t.Run("postgres", func(t *testing.T) { crashBetweenWriteAndPush(t, pgDSN(t)) })
}

func crashBetweenWriteAndPush(t *testing.T, dsn string) {
	ctx := context.Background()
	n := 0
	rc := newReceiver(t, func(_ int, r received) (int, string) {
		n++
		return 201, fmt.Sprintf(`{"id":"crm-%d"}`, n)
	})
	db, err := sqlstore.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	// This process creates the tables (River's too) before the child starts.
	s := openSync(t, db, crashConfigs(t, rc.URL))

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), crashRoleEnv+"=1", crashDSNEnv+"="+dsn, crashURLEnv+"="+rc.URL)
	outb, err := cmd.Output()
	out := string(outb)
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "child: %v; output:\n%s", err, out)
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "killed; output:\n%s", out)
	var id string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "committed "); ok {
			id = rest
		}
	}
	require.NotEmpty(t, id, "child output:\n%s", out)
	assert.Empty(t, rc.requests(), "nothing was sent before the crash")

	st, err := s.Records("res.partner")
	require.NoError(t, err)
	v, err := st.Get(ctx, id)
	require.NoError(t, err, "the record survived")
	assert.Equal(t, "Crash", v["name"])
	b, err := s.Backend("partners-to-crm")
	require.NoError(t, err)
	var jobs []queue.JobInfo
	for j, err := range b.Queue().ListJobs(ctx, queue.ListFilter{}) {
		require.NoError(t, err)
		jobs = append(jobs, j)
	}
	require.Len(t, jobs, 1, "the push job survived")
	assert.Equal(t, queue.StateAvailable, jobs[0].State)

	require.NoError(t, s.Start(ctx))
	waitFor(t, 20*time.Second, "the push after the restart", func() bool { return len(rc.requests()) >= 1 })
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, rc.requests(), 1, "pushed exactly once")
	bd, err := db.Bindings().GetByLocal(ctx, "partners-to-crm", "res.partner", id)
	require.NoError(t, err)
	assert.Equal(t, binding.StatusSuccess, bd.Status)
	assert.Equal(t, "crm-1", bd.ExternalID)
}
