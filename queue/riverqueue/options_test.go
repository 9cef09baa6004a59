package riverqueue_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
)

func TestRescueOptionsRefused(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t, migratedSQLiteFile(t))
	rescue := func(d time.Duration) queue.Option {
		return riverqueue.WithRiverConfig(func(c *river.Config) { c.RescueStuckJobsAfter = d })
	}
	for name, opts := range map[string][]queue.Option{
		"negative":                     {rescue(-time.Second)},
		"shorter than default timeout": {rescue(time.Second)},
		"shorter than set timeout":     {queue.WithJobTimeout(time.Hour), rescue(time.Minute)},
		"without a job timeout":        {queue.WithJobTimeout(0), rescue(time.Hour)},
	} {
		_, err := riverqueue.New(ctx, db, &queue.Workers{}, opts...)
		if !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
	for name, opts := range map[string][]queue.Option{
		"equal to the timeout":    {queue.WithJobTimeout(time.Minute), rescue(time.Minute)},
		"longer than the timeout": {queue.WithJobTimeout(time.Second), rescue(time.Minute)},
	} {
		if _, err := riverqueue.New(ctx, db, &queue.Workers{}, opts...); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A process that hangs in a job (here: a queue that never maintains, whose
// worker ignores its context) loses the job to the rescuer of another
// process once WithRescueStuckJobsAfter has passed; that process runs it.
func TestStuckJobRescuedByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	path := migratedSQLiteFile(t)
	opts := func(extra ...queue.Option) []queue.Option {
		return append([]queue.Option{
			queue.WithBackoff(10*time.Millisecond, 10*time.Millisecond),
			queue.WithJobTimeout(100 * time.Millisecond),
			riverqueue.WithRiverConfig(func(c *river.Config) {
				c.TestOnly = true
				c.FetchPollInterval = 50 * time.Millisecond
				c.RescueStuckJobsAfter = 300 * time.Millisecond
			}),
		}, extra...)
	}

	release := make(chan struct{})
	wedged := make(chan int64, 1)
	hung := &queue.Workers{}
	queue.AddWorker(hung, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		wedged <- job.ID
		<-release // ignores ctx, like a process that froze
		return nil
	})
	// One worker slot, so A cannot take the job again once it is rescued.
	noMaintenance := riverqueue.WithRiverConfig(func(c *river.Config) { c.LeaderElectionDisabled = true })
	a, err := riverqueue.New(ctx, openSQLite(t, path), hung, opts(noMaintenance, queue.WithWorkers(1))...)
	if err != nil {
		t.Fatal(err)
	}
	info, err := a.Enqueue(ctx, echoArgs{Name: "stuck"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(release)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = a.Stop(sctx)
	})
	select {
	case <-wedged:
	case <-time.After(10 * time.Second):
		t.Fatal("process A did not take the job")
	}
	time.Sleep(400 * time.Millisecond) // past WithRescueStuckJobsAfter

	var ranByB atomic.Int32
	fine := &queue.Workers{}
	queue.AddWorker(fine, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		ranByB.Add(1)
		return nil
	})
	b, err := riverqueue.New(ctx, openSQLite(t, path), fine, opts()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = b.Stop(sctx)
	})
	// Rescued jobs wait for River's scheduler, which runs every 5 s.
	var got queue.JobInfo
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got, err = b.GetJob(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		if got.State == queue.StateCompleted {
			break
		}
	}
	if got.State != queue.StateCompleted || ranByB.Load() != 1 {
		t.Fatalf("stuck job: state %s, run %d times by B; want completed by B once (A must not maintain, B must rescue)", got.State, ranByB.Load())
	}
	if len(got.Errors) != 1 || !strings.Contains(got.Errors[0].Error, "rescued") || got.Attempt != 2 {
		t.Errorf("rescued job: attempt %d, errors %+v; want attempt 2 after one rescue", got.Attempt, got.Errors)
	}
}

// countInserts is a River insert middleware, added the way River recommends
// (Config.Middleware), as users of WithRiverConfig would.
type countInserts struct {
	river.MiddlewareDefaults
	n atomic.Int32
}

func (m *countInserts) InsertMany(ctx context.Context, many []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	m.n.Add(int32(len(many)))
	return doInner(ctx)
}

// User middleware set through WithRiverConfig, in either of River's two
// styles, works alongside this package's own insert middleware, which keeps
// short delays from waiting for River's 5 s scheduler.
func TestRiverConfigMiddlewareKept(t *testing.T) {
	ctx := context.Background()
	for name, tweak := range map[string]func(*river.Config, *countInserts){
		"Middleware":          func(c *river.Config, m *countInserts) { c.Middleware = append(c.Middleware, m) },
		"JobInsertMiddleware": func(c *river.Config, m *countInserts) { c.JobInsertMiddleware = append(c.JobInsertMiddleware, m) },
	} {
		t.Run(name, func(t *testing.T) {
			mw := &countInserts{}
			w := &queue.Workers{}
			queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error { return nil })
			q, err := riverqueue.New(ctx, openSQLite(t, migratedSQLiteFile(t)), w,
				riverqueue.WithRiverConfig(func(c *river.Config) { tweak(c, mw) }))
			if err != nil {
				t.Fatalf("New with user middleware: %v", err)
			}
			info, err := q.Enqueue(ctx, echoArgs{}, queue.WithDelay(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if mw.n.Load() != 1 {
				t.Errorf("user middleware saw %d inserts, want 1", mw.n.Load())
			}
			row, err := q.Client().JobGet(ctx, info.ID)
			if err != nil {
				t.Fatal(err)
			}
			if row.State != rivertype.JobStateAvailable || info.State != queue.StateScheduled {
				t.Errorf("job delayed 1s stored %s, reported %s; want stored available (due soon), reported scheduled", row.State, info.State)
			}
		})
	}
}
