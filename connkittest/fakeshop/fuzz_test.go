package fakeshop_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/connkit/connkit/connkittest/fakeshop"
)

// Hostile query strings (forged page_info cursors included) get a 200 with a valid
// listing or a 400 with Shopify's error object; never a panic or a 500.
func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{"limit=3", "page_info=eyJyIjoicHJvZHVjdHMiLCJvIjoiaWQiLCJrIjpbMCwxXSwibiI6MX0", "page_info=eyJyIjoicHJvZHVjdHMiLCJvIjoidXBkYXRlZF9hdCIsImIiOnRydWUsImsiOls5LDldLCJuIjowfQ&limit=2",
		"order=updated_at+desc&updated_at_min=2023-05-01", "ids=1,2,x", "since_id=-1", "fields=id,,title", "limit=250&status=any", "page_info=%ff"} {
		f.Add(seed)
	}
	s := fakeshop.New(fakeshop.WithSize(20, 5, 5), fakeshop.WithBucket(0, 0))
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest("GET", "/admin/api/2024-04/products.json", nil)
		req.URL.RawQuery = q
		req.Header.Set("X-Shopify-Access-Token", s.Token())
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("%q: status %d", q, rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: invalid JSON %s", q, rec.Body.Bytes())
		}
	})
}

// Hostile write bodies get 200/201, 400 or 422 with a JSON body; the shop stays usable.
func FuzzProductWrite(f *testing.F) {
	for _, seed := range []string{`{"product":{"title":"A"}}`, `{"product":{"title":"A","variants":[{"id":"x"},{"price":{}}]}}`,
		`{"product":{"variants":"no"}}`, `{"product":null}`, `{"product":{"title":1e400}}`, `{"product":{"title":"A","variants":[1,2]}}`} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	s := fakeshop.New(fakeshop.WithSize(3, 1, 1), fakeshop.WithBucket(0, 0))
	existing := s.IDs(fakeshop.Products)[0]
	f.Fuzz(func(t *testing.T, body string, create bool) {
		method, path := "POST", "/admin/api/2024-04/products.json"
		if !create {
			method, path = "PUT", "/admin/api/2024-04/products/"+jsonInt(existing)+".json"
		}
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("X-Shopify-Access-Token", s.Token())
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 201, 400, 422:
		default:
			t.Fatalf("%s %q: status %d %s", method, body, rec.Code, rec.Body.Bytes())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: invalid JSON %s", body, rec.Body.Bytes())
		}
		if _, ok := s.Get(fakeshop.Products, existing); !ok {
			t.Fatal("a write lost an existing product")
		}
	})
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
