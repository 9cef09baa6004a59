// Package queuetest is the conformance suite every queue.Queue
// implementation passes, so the in-process pool and the River-backed queues
// behave the same way.
//
// An implementation's test calls Run with a factory:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T, w *queue.Workers, cfg queuetest.Config) queue.Queue {
//			workers := cfg.MaxWorkers
//			if workers == 0 {
//				workers = 4
//			}
//			return queue.NewPool(w, queue.WithWorkers(workers), queue.WithBackoff(10*time.Millisecond, 10*time.Millisecond))
//		})
//	}
//
// The factory must return a fresh, empty, not yet started queue that retries
// quickly (WithBackoff(10*time.Millisecond, 10*time.Millisecond)) and notices due jobs within a few hundred
// milliseconds. Run starts it and stops it at the end of each case.
package queuetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/queue"
)

// Config is what a case needs from the queue under test.
type Config struct {
	// MaxWorkers is how many jobs the default queue may run at once; 0 means
	// the implementation's choice (at least 2).
	MaxWorkers int
	// JobTimeout bounds each attempt; 0 means the implementation's default.
	JobTimeout time.Duration
}

// factory returns a fresh, not started queue running the workers in w.
type factory = func(t *testing.T, w *queue.Workers, cfg Config) queue.Queue

// waitTimeout bounds every wait; generous because database-backed queues
// poll and CI machines under -race can be slow. Passing cases never wait
// this long.
const waitTimeout = 30 * time.Second

// Run runs the conformance suite against the queues made by newQueue, which returns a
// fresh, not started queue running the workers in w.
func Run(t *testing.T, newQueue func(t *testing.T, w *queue.Workers, cfg Config) queue.Queue) {
	cases := []struct {
		name string
		fn   func(*testing.T, factory)
	}{
		{"RunsJobWithArgs", testRunsJobWithArgs},
		{"PriorityOrder", testPriorityOrder},
		{"DelayedJobNotEarly", testDelayedJobNotEarly},
		{"RetriedThenDiscarded", testRetriedThenDiscarded},
		{"PermanentCancels", testPermanentCancels},
		{"RetryAfterHonoured", testRetryAfterHonoured},
		{"IdentityKeyDedup", testIdentityKeyDedup},
		{"IdentityKeyDedupWhateverTheDelay", testIdentityKeyDedupDelays},
		{"RetryJobRunsDiscardedAgain", testRetryJobRunsDiscardedAgain},
		{"RetryJobKeepsIdentityKeyUnique", testRetryJobKeepsIdentityKeyUnique},
		{"CancelJob", testCancelJob},
		{"GracefulStopWaitsForRunningJobs", testGracefulStop},
		{"BadInputRefused", testBadInputRefused},
		{"ManyJobsExactlyOnce", testManyJobsExactlyOnce},
		{"ListJobsFilters", testListJobsFilters},
		{"JobTimeoutCancelsContext", testJobTimeout},
		{"WorkersQueueIsDefaultAndWorked", testWorkersQueue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newQueue) })
	}
}

// echoArgs is the argument type used by most cases.
type echoArgs struct {
	Name  string   `json:"name"`
	N     int      `json:"n"`
	Items []string `json:"items,omitempty"`
}

func (echoArgs) Kind() string { return "queuetest_echo" }

// otherArgs is a second kind.
type otherArgs struct {
	N int `json:"n"`
}

func (otherArgs) Kind() string { return "queuetest_other" }

type unregisteredArgs struct{}

func (unregisteredArgs) Kind() string { return "queuetest_unregistered" }

type funcArgs struct {
	F func() `json:"f"`
}

func (funcArgs) Kind() string { return "queuetest_echo" }

type notObjectArgs struct{}

func (notObjectArgs) Kind() string                 { return "queuetest_echo" }
func (notObjectArgs) MarshalJSON() ([]byte, error) { return []byte(`[1,2]`), nil }

type oneWayArgs struct{ V int }

