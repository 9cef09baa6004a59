package adapter_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/synclog"
)

func ExampleNew() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"product":{"id":42,"title":"Desk lamp","price":"19.90"}}`)
	}))
	defer api.Close()

	audit := synclog.NewRing(100)
	client, err := adapter.New(api.URL+"/admin/api/2024-01",
		adapter.WithAuth(adapter.APIKeyHeader("X-Shopify-Access-Token", "shpat_example")),
		adapter.WithTimeouts(0, 10*time.Second),
		adapter.WithRecorder(audit),
		adapter.WithBackendName("shop"),
	)
	if err != nil {
		panic(err)
	}
	resp, err := client.Do(context.Background(), &adapter.Request{Path: "products/42.json", Operation: "import product"})
	if err != nil {
		panic(err)
	}
	p := gjson.ParseBytes(resp.Body).Get("product")
	fmt.Println(p.Get("id").Int(), p.Get("title").String())
	fmt.Println("price:", p.Get("price").String())
	for entry := range audit.Query(context.Background(), synclog.Filter{Limit: 1}) {
		fmt.Println(entry.Operation, entry.Status, entry.RequestHeader.Get("X-Shopify-Access-Token"))
	}
	// Output:
	// 42 Desk lamp
	// price: 19.90
	// import product 200 [REDACTED]
}

func ExampleHMACAuth() {
	secret := []byte("shared-secret")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// The server signs the same four lines and compares in constant time.
		m := hmac.New(sha256.New, secret)
		fmt.Fprintf(m, "%s\n%s\n%s\n%s", r.Method, r.URL.RequestURI(), r.Header.Get("X-Timestamp"), body)
		want := hex.EncodeToString(m.Sum(nil))
		if !hmac.Equal([]byte(r.Header.Get("X-Signature")), []byte(want)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer api.Close()

	client, err := adapter.New(api.URL, adapter.WithAuth(adapter.HMACAuth(secret, adapter.HMACFormat{})))
	if err != nil {
		panic(err)
	}
	resp, err := client.Do(context.Background(), &adapter.Request{Method: http.MethodPost, Path: "/orders", Body: map[string]any{"sku": "LAMP-1", "qty": 2}, IdempotencyKey: "order-LAMP-1-2026-03-04"})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode)
	// Output: 201
}

func ExampleError() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-7")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"no such customer"}`)
	}))
	defer api.Close()

	client, err := adapter.New(api.URL)
	if err != nil {
		panic(err)
	}
	_, err = client.Do(context.Background(), &adapter.Request{Path: "customers/9", Operation: "import customer"})
	switch {
	case errors.Is(err, adapter.ErrNotFound):
		fmt.Println("gone: mark the binding as deleted")
	case errors.Is(err, adapter.ErrRateLimited), errors.Is(err, adapter.ErrServer):
		fmt.Println("try again later")
	}
	var e *adapter.Error
	if errors.As(err, &e) {
		fmt.Println(e.Op, e.Status, e.RequestID, e.Attempts)
		fmt.Println(e.Body)
	}
	// Output:
	// gone: mark the binding as deleted
	// import customer 404 req-7 1
	// {"error":"no such customer"}
}

// A Shopify-style API reports its leaky bucket in every response; the client pauses all
// goroutines before the bucket overflows. Config files name the style ("shopify").
func ExampleWithLimitHeaders() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Shopify-Shop-Api-Call-Limit", "12/40")
		io.WriteString(w, `{"products":[]}`)
	}))
	defer api.Close()

	// The style's name is what rate_limit.headers holds in a config file.
	client, err := adapter.New(api.URL, adapter.WithLimitHeaders("shopify"))
	if err != nil {
		panic(err)
	}
	if _, err := client.Do(context.Background(), &adapter.Request{Path: "/products.json"}); err != nil {
		panic(err)
	}
	fmt.Println(client.Stats().LimiterWait)
	// Output: 0s
}

// Stats reads the client's counters, for metrics.
func ExampleClient_Stats() {
	hits := 0
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits++; hits == 1 {
			w.Header().Set("Retry-After", "0.01")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer api.Close()

	client, err := adapter.New(api.URL)
	if err != nil {
		panic(err)
	}
	if _, err := client.Do(context.Background(), &adapter.Request{Path: "/shop.json"}); err != nil {
		panic(err)
	}
	s := client.Stats()
	fmt.Println(s.Requests, s.Attempts, s.RateLimited, s.Retries, s.Responses2xx, s.RetryAfterWait)
	// Output: 1 2 1 1 1 10ms
}
