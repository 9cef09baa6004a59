//go:build unix

package riverqueue_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

const (
	outboxChildDSN  = "CONNKIT_RIVERQUEUE_OUTBOX_DSN"
	outboxChildMode = "CONNKIT_RIVERQUEUE_OUTBOX_MODE"
)

// TestOutboxChild is the app process of TestOutboxSurvivesKill: it writes
// order 7 and enqueues its export in one transaction, and SIGKILLs itself
// either just after the commit (before any process worked the job) or just
// before it. It does nothing unless started by that test.
func TestOutboxChild(t *testing.T) {
	dsn := os.Getenv(outboxChildDSN)
	if dsn == "" {
		t.Skip("started by TestOutboxSurvivesKill only")
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn, sqlstore.WithoutMigrate())
	if err != nil {
		t.Fatal(err)
	}
	var c exportCounter
	// Never started: this process only enqueues.
	q, err := riverqueue.New(ctx, db, c.workers(), riverqueue.WithoutMigrate())
	if err != nil {
		t.Fatal(err)
	}
	kill := func() {
		fmt.Println("outbox child: killing myself")
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal arrives
	}
	_, err = saveAndExport(ctx, db, q, 7, func(*sql.Tx) error {
		if os.Getenv(outboxChildMode) == "before-commit" {
			kill()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("outbox child: committed")
	kill()
}

// The process that wrote a record and enqueued its export is killed between
// the commit and the export: another process finds the job and exports the
// record exactly once (and the app's recovery sweep enqueueing the export
// again adds no second job). Killed before the commit, it leaves neither the
// record nor the job.
func TestOutboxSurvivesKill(t *testing.T) {
	if os.Getenv(outboxChildDSN) != "" {
		t.Skip("in the child")
	}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			for _, mode := range []string{"after-commit", "before-commit"} {
				t.Run(mode, func(t *testing.T) {
					var dsn string
					if dialect == "sqlite" {
						dsn = "sqlite:" + migratedSQLiteFile(t)
					} else {
						dsn = pgDSN(t)
					}
					db, err := sqlstore.Open(context.Background(), dsn)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = db.Close() })
					createOrders(t, db)
					var c exportCounter
					q := newOn(t, db, c.workers(), testOptions(t, queueConfig())...) // migrates

					cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxChild$", "-test.count=1", "-test.v")
					cmd.Env = append(os.Environ(), outboxChildDSN+"="+dsn, outboxChildMode+"="+mode)
					out, err := cmd.CombinedOutput()
					var exit *exec.ExitError
					if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
						t.Fatalf("child: %v, want killed by SIGKILL; output:\n%s", err, out)
					}
					if committed := strings.Contains(string(out), "outbox child: committed"); committed != (mode == "after-commit") {
						t.Fatalf("child output (mode %s):\n%s", mode, out)
					}
					ctx := context.Background()
					var jobs []queue.JobInfo
					for j, err := range q.ListJobs(ctx, queue.ListFilter{}) {
						if err != nil {
							t.Fatal(err)
						}
						jobs = append(jobs, j)
					}
					if mode == "before-commit" {
						if orderExists(t, db, 7) || len(jobs) != 0 {
							t.Fatalf("killed before commit: order exists %v, jobs %+v; want neither", orderExists(t, db, 7), jobs)
						}
						return
					}
					if !orderExists(t, db, 7) || len(jobs) != 1 || jobs[0].State != queue.StateAvailable {
						t.Fatalf("killed after commit: order exists %v, jobs %+v; want the order and one available job", orderExists(t, db, 7), jobs)
					}
					// The app's recovery sweep enqueues the export again: no second job.
					again, err := q.Enqueue(ctx, exportOrderArgs{OrderID: 7}, queue.WithIdentityKey(outboxKey(7)))
					if err != nil || !again.Duplicate || again.ID != jobs[0].ID {
						t.Fatalf("re-enqueue after the crash: %+v, %v; want a duplicate of job %d", again, err, jobs[0].ID)
					}
					if err := q.Start(ctx); err != nil {
						t.Fatal(err)
					}
					waitJob(t, q, jobs[0].ID, queue.StateCompleted)
					if n := c.count(7); n != 1 {
						t.Errorf("order 7 exported %d times, want once", n)
					}
				})
			}
		})
	}
}