func (oneWayArgs) Kind() string                 { return "queuetest_echo" }
func (oneWayArgs) MarshalJSON() ([]byte, error) { return []byte(`{"v":"text"}`), nil }
func (a *oneWayArgs) UnmarshalJSON(b []byte) error {
	var raw struct{ V int }
	return json.Unmarshal(b, &raw)
}

func start(t *testing.T, q queue.Queue) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitTimeout)
		defer scancel()
		if err := q.Stop(sctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		cancel()
	})
}

// waitState polls until job id reaches state and returns it.
func waitState(t *testing.T, q queue.Queue, id int64, want queue.State) queue.JobInfo {
	t.Helper()
	var last queue.JobInfo
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		info, err := q.GetJob(context.Background(), id)
		if err != nil {
			t.Fatalf("GetJob(%d): %v", id, err)
		}
		last = info
		if info.State == want {
			return info
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("job %d: state %q after %s, want %q (errors: %v)", id, last.State, waitTimeout, want, last.Errors)
	return last
}

// failedStates are the states of jobs that gave up.
var failedStates = []queue.State{queue.StateDiscarded, queue.StateCancelled}

func final(s queue.State) bool {
	return s == queue.StateCompleted || s == queue.StateDiscarded || s == queue.StateCancelled
}

// lastError is the error text of the latest failed attempt, or "".
func lastError(j queue.JobInfo) string {
	if len(j.Errors) == 0 {
		return ""
	}
	return j.Errors[len(j.Errors)-1].Error
}

func waitChan[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		var zero T
		return zero
	}
}

func enqueue(t *testing.T, q queue.Queue, args queue.Args, opts ...queue.EnqueueOption) queue.JobInfo {
	t.Helper()
	info, err := q.Enqueue(context.Background(), args, opts...)
	if err != nil {
		t.Fatalf("Enqueue(%T): %v", args, err)
	}
	return info
}

func testRunsJobWithArgs(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	got := make(chan *queue.Job[echoArgs], 1)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		got <- job
		return nil
	})
	q := newQueue(t, w, Config{})
	args := echoArgs{Name: "héllo", N: 42, Items: []string{"a", "b"}}
	info := enqueue(t, q, args, queue.WithPriority(3), queue.WithMaxAttempts(3))
	if info.ID == 0 || info.Kind != "queuetest_echo" || info.Duplicate {
		t.Fatalf("Enqueue returned %+v", info)
	}
	if info.State != queue.StateAvailable || info.Priority != 3 || info.MaxAttempts != 3 || info.Queue != "default" {
		t.Fatalf("Enqueue returned %+v, want available, priority 3, max attempts 3, default queue", info)
	}
	start(t, q)
	job := waitChan(t, got, "the job to run")
	if job.ID != info.ID || job.Kind != "queuetest_echo" || job.Attempt != 1 || job.MaxAttempts != 3 || job.Priority != 3 {
		t.Errorf("worker got job %+v", job)
	}
	if job.Args.Name != args.Name || job.Args.N != args.N || !slices.Equal(job.Args.Items, args.Items) {
		t.Errorf("worker got args %+v, want %+v", job.Args, args)
	}
	done := waitState(t, q, info.ID, queue.StateCompleted)
	if done.FinalizedAt.IsZero() || done.Attempt != 1 {
		t.Errorf("completed job: %+v", done)
	}
	var decoded echoArgs
	if err := json.Unmarshal(done.Args, &decoded); err != nil || decoded.Name != args.Name {
		t.Errorf("JobInfo.Args = %s (%v), want the encoded args", done.Args, err)
	}
}

