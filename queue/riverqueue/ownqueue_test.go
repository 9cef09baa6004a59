package riverqueue_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

type ownQueueArgs struct {
	ID string `json:"id"`
}

func (ownQueueArgs) Kind() string { return "riverqueue_test.own_queue" }

// TestIdentityKeyIsPerQueue: a job left waiting in a queue this client does not work
// (an earlier version's "default", another app's queue) does not swallow a new job with
// the same identity key: keys are unique within a queue.
func TestIdentityKeyIsPerQueue(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ran := make(chan string, 4)
	work := func(ctx context.Context, j *queue.Job[ownQueueArgs]) error { ran <- j.Queue; return nil }

	var before queue.Workers // no queue of its own: "default"
	queue.AddWorker(&before, work)
	q1, err := riverqueue.New(ctx, db, &before)
	if err != nil {
		t.Fatal(err)
	}
	const key = `b/export/partner/["42"]`
	left, err := q1.Enqueue(ctx, ownQueueArgs{"42"}, queue.WithIdentityKey(key))
	if err != nil || left.Queue != "default" {
		t.Fatalf("first job: %+v, %v", left, err)
	}

	var w queue.Workers
	if err := w.SetQueue("connkit-b"); err != nil {
		t.Fatal(err)
	}
	queue.AddWorker(&w, work)
	q2, err := riverqueue.New(ctx, db, &w, riverqueue.WithRiverConfig(func(c *river.Config) {
		c.TestOnly = true
		c.FetchPollInterval = 50 * time.Millisecond
	}))
	if err != nil {
		t.Fatal(err)
	}
	info, err := q2.Enqueue(ctx, ownQueueArgs{"42"}, queue.WithIdentityKey(key))
	if err != nil {
		t.Fatal(err)
	}
	if info.Duplicate || info.Queue != "connkit-b" {
		t.Fatalf("the new job is %+v: taken for the twin waiting in another queue", info)
	}
	again, err := q2.Enqueue(ctx, ownQueueArgs{"42"}, queue.WithIdentityKey(key))
	if err != nil || !again.Duplicate || again.ID != info.ID {
		t.Fatalf("the same key in the same queue: %+v, %v; want a duplicate of job %d", again, err, info.ID)
	}
	if err := q2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer q2.Stop(context.Background())
	select {
	case q := <-ran:
		if q != "connkit-b" {
			t.Errorf("ran a job of queue %q", q)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new job did not run")
	}
}
