package fakeshop_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/connkittest/fakeshop"
)

// BenchmarkRateLimitEfficiency walks enough pages through connkit's adapter (following
// X-Shopify-Shop-Api-Call-Limit, as a backend with rate_limit.headers: shopify does)
// that the shop's leaky bucket must throttle, and compares the wall time with the
// theoretical minimum: the first bucket-full of calls is free, every other call waits for
// one leak, so (pages − bucket) / rate. It reports that ratio (x-theoretical, goal ≤ 1.10)
// and the 429s the shop answered (goal 0).
//
// The shapes: Shopify's own (bucket 40 leaking 2/s, the rate the adapter assumes from the
// size), the brief's faster leak (40 leaking 20/s: the adapter cannot know the leak rate
// from the header and assumes 2/s), and a Plus-sized bucket (400 leaking 20/s).
// FAKESHOP_BENCH_SHAPES=bucket:rate:pages,… replaces them; each takes about its
// theoretical minimum, so run with -benchtime=1x:
//
//	go test -run '^$' -bench RateLimitEfficiency -benchtime=1x ./connkittest/fakeshop
func BenchmarkRateLimitEfficiency(b *testing.B) {
	shapes := []struct {
		bucket int
		rate   float64
		pages  int
	}{{40, 2, 80}, {40, 20, 400}, {400, 20, 800}}
	if env := os.Getenv("FAKESHOP_BENCH_SHAPES"); env != "" {
		shapes = shapes[:0]
		for _, s := range splitComma(env) {
			var bucket, pages int
			var rate float64
			if _, err := fmt.Sscanf(s, "%d:%g:%d", &bucket, &rate, &pages); err != nil {
				b.Fatalf("FAKESHOP_BENCH_SHAPES: %q: want bucket:rate:pages", s)
			}
			shapes = append(shapes, struct {
				bucket int
				rate   float64
				pages  int
			}{bucket, rate, pages})
		}
	}
	for _, sh := range shapes {
		b.Run(fmt.Sprintf("bucket=%d/rate=%g/pages=%d", sh.bucket, sh.rate, sh.pages), func(b *testing.B) {
			const perPage = 5
			for b.Loop() {
				b.StopTimer()
				shop := fakeshop.New(fakeshop.WithSize(sh.pages*perPage, 1, 1), fakeshop.WithBucket(sh.bucket, sh.rate), fakeshop.WithRepeats(0))
				base := shop.Start()
				c, err := adapter.New(base, adapter.WithAuth(adapter.APIKeyHeader("X-Shopify-Access-Token", shop.Token())),
					adapter.WithLimitHeaders("shopify"))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				n := 0
				for _, err := range adapter.Records(context.Background(), c, adapter.Request{Path: "/products.json",
					Query: url.Values{"limit": {strconv.Itoa(perPage)}}}, adapter.LinkHeader(), adapter.WithRecordsPath("products")) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				wall := time.Since(start)
				b.StopTimer()
				st := shop.Stats()
				shop.Close()
				if n != sh.pages*perPage {
					b.Fatalf("walked %d products, want %d", n, sh.pages*perPage)
				}
				minimum := time.Duration(float64(max(st.Lists-sh.bucket, 0)) / sh.rate * float64(time.Second))
				b.ReportMetric(wall.Seconds()/minimum.Seconds(), "x-theoretical")
				b.ReportMetric(float64(st.Throttled), "429s")
				b.ReportMetric(float64(st.Lists), "pages")
				b.ReportMetric(wall.Seconds(), "wall-s")
				b.ReportMetric(minimum.Seconds(), "min-s")
				b.StartTimer()
			}
		})
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
