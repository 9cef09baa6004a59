package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
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
			// 300 products imported and 2 new local ones exported; 3 local edits exported.
			want := map[string]modelCounts{
				"products":  {Created: 302, Updated: 3},
				"customers": {Created: 60},
				"orders":    {Created: 520},
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

			second, _ := runJSON(t, shop, "-db", db)
			for name, c := range map[string]modelCounts{"products": second.Products, "customers": second.Customers, "orders": second.Orders} {
				if c.Created != 0 || c.Updated != 0 || c.Failed != 0 {
					t.Errorf("second run %s: %+v: unchanged data must create and update nothing", name, c)
				}
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
	for _, want := range []string{"database: ", "model", "product  import", "order  import", "requests: "} {
		if !strings.Contains(out, want) {
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
	for _, args := range [][]string{{"-faults", "1.5"}, {"-faults", "-0.1"}, {"extra"}, {"-nope"}} {
		var stderr bytes.Buffer
		if _, err := parseFlags(args, &stderr); !errors.Is(err, errUsage) || stderr.Len() == 0 {
			t.Fatalf("%v: %v, stderr %q", args, err, stderr.String())
		}
	}
}
