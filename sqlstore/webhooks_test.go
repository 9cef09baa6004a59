package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/webhook"
	"github.com/connkit/connkit/webhook/webhooktest"
)

func deliveries(t *testing.T, seq func(func(webhook.Delivery, error) bool)) []webhook.Delivery {
	t.Helper()
	var out []webhook.Delivery
	for d, err := range seq {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		out = append(out, d)
	}
	return out
}

func ids(ds []webhook.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Endpoint + "/" + d.ID
	}
	return out
}

// The store's own behaviour on every engine: what is written is read back byte for
// byte, duplicates keep the first delivery, Finish/Reset change status and count
// attempts, List pages in (received_at, id, endpoint) order across page boundaries, Purge
// deletes by age and status, and bad arguments fail with ErrInvalid.
func TestWebhookStore(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clock := newClock()
			s := e.open(t, sqlstore.WithPageSize(3), sqlstore.WithClock(clock.Now)).Webhooks()
			t0 := clock.Now()

			body := []byte("{\"id\":1}\x00\xff\xfe binary")
			d := webhook.Delivery{Endpoint: "shop", ID: "d1", Event: "products/update",
				Header: http.Header{"X-Topic": {"products/update"}, "X-Sig": {"[redacted]"}}, Body: body,
				ReceivedAt: t0.Add(123456789 * time.Nanosecond)}
			stored, inserted, err := s.Insert(ctx, d)
			if err != nil || !inserted {
				t.Fatalf("Insert = %v, %v", inserted, err)
			}
			want := d
			want.Body = append([]byte(nil), body...)
			want.Status, want.ReceivedAt = webhook.StatusPending, t0.Add(123456*time.Microsecond)
			want.UpdatedAt = want.ReceivedAt
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Fatalf("Insert returned (-want +got):\n%s", diff)
			}
			body[0] = 'X' // the store kept its own copy
			got, err := s.Get(ctx, "shop", "d1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Get (-want +got):\n%s", diff)
			}

			// A redelivery with another body is a duplicate: the first one stays.
			dup, inserted, err := s.Insert(ctx, webhook.Delivery{Endpoint: "shop", ID: "d1", Body: []byte("other")})
			if err != nil || inserted || dup.Event != "products/update" || string(dup.Body) != string(want.Body) {
				t.Fatalf("duplicate Insert = %+v, %v, %v", dup, inserted, err)
			}
			// The same ID on another endpoint is another delivery.
			if _, inserted, err := s.Insert(ctx, webhook.Delivery{Endpoint: "crm", ID: "d1", ReceivedAt: t0}); err != nil || !inserted {
				t.Fatalf("same ID, other endpoint: %v, %v", inserted, err)
			}

			t1 := t0.Add(time.Minute)
			f, err := s.Finish(ctx, "shop", "d1", webhook.Outcome{Status: webhook.StatusFailed, Error: "boom \x00\xff", At: t1})
			if err != nil || f.Status != webhook.StatusFailed || f.Attempts != 1 || !f.UpdatedAt.Equal(t1) || f.LastError == "" {
				t.Fatalf("Finish = %+v, %v", f, err)
			}
			r, err := s.Reset(ctx, "shop", "d1", t1.Add(time.Second))
			if err != nil || r.Status != webhook.StatusPending || r.Attempts != 1 || r.LastError != f.LastError {
				t.Fatalf("Reset = %+v, %v", r, err)
			}
			f, err = s.Finish(ctx, "shop", "d1", webhook.Outcome{Generation: r.Generation, Status: webhook.StatusProcessed})
			if err != nil || f.Status != webhook.StatusProcessed || f.Attempts != 2 || f.LastError != "" || !f.UpdatedAt.Equal(clock.Now()) {
				t.Fatalf("second Finish = %+v, %v", f, err)
			}
			for name, err := range map[string]error{
				"get": func() error { _, err := s.Get(ctx, "shop", "nope"); return err }(),
				"finish": func() error {
					_, err := s.Finish(ctx, "shop", "nope", webhook.Outcome{Status: webhook.StatusProcessed, At: t1})
					return err
				}(),
				"reset": func() error { _, err := s.Reset(ctx, "shop", "nope", t1); return err }(),
			} {
				if !errors.Is(err, webhook.ErrNotFound) {
					t.Errorf("%s of a missing delivery: %v, want ErrNotFound", name, err)
				}
			}

			// Ten more, two per received time, to page through with ties.
			for i := range 10 {
				at := t0.Add(time.Duration(1+i/2) * time.Second)
				if _, _, err := s.Insert(ctx, webhook.Delivery{Endpoint: "shop", ID: fmt.Sprintf("e%02d", 9-i), ReceivedAt: at}); err != nil {
					t.Fatal(err)
				}
			}
			all := deliveries(t, s.List(ctx, webhook.Filter{}))
			wantOrder := []string{"crm/d1", "shop/d1", "shop/e08", "shop/e09", "shop/e06", "shop/e07", "shop/e04", "shop/e05",
				"shop/e02", "shop/e03", "shop/e00", "shop/e01"}
			if diff := cmp.Diff(wantOrder, ids(all)); diff != "" {
				t.Fatalf("List order (-want +got):\n%s", diff)
			}
			if got := ids(deliveries(t, s.List(ctx, webhook.Filter{Endpoint: "shop", Status: webhook.StatusPending, Limit: 4}))); !cmp.Equal(got, wantOrder[2:6]) {
				t.Fatalf("List pending of shop, limit 4 = %v", got)
			}
			if got := ids(deliveries(t, s.List(ctx, webhook.Filter{ReceivedBefore: t0.Add(2 * time.Second)}))); !cmp.Equal(got, wantOrder[:4]) {
				t.Fatalf("List received before t0+2s = %v", got)
			}
			// Breaking off mid-page and writing from the loop body works (no connection held).
			n := 0
			for d, err := range s.List(ctx, webhook.Filter{Status: webhook.StatusPending}) {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Finish(ctx, d.Endpoint, d.ID, webhook.Outcome{Status: webhook.StatusIgnored}); err != nil {
					t.Fatal(err)
				}
				if n++; n == 5 {
					break
				}
			}
			if got := len(deliveries(t, s.List(ctx, webhook.Filter{Status: webhook.StatusIgnored}))); got != 5 {
				t.Fatalf("%d ignored, want 5", got)
			}

			purged, err := s.Purge(ctx, t0.Add(3*time.Second), webhook.StatusIgnored, webhook.StatusProcessed)
			if err != nil || purged != 6 { // shop/d1 (processed); crm/d1, e08, e09, e06, e07 (ignored)
				t.Fatalf("Purge = %d, %v; want 6", purged, err)
			}
			if purged, err := s.Purge(ctx, time.Time{}); err != nil || purged != 0 {
				t.Fatalf("Purge(zero) = %d, %v", purged, err)
			}
			if purged, err := s.Purge(ctx, t0.Add(time.Hour)); err != nil || purged != 6 {
				t.Fatalf("Purge(all) = %d, %v; want 6", purged, err)
			}
			if left := deliveries(t, s.List(ctx, webhook.Filter{})); len(left) != 0 {
				t.Fatalf("left after purging all: %v", ids(left))
			}
		})
	}
}

