package adapter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

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
		adapter.WithReadTimeout(10*time.Second),
		adapter.WithRecorder(audit),
		adapter.WithBackendName("shop"),
	)
	if err != nil {
		panic(err)
	}
	resp, err := client.Get(context.Background(), "products/42.json", adapter.WithOperation("import product"))
	if err != nil {
		panic(err)
	}
	type product struct {
		Product struct {
			ID    int    `json:"id"`
			Title string `json:"title"`
		} `json:"product"`
	}
	p, err := adapter.Decode[product](resp)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Product.ID, p.Product.Title)
	fmt.Println("price:", resp.Get("product.price").String())
	entry := audit.Entries(synclog.Filter{})[0]
	fmt.Println(entry.Operation, entry.Status, entry.RequestHeader.Get("X-Shopify-Access-Token"))
	// Output:
	// 42 Desk lamp
	// price: 19.90
	// import product 200 [REDACTED]
}

func ExampleHMACAuth() {
	secret := []byte("shared-secret")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		want := adapter.SignHMAC(secret, r.Method, r.URL.RequestURI(), r.Header.Get("X-Timestamp"), body)
		if r.Header.Get("X-Signature") != want {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer api.Close()

	client, err := adapter.New(api.URL, adapter.WithAuth(adapter.HMACAuth(secret)))
	if err != nil {
		panic(err)
	}
	resp, err := client.Post(context.Background(), "/orders", map[string]any{"sku": "LAMP-1", "qty": 2},
		adapter.WithIdempotencyKey(adapter.NewIdempotencyKey()))
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
	_, err = client.Get(context.Background(), "customers/9", adapter.WithOperation("import customer"))
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