// testWorkersQueue: with Workers.SetQueue, a job enqueued without a queue name goes to that
// queue, and the queue works it.
func testWorkersQueue(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	if err := w.SetQueue("Not Valid"); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("SetQueue with an invalid name: %v, want ErrInvalid", err)
	}
	if err := w.SetQueue("own-queue"); err != nil {
		t.Fatal(err)
	}
	got := make(chan *queue.Job[echoArgs], 1)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		got <- job
		return nil
	})
	q := newQueue(t, w, Config{})
	info := enqueue(t, q, echoArgs{Name: "own"})
	if info.Queue != "own-queue" {
		t.Fatalf("Enqueue without a queue name put the job in %q, want own-queue", info.Queue)
	}
	start(t, q)
	if job := waitChan(t, got, "the job to run"); job.Queue != "own-queue" {
		t.Errorf("job ran from queue %q, want own-queue", job.Queue)
	}
	waitState(t, q, info.ID, queue.StateCompleted)
}

func testPriorityOrder(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	var mu sync.Mutex
	var order []string
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		mu.Lock()
		order = append(order, job.Args.Name)
		mu.Unlock()
		return nil
	})
	q := newQueue(t, w, Config{MaxWorkers: 1})
	var ids []int64
	for _, e := range []struct {
		name string
		prio int
	}{{"p4", 4}, {"p2a", 2}, {"p3", 3}, {"p1", 1}, {"p2b", 2}} {
		ids = append(ids, enqueue(t, q, echoArgs{Name: e.name}, queue.WithPriority(e.prio)).ID)
	}
	start(t, q)
	for _, id := range ids {
		waitState(t, q, id, queue.StateCompleted)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"p1", "p2a", "p2b", "p3", "p4"}
	if !slices.Equal(order, want) {
		t.Errorf("run order %v, want %v (priority first, then enqueue order)", order, want)
	}
}

func testDelayedJobNotEarly(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	ran := make(chan time.Time, 2)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		ran <- time.Now()
		return nil
	})
	q := newQueue(t, w, Config{})
	start(t, q)
	const delay = 400 * time.Millisecond
	enqueuedAt := time.Now()
	delayed := enqueue(t, q, echoArgs{Name: "later"}, queue.WithDelay(delay))
	if delayed.State != queue.StateScheduled || delayed.ScheduledAt.Before(enqueuedAt.Add(delay-time.Millisecond)) {
		t.Fatalf("delayed job enqueued as %+v, want scheduled at enqueue time + %s", delayed, delay)
	}
	at := enqueue(t, q, echoArgs{Name: "at"}, queue.WithDelay(time.Until(time.Now().Add(time.Hour))))
	if at.State != queue.StateScheduled {
		t.Fatalf("run-at job enqueued as %q, want scheduled", at.State)
	}
	// An ETA already past (time.Until gives a negative delay) runs at once.
	past := enqueue(t, q, echoArgs{Name: "past"}, queue.WithDelay(time.Until(time.Now().Add(-time.Minute))))
	if past.State != queue.StateAvailable {
		t.Fatalf("job with a past ETA enqueued as %q, want available", past.State)
	}
	waitState(t, q, past.ID, queue.StateCompleted)
	<-ran
	ranAt := waitChan(t, ran, "the delayed job")
	// Lower bound only: a queue may run a job late but never early. 5ms of
	// slack covers millisecond clock precision in databases.
	if early := enqueuedAt.Add(delay).Sub(ranAt); early > 5*time.Millisecond {
		t.Errorf("delayed job ran %s before it was due", early)
	}
	waitState(t, q, delayed.ID, queue.StateCompleted)
	if info, _ := q.GetJob(context.Background(), at.ID); info.State != queue.StateScheduled {
		t.Errorf("job due in an hour is %q, want scheduled", info.State)
	}
}

func testRetriedThenDiscarded(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	var attempts atomic.Int32
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		attempts.Add(1)
		return fmt.Errorf("boom on attempt %d", job.Attempt)
	})
	q := newQueue(t, w, Config{})
	start(t, q)
	info := enqueue(t, q, echoArgs{Name: "fails"}, queue.WithMaxAttempts(3))
	got := waitState(t, q, info.ID, queue.StateDiscarded)
	if got.Attempt != 3 || attempts.Load() != 3 {
		t.Errorf("discarded after attempt %d (%d runs), want 3", got.Attempt, attempts.Load())
	}
	if len(got.Errors) != 3 || lastError(got) != "boom on attempt 3" || got.Errors[0].Attempt != 1 {
		t.Errorf("errors = %+v, want one per attempt", got.Errors)
	}
	failed := collect(t, q, queue.ListFilter{States: failedStates})
	if len(failed) != 1 || failed[0].ID != info.ID {
		t.Errorf("failed jobs = %v, want [%d]", ids(failed), info.ID)
	}
}

