//go:build unix

package backend_test

import (
	"bytes"
	"context"
	"github.com/connkit/connkit/internal/cputime"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/webhook"
)

// BenchmarkWebhookReceive measures the receiving side of a webhook on a SQLite file (and,
// for comparison, on the memory store):
// a delivery POSTed over loopback HTTP to the backend's handler, which reads the body,
// verifies its HMAC, stores it (one INSERT) and queues its job (the backend is not
// started, so nothing is processed), against a bare net/http handler that reads the body
// and answers 200. The two alternate in the same loop on the same client.
//
// x-baseline is the bare handler's time over the webhook path's (its share of the bare
// throughput; goal ≥ 0.5); deliveries/s is the webhook path's rate. In
// sequential-vs-hand-written-insert the baseline is instead a hand-written handler that
// stores the body with one INSERT before answering: the floor of any receiver that keeps
// the delivery before it answers, as the webhook path does.
func BenchmarkWebhookReceive(b *testing.B) {
	ctx := context.Background()
	newShop := func(spool string, opts ...backend.Option) (*backend.Backend, string) {
		hook := shopifyWebhook()
		hook.Spool = spool
		shop, err := backend.New(backend.Config{Name: "shop", BaseURL: "https://shop.example.com", Webhooks: []backend.WebhookConfig{hook}},
			append(opts, backend.WithModel(productModel(local.NewMemory[product]())))...)
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(shop.Webhooks())
		b.Cleanup(srv.Close)
		return shop, srv.URL + "/shopify"
	}
	shop, hooksURL := newShop("", backend.WithDB(openSQLiteFile(b)))
	memShop, memURL := newShop("")
	spoolShop, spoolURL := newShop(b.TempDir(), backend.WithDB(openSQLiteFile(b)))
	spooler, err := spoolShop.Webhook("shopify")
	if err != nil {
		b.Fatal(err)
	}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer bare.Close()

	body := []byte(`{"id":788032119674292922,"title":"Example T-Shirt","body_html":"<p>A soft cotton tee.</p>",` +
		`"vendor":"Acme","product_type":"Shirts","created_at":"2026-03-01T12:00:00-05:00","handle":"example-t-shirt",` +
		`"updated_at":"2026-03-01T12:00:00-05:00","status":"active","tags":"example, mens, t-shirt","variants":[` +
		strings.Repeat(`{"id":642667041472713922,"title":"Small","price":"19.99","sku":"EX-TS-S","inventory_quantity":75,"weight":0.2,"weight_unit":"kg"},`, 6) +
		`{"id":757650484644203962,"title":"Large","price":"19.99","sku":"EX-TS-L","inventory_quantity":50}]}`)
	signer, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{shopifySecret})
	if err != nil {
		b.Fatal(err)
	}
	sig := http.Header{}
	if err := signer.Sign(sig, body, time.Now()); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()

	var seq, bareIDs atomic.Int64
	post := func(url, id string) time.Duration {
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Shopify-Topic", "products/update")
		req.Header.Set("X-Shopify-Webhook-Id", id)
		req.Header.Set("X-Shopify-Hmac-Sha256", sig.Get("X-Shopify-Hmac-Sha256"))
		if url == bare.URL {
			bareIDs.Add(1)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s answered %d", url, resp.StatusCode)
		}
		return time.Since(t0)
	}
	nextID := func() string { return "bench-" + strconv.FormatInt(seq.Add(1), 10) }

	// durable is the least any handler that stores a delivery before answering can do: a
	// hand-written one that reads the body and runs one prepared INSERT of the same row
	// into the same table, in a SQLite file of its own opened with the same settings.
	durableDB := openSQLiteFile(b)
	insert, err := durableDB.SQL().PrepareContext(ctx, `INSERT INTO connkit_webhook_deliveries (endpoint, id, event, header, body,
		received_at, status, attempts, last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	defer insert.Close()
	durable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now().UnixMicro()
		if _, err := insert.ExecContext(r.Context(), "shop/shopify", r.Header.Get("X-Shopify-Webhook-Id"), r.Header.Get("X-Shopify-Topic"),
			`{"Content-Type":["application/json"]}`, body, now, "pending", 0, "", now); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer durable.Close()

	// Sequential: one request at a time, the two alternating. On the memory store too, to
	// tell the receiver's own cost from the SQLite commit's; and against the hand-written
	// durable handler, to tell connkit's cost from the cost of any store-before-answer.
	sequential := func(bareURL, hooksURL string) func(b *testing.B) {
		return func(b *testing.B) {
			var bareT, hookT, bareCPU, hookCPU time.Duration
			timed := func(url string, t, cpu *time.Duration) {
				c0 := cputime.Process()
				*t += post(url, nextID())
				*cpu += cputime.Process() - c0
			}
			i := 0
			for b.Loop() {
				if i++; i%2 == 0 { // alternate who goes first
					timed(bareURL, &bareT, &bareCPU)
					timed(hooksURL, &hookT, &hookCPU)
				} else {
					timed(hooksURL, &hookT, &hookCPU)
					timed(bareURL, &bareT, &bareCPU)
				}
			}
			reportReceive(b, i, bareT, hookT, bareCPU, hookCPU)
		}
	}
	b.Run("sequential", sequential(bare.URL, hooksURL))
	b.Run("sequential-memory-store", sequential(bare.URL, memURL))
	b.Run("sequential-vs-hand-written-insert", sequential(durable.URL, hooksURL))
	// Parallel: rounds of 8 concurrent senders, all to one side, then all to the other.
	const senders = 8
	round := func(url string) {
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() { post(url, nextID()) })
		}
		wg.Wait()
	}
	b.Run("parallel-8", func(b *testing.B) {
		var bareT, hookT, bareCPU, hookCPU time.Duration
		timed := func(url string, t, cpu *time.Duration) {
			c0, t0 := cputime.Process(), time.Now()
			round(url)
			*t += time.Since(t0)
			*cpu += cputime.Process() - c0
		}
		i := 0
		for b.Loop() {
			if i++; i%2 == 0 {
				timed(bare.URL, &bareT, &bareCPU)
				timed(hooksURL, &hookT, &hookCPU)
			} else {
				timed(hooksURL, &hookT, &hookCPU)
				timed(bare.URL, &bareT, &bareCPU)
			}
		}
		reportReceive(b, i*senders, bareT, hookT, bareCPU, hookCPU)
	})
	// With a spool (WebhookConfig.Spool), a delivery is in the store only once the
	// flusher has moved it there. So the two sides take turns in blocks, and the webhook
	// side's block ends with Flush: its time runs until every delivery of the block is in
	// SQLite and queued, and the flusher never runs during the bare handler's block.
	// flush-share is the part of the webhook side's time spent in those final Flushes.
	spooled := func(blockOf, perSend int, send func(url string)) func(b *testing.B) {
		return func(b *testing.B) {
			var bareT, hookT, bareCPU, hookCPU, flushT time.Duration
			block := func(url string, n int, t, cpu *time.Duration) {
				c0, t0 := cputime.Process(), time.Now()
				for range n {
					send(url)
				}
				if url == spoolURL {
					f0 := time.Now()
					if err := spooler.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					flushT += time.Since(f0)
				}
				*t += time.Since(t0)
				*cpu += cputime.Process() - c0
			}
			for sent, turn := 0, 0; sent < b.N; turn++ {
				n := min(blockOf, b.N-sent)
				if turn%2 == 0 { // alternate who goes first
					block(bare.URL, n, &bareT, &bareCPU)
					block(spoolURL, n, &hookT, &hookCPU)
				} else {
					block(spoolURL, n, &hookT, &hookCPU)
					block(bare.URL, n, &bareT, &bareCPU)
				}
				sent += n
			}
			reportReceive(b, b.N*perSend, bareT, hookT, bareCPU, hookCPU)
			b.ReportMetric(float64(flushT)/float64(hookT), "flush-share")
		}
	}
	// Blocks of 500 requests (60 rounds of 8): a block's final Flush is then a few percent
	// of it, as in a steady stream, where the flusher keeps up behind the requests.
	b.Run("sequential-spool", spooled(500, 1, func(url string) { post(url, nextID()) }))
	b.Run("parallel-8-spool", spooled(60, senders, round))
	var durableRows int
	if err := durableDB.SQL().QueryRowContext(ctx, `SELECT count(*) FROM connkit_webhook_deliveries`).Scan(&durableRows); err != nil {
		b.Fatal(err)
	}
	if n, want := countDeliveries(b, shop)+countDeliveries(b, memShop)+countDeliveries(b, spoolShop)+durableRows, int(seq.Load()-bareIDs.Load()); n != want { // every ID not sent to the bare handler
		b.Fatalf("%d deliveries stored, want %d", n, want)
	}
}

// reportReceive gives the webhook path's rate and its ratios to the bare handler: of wall time
// (x-baseline, the goal) and of process CPU time (x-baseline-cpu: on a machine shared
// with other work, the wall clock also counts time spent waiting for a core).
func reportReceive(b *testing.B, n int, bareT, hookT, bareCPU, hookCPU time.Duration) {
	b.ReportMetric(float64(bareT)/float64(hookT), "x-baseline")
	if hookCPU > 0 {
		b.ReportMetric(float64(bareCPU)/float64(hookCPU), "x-baseline-cpu")
	}
	b.ReportMetric(float64(n)/hookT.Seconds(), "deliveries/s")
	b.ReportMetric(float64(n)/bareT.Seconds(), "bare-requests/s")

}

func countDeliveries(b *testing.B, shop *backend.Backend) int {
	n := 0
	for _, err := range shop.Deliveries().List(context.Background(), webhook.Filter{Endpoint: "shop/shopify"}) {
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	return n
}
