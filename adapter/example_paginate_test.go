package adapter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
)

// shopLike serves 5 products, 2 per page, with Shopify-style page_info cursors in Link
// headers (rel="previous" and rel="next" in one header).
func shopLike() *httptest.Server {
	products := []string{"Desk lamp", "Chair", "Shelf", "Rug", "Mirror"}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.Atoi(r.URL.Query().Get("page_info"))
		end := min(start+2, len(products))
		link := ""
		if start > 0 {
			link = fmt.Sprintf(`<http://%s%s?limit=2&page_info=%d>; rel="previous"`, r.Host, r.URL.Path, start-2)
		}
		if end < len(products) {
			if link != "" {
				link += ", "
			}
			link += fmt.Sprintf(`<http://%s%s?limit=2&page_info=%d>; rel="next"`, r.Host, r.URL.Path, end)
		}
		if link != "" {
			w.Header().Set("Link", link)
		}
		w.Header().Set("Content-Type", "application/json")
		body := `{"products":[`
		for i := start; i < end; i++ {
			if i > start {
				body += ","
			}
			body += fmt.Sprintf(`{"id":%d,"title":%q}`, i+1, products[i])
		}
		fmt.Fprint(w, body+"]}")
	}))
}

// Records walks a listing paginated by Link headers and yields one record at a time; only
// one page is in memory.
func ExampleRecords() {
	api := shopLike()
	defer api.Close()
	client, err := adapter.New(api.URL + "/admin/api/2024-01")
	if err != nil {
		fmt.Println(err)
		return
	}

	req := adapter.Request{Path: "products.json", Query: url.Values{"limit": {"2"}}}
	for product, err := range adapter.Records(context.Background(), client, req, adapter.LinkHeader(), adapter.WithRecordsPath("products")) {
		if err != nil {
			fmt.Println("listing products:", err)
			return
		}
		fmt.Println(product.Get("id").Int(), product.Get("title").String())
	}
	// Output:
	// 1 Desk lamp
	// 2 Chair
	// 3 Shelf
	// 4 Rug
	// 5 Mirror
}

// Pages yields whole responses, e.g. to checkpoint after each page.
func ExamplePages() {
	api := shopLike()
	defer api.Close()
	client, err := adapter.New(api.URL)
	if err != nil {
		fmt.Println(err)
		return
	}

	req := adapter.Request{Path: "/products.json", Query: url.Values{"limit": {"2"}}}
	for page, err := range adapter.Pages(context.Background(), client, req, adapter.LinkHeader(), adapter.WithRecordsPath("products")) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %d products\n", page.URL.RequestURI(), gjson.ParseBytes(page.Body).Get("products.#").Int())
	}
	// Output:
	// /products.json?limit=2: 2 products
	// /products.json?limit=2&page_info=2: 2 products
	// /products.json?limit=2&page_info=4: 1 products
}

// Cursor follows a cursor found in the body; HasMorePath stops the walk as soon as the API
// says there is nothing more.
func ExampleCursor() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("cursor") {
		case "":
			fmt.Fprint(w, `{"data":[{"email":"ana@example.com"},{"email":"bo@example.com"}],"meta":{"next_cursor":"b2","has_more":true}}`)
		default:
			fmt.Fprint(w, `{"data":[{"email":"cy@example.com"}],"meta":{"next_cursor":"b3","has_more":false}}`)
		}
	}))
	defer api.Close()
	client, err := adapter.New(api.URL)
	if err != nil {
		fmt.Println(err)
		return
	}

	p := adapter.Cursor("meta.next_cursor", "cursor", adapter.HasMorePath("meta.has_more"))
	for contact, err := range adapter.Records(context.Background(), client, adapter.Request{Path: "/contacts"}, p, adapter.WithRecordsPath("data")) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(contact.Get("email").String())
	}
	// Output:
	// ana@example.com
	// bo@example.com
	// cy@example.com
}

// Offset pages with limit and offset parameters and stops at the first short page.
func ExampleOffset() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		fmt.Printf("GET %s\n", r.URL.RequestURI())
		if off == 0 {
			fmt.Fprint(w, `[{"id":1},{"id":2},{"id":3}]`)
		} else {
			fmt.Fprint(w, `[{"id":4}]`)
		}
	}))
	defer api.Close()
	client, err := adapter.New(api.URL)
	if err != nil {
		fmt.Println(err)
		return
	}

	n := 0
	for _, err := range adapter.Records(context.Background(), client, adapter.Request{Path: "/orders"}, adapter.Offset("limit", "offset", 3)) {
		if err != nil {
			fmt.Println(err)
			return
		}
		n++
	}
	fmt.Println(n, "orders")
	// Output:
	// GET /orders?limit=3&offset=0
	// GET /orders?limit=3&offset=3
	// 4 orders
}
