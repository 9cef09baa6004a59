package synclog

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Benchmarks report "x-baseline": time per operation divided by the time of the
// hand-written baseline named in the comment, measured in the same run.

// baselineNs runs f n times and returns its time per call. Benchmarks call it after
// their own loop with the same n (testing.Benchmark cannot nest inside a benchmark).
func baselineNs(n int, f func()) float64 {
	n = max(n, 1)
	start := time.Now()
	for range n {
		f()
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

func reportRatio(b *testing.B, base float64) {
	if b.N > 0 && base > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-baseline")
	}
}

// body2K builds a ~2 KiB JSON document shaped like a product listing.
func body2K(withSecrets bool) []byte {
	var sb strings.Builder
	sb.WriteString(`{"products":[`)
	for i := 0; sb.Len() < 1900; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":%d,"title":"Product number %d","sku":"SKU-%05d","price":"%d.99","tags":["a","b"],"variant":{"weight":1.5,"inventory":%d}}`, i, i, i, i, i*3)
	}
	sb.WriteString(`],"meta":{"page":1`)
	if withSecrets {
		sb.WriteString(`,"access_token":"shpat_abcdef0123456789","auth":{"user":"u","password":"p"}`)
	}
	sb.WriteString(`}}`)
	return []byte(sb.String())
}

var sink string

// BenchmarkRedactorBody: Redactor.Body on ~2 KiB of JSON, against the baseline string(body)
// — the copy any recorder makes anyway.
func BenchmarkRedactorBody(b *testing.B) {
	for _, tc := range []struct {
		name    string
		secrets bool
		lit     bool
	}{
		{"no-secret-fields", false, false},
		{"secret-fields", true, false},
		{"no-secret-fields+literal-secrets", false, true},
	} {
		body := body2K(tc.secrets)
		r := NewRedactor()
		if tc.lit {
			r.AddSecrets("shpat_abcdef0123456789", "client-secret-value", "hunter2hunter2")
		}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				sink = r.Body(body, "application/json")
			}
			b.StopTimer()
			reportRatio(b, baselineNs(b.N, func() { sink = string(body) }))
		})
	}
	b.Run("baseline-copy", func(b *testing.B) {
		body := body2K(true)
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			sink = string(body)
		}
	})
}

// plainRing is the baseline for Ring.Record: the same circular buffer under a mutex, with
// no truncation, no IDs beyond a counter, nothing else.
type plainRing struct {
	mu   sync.Mutex
	buf  []Entry
	next int
}

func (p *plainRing) record(e Entry) {
	p.mu.Lock()
	p.buf[p.next%len(p.buf)] = e
	p.next++
	p.mu.Unlock()
}

func benchEntry() Entry {
	return Entry{
		Backend: "shop", Operation: "import product", Direction: Outbound, Method: "GET",
		URL:            "https://api.test/products?page=2",
		RequestHeader:  http.Header{"Accept": {"application/json"}},
		ResponseHeader: http.Header{"Content-Type": {"application/json"}},
		ResponseBody:   string(body2K(false)),
		Status:         200, Attempts: 1,
	}
}

// BenchmarkRingRecord: Ring.Record against plainRing.record (a bare mutex-guarded slot
// store), single goroutine and parallel.
func BenchmarkRingRecord(b *testing.B) {
	ctx := context.Background()
	e := benchEntry()
	b.Run("serial", func(b *testing.B) {
		r := NewRing(1000)
		b.ReportAllocs()
		for b.Loop() {
			_ = r.Record(ctx, e)
		}
		b.StopTimer()
		p := &plainRing{buf: make([]Entry, 1000)}
		reportRatio(b, baselineNs(b.N, func() { p.record(e) }))
	})
	b.Run("parallel", func(b *testing.B) {
		r := NewRing(1000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = r.Record(ctx, e)
			}
		})
	})
	b.Run("baseline-plain", func(b *testing.B) {
		p := &plainRing{buf: make([]Entry, 1000)}
		for b.Loop() {
			p.record(e)
		}
	})
}

// BenchmarkRedactorEntry: redacting a typical entry (URL with a token, auth header, JSON
// bodies) against the baseline of copying its headers (what Entry must do at minimum).
func BenchmarkRedactorEntry(b *testing.B) {
	r := NewRedactor()
	e := benchEntry()
	e.URL += "&access_token=abc"
	e.RequestHeader.Set("Authorization", "Bearer abc")
	b.ReportAllocs()
	for b.Loop() {
		c := e
		r.Entry(&c)
		sink = c.URL
	}
	b.StopTimer()
	reportRatio(b, baselineNs(b.N, func() {
		c := e
		c.RequestHeader, c.ResponseHeader = e.RequestHeader.Clone(), e.ResponseHeader.Clone()
		sink = c.URL
	}))
}
