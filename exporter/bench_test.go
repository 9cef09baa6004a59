package exporter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/internal/fakeapi"
)

// baselineExport is the hand-written loop: read, encode, POST, remember the external ID.
func baselineExport(tb testing.TB, base string, ids []string) {
	bound := map[string]string{}
	store := genStore{}
	for _, id := range ids {
		p, _ := store.Get(context.Background(), id)
		body, _ := json.Marshal(map[string]any{"name": p.Name, "price": p.Price})
		resp, err := http.Post(base+"/baseline", "application/json", bytes.NewReader(body))
		if err != nil {
			tb.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			tb.Fatalf("status %d", resp.StatusCode)
		}
		bound[id] = gjson.GetBytes(b, "id").String()
	}
}

// BenchmarkExport5k creates 5,000 remote records through the Batch exporter (memory
// bindings, idempotency keys, leases) and through the hand-written loop in the same run.
// "sequential" exports one record at a time like the loop, so its ratio is the exporter's
// overhead; "concurrency=4" is the default batch, whose ratio also shows what concurrency
// buys against a sequential loop.
func BenchmarkExport5k(b *testing.B) {
	for _, bc := range []struct {
		name string
		conc int
	}{{"sequential", 1}, {"concurrency=4", 4}} {
		b.Run(bc.name, func(b *testing.B) { benchExport(b, bc.conc) })
	}
}

func benchExport(b *testing.B, conc int) {
	const n = 5000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(i + 1)
	}
	var tConnkit, tBase time.Duration
	for b.Loop() {
		srv := fakeapi.New()
		c, err := adapter.New(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		exp, err := exporter.New[product](c, binding.NewMemory(), genStore{}, "shop", "product", "/products", mapProduct)
		if err != nil {
			b.Fatal(err)
		}
		batch, err := exporter.NewBatch(exp, exporter.WithConcurrency(conc))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sum, err := batch.Export(context.Background(), ids)
		tConnkit += time.Since(start)
		if err != nil || sum.Created != n {
			b.Fatalf("created %d: %v", sum.Created, err)
		}
		start = time.Now()
		baselineExport(b, srv.URL, ids)
		tBase += time.Since(start)
		srv.Close()
	}
	b.ReportMetric(n*float64(b.N)/tConnkit.Seconds(), "connkit-rec/s")
	b.ReportMetric(n*float64(b.N)/tBase.Seconds(), "baseline-rec/s")
	b.ReportMetric(tBase.Seconds()/tConnkit.Seconds(), "x-baseline")
}