func TestWebhookStoreRejectsBadInput(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := e.open(t)
			s := db.Webhooks()
			bad := map[string]error{}
			_, _, bad["empty endpoint"] = s.Insert(ctx, webhook.Delivery{ID: "x"})
			_, _, bad["empty ID"] = s.Insert(ctx, webhook.Delivery{Endpoint: "x"})
			_, _, bad["unknown status"] = s.Insert(ctx, webhook.Delivery{Endpoint: "x", ID: "y", Status: "done"})
			_, _, bad["negative attempts"] = s.Insert(ctx, webhook.Delivery{Endpoint: "x", ID: "y", Attempts: -1})
			_, bad["finish status"] = s.Finish(ctx, "x", "y", webhook.Outcome{Status: "done"})
			_, bad["get empty"] = s.Get(ctx, "", "y")
			_, bad["reset empty"] = s.Reset(ctx, "x", "", time.Time{})
			_, bad["purge status"] = s.Purge(ctx, time.Now(), "done")
			for _, err := range s.List(ctx, webhook.Filter{Limit: -1}) {
				bad["negative limit"] = err
			}
			for _, err := range s.List(ctx, webhook.Filter{Status: "done"}) {
				bad["list status"] = err
			}
			if db.Dialect() == sqlstore.Postgres {
				_, _, bad["NUL in ID"] = s.Insert(ctx, webhook.Delivery{Endpoint: "x", ID: "a\x00b"})
				_, _, bad["invalid UTF-8 endpoint"] = s.Insert(ctx, webhook.Delivery{Endpoint: "x\xff", ID: "a"})
			}
			for name, err := range bad {
				if !errors.Is(err, webhook.ErrInvalid) {
					t.Errorf("%s: %v, want ErrInvalid", name, err)
				}
			}
			if got := deliveries(t, s.List(ctx, webhook.Filter{})); len(got) != 0 {
				t.Fatalf("bad input stored %v", ids(got))
			}
			if db.Dialect() == sqlstore.SQLite { // SQLite stores any bytes in a key
				if _, ok, err := s.Insert(ctx, webhook.Delivery{Endpoint: "x\xff", ID: "a\x00b"}); err != nil || !ok {
					t.Fatalf("binary key on SQLite: %v, %v", ok, err)
				}
				if _, err := s.Get(ctx, "x\xff", "a\x00b"); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Concurrent inserts of the same deliveries through several connections (and, on a
// SQLite file and Postgres, several DB handles, as separate processes would be): each
// delivery is inserted exactly once, and every other insert returns it.
func TestWebhookStoreConcurrentInsert(t *testing.T) {
	type setup struct {
		name   string
		stores func(t *testing.T) []webhook.Store
	}
	setups := []setup{
		{"sqlite-file", func(t *testing.T) []webhook.Store {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "connkit.db")
			first := mustOpen(t, dsn)
			return []webhook.Store{first.Webhooks(), mustOpen(t, dsn).Webhooks(), mustOpen(t, dsn).Webhooks()}
		}},
		{"sqlite-memory", func(t *testing.T) []webhook.Store {
			return []webhook.Store{mustOpen(t, ":memory:").Webhooks()}
		}},
		{"postgres", func(t *testing.T) []webhook.Store {
			dsn := pgSchemaDSN(t)
			first := mustOpen(t, dsn)
			return []webhook.Store{first.Webhooks(), mustOpen(t, dsn).Webhooks(), mustOpen(t, dsn).Webhooks()}
		}},
	}
	for _, st := range setups {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			stores := st.stores(t)
			const count, senders = 40, 6
			var inserted [count]atomic.Int32
			var wg sync.WaitGroup
			errs := make(chan error, count*senders)
			for g := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := stores[g%len(stores)]
					for i := range count {
						d := webhook.Delivery{Endpoint: "shop", ID: fmt.Sprintf("d%d", i), Body: []byte(fmt.Sprintf("from %d", g))}
						got, ok, err := s.Insert(ctx, d)
						if err != nil {
							errs <- err
							return
						}
						if got.ID != d.ID || len(got.Body) == 0 {
							errs <- fmt.Errorf("insert returned %+v", got)
						}
						if ok {
							inserted[i].Add(1)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for i := range inserted {
				if n := inserted[i].Load(); n != 1 {
					t.Errorf("delivery d%d inserted %d times", i, n)
				}
			}
			if got := len(deliveries(t, stores[0].List(ctx, webhook.Filter{}))); got != count {
				t.Fatalf("%d deliveries stored, want %d", got, count)
			}
		})
	}
}

func TestWebhookConformance(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			webhooktest.Run(t, func(t *testing.T) webhook.Store { return e.open(t).Webhooks() })
		})
	}
}

