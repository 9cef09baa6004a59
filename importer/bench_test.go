package importer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/cputime"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/sqlstore"
)

const benchPage = 250

// walkPages is the hand-written loops' listing: net/http, a cursor, gjson.
func walkPages(tb testing.TB, base string, page func(gjson.Result)) {
	cursor := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(benchPage)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		resp, err := http.Get(base + "/products?" + q.Encode())
		if err != nil {
			tb.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			tb.Fatal(err)
		}
		p := gjson.ParseBytes(body)
		page(p)
		if cursor = p.Get("next_cursor").String(); cursor == "" {
			return
		}
	}
}

// baselineImport is the hand-written loop connkit is measured against: net/http, gjson, a
// map of bindings and a map of records, one goroutine, no leases, no watermark.
func baselineImport(tb testing.TB, base string) int {
	records := map[string]product{}
	bindings := map[string]string{} // external ID -> local ID
	next := 0
	walkPages(tb, base, func(page gjson.Result) {
		page.Get("items").ForEach(func(_, rec gjson.Result) bool {
			ext := rec.Get("id").String()
			p := product{Name: rec.Get("name").String(), SKU: rec.Get("sku").String()}
			if id, ok := bindings[ext]; ok {
				records[id] = p
				return true
			}
			next++
			id := strconv.Itoa(next)
			records[id] = p
			bindings[ext] = id
			return true
		})
	})
	return len(records)
}

// guardedImport is a second hand-written loop: the same single goroutine, but doing per
// record what a connkit import guarantees — skip-if-unchanged by updated-at and content
// hash, an idempotency key on local creates (so a crash between the local write and the
// binding cannot duplicate a record), a binding with status, times and hash, and both-way
// uniqueness (external and local ID indexes). It tells connkit's own overhead apart from
// the cost of those guarantees.
func guardedImport(tb testing.TB, base string) int {
	type bindingRow struct {
		localID, hash, status string
		updated, synced       time.Time
	}
	records := map[string]product{}
	keys := map[string]string{}       // idempotency key -> local ID
	byExt := map[string]*bindingRow{} // external ID -> binding
	byLocal := map[string]string{}    // local ID -> external ID
	next := 0
	walkPages(tb, base, func(page gjson.Result) {
		now := time.Now()
		page.Get("items").ForEach(func(_, rec gjson.Result) bool {
			ext := rec.Get("id").String()
			updated, err := time.Parse(time.RFC3339Nano, rec.Get("updated_at").Str)
			if err != nil {
				tb.Fatal(err)
			}
			sum := sha256.Sum256([]byte(rec.Raw))
			hash := hex.EncodeToString(sum[:16])
			b := byExt[ext]
			if b != nil && b.status == "success" && (!updated.After(b.updated) || hash == b.hash) {
				return true // unchanged
			}
			p := product{Name: rec.Get("name").String(), SKU: rec.Get("sku").String()}
			if b != nil {
				records[b.localID] = p
				b.hash, b.updated, b.synced = hash, updated, now
				return true
			}
			key := "shop/product/" + ext
			id, ok := keys[key]
			if !ok {
				next++
				id = strconv.Itoa(next)
				keys[key] = id
			}
			records[id] = p
			if _, taken := byLocal[id]; taken {
				tb.Fatalf("local ID %s bound twice", id)
			}
			byExt[ext] = &bindingRow{localID: id, hash: hash, status: "success", updated: updated, synced: now}
			byLocal[id] = ext
			return true
		})
	})
	return len(records)
}

