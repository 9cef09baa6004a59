package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/webhook"
)

// The group commit's hand-offs: while a leader waits for the write connection, later
// inserts queue; one whose caller gives up leaves the queue (not stored, its error
// returned at once), and the others are written together by the next leader.
func TestInsertGroupHandOff(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "connkit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.Webhooks().(*webhookStore)
	queued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s.group.mu.Lock()
			got, writing := len(s.group.queue), s.group.writing
			s.group.mu.Unlock()
			if got == n && writing {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d inserts queued (writing: %v), want %d behind a leader", got, writing, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	insert := func(ctx context.Context, id string) error {
		_, inserted, err := s.Insert(ctx, webhook.Delivery{Endpoint: "shop/hooks", ID: id, Body: []byte(`{}`)})
		if err == nil && !inserted {
			err = errors.New("not inserted")
		}
		return err
	}

	// Hold SQLite's only write connection so the first insert's leader has to wait.
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(map[string]error)
	var mu sync.Mutex
	run := func(ctx context.Context, id string) {
		wg.Go(func() {
			err := insert(ctx, id)
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		})
	}
	run(ctx, "leader")
	queued(0) // the leader took its own insert out of the queue and waits for the connection
	giveUp, cancel := context.WithCancel(ctx)
	run(giveUp, "gives-up")
	queued(1)
	run(ctx, "a")
	run(ctx, "b")
	queued(3)
	cancel()
	queued(2) // the insert whose caller gave up left the queue, with the connection still held
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(errs["gives-up"], context.Canceled) {
		t.Errorf("the insert whose caller gave up returned %v, want context.Canceled", errs["gives-up"])
	}
	for _, id := range []string{"leader", "a", "b"} {
		if errs[id] != nil {
			t.Errorf("insert %s: %v", id, errs[id])
		}
		if _, err := s.Get(ctx, "shop/hooks", id); err != nil {
			t.Errorf("get %s: %v", id, err)
		}
	}
	if _, err := s.Get(ctx, "shop/hooks", "gives-up"); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("the insert whose caller gave up was stored (get: %v)", err)
	}
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	if s.group.writing || len(s.group.queue) != 0 {
		t.Errorf("after the last batch: writing %v, %d queued; want idle", s.group.writing, len(s.group.queue))
	}
}