func testPermanentCancels(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	var attempts atomic.Int32
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		attempts.Add(1)
		return queue.Permanent(errors.New("record 7 does not exist upstream"))
	})
	q := newQueue(t, w, Config{})
	start(t, q)
	info := enqueue(t, q, echoArgs{Name: "perm"}, queue.WithMaxAttempts(5))
	got := waitState(t, q, info.ID, queue.StateCancelled)
	if got.Attempt != 1 || attempts.Load() != 1 {
		t.Errorf("cancelled after attempt %d (%d runs), want 1", got.Attempt, attempts.Load())
	}
	if len(got.Errors) != 1 || !strings.Contains(lastError(got), "record 7 does not exist upstream") {
		t.Errorf("errors = %+v, want the permanent error recorded", got.Errors)
	}
	failed := collect(t, q, queue.ListFilter{States: failedStates})
	if len(failed) != 1 || failed[0].ID != info.ID {
		t.Errorf("failed jobs = %v, want [%d]", ids(failed), info.ID)
	}
}

func testRetryAfterHonoured(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	const after = 400 * time.Millisecond
	var failedAt atomic.Int64
	second := make(chan time.Time, 1)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		if job.Attempt == 1 {
			failedAt.Store(time.Now().UnixNano())
			return queue.RetryAfter(after, errors.New("rate limited"))
		}
		second <- time.Now()
		return nil
	})
	q := newQueue(t, w, Config{})
	start(t, q)
	info := enqueue(t, q, echoArgs{Name: "slow down"}, queue.WithMaxAttempts(2))
	at := waitChan(t, second, "the second attempt")
	if gap := at.Sub(time.Unix(0, failedAt.Load())); gap < after-5*time.Millisecond {
		t.Errorf("second attempt %s after the first failed, want at least %s", gap, after)
	}
	got := waitState(t, q, info.ID, queue.StateCompleted)
	if got.Attempt != 2 || len(got.Errors) != 1 || !strings.Contains(lastError(got), "rate limited") {
		t.Errorf("job after RetryAfter: attempt %d, errors %+v; want attempt 2 with the first error kept", got.Attempt, got.Errors)
	}
}

func testIdentityKeyDedup(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	ran := make(chan string, 4)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		ran <- job.Args.Name
		return nil
	})
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[otherArgs]) error { return nil })
	q := newQueue(t, w, Config{})
	first := enqueue(t, q, echoArgs{Name: "first"}, queue.WithIdentityKey("order:1"), queue.WithDelay(time.Hour))
	if first.Duplicate || first.IdentityKey != "order:1" {
		t.Fatalf("first enqueue: %+v", first)
	}
	dup := enqueue(t, q, echoArgs{Name: "second"}, queue.WithIdentityKey("order:1"))
	if !dup.Duplicate || dup.ID != first.ID || dup.State != queue.StateScheduled {
		t.Fatalf("same key: got %+v, want duplicate of job %d", dup, first.ID)
	}
	dupOtherKind := enqueue(t, q, otherArgs{N: 1}, queue.WithIdentityKey("order:1"))
	if !dupOtherKind.Duplicate || dupOtherKind.ID != first.ID {
		t.Fatalf("same key, other kind: got %+v, want duplicate of job %d (keys are global)", dupOtherKind, first.ID)
	}
	other := enqueue(t, q, echoArgs{Name: "other"}, queue.WithIdentityKey("order:2"))
	if other.Duplicate || other.ID == first.ID {
		t.Fatalf("other key: got %+v, want a new job", other)
	}
	if _, err := q.CancelJob(context.Background(), first.ID); err != nil {
		t.Fatalf("CancelJob: %v", err)
	}
	again := enqueue(t, q, echoArgs{Name: "again"}, queue.WithIdentityKey("order:1"))
	if again.Duplicate || again.ID == first.ID {
		t.Fatalf("same key after the first was cancelled: got %+v, want a new job", again)
	}
	start(t, q)
	waitState(t, q, again.ID, queue.StateCompleted)
	waitState(t, q, other.ID, queue.StateCompleted)
	afterDone := enqueue(t, q, echoArgs{Name: "after done"}, queue.WithIdentityKey("order:1"))
	if afterDone.Duplicate {
		t.Fatalf("same key after the job completed: got a duplicate, want a new job")
	}
	waitState(t, q, afterDone.ID, queue.StateCompleted)
	if got, _ := q.GetJob(context.Background(), again.ID); got.IdentityKey != "order:1" {
		t.Errorf("IdentityKey = %q, want order:1", got.IdentityKey)
	}
}