func connkitImport(tb testing.TB, c *adapter.Client, bs binding.Store, store local.Store[product], opts ...importer.BatchOption) importer.Summary {
	imp, err := importer.New(bs, store, "shop", "product", mapProduct)
	if err != nil {
		tb.Fatal(err)
	}
	list := importer.ListFrom(c, adapter.Request{Path: "/products", Query: url.Values{"limit": {strconv.Itoa(benchPage)}}},
		adapter.Cursor("next_cursor", "cursor"), "updated_at_min", adapter.WithRecordsPath("items"))
	batch, err := importer.NewBatch(imp, list, append([]importer.BatchOption{importer.WithCommitSize(benchPage)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	sum, err := batch.Run(context.Background())
	if err != nil || sum.Failed > 0 {
		tb.Fatalf("import: %v, %d failed", err, sum.Failed)
	}
	return sum
}

// BenchmarkImport100kMemory imports 100,000 records from a loopback fakeapi into memory
// stores, and runs the hand-written baseline in the same iteration.
func BenchmarkImport100kMemory(b *testing.B) {
	const n = 100_000
	srv := fakeapi.New(fakeapi.WithPageLimits(benchPage, benchPage))
	defer srv.Close()
	srv.Synthetic("products", n)
	c, err := adapter.New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	var tConnkit, tBase, tGuarded, cpuConnkit, cpuBase, cpuGuarded time.Duration
	for i := 0; b.Loop(); i++ {
		run := func() {
			start, cpu := time.Now(), cputime.Process()
			sum := connkitImport(b, c, binding.NewMemory(), local.NewMemory[product](), benchOpts()...)
			tConnkit += time.Since(start)
			cpuConnkit += cputime.Process() - cpu
			if sum.Created != n {
				b.Fatalf("created %d", sum.Created)
			}
		}
		base := func() {
			start, cpu := time.Now(), cputime.Process()
			if got := baselineImport(b, srv.URL); got != n {
				b.Fatalf("baseline imported %d", got)
			}
			tBase += time.Since(start)
			cpuBase += cputime.Process() - cpu
		}
		guarded := func() {
			start, cpu := time.Now(), cputime.Process()
			if got := guardedImport(b, srv.URL); got != n {
				b.Fatalf("guarded loop imported %d", got)
			}
			tGuarded += time.Since(start)
			cpuGuarded += cputime.Process() - cpu
		}
		if i%2 == 0 {
			run()
			base()
			guarded()
		} else {
			guarded()
			base()
			run()
		}
	}
	iters := float64(b.N)
	b.ReportMetric(n*iters/tConnkit.Seconds(), "connkit-rec/s")
	b.ReportMetric(n*iters/tBase.Seconds(), "baseline-rec/s")
	b.ReportMetric(tBase.Seconds()/tConnkit.Seconds(), "x-baseline")
	b.ReportMetric(tGuarded.Seconds()/tConnkit.Seconds(), "x-guarded-loop")
	// CPU time per record (the whole process: client, fake server and GC) tells where a
	// loaded machine hides the difference: wall time favours whichever side can use the
	// second core, CPU time does not (x-guarded-loop-cpu: the guarded loop's CPU time over
	// connkit's).
	if cpuBase > 0 { // measured on this platform
		b.ReportMetric(float64(cpuConnkit.Nanoseconds())/(n*iters), "connkit-cpu-ns/rec")
		b.ReportMetric(float64(cpuBase.Nanoseconds())/(n*iters), "baseline-cpu-ns/rec")
		b.ReportMetric(float64(cpuGuarded.Nanoseconds())/(n*iters), "guarded-cpu-ns/rec")
		b.ReportMetric(cpuGuarded.Seconds()/cpuConnkit.Seconds(), "x-guarded-loop-cpu")
	}
}

// BenchmarkImport100kSQLite imports 100,000 records with bindings in a SQLite file.
func BenchmarkImport100kSQLite(b *testing.B) {
	const n = 100_000
	srv := fakeapi.New(fakeapi.WithPageLimits(benchPage, benchPage))
	defer srv.Close()
	srv.Synthetic("products", n)
	c, err := adapter.New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		db, err := sqlstore.Open(context.Background(), filepath.Join(b.TempDir(), "bench"+strconv.Itoa(i)+".db"))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		sum := connkitImport(b, c, db.Bindings(), local.NewMemory[product]())
		total += time.Since(start)
		db.Close()
		if sum.Created != n {
			b.Fatalf("created %d", sum.Created)
		}
	}
	b.ReportMetric(n*float64(b.N)/total.Seconds(), "rec/s")
}

// discard is a local store that keeps nothing but counts (the app's writes are not what
// the heap test measures).
type discard struct{ n atomic.Int64 }

func (d *discard) Get(context.Context, string) (product, error) { return product{}, local.ErrNotFound }
func (d *discard) Create(context.Context, product) (string, error) {
	return strconv.FormatInt(d.n.Add(1), 10), nil
}
func (d *discard) CreateKeyed(_ context.Context, key string, _ product) (string, bool, error) {
	d.n.Add(1)
	return key, true, nil
}
func (d *discard) Update(context.Context, string, product) error { return nil }
func (d *discard) Delete(context.Context, string) error          { return nil }

// rss returns the process's resident set size in bytes (0 where /proc is missing).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// TestPeakHeapImport1M imports 1,000,000 records (bindings in SQLite) and samples the heap.
// It runs only when CONNKIT_BENCH_1M=1 and not with -short.
func TestPeakHeapImport1M(t *testing.T) {
	if testing.Short() || os.Getenv("CONNKIT_BENCH_1M") != "1" {
		t.Skip("set CONNKIT_BENCH_1M=1 (and no -short) to import 1,000,000 records and measure the peak heap")
	}
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CONNKIT_BENCH_1M_N")); err == nil && v > 0 {
		n = v
	}
	srv := fakeapi.New(fakeapi.WithPageLimits(benchPage, benchPage))
	defer srv.Close()
	srv.Synthetic("products", n)
	c, err := adapter.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "heap.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	baseHeap := sample[0].Value.Uint64()
	var peak, peakRSS atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
				if v := rss(); v > peakRSS.Load() {
					peakRSS.Store(v)
				}
			}
		}
	})
	start := time.Now()
	sum := connkitImport(t, c, db.Bindings(), &discard{})
	el := time.Since(start)
	close(stop)
	wg.Wait()
	if sum.Created != n {
		t.Fatalf("created %d of %d", sum.Created, n)
	}
	mib := float64(peak.Load()) / (1 << 20)
	t.Logf("imported %d records in %s (%.0f rec/s); peak Go heap %.1f MiB (%.1f MiB before the run); peak process RSS %.1f MiB (includes SQLite's own allocations and the fake API)",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds(), mib, float64(baseHeap)/(1<<20), float64(peakRSS.Load())/(1<<20))
	if mib > 64 {
		t.Errorf("peak heap %.1f MiB > 64 MiB", mib)
	}
}

