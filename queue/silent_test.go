package queue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/connkit/connkit/queue"
)

// A library logs only to a logger the app passes: a pool built without
// WithLogger writes nothing to slog.Default(), even when a job is discarded.
func TestPoolIsSilentWithoutLogger(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[sleepArgs]) error { return errors.New("boom") })
	p := queue.NewPool(w)
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := p.Enqueue(ctx, sleepArgs{}, queue.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, _ := p.GetJob(ctx, info.ID)
		return got.State == queue.StateDiscarded
	})
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 0 {
		t.Errorf("pool without a logger wrote to slog.Default():\n%s", buf.String())
	}
}
