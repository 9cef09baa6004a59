package riverqueue_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
)

// A library logs only to a logger the app passes: River built without
// WithLogger writes nothing to slog.Default() (River logs its migrations
// and start-up at info level).
func TestRiverIsSilentWithoutLogger(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	ctx := context.Background()
	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[strictArgs]) error { return nil })
	q, err := riverqueue.New(ctx, openSQLite(t, filepath.Join(t.TempDir(), "q.db")), w)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 0 {
		t.Errorf("River without a logger wrote to slog.Default():\n%.2000s", buf.String())
	}
}
