package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/connkittest/fakecrm"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

// Latency hiding. Each request to the API takes benchLatency more; a page holds 100
// records; 100 pages are walked.
const (
	benchLatency = 50 * time.Millisecond
	benchPages   = 100
	benchPerPage = 100
)

// BenchmarkCursorImportLatency imports 100 pages of contacts (cursor pagination in the
// body, 50 ms per request) through the example's connector, and compares with a
// hand-written loop that only fetches those pages: net/http, read the body, find
// paging.next.after. x-fetch-only is connkit's time over the loop's; ≤ 1.10 means
// processing (decoding, mapping, local writes, bindings) hides behind the fetching of the
// next page. store=sqlite is the example as it runs (records, bindings and audit log in
// one SQLite file); store=sqlite,audit=ring the same with the audit log in memory (the
// SQL audit entry of each page is written on the request path, before the next page is
// asked for); store=memory the same declarations on memory stores. The connector's
// client-side rate limit is off here: this measures latency, not the CRM's quota.
//
//	go test -run '^$' -bench CursorImportLatency -benchtime 1x ./examples/crm
func BenchmarkCursorImportLatency(b *testing.B) {
	crm := fakecrm.New(fakecrm.WithSeedData(benchPages*benchPerPage, 20, 1))
	defer crm.Close()
	cfg, err := backend.ParseConfig(crmYAML, func(name string) (string, bool) {
		return map[string]string{"CRM_BASE_URL": crm.URL, "CRM_TOKEN": crm.Token()}[name], true
	})
	if err != nil {
		b.Fatal(err)
	}
	cfg.RateLimit = backend.RateLimitConfig{}
	b.Run("store=memory", func(b *testing.B) {
		benchCursorImport(b, crm, func(int) (*backend.Backend, func()) {
			bk, err := backend.New(cfg, backend.WithModel(companyModel(local.NewMemory[Company]())),
				backend.WithModel(contactModel(local.NewMemory[Contact]())))
			if err != nil {
				b.Fatal(err)
			}
			return bk, func() {}
		})
	})
	b.Run("store=sqlite", func(b *testing.B) {
		benchCursorImport(b, crm, func(i int) (*backend.Backend, func()) {
			ctx := context.Background()
			db, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("bench%d.db", i)))
			if err != nil {
				b.Fatal(err)
			}
			a, err := newApp(ctx, cfg, db)
			if err != nil {
				b.Fatal(err)
			}
			return a.crm, func() { db.Close() }
		})
	})
	b.Run("store=sqlite,audit=ring", func(b *testing.B) {
		benchCursorImport(b, crm, func(i int) (*backend.Backend, func()) {
			ctx := context.Background()
			db, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("bench%d.db", i)))
			if err != nil {
				b.Fatal(err)
			}
			a, err := newApp(ctx, cfg, db, backend.WithRecorder(synclog.NewRing(100)))
			if err != nil {
				b.Fatal(err)
			}
			return a.crm, func() { db.Close() }
		})
	})
}