// An identity key dedups whatever the delay of either job: an available job
// keeps out a delayed or run-at one, a job delayed by a few seconds (which
// River stores as available) or by an hour keeps out an immediate one, and
// a running job keeps out another. Each key's job runs once.
func testIdentityKeyDedupDelays(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	var mu sync.Mutex
	runs := map[string]int{}
	release := make(chan struct{})
	running := make(chan struct{}, 1)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		mu.Lock()
		runs[job.IdentityKey]++
		mu.Unlock()
		if job.Args.Name == "blocks" {
			running <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	q := newQueue(t, w, Config{})
	cases := []struct {
		key          string
		first, again []queue.EnqueueOption
		state        queue.State
	}{
		{"now-then-delay", nil, []queue.EnqueueOption{queue.WithDelay(time.Hour)}, queue.StateAvailable},
		{"now-then-past-eta", nil, []queue.EnqueueOption{queue.WithDelay(-time.Hour)}, queue.StateAvailable},
		{"soon-then-now", []queue.EnqueueOption{queue.WithDelay(2 * time.Second)}, nil, queue.StateScheduled},
		{"hour-then-now", []queue.EnqueueOption{queue.WithDelay(time.Hour)}, nil, queue.StateScheduled},
		{"hour-then-minute", []queue.EnqueueOption{queue.WithDelay(time.Hour)}, []queue.EnqueueOption{queue.WithDelay(time.Minute)}, queue.StateScheduled},
	}
	firsts := map[string]queue.JobInfo{}
	for _, c := range cases {
		first := enqueue(t, q, echoArgs{Name: c.key}, append(c.first, queue.WithIdentityKey(c.key))...)
		dup := enqueue(t, q, echoArgs{Name: c.key + " again"}, append(c.again, queue.WithIdentityKey(c.key))...)
		if first.Duplicate || !dup.Duplicate || dup.ID != first.ID || dup.State != c.state {
			t.Errorf("%s: first %+v, second %+v; want the second a duplicate of the first, %s", c.key, first, dup, c.state)
		}
		firsts[c.key] = first
	}
	blocking := enqueue(t, q, echoArgs{Name: "blocks"}, queue.WithIdentityKey("running"))
	start(t, q)
	waitChan(t, running, "the blocking job to start")
	if dup := enqueue(t, q, echoArgs{Name: "blocks"}, queue.WithIdentityKey("running"), queue.WithDelay(time.Millisecond)); !dup.Duplicate || dup.ID != blocking.ID || dup.State != queue.StateRunning {
		t.Errorf("same key as a running job: %+v, want a duplicate of job %d, running", dup, blocking.ID)
	}
	close(release)
	waitState(t, q, blocking.ID, queue.StateCompleted)
	for _, key := range []string{"now-then-delay", "now-then-past-eta", "soon-then-now"} {
		waitState(t, q, firsts[key].ID, queue.StateCompleted)
	}
	jobs := collect(t, q, queue.ListFilter{})
	if len(jobs) != len(cases)+1 {
		t.Errorf("%d jobs stored, want %d: %v", len(jobs), len(cases)+1, ids(jobs))
	}
	mu.Lock()
	defer mu.Unlock()
	for key, n := range runs {
		if n != 1 {
			t.Errorf("job with key %q ran %d times, want once", key, n)
		}
	}
	if len(runs) != 4 {
		t.Errorf("keys run: %v, want the three due jobs and the blocking one", runs)
	}
}

func testRetryJobRunsDiscardedAgain(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	var fail atomic.Bool
	fail.Store(true)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		if fail.Load() {
			return errors.New("upstream down")
		}
		return nil
	})
	q := newQueue(t, w, Config{})
	start(t, q)
	info := enqueue(t, q, echoArgs{Name: "retry me"}, queue.WithMaxAttempts(1))
	waitState(t, q, info.ID, queue.StateDiscarded)
	fail.Store(false)
	retried, err := q.RetryJob(context.Background(), info.ID)
	if err != nil {
		t.Fatalf("RetryJob: %v", err)
	}
	if final(retried.State) {
		t.Errorf("RetryJob returned state %q, want a pending state", retried.State)
	}
	got := waitState(t, q, info.ID, queue.StateCompleted)
	if got.Attempt != 2 {
		t.Errorf("attempt after retry = %d, want 2", got.Attempt)
	}
	if _, err := q.RetryJob(context.Background(), 1<<40); !errors.Is(err, queue.ErrJobNotFound) {
		t.Errorf("RetryJob(unknown) error = %v, want ErrJobNotFound", err)
	}
}