// benchOpts lets a run try another import concurrency: CONNKIT_BENCH_CONCURRENCY=1 go test -bench ….
func benchOpts() []importer.BatchOption {
	if v, err := strconv.Atoi(os.Getenv("CONNKIT_BENCH_CONCURRENCY")); err == nil && v > 0 {
		return []importer.BatchOption{importer.WithConcurrency(v)}
	}
	return nil
}

// BenchmarkImportPipeline measures the importer's own work per record, with no HTTP: a
// Batch over 100,000 records listed from memory into memory stores (ns/op and allocs/op
// are per 100,000 records, cpu-ns/rec per record). Its CPU time is what a busy machine sees of the import; compare runs
// of it with benchstat.
func BenchmarkImportPipeline(b *testing.B) {
	const n = 100_000
	var buf []byte
	recs := make([]gjson.Result, n)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range recs {
		buf = fakeapi.SyntheticRecord(buf[:0], i+1, base.Add(time.Duration(i+1)*time.Second))
		recs[i] = gjson.Parse(string(buf))
	}
	list := func(context.Context, time.Time) iter.Seq2[gjson.Result, error] {
		return func(yield func(gjson.Result, error) bool) {
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		imp, err := importer.New(binding.NewMemory(), local.NewMemory[product](), "shop", "product", mapProduct)
		if err != nil {
			b.Fatal(err)
		}
		batch, err := importer.NewBatch(imp, list, append([]importer.BatchOption{importer.WithCommitSize(benchPage)}, benchOpts()...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := cputime.Process()
		sum, err := batch.Run(context.Background())
		cpu += cputime.Process() - c0
		if err != nil || sum.Created != n {
			b.Fatalf("created %d: %v", sum.Created, err)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/rec")
}
