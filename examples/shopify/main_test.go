package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/connkittest/fakeshop"
	"github.com/connkit/connkit/sqlstore"
)

// testShop is a small shop (still more than a page of products and orders, with a record
// repeated at every page boundary) with a bucket as large as a Plus plan's, so tests are
// quick.
func testShop(opts ...fakeshop.Option) *fakeshop.Shop {
	return fakeshop.New(append([]fakeshop.Option{fakeshop.WithSize(300, 60, 520), fakeshop.WithBucket(400, 20), fakeshop.WithRepeats(1)}, opts...)...)
}

// runJSON runs the program's main flow in-process on shop and decodes the summary on the
// last line of stdout.
func runJSON(t *testing.T, shop *fakeshop.Shop, args ...string) (summary, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	o, err := parseFlags(append(args, "-json"), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	o.shop = shop
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := o.run(ctx, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	var s summary
	if err := json.Unmarshal([]byte(last), &s); err != nil {
		t.Fatalf("last line of stdout is not the JSON summary: %q: %v", last, err)
	}
	return s, last
}

func TestRunImportsExportsAndSecondRunCreatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults float64
	}{{"clean", 0}, {"faults", 0.2}} {
		t.Run(tc.name, func(t *testing.T) {
			shop := testShop(fakeshop.WithFaults(tc.faults), fakeshop.WithSeed(7))
			defer shop.Close()
			db := filepath.Join(t.TempDir(), "shop.db")

			first, _ := runJSON(t, shop, "-db", db)
			// 300 products imported and 2 new local ones exported; 3 local edits exported;
			// the shop's webhooks update 2 products, a customer and an order.
			want := map[string]modelCounts{
				"products":  {Created: 302, Updated: 3 + 2},
				"customers": {Created: 60, Updated: 1},
				"orders":    {Created: 520, Updated: 1},
			}
			got := map[string]modelCounts{"products": first.Products, "customers": first.Customers, "orders": first.Orders}
			for name, w := range want {
				g := got[name]
				if g.Created != w.Created || g.Updated != w.Updated || g.Failed != 0 {
					t.Errorf("first run %s: %+v, want created %d, updated %d, failed 0", name, g, w.Created, w.Updated)
				}
			}
			// 2 pages of products and 3 of orders, each boundary repeating a record.
			if first.Products.Duplicates != 1 || first.Orders.Duplicates != 2 {
				t.Errorf("duplicates: %d products, %d orders; want 1 and 2", first.Products.Duplicates, first.Orders.Duplicates)
			}
			// 4 webhooks, a redelivery of the first, and one altered on the way.
			if w := first.Webhooks; w != (webhookCounts{Received: 6, Processed: 4, Rejected: 1}) {
				t.Errorf("webhooks %+v, want 6 received, 4 processed, 1 rejected", w)
			}
			if tc.faults == 0 && (first.Retries != 0 || first.Limited != 0) {
				t.Errorf("clean run: %d retries, %d 429s", first.Retries, first.Limited)
			}
			if tc.faults > 0 && (shop.Stats().Faults == 0 || first.Retries == 0) {
				t.Errorf("faulty run: %d faults, %d retries", shop.Stats().Faults, first.Retries)
			}
			if n := shop.Count(fakeshop.Products); n != 302 {
				t.Errorf("the shop has %d products, want 300 + 2 exported (a retried create made a duplicate?)", n)
			}
			checkLocal(t, db, shop)

			// The same shop again: nothing to create, nothing to export; only what the
			// shop's webhooks change may update (the merchant's edits are made again,
			// with the same values: within the same second the shop's updated_at does not
			// even move, and they are skipped as unchanged).
			writes := shop.Stats()
			second, last2 := runJSON(t, shop, "-db", db)
			for name, c := range map[string]modelCounts{"products": second.Products, "customers": second.Customers, "orders": second.Orders} {
				if c.Created != 0 || c.Failed != 0 {
					t.Errorf("second run %s: %+v: unchanged data must create nothing", name, c)
				}
			}
			if second.Products.Updated > 2 || second.Customers.Updated > 1 || second.Orders.Updated > 1 {
				t.Errorf("second run updated more than the webhooks' 2 products, 1 customer, 1 order: %s", last2)
			}
			if now := shop.Stats(); now.Creates != writes.Creates || now.Updates != writes.Updates {
				t.Errorf("second run wrote to the shop: %d creates, %d updates", now.Creates-writes.Creates, now.Updates-writes.Updates)
			}
			if n := shop.Count(fakeshop.Products); n != 302 {
				t.Errorf("second run: the shop has %d products, want 302", n)
			}
		})
	}
}

// checkLocal reads the app's records the run wrote.
func checkLocal(t *testing.T, path string, shop *fakeshop.Shop) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orders, _ := sqlstore.Records[Order](ctx, db, "order")
	products, _ := sqlstore.Records[Product](ctx, db, "product")
	guests, linked := 0, 0
	n := 0
	for e, err := range orders.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if e.Value.CustomerID == "" {
			guests++
		} else {
			linked++
		}
		for _, pid := range e.Value.ProductIDs {
			if _, err := products.Get(ctx, pid); err != nil {
				t.Fatalf("order %s refers to local product %q: %v", e.Value.Number, pid, err)
			}
		}
	}
	if n != 520 || guests == 0 || linked == 0 {
		t.Fatalf("%d local orders, %d guests, %d with a customer", n, guests, linked)
	}
	edited := 0
	for _, id := range shop.IDs(fakeshop.Products) {
		b, _ := shop.Get(fakeshop.Products, id)
		if strings.Contains(gjson.GetBytes(b, "tags").Str, "connkit-edited") {
			edited++
			if gjson.GetBytes(b, "variants.0.price").Str != "29.00" {
				t.Fatalf("edited product's first variant: %s", gjson.GetBytes(b, "variants.0").Raw)
			}
		}
	}
	if edited != 3 {
		t.Fatalf("%d products carry the exported edit, want 3", edited)
	}
}

