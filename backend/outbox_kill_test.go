//go:build unix

package backend_test

import (
	"context"
	"database/sql"
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

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/sqlstore"
)

// outboxChild is the app process of TestOutboxKillAtHub: in one transaction it writes a
// widget with the app's record store and defers its export with Later().ExportTx, then
// SIGKILLs itself just after the commit (before any process worked the job) or just
// before it.
func outboxChild(t *testing.T, db *sqlstore.DB, mode string) {
	ctx := context.Background()
	hub, widgets, err := newHub(db, os.Getenv(hubAPIEnv), "", false) // never started
	require.NoError(t, err)
	kill := func() {
		_ = os.Stdout.Sync()
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal arrives
	}
	var id string
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		id, err = widgets.WithTx(tx).Create(ctx, widget{Name: "outboxed", Price: 7})
		if err != nil {
			return err
		}
		if _, err := hub.Later().ExportTx(ctx, tx, "widget", id); err != nil {
			return err
		}
		if mode == "before-commit" {
			fmt.Println("dying before commit", id)
			kill()
		}
		return nil
	})
	require.NoError(t, err)
	fmt.Println("committed " + id)
	kill()
}

// The outbox at the hub (issue 10): a process writes a record and defers its export in one
// transaction and is killed between the commit and the export; another process starts the
// backend on the same database and exports the record exactly once. Killed before the
// commit, the process leaves neither the record nor the job, and nothing is exported. On
// a SQLite file, and on Postgres when CONNKIT_TEST_POSTGRES_URL is set.
func TestOutboxKillAtHub(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes; skipped with -short")
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			for _, mode := range []string{"after-commit", "before-commit"} {
				t.Run(mode, func(t *testing.T) { outboxKill(t, dialect, mode) })
			}
		})
	}
}

func outboxKill(t *testing.T, dialect, mode string) {
	ctx := context.Background()
	var dsn string
	if dialect == "sqlite" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "app.db")
	} else {
		dsn = pgSchemaDSN(t)
	}
	api := fakeapi.New()
	t.Cleanup(api.Close)
	db, err := sqlstore.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	// This process is the one that takes over: it creates the tables (River's too) before
	// the app process starts, and starts the backend once that process is dead.
	hub, widgets, err := newHub(db, api.URL, "", true)
	require.NoError(t, err)

	c := startChild(t, "outbox-"+mode, "app", dsn, api.URL)
	c.awaitEnd(t, 30*time.Second)
	err = c.cmd.Wait()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "child: %v; output:\n%s", err, c.output())
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "child killed by SIGKILL; output:\n%s", c.output())

	var jobs []queue.JobInfo
	for j, err := range hub.Queue().ListJobs(ctx, queue.ListFilter{}) {
		require.NoError(t, err)
		jobs = append(jobs, j)
	}
	var records int
	for _, err := range widgets.All(ctx) {
		require.NoError(t, err)
		records++
	}

	if mode == "before-commit" {
		require.Contains(t, c.output(), "dying before commit")
		assert.Zero(t, records, "a record rolled back by the crash")
		assert.Empty(t, jobs, "a job rolled back by the crash")
		// Started, the backend has nothing to export.
		require.NoError(t, hub.Start(ctx))
		stopHub(t, hub)
		assert.Zero(t, api.Stats().Requests, "nothing was sent")
		counts, err := db.Bindings().Counts(ctx, hubName, "widget")
		require.NoError(t, err)
		assert.Empty(t, counts)
		return
	}

	var id string
	for _, l := range strings.Split(c.output(), "\n") {
		if rest, ok := strings.CutPrefix(l, "committed "); ok {
			id = rest
		}
	}
	require.NotEmpty(t, id, "child output:\n%s", c.output())
	w, err := widgets.Get(ctx, id)
	require.NoError(t, err, "the committed record survived the crash")
	assert.Equal(t, "outboxed", w.Name)
	require.Len(t, jobs, 1, "the committed export job survived the crash: %+v", jobs)
	assert.Equal(t, "connkit.export", jobs[0].Kind)
	assert.Equal(t, queue.StateAvailable, jobs[0].State, "not worked by the dead process")
	assert.Zero(t, api.Stats().Requests, "nothing was sent before the takeover")

	// The app's recovery sweep defers the export again. An outboxed job has no identity
	// key (a twin found inside a transaction may run before it commits), so this is a
	// second job; the record is still created once.
	again, err := hub.Later().Export(ctx, "widget", id)
	require.NoError(t, err)
	assert.NotEqual(t, jobs[0].ID, again.ID)

	require.NoError(t, hub.Start(ctx))
	var got queue.JobInfo
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got, err = hub.Queue().GetJob(ctx, jobs[0].ID); err != nil || got.State == queue.StateCompleted {
			break
		}
	}
	require.NoError(t, err)
	require.Equal(t, queue.StateCompleted, got.State, "export job errors: %+v", got.Errors)
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got, err = hub.Queue().GetJob(ctx, again.ID); err != nil || got.State == queue.StateCompleted {
			break
		}
	}
	require.NoError(t, err)
	require.Equal(t, queue.StateCompleted, got.State, "second export job errors: %+v", got.Errors)
	stopHub(t, hub)

	assert.Equal(t, 1, api.Count("widgets"), "the record exists remotely")
	assert.Equal(t, 1, api.Stats().Creates, "created exactly once")
	bd, err := db.Bindings().GetByLocal(ctx, hubName, "widget", id)
	require.NoError(t, err)
	assert.Equal(t, binding.StatusSuccess, bd.Status)
	assert.NotEmpty(t, bd.ExternalID)
}

// stopHub stops a started backend, bounded.
func stopHub(t *testing.T, b interface{ Stop(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, b.Stop(ctx))
}