// RetryJob must not bring back a job whose identity key another pending
// job now holds: that would run two jobs the key was meant to keep apart.
func testRetryJobKeepsIdentityKeyUnique(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error { return nil })
	q := newQueue(t, w, Config{})
	ctx := context.Background()
	first := enqueue(t, q, echoArgs{Name: "first"}, queue.WithIdentityKey("sync:42"), queue.WithDelay(time.Hour))
	if _, err := q.CancelJob(ctx, first.ID); err != nil {
		t.Fatalf("CancelJob: %v", err)
	}
	second := enqueue(t, q, echoArgs{Name: "second"}, queue.WithIdentityKey("sync:42"), queue.WithDelay(time.Hour))
	if second.Duplicate {
		t.Fatalf("key free again after cancel, got a duplicate: %+v", second)
	}
	if _, err := q.RetryJob(ctx, first.ID); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("RetryJob of a job whose key is held by job %d: %v, want ErrInvalid", second.ID, err)
	}
	if got, err := q.GetJob(ctx, first.ID); err != nil || got.State != queue.StateCancelled {
		t.Errorf("refused retry changed the job: %+v, %v", got, err)
	}
	if dup := enqueue(t, q, echoArgs{Name: "third"}, queue.WithIdentityKey("sync:42")); !dup.Duplicate || dup.ID != second.ID {
		t.Errorf("key holder after the refused retry: %+v, want job %d", dup, second.ID)
	}
	// Once the holder is gone, the retry is allowed.
	if _, err := q.CancelJob(ctx, second.ID); err != nil {
		t.Fatalf("CancelJob: %v", err)
	}
	if got, err := q.RetryJob(ctx, first.ID); err != nil || final(got.State) {
		t.Errorf("RetryJob with the key free: %+v, %v; want pending", got, err)
	}
}

