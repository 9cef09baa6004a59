package adapter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/internal/cputime"
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
func rawGet(url string) func(b *testing.B) {
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
	}
}

// adapterGet sends the same request through a Client that audits every call to a Ring.
func adapterGet(url string) func(b *testing.B) {
	return func(b *testing.B) {
		c, err := New(url, WithRecorder(synclog.NewRing(1000)), WithBackendName("bench"), WithAuth(BearerAuth("bench-token")))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			resp, err := c.Do(ctx, &Request{Path: "products/42.json"})
			if err != nil || len(resp.Body) != len(benchBody) {
				b.Fatalf("%v", err)
			}
		}
	}
}

// BenchmarkGet compares GET throughput through the adapter (auditing to a synclog Ring,
// bearer auth, retry machinery armed) with raw net/http against the same loopback
// server, one request at a time. The "ratio" line reports x-baseline = adapter
// throughput / raw throughput (goal ≥ 0.90).
func BenchmarkGet(b *testing.B) {
	srv := benchServer(b)
	b.Run("raw", rawGet(srv.URL))
	b.Run("adapter", adapterGet(srv.URL))
	b.Run("ratio", func(b *testing.B) { interleaved(b, srv.URL, WithRecorder(synclog.NewRing(1000))) })
	b.Run("ratio-noaudit", func(b *testing.B) { interleaved(b, srv.URL) })
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
				if _, err := c.Do(ctx, &Request{Path: "products/42.json"}); err != nil {
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
// against raw net/http: each iteration sends one raw and one adapter request and times
// both, so load changes on the machine hit both sides alike. x-baseline is the ratio of
// wall-clock times (raw / adapter), the throughput goal. x-baseline-cpu is the same ratio
// of process CPU time (client, server and GC work of each request; see cputime.Process): on a
// machine shared with other work the wall clock also counts time spent waiting for a
// core, which hits the side with more goroutine hand-offs harder, while CPU time does not.
func interleaved(b *testing.B, url string, opts ...Option) {
	tr := rawTransport()
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	c, err := New(url, append(opts, WithBackendName("bench"), WithAuth(BearerAuth("bench-token")))...)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var rawT, adT, rawCPU, adCPU time.Duration
	rawOnce := func() {
		c0 := cputime.Process()
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
		rawCPU += cputime.Process() - c0
	}
	adOnce := func() {
		c0 := cputime.Process()
		t0 := time.Now()
		if _, err := c.Do(ctx, &Request{Path: "products/42.json"}); err != nil {
			b.Fatal(err)
		}
		adT += time.Since(t0)
		adCPU += cputime.Process() - c0
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
	if adCPU > 0 {
		b.ReportMetric(float64(rawCPU)/float64(adCPU), "x-baseline-cpu")
	}
}

// cannedTransport answers every request in memory with benchBody, so a benchmark over it
// measures only the client-side work: what the adapter adds on top of net/http.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"bench"}, "Date": {"Mon, 02 Jan 2026 15:04:05 GMT"}},
		Body:          io.NopCloser(strings.NewReader(benchBody)),
		ContentLength: int64(len(benchBody)),
		Request:       req,
	}, nil
}

// BenchmarkOverhead isolates the adapter's own CPU cost: raw net/http and the adapter both
// talk to cannedTransport, interleaved, and x-baseline = raw time / adapter time. Unlike
// BenchmarkGet there is no network and no server, so this ratio is far below 1: it is the
// budget the real ratio loses per request, and the benchmark to profile.
func BenchmarkOverhead(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"audit", []Option{WithRecorder(synclog.NewRing(1000))}},
		{"noaudit", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			hc := &http.Client{Transport: cannedTransport{}}
			c, err := New("http://api.test", append(tc.opts, WithBaseTransport(cannedTransport{}), WithBackendName("bench"), WithAuth(BearerAuth("bench-token")))...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var rawT, adT time.Duration
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/products/42.json", nil)
				req.Header.Set("Accept", "application/json")
				req.Header.Set("Authorization", "Bearer bench-token")
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if len(body) != len(benchBody) {
					b.Fatal("short body")
				}
				t1 := time.Now()
				r, err := c.Do(ctx, &Request{Path: "products/42.json"})
				if err != nil || len(r.Body) != len(benchBody) {
					b.Fatal(err)
				}
				t2 := time.Now()
				rawT += t1.Sub(t0)
				adT += t2.Sub(t1)
			}
			b.ReportMetric(float64(rawT)/float64(adT), "x-baseline")
			b.ReportMetric(float64(adT-rawT)/float64(b.N), "ns-added/op")
		})
	}
}
