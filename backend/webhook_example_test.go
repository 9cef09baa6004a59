package backend_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/webhook"
)

// A shop pushes product events to the connector. The config declares the endpoint (how
// deliveries are signed, which header names the event, what each event does); the app
// mounts Backend.Webhooks under /webhooks/. A products/update delivery is verified,
// stored and answered at once, then a queue job fetches the product through the model's
// Import.Fetch and imports it.
func ExampleBackend_Webhooks() {
	ctx := context.Background()
	api := fakeapi.New() // stands in for the shop's REST API
	defer api.Close()
	id := api.Add("products", map[string]any{"title": "Desk lamp"})

	cfg, err := backend.ParseConfig([]byte(`
name: shop
base_url: `+api.URL+`
webhooks:
  - name: shopify
    scheme: hmac_sha256
    header: X-Shopify-Hmac-Sha256
    encoding: base64
    secrets: ["${SHOPIFY_WEBHOOK_SECRET}"]
    id_header: X-Shopify-Webhook-Id
    event_header: X-Shopify-Topic
    events:
      products/update: {model: product, action: import}
      products/delete: {model: product, action: delete}
`), func(string) (string, bool) { return "hush", true })
	if err != nil {
		fmt.Println(err)
		return
	}
	products := local.NewMemory[product]()
	shop, err := backend.New(cfg, backend.WithModel(backend.Model[product]{
		Name:  "product",
		Local: products,
		Import: &backend.Import{
			List: adapter.Request{Path: "/products"}, Records: "items", Fetch: "/products/{id}",
			Rules: []mapper.Rule{mapper.Direct("title", "title")},
		},
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", shop.Webhooks()))
	if err := shop.Start(ctx); err != nil { // works the queue: deliveries are processed
		fmt.Println(err)
		return
	}
	defer shop.Stop(ctx)

	// What the shop sends (its test tools sign the same way: webhook.HMAC.Sign).
	body := fmt.Sprintf(`{"id":%d,"title":"Desk lamp"}`, id)
	req := httptest.NewRequest(http.MethodPost, "/webhooks/shopify", strings.NewReader(body))
	req.Header.Set("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
	req.Header.Set("X-Shopify-Topic", "products/update")
	signer, _ := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{"hush"})
	_ = signer.Sign(req.Header, []byte(body), time.Now())
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println("answered", rec.Code, rec.Body.String())

	var d webhook.Delivery
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if d, err = shop.Deliveries().Get(ctx, "shop/shopify", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"); err == nil && d.Status != webhook.StatusPending {
			break
		}
	}
	fmt.Println("delivery:", d.Status, "after", d.Attempts, "attempt")
	for _, id := range products.IDs() {
		p, _ := products.Get(ctx, id)
		fmt.Println("imported:", p.Title)
	}
	// Output:
	// answered 200 {"status":"accepted","id":"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
	// delivery: processed after 1 attempt
	// imported: Desk lamp
}
