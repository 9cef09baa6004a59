package queue

import (
	"context"
	"testing"
	"time"
)

type internalArgs struct {
	N int `json:"n"`
}

func (internalArgs) Kind() string { return "internal" }

// Cancelling jobs must not leave their heap entries (and arguments) behind
// until their due time: a debounce that cancels and re-enqueues a job
// delayed by an hour would grow the heap by one entry per event.
func TestPoolCancelledJobsDoNotPileUpInHeaps(t *testing.T) {
	w := &Workers{}
	ran := make(chan int, 1)
	AddWorker(w, func(ctx context.Context, job *Job[internalArgs]) error {
		ran <- job.Args.N
		return nil
	})
	p := NewPool(w).(*pool)
	ctx := context.Background()
	const n = 1000
	for i := range n {
		for _, opt := range []EnqueueOption{WithDelay(time.Hour), nil} {
			info, err := p.Enqueue(ctx, internalArgs{N: i}, opt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.CancelJob(ctx, info.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	live, err := p.Enqueue(ctx, internalArgs{N: -1}, WithDelay(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	delayed, ready := len(p.delayed), len(p.queues["default"].ready)
	p.mu.Unlock()
	if delayed > 100 || ready > 100 {
		t.Errorf("after %d cancelled delayed and %d cancelled ready jobs the heaps hold %d and %d entries, want stale ones swept", n, n, delayed, ready)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(ctx)
	select {
	case got := <-ran:
		if got != -1 {
			t.Errorf("ran job %d, want only the live one (-1)", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the live delayed job did not run after the sweeps")
	}
	if info, _ := p.GetJob(ctx, live.ID); info.ID != live.ID {
		t.Errorf("live job lost: %+v", info)
	}
}