func benchCursorImport(b *testing.B, crm *fakecrm.Server, connector func(i int) (*backend.Backend, func())) {
	ctx := context.Background()
	var connkit, loop time.Duration
	for i := range b.N {
		b.StopTimer()
		bk, done := connector(i)
		// Companies first, so the contacts' relations resolve without extra fetches.
		if _, err := bk.Sync(ctx, "import_company"); err != nil {
			b.Fatal(err)
		}
		crm.SetLatency(benchLatency)
		b.StartTimer()

		start := time.Now()
		pages := fetchCursorPages(b, crm)
		loop += time.Since(start)

		start = time.Now()
		n, err := bk.Sync(ctx, "import_contact")
		connkit += time.Since(start)

		b.StopTimer()
		crm.SetLatency(0)
		done()
		if err != nil || n.Created != benchPages*benchPerPage || pages != benchPages {
			b.Fatalf("imported %+v (%v), the loop fetched %d pages", n, err, pages)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(connkit)/float64(loop), "x-fetch-only")
	b.ReportMetric(connkit.Seconds()/float64(b.N), "s-connkit/op")
	b.ReportMetric(loop.Seconds()/float64(b.N), "s-fetch-only/op")
}

// fetchCursorPages is the baseline: walk the contacts listing by paging.next.after and
// only read each page.
func fetchCursorPages(b *testing.B, crm *fakecrm.Server) int {
	q := url.Values{}
	for k, v := range contactQuery {
		q[k] = v
	}
	pages := 0
	for {
		body := get(b, crm.URL+contactsPath+"?"+q.Encode(), crm.Token())
		pages++
		after := gjson.GetBytes(body, "paging.next.after")
		if !after.Exists() {
			return pages
		}
		q.Set("after", after.String())
	}
}

func get(b *testing.B, u, token string) []byte {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return body
}

type benchItem struct {
	Name  string `json:"name"`
	SKU   string `json:"sku"`
	Price string `json:"price"`
}

// BenchmarkPageNumberImportLatency imports 100 pages of a page-number listing (50 ms
// per request) through a backend whose model declares Prefetch 4 (4 page requests in
// flight), and compares with a hand-written loop fetching the pages one after another
// (x-sequential: connkit's time over it; the goal is ≤ 0.35). x-hand-concurrent is a
// hand-written fetcher with 4 pages in flight over the same sequential loop: the floor
// for 4 pages in flight. x-prefetch-1 is the same import with Prefetch 1 (one page at a
// time) over the sequential loop. The CRM API has no page numbers, so this uses the
// generic fake API; records go to memory stores.
//
//	go test -run '^$' -bench PageNumberImportLatency -benchtime 1x ./examples/crm
func BenchmarkPageNumberImportLatency(b *testing.B) {
	ctx := context.Background()
	api := fakeapi.New(fakeapi.WithPagination(fakeapi.StylePageNumber), fakeapi.WithPageLimits(benchPerPage, 250))
	defer api.Close()
	api.Synthetic("items", benchPages*benchPerPage)
	newBackend := func(prefetch int) *backend.Backend {
		items := local.NewMemory[benchItem]()
		bk, err := backend.New(backend.Config{Name: "bench", BaseURL: api.URL},
			backend.WithModel(backend.Model[benchItem]{
				Name: "item", Local: items,
				Import: &backend.Import{
					List:  adapter.Request{Path: "/items"},
					Pages: adapter.PageNumber("page", 1, "per_page", benchPerPage), Records: "items",
					Concurrency: 4, Prefetch: prefetch,
					Rules: []mapper.Rule{mapper.Direct("name", "name"), mapper.Direct("sku", "sku"),
						mapper.Direct("price", "price")},
				},
			}))
		if err != nil {
			b.Fatal(err)
		}
		return bk
	}
	var connkit, connkit1, seq, conc time.Duration
	for range b.N {
		b.StopTimer()
		bk, bk1 := newBackend(4), newBackend(1)
		api.ClearFaults()
		api.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: benchLatency, Every: 1})
		b.StartTimer()

		start := time.Now()
		n := fetchPagesSequential(b, api.URL)
		seq += time.Since(start)

		start = time.Now()
		m := fetchPagesConcurrent(b, api.URL, 4)
		conc += time.Since(start)

		start = time.Now()
		got, err := bk.Sync(ctx, "import_item")
		connkit += time.Since(start)

		start = time.Now()
		got1, err1 := bk1.Sync(ctx, "import_item")
		connkit1 += time.Since(start)

		b.StopTimer()
		api.ClearFaults()
		if err != nil || err1 != nil || got.Created != benchPages*benchPerPage || got1 != got || n != benchPages*benchPerPage || m != n {
			b.Fatalf("connkit %+v (%v), prefetch 1 %+v (%v), sequential %d, concurrent %d records", got, err, got1, err1, n, m)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(connkit)/float64(seq), "x-sequential")
	b.ReportMetric(float64(conc)/float64(seq), "x-hand-concurrent")
	b.ReportMetric(float64(connkit1)/float64(seq), "x-prefetch-1")
	b.ReportMetric(connkit.Seconds()/float64(b.N), "s-connkit/op")
	b.ReportMetric(seq.Seconds()/float64(b.N), "s-sequential/op")
}

func pageURL(base string, page int) string {
	return base + "/items?page=" + strconv.Itoa(page) + "&per_page=" + strconv.Itoa(benchPerPage)
}

// fetchPagesSequential fetches pages 1, 2, … until a short page and returns the records
// seen.
func fetchPagesSequential(b *testing.B, base string) int {
	total := 0
	for page := 1; ; page++ {
		n := len(gjson.GetBytes(get(b, pageURL(base, page), ""), "items").Array())
		total += n
		if n < benchPerPage {
			return total
		}
	}
}

// fetchPagesConcurrent fetches pages with workers goroutines taking page numbers in
// turn until one sees a short page.
func fetchPagesConcurrent(b *testing.B, base string, workers int) int {
	var next, total atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !done.Load() {
				page := int(next.Add(1))
				n := len(gjson.GetBytes(get(b, pageURL(base, page), ""), "items").Array())
				total.Add(int64(n))
				if n < benchPerPage {
					done.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return int(total.Load())
}
