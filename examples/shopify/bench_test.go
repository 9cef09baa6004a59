package main

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/connkit/connkit/connkittest/fakeshop"
	"github.com/connkit/connkit/sqlstore"
)

// BenchmarkSyncRateLimit imports the products of a shop whose leaky bucket (40 calls,
// leaking 20 a second) must throttle the sync: 400 pages of 5 products through the
// connector as declared (shop.yaml's rate_limit.headers: shopify), into SQLite. It
// reports the wall time against the theoretical minimum (pages − bucket) / rate
// (x-theoretical, goal ≤ 1.10) and the 429s the shop answered (goal 0).
//
//	go test -run '^$' -bench SyncRateLimit -benchtime=1x ./examples/shopify
func BenchmarkSyncRateLimit(b *testing.B) {
	const (
		bucket  = 40
		rate    = 20.0
		pages   = 400
		perPage = 5
	)
	saved := pageSize
	pageSize = url.Values{"limit": {"5"}} // small pages: many requests for few records
	defer func() { pageSize = saved }()
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		shop := fakeshop.New(fakeshop.WithSize(pages*perPage, 1, 1), fakeshop.WithBucket(bucket, rate), fakeshop.WithRepeats(0))
		base := shop.Start()
		db, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		env := map[string]string{"SHOPIFY_BASE_URL": base, "SHOPIFY_TOKEN": shop.Token(), "SHOPIFY_WEBHOOK_SECRET": "s"}
		conn, err := newConnector(ctx, db, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		c, err := conn.shop.Sync(ctx, "import_product")
		wall := time.Since(start)
		b.StopTimer()
		if err != nil || c.Created != pages*perPage {
			b.Fatalf("imported %+v, %v", c, err)
		}
		st := shop.Stats()
		minimum := float64(st.Lists-bucket) / rate
		b.ReportMetric(wall.Seconds()/minimum, "x-theoretical")
		b.ReportMetric(float64(st.Throttled), "429s")
		b.ReportMetric(float64(st.Lists), "pages")
		shop.Close()
		_ = db.Close()
		b.StartTimer()
	}
}
