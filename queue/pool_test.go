package queue_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/queuetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestPool(t *testing.T, w *queue.Workers, cfg queuetest.Config) queue.Queue {
	n := cfg.MaxWorkers
	if n == 0 {
		n = 4
	}
	opts := []queue.Option{queue.WithWorkers(n),
		queue.WithBackoff(10*time.Millisecond, 10*time.Millisecond), queue.WithLogger(quiet)}
	if cfg.JobTimeout != 0 {
		opts = append(opts, queue.WithJobTimeout(cfg.JobTimeout))
	}
	return queue.NewPool(w, opts...)
}

func TestPoolConformance(t *testing.T) {
	queuetest.Run(t, newTestPool)
}

type sleepArgs struct {
	N int `json:"n"`
}

func (sleepArgs) Kind() string { return "sleep" }

func TestPoolBoundedConcurrency(t *testing.T) {
	const limit, jobs = 3, 30
	w := &queue.Workers{}
	var running, peak, done atomic.Int32
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		done.Add(1)
		return nil
	})
	p := queue.NewPool(w, queue.WithWorkers(limit), queue.WithQueue("bulk", 1), queue.WithLogger(quiet))
	ctx := context.Background()
	for i := range jobs {
		if _, err := p.Enqueue(ctx, sleepArgs{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err == nil {
		t.Error("second Start succeeded, want an error")
	}
	waitFor(t, func() bool { return done.Load() == jobs })
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := peak.Load(); got > limit {
		t.Errorf("peak concurrency %d, want at most %d", got, limit)
	}
	if got := peak.Load(); got < 2 {
		t.Logf("peak concurrency only %d (slow machine?)", got)
	}
}

func TestPoolQueuesHaveOwnLimits(t *testing.T) {
	w := &queue.Workers{}
	block := make(chan struct{})
	var bulkRunning atomic.Int32
	fastDone := make(chan struct{})
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error {
		if job.Queue == "bulk" {
			bulkRunning.Add(1)
			<-block
			return nil
		}
		close(fastDone)
		return nil
	})
	p := queue.NewPool(w, queue.WithWorkers(1), queue.WithQueue("bulk", 2), queue.WithLogger(quiet))
	ctx := context.Background()
	for i := range 5 {
		if _, err := p.Enqueue(ctx, sleepArgs{N: i}, queue.WithQueueName("bulk")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { close(block); _ = p.Stop(ctx) }()
	waitFor(t, func() bool { return bulkRunning.Load() == 2 })
	// The default queue is not starved by the busy bulk queue.
	if _, err := p.Enqueue(ctx, sleepArgs{N: 99}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fastDone:
	case <-time.After(5 * time.Second):
		t.Fatal("default-queue job did not run while the bulk queue was busy")
	}
	if got := bulkRunning.Load(); got != 2 {
		t.Errorf("bulk running %d, want its limit 2", got)
	}
	if _, err := p.Enqueue(ctx, sleepArgs{}, queue.WithQueueName("nope")); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("enqueue to an unknown queue: %v, want ErrInvalid", err)
	}
}

func TestPoolStopDeadlineCancelsRunningJobs(t *testing.T) {
	w := &queue.Workers{}
	started := make(chan struct{})
	sawCancel := make(chan struct{})
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error {
		close(started)
		<-ctx.Done()
		close(sawCancel)
		return ctx.Err()
	})
	p := queue.NewPool(w, queue.WithLogger(quiet))
	ctx := context.Background()
	if _, err := p.Enqueue(ctx, sleepArgs{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-started
	sctx, cancel := context.WithCancel(ctx)
	cancel() // deadline already passed
	if err := p.Stop(sctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a done ctx: %v, want context.Canceled", err)
	}
	<-sawCancel
	if err := p.Stop(ctx); err != nil { // waits for the drain to finish
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := p.Enqueue(ctx, sleepArgs{}); !errors.Is(err, queue.ErrStopped) {
		t.Errorf("Enqueue after Stop: %v, want ErrStopped", err)
	}
	if err := p.Start(ctx); !errors.Is(err, queue.ErrStopped) {
		t.Errorf("Start after Stop: %v, want ErrStopped", err)
	}
}

func TestPoolStartContextCancelIsHardStop(t *testing.T) {
	w := &queue.Workers{}
	started := make(chan struct{})
	var ran atomic.Int32
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error {
		if ran.Add(1) == 1 {
			close(started)
		}
		<-ctx.Done()
		return ctx.Err()
	})
	p := queue.NewPool(w, queue.WithWorkers(1), queue.WithLogger(quiet))
	ctx, cancel := context.WithCancel(context.Background())
	for range 3 {
		if _, err := p.Enqueue(ctx, sleepArgs{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	if err := p.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after hard stop: %v", err)
	}
	if got := ran.Load(); got != 1 {
		t.Errorf("%d jobs started, want only the one running at cancel", got)
	}
	var retryable int
	for info, err := range p.ListJobs(context.Background(), queue.ListFilter{States: []queue.State{queue.StateRetryable}}) {
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Errors) != 1 || info.Errors[0].Error != context.Canceled.Error() {
			t.Errorf("interrupted job errors %+v", info.Errors)
		}
		retryable++
	}
	if retryable != 1 {
		t.Errorf("%d retryable jobs, want the interrupted one", retryable)
	}
}

func TestPoolCancelRunningJob(t *testing.T) {
	w := &queue.Workers{}
	started := make(chan struct{})
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	p := queue.NewPool(w, queue.WithLogger(quiet))
	ctx := context.Background()
	info, err := p.Enqueue(ctx, sleepArgs{}, queue.WithMaxAttempts(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(ctx) }()
	<-started
	if _, err := p.CancelJob(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, _ := p.GetJob(ctx, info.ID)
		return got.State == queue.StateCancelled
	})
}

func TestPoolPanickingWorkerIsRetried(t *testing.T) {
	w := &queue.Workers{}
	var calls atomic.Int32
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error {
		if calls.Add(1) == 1 {
			panic("worker bug")
		}
		return nil
	})
	p := queue.NewPool(w, queue.WithBackoff(10*time.Millisecond, 10*time.Millisecond), queue.WithLogger(quiet))
	ctx := context.Background()
	info, _ := p.Enqueue(ctx, sleepArgs{})
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(ctx) }()
	waitFor(t, func() bool {
		got, _ := p.GetJob(ctx, info.ID)
		return got.State == queue.StateCompleted
	})
	got, _ := p.GetJob(ctx, info.ID)
	if got.Attempt != 2 || len(got.Errors) != 1 {
		t.Errorf("after a panic: attempt %d, errors %v", got.Attempt, got.Errors)
	}
}

func TestPoolRetentionBoundsFinishedJobs(t *testing.T) {
	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error { return nil })
	p := queue.NewPool(w, queue.WithWorkers(1), queue.WithRetention(5), queue.WithLogger(quiet))
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var last queue.JobInfo
	for i := range 20 {
		last, _ = p.Enqueue(ctx, sleepArgs{N: i})
	}
	waitFor(t, func() bool {
		got, _ := p.GetJob(ctx, last.ID)
		return got.State == queue.StateCompleted
	})
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	for range p.ListJobs(ctx, queue.ListFilter{}) {
		n++
	}
	if n != 5 {
		t.Errorf("%d jobs kept, want 5", n)
	}
	if _, err := p.GetJob(ctx, 1); !errors.Is(err, queue.ErrJobNotFound) {
		t.Errorf("oldest job: %v, want ErrJobNotFound", err)
	}
}

func TestPermanentAndRetryAfterErrors(t *testing.T) {
	base := errors.New("base")
	if queue.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if err := queue.Permanent(base); !errors.Is(err, base) {
		t.Errorf("Permanent does not wrap: %v", err)
	}
	if err := queue.RetryAfter(-time.Second, base); !errors.Is(err, base) || err.Error() != "retry after 0s: base" {
		t.Errorf("RetryAfter(-1s): %v", err)
	}
}

func TestAddWorkerPanicsOnDuplicateKind(t *testing.T) {
	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error { return nil })
	defer func() {
		if recover() == nil {
			t.Error("second AddWorker for the same kind did not panic")
		}
	}()
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error { return nil })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPoolNegativeRetentionKeepsNone(t *testing.T) {
	w := &queue.Workers{}
	ran := make(chan struct{}, 1)
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error {
		ran <- struct{}{}
		return nil
	})
	p := queue.NewPool(w, queue.WithRetention(-1), queue.WithLogger(quiet))
	ctx := context.Background()
	info, err := p.Enqueue(ctx, sleepArgs{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-ran
	waitFor(t, func() bool {
		_, err := p.GetJob(ctx, info.ID)
		return errors.Is(err, queue.ErrJobNotFound)
	})
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPoolInvalidQueueNameFailsStart(t *testing.T) {
	p := queue.NewPool(&queue.Workers{}, queue.WithQueue("Bulk Jobs", 2), queue.WithLogger(quiet))
	err := p.Start(context.Background())
	if !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), "Bulk Jobs") {
		t.Fatalf("Start with an invalid queue name: %v, want ErrInvalid naming it", err)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// After a hard stop (Start's ctx cancelled) nothing runs jobs any more, so
// Enqueue must refuse them instead of keeping them silently.
func TestPoolRefusesWorkAfterHardStop(t *testing.T) {
	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error { return nil })
	p := queue.NewPool(w, queue.WithLogger(quiet))
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := p.Enqueue(context.Background(), sleepArgs{}); !errors.Is(err, queue.ErrStopped) {
		t.Errorf("Enqueue after hard stop: %v, want ErrStopped", err)
	}
	if err := p.Start(context.Background()); !errors.Is(err, queue.ErrStopped) {
		t.Errorf("Start after hard stop: %v, want ErrStopped", err)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Errorf("Stop after hard stop: %v", err)
	}
}
