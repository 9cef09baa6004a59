package backend_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

// TestBackendsShareOneRiverDatabase: two connectors in one app keep everything in one
// SQLite file, River's tables included. Each backend's jobs go to its own queue, so each is
// worked by the backend that enqueued it: none is taken by the other and cancelled as
// "not mine" (which lost the export before backends had queues of their own).
func TestBackendsShareOneRiverDatabase(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "app.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	widgets, err := sqlstore.Records[widget](ctx, db, "widget")
	require.NoError(t, err)

	const perBackend = 12
	names := []string{"shop-a", "Shop B.eu"} // the second folds into a valid queue name
	apis := make([]*fakeapi.Server, len(names))
	hubs := make([]*backend.Backend, len(names))
	for i, name := range names {
		apis[i] = fakeapi.New()
		t.Cleanup(apis[i].Close)
		hubs[i], err = backend.New(backend.Config{Name: name, BaseURL: apis[i].URL},
			backend.WithDB(db),
			backend.WithQueue(func(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
				return riverqueue.New(ctx, db, w, queue.WithWorkers(2),
					queue.WithBackoff(20*time.Millisecond, 100*time.Millisecond),
					riverqueue.WithRiverConfig(func(c *river.Config) {
						c.TestOnly = true
						c.FetchPollInterval = 50 * time.Millisecond
						c.FetchCooldown = 10 * time.Millisecond
					}))
			}),
			backend.WithModel(widgetModel(widgets)),
			backend.WithClientOptions(adapter.WithRetryWait(5*time.Millisecond, 20*time.Millisecond)),
		)
		require.NoError(t, err)
	}
	// Enqueue before either starts, so both River clients see every job from their first fetch.
	ids := make([][]string, len(names))
	for i := range names {
		for n := range perBackend {
			id, err := widgets.Create(ctx, widget{Name: fmt.Sprintf("%s-%d", names[i], n), Price: n})
			require.NoError(t, err)
			ids[i] = append(ids[i], id)
			_, err = hubs[i].Later().Export(ctx, "widget", id)
			require.NoError(t, err)
		}
	}
	for _, h := range hubs {
		require.NoError(t, h.Start(ctx))
		t.Cleanup(func() { _ = h.Stop(context.Background()) })
	}
	// Done when every job has finished (the API sees a create before its binding is written).
	require.Eventually(t, func() bool {
		for _, h := range hubs {
			for j, err := range h.Queue().ListJobs(ctx, queue.ListFilter{}) {
				if err != nil || !final(j.State) {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "every export job finishes")
	for i, h := range hubs {
		require.Equal(t, perBackend, apis[i].Count("widgets"), "backend %q created each record once", names[i])
		for _, id := range ids[i] {
			b, err := h.Bindings().GetByLocal(ctx, names[i], "widget", id)
			require.NoError(t, err)
			require.Equal(t, binding.StatusSuccess, b.Status, "widget %s of %q", id, names[i])
		}
		for j, err := range h.Queue().ListJobs(ctx, queue.ListFilter{}) {
			require.NoError(t, err)
			require.NotEqual(t, queue.StateCancelled, j.State, "job %d (%s) of %q was cancelled: %v", j.ID, j.Kind, names[i], j.Errors)
		}
	}
}
