package adapter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/connkit/connkit/adapter"
)

// WithPrefetch keeps 4 page requests in flight on a page-number listing whose API takes
// 20 ms per request; the pages still come in order, and the walk stops at the short page.
func ExampleWithPrefetch() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		n := 3
		if page == 4 {
			n = 1 // 10 records, 3 per page
		} else if page > 4 {
			n = 0
		}
		body := `{"orders":[`
		for i := range n {
			if i > 0 {
				body += ","
			}
			body += fmt.Sprintf(`{"number":"SO-%d"}`, (page-1)*3+i+1)
		}
		fmt.Fprint(w, body+"]}")
	}))
	defer api.Close()
	client, err := adapter.New(api.URL)
	if err != nil {
		fmt.Println(err)
		return
	}

	pages := adapter.PageNumber("page", 1, "per_page", 3)
	for order, err := range adapter.Records(context.Background(), client, adapter.Request{Path: "/orders"}, pages,
		adapter.WithRecordsPath("orders"), adapter.WithPrefetch(4)) {
		if err != nil {
			fmt.Println("listing orders:", err)
			return
		}
		fmt.Print(order.Get("number").String(), " ")
	}
	fmt.Println()
	// Output: SO-1 SO-2 SO-3 SO-4 SO-5 SO-6 SO-7 SO-8 SO-9 SO-10
}