// Two batches of the same 256 deliveries in opposite orders, inserted at once (two
// processes storing redeliveries): neither fails, and each delivery is inserted by
// exactly one. On Postgres, rows inserted in arrival order deadlocked (40P01).
func TestWebhookInsertBatchSameKeysConcurrently(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			s := e.open(t).Webhooks().(webhook.BatchInserter)
			for round := range 5 {
				var a []webhook.Delivery
				for i := range 256 {
					a = append(a, webhook.Delivery{Endpoint: "ep", ID: fmt.Sprintf("r%d-%03d", round, i), Body: []byte(`{}`), ReceivedAt: time.Now()})
				}
				b := slices.Clone(a)
				slices.Reverse(b)
				var wg sync.WaitGroup
				var insA, insB []bool
				var errA, errB error
				wg.Go(func() { insA, errA = s.InsertBatch(ctx, a) })
				wg.Go(func() { insB, errB = s.InsertBatch(ctx, b) })
				wg.Wait()
				if errA != nil || errB != nil {
					t.Fatalf("round %d: %v / %v", round, errA, errB)
				}
				for i := range a {
					if insA[i] == insB[len(b)-1-i] {
						t.Fatalf("round %d: delivery %s inserted by both or neither (%v, %v)", round, a[i].ID, insA[i], insB[len(b)-1-i])
					}
				}
			}
		})
	}
}