func testCancelJob(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	ran := make(chan string, 2)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		ran <- job.Args.Name
		return nil
	})
	q := newQueue(t, w, Config{MaxWorkers: 1})
	info := enqueue(t, q, echoArgs{Name: "never"}, queue.WithDelay(time.Hour))
	soon := enqueue(t, q, echoArgs{Name: "never soon"}, queue.WithDelay(50*time.Millisecond))
	for _, id := range []int64{info.ID, soon.ID} {
		got, err := q.CancelJob(context.Background(), id)
		if err != nil || got.State != queue.StateCancelled {
			t.Fatalf("CancelJob(%d) = %+v, %v; want cancelled", id, got, err)
		}
	}
	// Jobs run one at a time in order of due time: once a job enqueued
	// after the cancelled one came due has run, the cancelled one would have.
	start(t, q)
	time.Sleep(100 * time.Millisecond)
	after := enqueue(t, q, echoArgs{Name: "after"})
	waitState(t, q, after.ID, queue.StateCompleted)
	if name := <-ran; name != "after" {
		t.Errorf("cancelled job %q ran", name)
	}
	if got, _ := q.GetJob(context.Background(), soon.ID); got.State != queue.StateCancelled || got.Attempt != 0 {
		t.Errorf("cancelled job now %+v, want cancelled, never attempted", got)
	}
	if _, err := q.CancelJob(context.Background(), 1<<40); !errors.Is(err, queue.ErrJobNotFound) {
		t.Errorf("CancelJob(unknown) error = %v, want ErrJobNotFound", err)
	}
	if _, err := q.GetJob(context.Background(), 1<<40); !errors.Is(err, queue.ErrJobNotFound) {
		t.Errorf("GetJob(unknown) error = %v, want ErrJobNotFound", err)
	}
}

func testGracefulStop(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	started := make(chan struct{})
	release := make(chan struct{})
	var sawCancel atomic.Bool
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
			sawCancel.Store(true)
		}
		return nil
	})
	q := newQueue(t, w, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := q.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	info := enqueue(t, q, echoArgs{Name: "long"})
	waitChan(t, started, "the job to start")
	stopped := make(chan error, 1)
	go func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitTimeout)
		defer scancel()
		stopped <- q.Stop(sctx)
	}()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a job was still running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := waitChan(t, stopped, "Stop to return"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if sawCancel.Load() {
		t.Errorf("graceful Stop cancelled the running job's context")
	}
	if got, err := q.GetJob(context.Background(), info.ID); err != nil || got.State != queue.StateCompleted {
		t.Errorf("job after Stop: %+v, %v; want completed", got, err)
	}
}

func testBadInputRefused(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error { return nil })
	q := newQueue(t, w, Config{})
	ctx := context.Background()
	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", what, err, want)
		}
	}
	_, err := q.Enqueue(ctx, unregisteredArgs{})
	check("unknown kind", err, queue.ErrUnknownKind)
	if err != nil && !strings.Contains(err.Error(), "queuetest_unregistered") {
		t.Errorf("unknown kind error %q does not name the kind", err)
	}
	_, err = q.Enqueue(ctx, funcArgs{F: func() {}})
	check("args with a func field", err, queue.ErrInvalid)
	_, err = q.Enqueue(ctx, notObjectArgs{})
	check("args that encode to an array", err, queue.ErrInvalid)
	_, err = q.Enqueue(ctx, oneWayArgs{V: 1})
	check("args that do not decode back", err, queue.ErrInvalid)
	_, err = q.Enqueue(ctx, nil)
	check("nil args", err, queue.ErrInvalid)
	_, err = q.Enqueue(ctx, echoArgs{}, queue.WithPriority(0))
	check("priority 0", err, queue.ErrInvalid)
	_, err = q.Enqueue(ctx, echoArgs{}, queue.WithPriority(5))
	check("priority 5", err, queue.ErrInvalid)
	_, err = q.Enqueue(ctx, echoArgs{}, queue.WithMaxAttempts(0))
	check("max attempts 0", err, queue.ErrInvalid)
	_, err = q.Enqueue(ctx, echoArgs{}, queue.WithQueueName("Bad Name!"))
	check("bad queue name", err, queue.ErrInvalid)
	if jobs := collect(t, q, queue.ListFilter{}); len(jobs) != 0 {
		t.Errorf("refused enqueues stored jobs: %v", ids(jobs))
	}
}

