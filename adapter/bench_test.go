package adapter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/synclog"
)

const benchBody = `{"product":{"id":42,"title":"Desk lamp","vendor":"Acme","price":"19.90","tags":["home","light"]}}`

func benchServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "bench")
		io.WriteString(w, benchBody)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// rawTransport is the baseline's transport: http.DefaultTransport's settings (proxy from
// the environment, 90 s idle timeout, …) with the adapter's pool size.
func rawTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 64
	return tr
}

// rawGet is the hand-written baseline: net/http with a pooled transport, reading the
// whole body, checking the status.
func rawGet(url string, nsPerOp *float64) func(b *testing.B) {
	return func(b *testing.B) {
		tr := rawTransport()
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/products/42.json", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Authorization", "Bearer bench-token")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || len(body) != len(benchBody) {
				b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, len(body), err)
			}
		}
		*nsPerOp = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
}

// adapterGet sends the same request through a Client that audits every call to a Ring.
func adapterGet(url string, nsPerOp *float64) func(b *testing.B) {
	return func(b *testing.B) {
		c, err := New(url, WithRecorder(synclog.NewRing(1000)), WithBackendName("bench"), WithAuth(BearerAuth("bench-token")))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			resp, err := c.Get(ctx, "products/42.json")
			if err != nil || len(resp.Body) != len(benchBody) {
				b.Fatalf("%v", err)
			}
		}
		*nsPerOp = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
}

// BenchmarkGet compares GET throughput through the adapter (auditing to a synclog Ring,
// bearer auth, retry machinery armed) with raw net/http against the same loopback
// server, one request at a time. The "ratio" line reports x-baseline = adapter
// throughput / raw throughput (goal ≥ 0.90).
func BenchmarkGet(b *testing.B) {
	srv := benchServer(b)
	var raw, ad float64
	b.Run("raw", rawGet(srv.URL, &raw))
	b.Run("adapter", adapterGet(srv.URL, &ad))
	b.Run("ratio", func(b *testing.B) { interleaved(b, srv.URL, raw, ad, WithRecorder(synclog.NewRing(1000))) })
	b.Run("ratio-noaudit", func(b *testing.B) { interleaved(b, srv.URL, 0, 0) })
	b.Run("ratio-concurrent", func(b *testing.B) { concurrent(b, srv.URL) })
}

// concurrent runs raw and adapter requests at the same time from 2×GOMAXPROCS
// goroutines (half of each kind) and reports x-baseline = raw mean latency / adapter
// mean latency under that identical load.
func concurrent(b *testing.B, url string) {
	tr := rawTransport()
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	c, err := New(url, WithRecorder(synclog.NewRing(1000)), WithBackendName("bench"), WithAuth(BearerAuth("bench-token")))
	if err != nil {
		b.Fatal(err)
	}
	var role atomic.Int32
	var rawN, adN, rawT, adT atomic.Int64
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		adapterSide := role.Add(1)%2 == 0
		ctx := context.Background()
		for pb.Next() {
			t0 := time.Now()
			if adapterSide {
				if _, err := c.Get(ctx, "products/42.json"); err != nil {
					b.Error(err)
					return
				}
				adT.Add(int64(time.Since(t0)))
				adN.Add(1)
				continue
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/products/42.json", nil)
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Authorization", "Bearer bench-token")
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			rawT.Add(int64(time.Since(t0)))
			rawN.Add(1)
		}
	})
	if rawN.Load() > 0 && adN.Load() > 0 {
		rawMean := float64(rawT.Load()) / float64(rawN.Load())
		adMean := float64(adT.Load()) / float64(adN.Load())
		b.ReportMetric(rawMean/adMean, "x-baseline")
	}
}

// interleaved reports x-baseline for the adapter configured with opts (plus bearer auth)
// against raw net/http.
func interleaved(b *testing.B, url string, raw, ad float64, opts ...Option) {
	{
		// Interleaved: each iteration sends one raw and one adapter request and times
		// both, so load changes on the machine hit both sides alike.
		tr := rawTransport()
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		c, err := New(url, append(opts, WithBackendName("bench"), WithAuth(BearerAuth("bench-token")))...)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		var rawT, adT time.Duration
		rawOnce := func() {
			t0 := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/products/42.json", nil)
			req.Header.Set("Accept", "application/json")
			req.Header.Set("Authorization", "Bearer bench-token")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			rawT += time.Since(t0)
		}
		adOnce := func() {
			t0 := time.Now()
			if _, err := c.Get(ctx, "products/42.json"); err != nil {
				b.Fatal(err)
			}
			adT += time.Since(t0)
		}
		i := 0
		for b.Loop() {
			// Alternate the order: the second request of a pair may find the server
			// still busy with the first.
			if i++; i%2 == 0 {
				rawOnce()
				adOnce()
			} else {
				adOnce()
				rawOnce()
			}
		}
		b.ReportMetric(float64(rawT)/float64(adT), "x-baseline")
		if raw > 0 && ad > 0 {
			b.ReportMetric(raw/ad, "x-baseline-separate")
		}
	}
}