func TestJSONSummaryShape(t *testing.T) {
	shop := testShop()
	defer shop.Close()
	_, last := runJSON(t, shop, "-db", filepath.Join(t.TempDir(), "shop.db"))
	for _, model := range []string{"products", "customers", "orders"} {
		for _, k := range []string{"created", "updated", "skipped", "duplicates", "failed"} {
			if v := gjson.Get(last, model+"."+k); v.Type != gjson.Number {
				t.Errorf("%s.%s is %s in %s", model, k, v.Type, last)
			}
		}
	}
	for _, k := range []string{"webhooks.received", "webhooks.processed", "webhooks.rejected", "requests", "retries", "429s"} {
		if v := gjson.Get(last, k); v.Type != gjson.Number {
			t.Errorf("%s is %s in %s", k, v.Type, last)
		}
	}
}

func TestTableOutput(t *testing.T) {
	shop := testShop()
	defer shop.Close()
	var stdout, stderr bytes.Buffer
	o, err := parseFlags([]string{"-db", filepath.Join(t.TempDir(), "shop.db")}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	o.shop = shop
	if err := o.run(context.Background(), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{`database: `, `model\s+step\s+created\s+updated\s+skipped\s+duplicates\s+failed`,
		`product\s+import\s+300\s+0\s+0\s+1\s+0`, `order\s+import\s+520\s`, `webhooks: 6 received, 4 processed, 1 rejected`, `requests: \d+`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("stdout lacks %q:\n%s", want, out)
		}
	}
	// stderr is not a terminal here: plain progress lines, no escape sequences.
	if strings.Contains(stderr.String(), "\033[") || !strings.Contains(stderr.String(), "importing products, customers and orders: ") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}

func TestWrongTokenStopsAfterOneRequest(t *testing.T) {
	const secret = "shpat_0123456789abcdef-not-the-right-one"
	shop := testShop()
	defer shop.Close()
	var stdout, stderr bytes.Buffer
	o, err := parseFlags([]string{"-db", filepath.Join(t.TempDir(), "shop.db"), "-token", secret}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	o.shop = shop
	err = o.run(context.Background(), &stdout, &stderr)
	if err == nil {
		t.Fatal("a wrong token must fail the run")
	}
	if !strings.Contains(err.Error(), "check -token (or SHOPIFY_TOKEN)") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("the message must say what to check: %v", err)
	}
	for what, s := range map[string]string{"error": err.Error(), "stdout": stdout.String(), "stderr": stderr.String()} {
		if strings.Contains(s, secret) || strings.Contains(s, secret[:12]) {
			t.Fatalf("the token appears in %s: %s", what, s)
		}
	}
	if n := shop.Stats().Requests; n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// run itself, as main calls it: the embedded shop, a wrong token, exit status 1.
func TestRunWrongTokenOnTheEmbeddedShop(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-db", filepath.Join(t.TempDir(), "x.db"), "-token", "shpat_wrong"}, &stdout, &stderr)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "refused the access token") {
		t.Fatalf("got %v", err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-faults", "1.5"}, {"-faults", "-0.1"}, {"extra"}, {"-nope"}, {"-faults", "0.1", "-base-url", "https://example.myshopify.com/admin/api/2024-04"}} {
		var stderr bytes.Buffer
		if _, err := parseFlags(args, &stderr); !errors.Is(err, errUsage) || stderr.Len() == 0 {
			t.Fatalf("%v: %v, stderr %q", args, err, stderr.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while the run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// -listen keeps serving webhooks until interrupted, then prints the summary with what it
// received meanwhile.
func TestListenServesUntilInterrupted(t *testing.T) {
	shop := testShop()
	defer shop.Close()
	var stdout, stderr syncBuffer
	o, err := parseFlags([]string{"-db", filepath.Join(t.TempDir(), "shop.db"), "-listen", "127.0.0.1:0", "-json"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	o.shop = shop
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- o.run(ctx, &stdout, &stderr) }()

	re := regexp.MustCompile(`serving webhooks at (\S+) until interrupted`)
	var url string
	for deadline := time.Now().Add(time.Minute); url == ""; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before serving: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving:\n%s", stderr.String())
		}
	}
	id := shop.IDs(fakeshop.Customers)[5]
	if _, err := shop.Update(fakeshop.Customers, id, map[string]any{"first_name": "Renamed"}); err != nil {
		t.Fatal(err)
	}
	w, err := shop.Webhook("customers/update", id)
	if err != nil {
		t.Fatal(err)
	}
	if status, err := send(ctx, w, url); err != nil || status != 200 {
		t.Fatalf("delivery: %d %v", status, err)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("an interrupt ends -listen cleanly, got %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("no summary after the interrupt: %q", stdout.String())
	}
	if s.Webhooks.Received != 7 || s.Webhooks.Processed != 5 || s.Customers.Updated != 2 {
		t.Fatalf("webhooks %+v, customers %+v: want the demo's 6 and the one sent while listening", s.Webhooks, s.Customers)
	}
}