func testManyJobsExactlyOnce(t *testing.T, newQueue factory) {
	const n = 200
	w := &queue.Workers{}
	var mu sync.Mutex
	runs := map[int]int{}
	var done sync.WaitGroup
	done.Add(n)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		mu.Lock()
		runs[job.Args.N]++
		first := runs[job.Args.N] == 1
		mu.Unlock()
		if first {
			done.Done()
		}
		return nil
	})
	q := newQueue(t, w, Config{MaxWorkers: 4})
	start(t, q)
	for i := range n {
		enqueue(t, q, echoArgs{N: i}, queue.WithPriority(1+i%4))
	}
	allRan := make(chan struct{})
	go func() { done.Wait(); close(allRan) }()
	select {
	case <-allRan:
	case <-time.After(4 * waitTimeout): // SQLite under -race runs ~20 jobs/s
		t.Fatalf("timed out waiting for %d jobs to run", n)
	}
	deadline := time.Now().Add(2 * waitTimeout)
	for {
		completed := collect(t, q, queue.ListFilter{States: []queue.State{queue.StateCompleted}})
		if len(completed) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs completed", len(completed), n)
		}
		time.Sleep(100 * time.Millisecond) // listing 200 jobs is not free on SQLite
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		if runs[i] != 1 {
			t.Errorf("job %d ran %d times, want exactly once", i, runs[i])
		}
	}
}

func testListJobsFilters(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error { return nil })
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[otherArgs]) error { return nil })
	q := newQueue(t, w, Config{})
	var echoIDs []int64
	for i := range 5 {
		echoIDs = append(echoIDs, enqueue(t, q, echoArgs{N: i}, queue.WithDelay(time.Hour)).ID)
	}
	otherID := enqueue(t, q, otherArgs{N: 1}, queue.WithDelay(time.Hour)).ID
	if got := ids(collect(t, q, queue.ListFilter{Kinds: []string{"queuetest_echo"}})); !slices.Equal(got, echoIDs) {
		t.Errorf("by kind: %v, want %v", got, echoIDs)
	}
	if got := ids(collect(t, q, queue.ListFilter{Kinds: []string{"queuetest_other"}, States: []queue.State{queue.StateScheduled}})); !slices.Equal(got, []int64{otherID}) {
		t.Errorf("by kind and state: %v, want [%d]", got, otherID)
	}
	if got := ids(collect(t, q, queue.ListFilter{Limit: 2})); !slices.Equal(got, echoIDs[:2]) {
		t.Errorf("with limit 2: %v, want %v", got, echoIDs[:2])
	}
	if got := collect(t, q, queue.ListFilter{States: []queue.State{queue.StateCompleted}}); len(got) != 0 {
		t.Errorf("completed: %v, want none", ids(got))
	}
	// Stopping early must be safe.
	for range q.ListJobs(context.Background(), queue.ListFilter{}) {
		break
	}
}

func collect(t *testing.T, q queue.Queue, f queue.ListFilter) []queue.JobInfo {
	t.Helper()
	var out []queue.JobInfo
	for info, err := range q.ListJobs(context.Background(), f) {
		if err != nil {
			t.Fatalf("ListJobs(%+v): %v", f, err)
		}
		out = append(out, info)
	}
	return out
}

func ids(jobs []queue.JobInfo) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func testJobTimeout(t *testing.T, newQueue factory) {
	w := &queue.Workers{}
	sawDeadline := make(chan error, 1)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[echoArgs]) error {
		select {
		case <-ctx.Done():
			sawDeadline <- ctx.Err()
			return ctx.Err()
		case <-time.After(waitTimeout):
			sawDeadline <- nil
			return nil
		}
	})
	q := newQueue(t, w, Config{JobTimeout: 100 * time.Millisecond})
	start(t, q)
	info := enqueue(t, q, echoArgs{Name: "slow"}, queue.WithMaxAttempts(1))
	if err := waitChan(t, sawDeadline, "the job to time out"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("worker context ended with %v, want context.DeadlineExceeded", err)
	}
	waitState(t, q, info.ID, queue.StateDiscarded)
}
