package webhooktest

import (
	"bytes"
	"context"
	"fmt"
	"github.com/connkit/connkit/internal/cputime"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/webhook"
)

// Bench measures receiving one delivery on a store made by newStore — read the body,
// verify a Shopify-style HMAC-SHA256, store the delivery, notify — against a bare
// handler that reads the body and answers 200, run alternately in the same loop. It
// reports the receiver's time per delivery ("receive-ns/op"), the bare handler's
// ("baseline-ns/op"), their ratio ("x-baseline": the bare handler's time over the
// receiver's, the share of the bare throughput the receiver keeps, as connkit's other
// benchmarks report it) and the same ratio in process CPU time ("x-baseline-cpu", which a
// machine busy with other work distorts less).
//
//	func BenchmarkReceive(b *testing.B) {
//		webhooktest.Bench(b, func(b *testing.B) webhook.Store { return newTestStore(b) })
//	}
func Bench(b *testing.B, newStore func(b *testing.B) webhook.Store) {
	v, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{"bench-secret"})
	if err != nil {
		b.Fatal(err)
	}
	r, err := webhook.NewReceiver("bench", v, newStore(b),
		webhook.WithIDHeader("X-Shopify-Webhook-Id"),
		webhook.WithEventHeader("X-Shopify-Topic"),
		webhook.WithNotify(func(context.Context, webhook.Delivery) error { return nil }))
	if err != nil {
		b.Fatal(err)
	}
	bare := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, err := io.ReadAll(req.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"status":"accepted"}`)
	})
	// A 1 KiB order, as Shopify sends them.
	body := []byte(`{"id":820982911946154508,"email":"jon@example.com","line_items":[` +
		strings.Repeat(`{"sku":"SKU-0001","quantity":1,"price":"19.99"},`, 20) + `{}]}`)
	request := func(i int, signed bool) *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/shopify", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Shopify-Topic", "orders/create")
		req.Header.Set("X-Shopify-Webhook-Id", fmt.Sprintf("b54557e4-bdd9-4b37-8a5f-%012d", i))
		if signed {
			if err := v.Sign(req.Header, body, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		return req
	}
	var opT, baseT, opCPU, baseCPU time.Duration
	receive := func(req *http.Request) {
		rec := httptest.NewRecorder()
		c0, t0 := cputime.Process(), time.Now()
		r.ServeHTTP(rec, req)
		opT += time.Since(t0)
		opCPU += cputime.Process() - c0
		if rec.Code != http.StatusOK {
			b.Fatalf("receiver answered %d %s", rec.Code, rec.Body)
		}
	}
	baseline := func(req *http.Request) {
		rec := httptest.NewRecorder()
		c0, t0 := cputime.Process(), time.Now()
		bare.ServeHTTP(rec, req)
		baseT += time.Since(t0)
		baseCPU += cputime.Process() - c0
		if rec.Code != http.StatusOK {
			b.Fatalf("bare handler answered %d", rec.Code)
		}
	}
	// Both handlers run in every iteration, in alternating order, each timed on its own;
	// building and signing the requests (the sender's work) is outside both timings.
	i := 0
	for b.Loop() {
		req, baseReq := request(i, true), request(i, false)
		if i%2 == 0 {
			receive(req)
			baseline(baseReq)
		} else {
			baseline(baseReq)
			receive(req)
		}
		i++
	}
	b.ReportMetric(float64(opT.Nanoseconds())/float64(i), "receive-ns/op")
	b.ReportMetric(float64(baseT.Nanoseconds())/float64(i), "baseline-ns/op")
	b.ReportMetric(baseT.Seconds()/opT.Seconds(), "x-baseline")
	if opCPU > 0 {
		b.ReportMetric(baseCPU.Seconds()/opCPU.Seconds(), "x-baseline-cpu")
	}
}
