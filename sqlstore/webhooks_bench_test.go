package sqlstore_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/webhook"
	"github.com/connkit/connkit/webhook/webhooktest"
)

// BenchmarkWebhookInsertConcurrent: 8 goroutines storing deliveries (1.5 KB bodies) in a
// SQLite file through Webhooks().Insert, against a hand-written loop doing the same
// INSERT … ON CONFLICT DO NOTHING with a prepared statement on the same database, one
// autocommit statement per delivery. The store commits the inserts that arrive while one
// is written together (group commit). x-baseline is the store's time over the loop's.
func BenchmarkWebhookInsertConcurrent(b *testing.B) {
	ctx := context.Background()
	db := mustOpen(b, "sqlite:"+filepath.Join(b.TempDir(), "connkit.db"))
	s := db.Webhooks()
	stmt, err := db.SQL().PrepareContext(ctx, `INSERT INTO connkit_webhook_deliveries (endpoint, id, event, header, body,
		received_at, status, attempts, last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint, id) DO NOTHING`)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	body := []byte(`{"id":1,"title":"` + strings.Repeat("x", 1500) + `"}`)
	const workers = 8
	var seq atomic.Int64
	run := func(insert func(id string) error) time.Duration {
		t0 := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range 25 {
					if err := insert("d-" + strconv.FormatInt(seq.Add(1), 10)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(t0)
	}
	var storeT, loopT time.Duration
	n := 0
	for b.Loop() {
		now := time.Now()
		storeT += run(func(id string) error {
			_, _, err := s.Insert(ctx, webhook.Delivery{Endpoint: "shopify", ID: id, Event: "products/update", Body: body, ReceivedAt: now})
			return err
		})
		loopT += run(func(id string) error {
			us := now.UnixMicro()
			_, err := stmt.ExecContext(ctx, "loop", id, "products/update", nil, body, us, "pending", 0, "", us)
			return err
		})
		n += workers * 25
	}
	b.ReportMetric(float64(n)/storeT.Seconds(), "deliveries/s")
	b.ReportMetric(float64(n)/loopT.Seconds(), "baseline-deliveries/s")
	b.ReportMetric(storeT.Seconds()/loopT.Seconds(), "x-baseline")
}

// BenchmarkWebhookReceive runs webhooktest.Bench (receive, verify, store, notify against a
// bare read-and-200 handler) on a SQLite file and, when configured, Postgres.
func BenchmarkWebhookReceive(b *testing.B) {
	b.Run("sqlite-file", func(b *testing.B) {
		webhooktest.Bench(b, func(b *testing.B) webhook.Store {
			return mustOpen(b, "sqlite:"+filepath.Join(b.TempDir(), "connkit.db")).Webhooks()
		})
	})
	b.Run("postgres", func(b *testing.B) {
		webhooktest.Bench(b, func(b *testing.B) webhook.Store { return mustOpen(b, pgSchemaDSN(b)).Webhooks() })
	})
}
