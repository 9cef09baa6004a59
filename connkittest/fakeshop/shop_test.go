package fakeshop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/connkittest/fakeshop"
)

// small is a shop small enough for quick tests, with no rate limit unless asked.
func small(opts ...fakeshop.Option) *fakeshop.Shop {
	return fakeshop.New(append([]fakeshop.Option{fakeshop.WithSize(30, 20, 40), fakeshop.WithBucket(0, 0)}, opts...)...)
}

type call struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, h http.Handler, method, target, token string, body string) call {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if token != "" {
		req.Header.Set("X-Shopify-Access-Token", token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return call{rec.Code, rec.Header(), rec.Body.Bytes()}
}

const api = "/admin/api/2024-04"

func TestWrongTokenIs401WithShopifyBody(t *testing.T) {
	s := small()
	for _, tok := range []string{"", "shpat_wrong", "shpat_fak"} {
		c := do(t, s, "GET", api+"/products.json", tok, "")
		if c.status != 401 || string(c.body) != `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}` {
			t.Fatalf("token %q: %d %s", tok, c.status, c.body)
		}
	}
	if st := s.Stats(); st.Unauthorized != 3 || st.Lists != 0 {
		t.Fatalf("stats %+v", st)
	}
	if c := do(t, s, "GET", api+"/products.json", s.Token(), ""); c.status != 200 {
		t.Fatalf("right token: %d %s", c.status, c.body)
	}
}

func TestShapesAndIDs(t *testing.T) {
	s := small()
	tok := s.Token()
	c := do(t, s, "GET", api+"/products.json?limit=5", tok, "")
	if c.status != 200 {
		t.Fatalf("%d %s", c.status, c.body)
	}
	ps := gjson.GetBytes(c.body, "products").Array()
	if len(ps) != 5 {
		t.Fatalf("want 5 products, got %d", len(ps))
	}
	for _, p := range ps {
		if id := p.Get("id").Raw; len(id) < 13 {
			t.Fatalf("product id %s has fewer than 13 digits", id)
		}
		if len(p.Get("variants").Array()) == 0 || p.Get("variants.0.product_id").Raw != p.Get("id").Raw {
			t.Fatalf("variants do not belong to their product: %s", p.Raw)
		}
		if _, err := time.Parse(time.RFC3339, p.Get("updated_at").Str); err != nil {
			t.Fatalf("updated_at: %v", err)
		}
	}
	id := ps[0].Get("id").Raw
	one := do(t, s, "GET", api+"/products/"+id+".json", tok, "")
	if one.status != 200 || gjson.GetBytes(one.body, "product.id").Raw != id {
		t.Fatalf("one product: %d %s", one.status, one.body)
	}
	if c := do(t, s, "GET", api+"/products/1.json", tok, ""); c.status != 404 || string(c.body) != `{"errors":"Not Found"}` {
		t.Fatalf("missing product: %d %s", c.status, c.body)
	}
	if c := do(t, s, "GET", api+"/products/count.json", tok, ""); string(c.body) != `{"count":30}` {
		t.Fatalf("count: %s", c.body)
	}
	if c := do(t, s, "GET", api+"/shop.json", tok, ""); c.status != 200 || !gjson.GetBytes(c.body, "shop.myshopify_domain").Exists() {
		t.Fatalf("shop: %d %s", c.status, c.body)
	}
	for _, bad := range []string{"/admin/api/latest/products.json", api + "/widgets.json", api + "/products", api + "/products/abc.json"} {
		if c := do(t, s, "GET", bad, tok, ""); c.status != 404 {
			t.Fatalf("%s: %d", bad, c.status)
		}
	}
	f := do(t, s, "GET", api+"/customers.json?limit=3&fields=id,email", tok, "")
	for _, c := range gjson.GetBytes(f.body, "customers").Array() {
		if keys := len(c.Map()); keys != 2 {
			t.Fatalf("fields=id,email gave %d keys: %s", keys, c.Raw)
		}
	}
}

func TestOrdersGuestsAndStatus(t *testing.T) {
	s := fakeshop.New(fakeshop.WithSize(50, 30, 200), fakeshop.WithBucket(0, 0))
	tok := s.Token()
	open := gjson.GetBytes(do(t, s, "GET", api+"/orders/count.json", tok, "").body, "count").Int()
	all := gjson.GetBytes(do(t, s, "GET", api+"/orders/count.json?status=any", tok, "").body, "count").Int()
	if all != 200 || open >= all || open == 0 {
		t.Fatalf("open %d of %d: the default must list open orders only", open, all)
	}
	guests, withCustomer := 0, 0
	for o, err := range adapter.Records(context.Background(), client(t, s), adapter.Request{Path: "/orders.json", Query: url.Values{"status": {"any"}, "limit": {"250"}}},
		adapter.LinkHeader(), adapter.WithRecordsPath("orders")) {
		if err != nil {
			t.Fatal(err)
		}
		switch c := o.Get("customer"); c.Type {
		case gjson.Null:
			guests++
		default:
			withCustomer++
			if len(c.Get("id").Raw) < 13 {
				t.Fatalf("customer id %s", c.Get("id").Raw)
			}
		}
		for _, l := range o.Get("line_items").Array() {
			if l.Get("variant_id").Type != gjson.Null && s.Count(fakeshop.Products) > 0 {
				if _, ok := s.Get(fakeshop.Products, l.Get("product_id").Int()); !ok {
					t.Fatalf("line refers to a product the shop does not have: %s", l.Raw)
				}
			}
		}
	}
	if guests == 0 || withCustomer == 0 {
		t.Fatalf("want guest and customer orders, got %d and %d", guests, withCustomer)
	}
}

// client is a connkit adapter client on an httptest server of s.
func client(t *testing.T, s *fakeshop.Shop, opts ...adapter.Option) *adapter.Client {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := adapter.New(srv.URL+s.APIPath(), append([]adapter.Option{
		adapter.WithAuth(adapter.APIKeyHeader("X-Shopify-Access-Token", s.Token())),
		adapter.WithRetryWait(time.Millisecond, 20*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// walk lists a resource through the Link header and returns the IDs in order.
func walk(t *testing.T, c *adapter.Client, path string, q url.Values, records string) []int64 {
	t.Helper()
	var ids []int64
	for r, err := range adapter.Records(context.Background(), c, adapter.Request{Path: path, Query: q}, adapter.LinkHeader(), adapter.WithRecordsPath(records)) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Get("id").Int())
	}
	return ids
}

func TestLinkPaginationRepeatsAndCompleteness(t *testing.T) {
	for _, tc := range []struct {
		repeats, limit, wantDup int
	}{{0, 7, 0}, {2, 7, 2}, {4, 3, 2}} {
		s := small(fakeshop.WithRepeats(tc.repeats))
		ids := walk(t, client(t, s), "/products.json", url.Values{"limit": {strconv.Itoa(tc.limit)}, "order": {"updated_at asc"}}, "products")
		seen := map[int64]int{}
		for _, id := range ids {
			seen[id]++
		}
		if len(seen) != 30 {
			t.Fatalf("repeats %d: walked %d distinct products, want 30", tc.repeats, len(seen))
		}
		if dup := len(ids) - len(seen); dup != tc.wantDup {
			t.Fatalf("repeats %d, limit %d: %d repeated records, want %d", tc.repeats, tc.limit, dup, tc.wantDup)
		}
	}
}

func TestListingOrderAndUpdatedAtMin(t *testing.T) {
	s := small(fakeshop.WithRepeats(0))
	c := client(t, s)
	ids := walk(t, c, "/customers.json", url.Values{"limit": {"6"}, "order": {"updated_at asc"}}, "customers")
	var last time.Time
	var times []time.Time
	for _, id := range ids {
		b, _ := s.Get(fakeshop.Customers, id)
		u, _ := time.Parse(time.RFC3339, gjson.GetBytes(b, "updated_at").Str)
		if u.Before(last) {
			t.Fatalf("order=updated_at asc is not sorted: %v after %v", u, last)
		}
		last = u
		times = append(times, u)
	}
	mid := times[len(times)/2]
	since := walk(t, c, "/customers.json", url.Values{"limit": {"6"}, "order": {"updated_at asc"}, "updated_at_min": {mid.UTC().Format(time.RFC3339Nano)}}, "customers")
	want := 0
	for _, u := range times {
		if !u.Before(mid) {
			want++
		}
	}
	if len(since) != want {
		t.Fatalf("updated_at_min: %d records, want %d", len(since), want)
	}
	byID := walk(t, c, "/customers.json", url.Values{"limit": {"250"}}, "customers")
	for i := 1; i < len(byID); i++ {
		if byID[i] <= byID[i-1] {
			t.Fatal("the default order is by id")
		}
	}
}

func TestPageInfoRules(t *testing.T) {
	s := small()
	tok := s.Token()
	first := do(t, s, "GET", api+"/products.json?limit=10&order=updated_at+asc", tok, "")
	next := linkRel(t, first.header.Get("Link"), "next")
	if strings.Contains(first.header.Get("Link"), "previous") {
		t.Fatal("the first page has no previous link")
	}
	u, _ := url.Parse(next)
	if q := u.Query(); len(q) != 2 || q.Get("limit") != "10" || q.Get("page_info") == "" {
		t.Fatalf("next link carries %v, want limit and page_info only", q)
	}
	second := do(t, s, "GET", u.RequestURI(), tok, "")
	if second.status != 200 {
		t.Fatalf("%d %s", second.status, second.body)
	}
	prev, _ := url.Parse(linkRel(t, second.header.Get("Link"), "previous"))
	back := do(t, s, "GET", prev.RequestURI(), tok, "")
	if gjson.GetBytes(back.body, "products.#.id").Raw != gjson.GetBytes(first.body, "products.#.id").Raw {
		t.Fatalf("previous page differs from the first:\n%s\n%s", gjson.GetBytes(back.body, "products.#.id").Raw, gjson.GetBytes(first.body, "products.#.id").Raw)
	}
	pi := u.Query().Get("page_info")
	for _, extra := range []string{"updated_at_min=2020-01-01", "order=id+asc", "status=any", "since_id=1"} {
		c := do(t, s, "GET", api+"/products.json?page_info="+pi+"&"+extra, tok, "")
		if c.status != 400 || !strings.Contains(string(c.body), "page_info") {
			t.Fatalf("page_info with %s: %d %s", extra, c.status, c.body)
		}
	}
	if c := do(t, s, "GET", api+"/products.json?page_info="+pi+"&limit=3&fields=id", tok, ""); c.status != 200 || len(gjson.GetBytes(c.body, "products").Array()) != 3 {
		t.Fatalf("limit and fields may accompany page_info: %d %s", c.status, c.body)
	}
	for _, bad := range []string{"x", "%00", "eyJyIjoib3JkZXJzIn0", pi[:len(pi)/2]} {
		if c := do(t, s, "GET", api+"/products.json?page_info="+url.QueryEscape(bad), tok, ""); c.status != 400 {
			t.Fatalf("page_info %q: %d %s", bad, c.status, c.body)
		}
	}
	// A cursor of one resource is no cursor of another.
	if c := do(t, s, "GET", api+"/orders.json?page_info="+pi, tok, ""); c.status != 400 {
		t.Fatalf("products cursor on orders: %d", c.status)
	}
	for _, q := range []string{"limit=0", "limit=251", "limit=x", "updated_at_min=yesterday", "order=price", "status=paid"} {
		if c := do(t, s, "GET", api+"/orders.json?"+q, tok, ""); c.status != 400 || !gjson.GetBytes(c.body, "errors").IsObject() {
			t.Fatalf("%s: %d %s", q, c.status, c.body)
		}
	}
}

var linkRE = regexp.MustCompile(`<([^>]+)>; rel="([a-z]+)"`)

func linkRel(t *testing.T, header, rel string) string {
	t.Helper()
	for _, m := range linkRE.FindAllStringSubmatch(header, -1) {
		if m[2] == rel {
			return m[1]
		}
	}
	t.Fatalf("no rel=%q in Link %q", rel, header)
	return ""
}

func TestLeakyBucket(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := small(fakeshop.WithBucket(40, 2), fakeshop.WithClock(clock))
	for i := 1; i <= 40; i++ {
		c := do(t, s, "GET", api+"/shop.json", s.Token(), "")
		if c.status != 200 || c.header.Get("X-Shopify-Shop-Api-Call-Limit") != strconv.Itoa(i)+"/40" {
			t.Fatalf("call %d: %d, limit header %q", i, c.status, c.header.Get("X-Shopify-Shop-Api-Call-Limit"))
		}
	}
	c := do(t, s, "GET", api+"/shop.json", s.Token(), "")
	if c.status != 429 || c.header.Get("Retry-After") != "2.0" || c.header.Get("X-Shopify-Shop-Api-Call-Limit") != "40/40" {
		t.Fatalf("41st call: %d, Retry-After %q, limit %q", c.status, c.header.Get("Retry-After"), c.header.Get("X-Shopify-Shop-Api-Call-Limit"))
	}
	advance(500 * time.Millisecond) // one call leaks out
	if c := do(t, s, "GET", api+"/shop.json", s.Token(), ""); c.status != 200 || c.header.Get("X-Shopify-Shop-Api-Call-Limit") != "40/40" {
		t.Fatalf("after a leak: %d %q", c.status, c.header.Get("X-Shopify-Shop-Api-Call-Limit"))
	}
	advance(time.Minute)
	if c := do(t, s, "GET", api+"/shop.json", s.Token(), ""); c.header.Get("X-Shopify-Shop-Api-Call-Limit") != "1/40" {
		t.Fatalf("drained bucket: %q", c.header.Get("X-Shopify-Shop-Api-Call-Limit"))
	}
	if st := s.Stats(); st.Throttled != 1 {
		t.Fatalf("throttled %d, want 1", st.Throttled)
	}
	// Another leak rate scales the Retry-After, always with a decimal.
	fast := small(fakeshop.WithBucket(1, 20), fakeshop.WithClock(clock))
	do(t, fast, "GET", api+"/shop.json", fast.Token(), "")
	if c := do(t, fast, "GET", api+"/shop.json", fast.Token(), ""); c.status != 429 || c.header.Get("Retry-After") != "0.2" {
		t.Fatalf("fast bucket: %d %q", c.status, c.header.Get("Retry-After"))
	}
}

func TestProductWrites(t *testing.T) {
	s := small()
	tok := s.Token()
	post := func(body, key string) call {
		req := httptest.NewRequest("POST", api+"/products.json", strings.NewReader(body))
		req.Header.Set("X-Shopify-Access-Token", tok)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return call{rec.Code, rec.Header(), rec.Body.Bytes()}
	}
	created := post(`{"product":{"title":"Desk Lamp","variants":[{"price":"35.00","sku":"LAMP-1"}]}}`, "k1")
	if created.status != 201 {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	id := gjson.GetBytes(created.body, "product.id").Int()
	if len(strconv.FormatInt(id, 10)) < 13 || gjson.GetBytes(created.body, "product.variants.0.price").Str != "35.00" {
		t.Fatalf("created: %s", created.body)
	}
	again := post(`{"product":{"title":"Desk Lamp","variants":[{"price":"35.00","sku":"LAMP-1"}]}}`, "k1")
	if again.status != 201 || !bytes.Equal(again.body, created.body) || s.Count(fakeshop.Products) != 31 {
		t.Fatalf("a repeated Idempotency-Key must replay the first create: %d, %d products", again.status, s.Count(fakeshop.Products))
	}
	if st := s.Stats(); st.Creates != 1 || st.Replays != 1 {
		t.Fatalf("stats %+v", st)
	}
	for body, want := range map[string]string{
		`{"product":{"title":"  "}}`:                            `{"errors":{"title":["can't be blank"]}}`,
		`{"product":{"title":"A","variants":[{"price":"-1"}]}}`: `{"errors":{"variants.price":["must be a number greater than or equal to 0"]}}`,
		`{"product":{"title":"A","status":"gone"}}`:             `{"errors":{"status":["is not included in the list"]}}`,
	} {
		if c := post(body, ""); c.status != 422 || string(c.body) != want {
			t.Fatalf("%s: %d %s", body, c.status, c.body)
		}
	}
	for _, body := range []string{`not json`, `{"title":"no wrapper"}`, `{"product":"x"}`, `[]`} {
		if c := post(body, ""); c.status != 400 || string(c.body) != `{"errors":{"product":"Required parameter missing or invalid"}}` {
			t.Fatalf("%s: %d %s", body, c.status, c.body)
		}
	}
	if c := post(`{"product":{"title":"`+strings.Repeat("x", 2<<20)+`"}}`, ""); c.status != 413 {
		t.Fatalf("huge body: %d", c.status)
	}

	// PUT merges: the listed variant is updated, a variant without id is added, the
	// title changes, updated_at moves.
	vid := gjson.GetBytes(created.body, "product.variants.0.id").Raw
	before := gjson.GetBytes(created.body, "product.updated_at").Str
	time.Sleep(1100 * time.Millisecond) // updated_at has whole seconds, as Shopify's
	put := do(t, s, "PUT", api+"/products/"+strconv.FormatInt(id, 10)+".json", tok,
		`{"product":{"id":1,"title":"Desk Lamp XL","variants":[{"id":"`+vid+`","price":"39.00"},{"price":"45.00","sku":"LAMP-2"}]}}`)
	if put.status != 200 {
		t.Fatalf("put: %d %s", put.status, put.body)
	}
	p := gjson.GetBytes(put.body, "product")
	if p.Get("id").Int() != id || p.Get("title").Str != "Desk Lamp XL" || p.Get("variants.#").Int() != 2 ||
		p.Get("variants.0.id").Raw != vid || p.Get("variants.0.price").Str != "39.00" || p.Get("variants.0.sku").Str != "LAMP-1" {
		t.Fatalf("put result: %s", p.Raw)
	}
	if p.Get("updated_at").Str == before {
		t.Fatal("PUT did not move updated_at")
	}
	if c := do(t, s, "PUT", api+"/products/"+strconv.FormatInt(id, 10)+".json", tok, `{"product":{"variants":[{"id":123,"price":"1"}]}}`); c.status != 422 {
		t.Fatalf("foreign variant: %d %s", c.status, c.body)
	}
	if c := do(t, s, "PUT", api+"/products/42.json", tok, `{"product":{"title":"x"}}`); c.status != 404 {
		t.Fatalf("put missing: %d", c.status)
	}
	if c := do(t, s, "DELETE", api+"/products/"+strconv.FormatInt(id, 10)+".json", tok, ""); c.status != 200 || s.Count(fakeshop.Products) != 30 {
		t.Fatalf("delete: %d", c.status)
	}
	if c := do(t, s, "PATCH", api+"/products/42.json", tok, `{}`); c.status != 405 {
		t.Fatalf("patch: %d", c.status)
	}
}

func TestCustomerWritesValidateEmail(t *testing.T) {
	s := small()
	ids := s.IDs(fakeshop.Customers)
	taken := strings.TrimSpace(strings.ToLower(gjson.GetBytes(must(s.Get(fakeshop.Customers, ids[1])), "email").Str))
	for body, want := range map[string]string{
		`{"customer":{"email":"not-an-email"}}`:  `{"errors":{"email":["is invalid"]}}`,
		`{"customer":{"email":"` + taken + `"}}`: `{"errors":{"email":["has already been taken"]}}`,
	} {
		if c := do(t, s, "PUT", api+"/customers/"+strconv.FormatInt(ids[0], 10)+".json", s.Token(), body); c.status != 422 || string(c.body) != want {
			t.Fatalf("%s: %d %s", body, c.status, c.body)
		}
	}
	if c := do(t, s, "POST", api+"/orders.json", s.Token(), `{"order":{"email":"a@b.c"}}`); c.status != 422 {
		t.Fatalf("order create: %d", c.status)
	}
}

func must(b json.RawMessage, ok bool) json.RawMessage {
	if !ok {
		panic("missing record")
	}
	return b
}

func TestDeterministicSeed(t *testing.T) {
	a, b, c := small(), small(), small(fakeshop.WithSeed(2))
	pa, _ := a.Get(fakeshop.Orders, a.IDs(fakeshop.Orders)[7])
	pb, _ := b.Get(fakeshop.Orders, b.IDs(fakeshop.Orders)[7])
	pc, _ := c.Get(fakeshop.Orders, c.IDs(fakeshop.Orders)[7])
	if !bytes.Equal(pa, pb) || bytes.Equal(pa, pc) {
		t.Fatal("the same seed must give the same data, another seed other data")
	}
	big := fakeshop.New()
	if big.Count(fakeshop.Products) != 2000 || big.Count(fakeshop.Customers) != 1000 || big.Count(fakeshop.Orders) != 3000 {
		t.Fatal("default sizes")
	}
}

func TestUpdateMovesRecordToTheEnd(t *testing.T) {
	s := small(fakeshop.WithRepeats(0))
	c := client(t, s)
	ids := walk(t, c, "/products.json", url.Values{"order": {"updated_at asc"}}, "products")
	first := ids[0]
	if _, err := s.Update(fakeshop.Products, first, map[string]any{"title": "Renamed", "id": 1}); err != nil {
		t.Fatal(err)
	}
	ids = walk(t, c, "/products.json", url.Values{"order": {"updated_at asc"}}, "products")
	if ids[len(ids)-1] != first {
		t.Fatal("an updated record must list last by updated_at")
	}
	if b, _ := s.Get(fakeshop.Products, first); gjson.GetBytes(b, "title").Str != "Renamed" || gjson.GetBytes(b, "id").Int() != first {
		t.Fatalf("update: %s", b)
	}
	if _, err := s.Update(fakeshop.Products, 1, nil); err == nil {
		t.Fatal("updating a missing record must fail")
	}
	if _, err := s.Update("widgets", first, nil); err == nil {
		t.Fatal("updating an unknown resource must fail")
	}
}

func TestFaultsAreSurvivedByRetries(t *testing.T) {
	s := small(fakeshop.WithFaults(0.3), fakeshop.WithRepeats(0))
	c := client(t, s, adapter.WithRetries(12))
	ids := walk(t, c, "/orders.json", url.Values{"limit": {"5"}, "status": {"any"}}, "orders")
	if len(ids) != 40 {
		t.Fatalf("walked %d orders through faults, want 40", len(ids))
	}
	st := s.Stats()
	if st.Faults == 0 || c.Stats().Retries == 0 {
		t.Fatalf("no faults fired: %+v", st)
	}

	// Every request fails at rate 1, with each kind of fault.
	all := small(fakeshop.WithFaults(1))
	srv := httptest.NewServer(all)
	defer srv.Close()
	kinds := map[string]int{}
	for range 60 {
		req, _ := http.NewRequest("GET", srv.URL+api+"/shop.json", nil)
		req.Header.Set("X-Shopify-Access-Token", all.Token())
		resp, err := srv.Client().Do(req)
		if err != nil {
			kinds["reset"]++
			continue
		}
		resp.Body.Close()
		kinds[strconv.Itoa(resp.StatusCode)]++
		if resp.StatusCode == 429 {
			if _, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err != nil || !strings.Contains(resp.Header.Get("Retry-After"), ".") {
				t.Fatalf("fault 429 Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
	}
	for _, k := range []string{"500", "502", "503", "429", "reset"} {
		if kinds[k] == 0 {
			t.Fatalf("fault kind %s never drawn: %v", k, kinds)
		}
	}
	if kinds["200"] != 0 {
		t.Fatal("rate 1 let a request through")
	}
}

// A create whose connection was reset after the write is not made twice by a client
// that retries it with the same Idempotency-Key.
func TestResetAfterWriteWithIdempotencyKey(t *testing.T) {
	s := small(fakeshop.WithFaults(0.5), fakeshop.WithSeed(3))
	c := client(t, s, adapter.WithRetries(20))
	for i := range 10 {
		_, err := c.Do(context.Background(), &adapter.Request{Method: "POST", Path: "/products.json",
			Body: map[string]any{"product": map[string]any{"title": "P" + strconv.Itoa(i)}}, IdempotencyKey: "create-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Count(fakeshop.Products); n != 40 {
		t.Fatalf("%d products after 10 creates, want 40", n)
	}
	if s.Stats().Replays == 0 {
		t.Fatal("no create was replayed: the test did not exercise reset-after-write")
	}
}

// A client that gives up during the shop's latency gets no answer, and the shop does not
// hold the request for the whole latency.
func TestLatencyHonoursCancellation(t *testing.T) {
	s := small(fakeshop.WithLatency(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", api+"/shop.json", nil).WithContext(ctx)
	req.Header.Set("X-Shopify-Access-Token", s.Token())
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { s.ServeHTTP(rec, req); close(done) }()
	cancel()
	<-done // would take an hour if the latency ignored the request's context
	if rec.Body.Len() != 0 {
		t.Fatalf("answered a cancelled request: %s", rec.Body.Bytes())
	}
}

func TestMethodsAndCounts(t *testing.T) {
	s := small()
	tok := s.Token()
	for _, c := range []struct{ method, path string }{{"POST", "/shop.json"}, {"POST", "/orders/count.json"}, {"DELETE", "/orders.json"}} {
		if got := do(t, s, c.method, api+c.path, tok, `{}`); got.status != 405 || got.header.Get("Allow") == "" {
			t.Fatalf("%s %s: %d", c.method, c.path, got.status)
		}
	}
	if c := do(t, s, "DELETE", api+"/customers/5.json", tok, ""); c.status != 404 {
		t.Fatalf("delete missing: %d", c.status)
	}
	ids := s.IDs(fakeshop.Customers)
	since := do(t, s, "GET", api+"/customers/count.json?since_id="+strconv.FormatInt(ids[9], 10), tok, "")
	if gjson.GetBytes(since.body, "count").Int() != int64(len(ids)-10) {
		t.Fatalf("count since_id: %s", since.body)
	}
	list := do(t, s, "GET", api+"/customers.json?ids="+strconv.FormatInt(ids[3], 10)+","+strconv.FormatInt(ids[4], 10), tok, "")
	if gjson.GetBytes(list.body, "customers.#").Int() != 2 {
		t.Fatalf("ids filter: %s", list.body)
	}
	if c := do(t, s, "GET", api+"/orders/count.json?updated_at_min=nope", tok, ""); c.status != 400 {
		t.Fatalf("bad count filter: %d", c.status)
	}
}

// Out-of-range options are clamped to something that works, not to a shop that panics
// or never drains its bucket.
func TestOptionsClamped(t *testing.T) {
	s := fakeshop.New(fakeshop.WithSize(-1, -5, 3), fakeshop.WithBucket(40, -3), fakeshop.WithRepeats(-2),
		fakeshop.WithLatency(-time.Second), fakeshop.WithFaults(-1), fakeshop.WithVersion(""),
		fakeshop.WithClock(func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) })) // the bucket never drains by itself
	if s.Count(fakeshop.Products) != 0 || s.Count(fakeshop.Orders) != 3 || s.APIPath() != "/admin/api/"+fakeshop.DefaultVersion {
		t.Fatalf("sizes %d/%d, path %s", s.Count(fakeshop.Products), s.Count(fakeshop.Orders), s.APIPath())
	}
	for range 41 {
		do(t, s, "GET", api+"/orders.json?status=any", s.Token(), "")
	}
	c := do(t, s, "GET", api+"/orders.json", s.Token(), "")
	if c.status != 429 || c.header.Get("Retry-After") != "2.0" { // 40/20 = 2 a second, Shopify's rule
		t.Fatalf("%d %q", c.status, c.header.Get("Retry-After"))
	}
	if c := do(t, fakeshop.New(fakeshop.WithSize(1, 1, 1), fakeshop.WithClock(nil)), "GET", api+"/shop.json", "shpat_fake", ""); c.status != 200 {
		t.Fatalf("a nil clock: %d", c.status)
	}
}

// Walking forward through rel="next" and back through rel="previous" gives the same
// pages, in every order the API offers.
func TestPreviousLinksMirrorNextLinks(t *testing.T) {
	s := small(fakeshop.WithRepeats(0))
	tok := s.Token()
	for _, order := range []string{"id asc", "id desc", "updated_at asc", "updated_at desc"} {
		target := api + "/products.json?limit=7&order=" + url.QueryEscape(order)
		var forward []string
		var last call
		for target != "" {
			last = do(t, s, "GET", target, tok, "")
			forward = append(forward, gjson.GetBytes(last.body, "products.#.id").Raw)
			target = ""
			if strings.Contains(last.header.Get("Link"), `rel="next"`) {
				u, _ := url.Parse(linkRel(t, last.header.Get("Link"), "next"))
				target = u.RequestURI()
			}
		}
		if len(forward) != 5 { // 30 products, 7 a page
			t.Fatalf("%s: %d pages", order, len(forward))
		}
		back := []string{forward[len(forward)-1]}
		for strings.Contains(last.header.Get("Link"), `rel="previous"`) {
			u, _ := url.Parse(linkRel(t, last.header.Get("Link"), "previous"))
			last = do(t, s, "GET", u.RequestURI(), tok, "")
			back = append(back, gjson.GetBytes(last.body, "products.#.id").Raw)
		}
		for i := range forward {
			if forward[i] != back[len(back)-1-i] {
				t.Fatalf("%s: page %d forward %s, backward %s", order, i, forward[i], back[len(back)-1-i])
			}
		}
	}
}
