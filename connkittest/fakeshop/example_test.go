package fakeshop_test

import (
	"context"
	"fmt"
	"net/url"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/connkittest/fakeshop"
)

// A fake shop on loopback, walked with connkit's adapter the way a connector walks
// Shopify: the access token header, 250 records a page, page_info cursors in the Link
// header, the call-limit header followed.
func Example() {
	shop := fakeshop.New(fakeshop.WithSize(600, 10, 10), fakeshop.WithRepeats(0))
	baseURL := shop.Start()
	defer shop.Close()

	client, err := adapter.New(baseURL,
		adapter.WithAuth(adapter.APIKeyHeader("X-Shopify-Access-Token", shop.Token())),
		adapter.WithLimitHeaders("shopify"))
	if err != nil {
		fmt.Println(err)
		return
	}
	n := 0
	list := adapter.Request{Path: "/products.json", Query: url.Values{"limit": {"250"}, "order": {"updated_at asc"}}}
	for _, err := range adapter.Records(context.Background(), client, list, adapter.LinkHeader(), adapter.WithRecordsPath("products")) {
		if err != nil {
			fmt.Println(err)
			return
		}
		n++
	}
	st := shop.Stats()
	fmt.Println("products:", n, "pages:", st.Lists, "throttled:", st.Throttled)
	// Output: products: 600 pages: 3 throttled: 0
}
