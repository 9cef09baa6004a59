package fakeshop_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/connkittest/fakeshop"
)

func TestWebhookSignedLikeShopify(t *testing.T) {
	s := small(fakeshop.WithWebhookSecret("hush"))
	id := s.IDs(fakeshop.Products)[3]
	w, err := s.Webhook("products/update", id)
	if err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	for range 2 { // a redelivery is the same delivery
		req, err := w.NewRequest(context.Background(), srv.URL+"/webhooks/shopify")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got.Header.Get("X-Shopify-Webhook-Id") != w.ID {
			t.Fatal("a resent delivery must keep its webhook ID")
		}
	}
	mac := hmac.New(sha256.New, []byte("hush"))
	mac.Write(body)
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); got.Header.Get("X-Shopify-Hmac-Sha256") != want || fakeshop.Sign("hush", body) != want {
		t.Fatal("the signature is not the base64 HMAC-SHA256 of the raw body")
	}
	if got.Header.Get("X-Shopify-Topic") != "products/update" || got.Header.Get("X-Shopify-Shop-Domain") == "" || got.Method != "POST" {
		t.Fatalf("headers %v", got.Header)
	}
	if gjson.GetBytes(body, "id").Int() != id || !gjson.GetBytes(body, "variants").IsArray() {
		t.Fatalf("the payload is the record itself, unwrapped: %s", body)
	}
	w2, _ := s.Webhook("products/update", id)
	if w2.ID == w.ID {
		t.Fatal("two deliveries share an ID")
	}
	del, err := s.Webhook("orders/delete", 42)
	if err != nil || string(del.Body) != `{"id":42}` {
		t.Fatalf("delete payload %s, %v", del.Body, err)
	}
	for _, bad := range []string{"products", "widgets/update", "products/"} {
		if _, err := s.Webhook(bad, id); err == nil {
			t.Fatalf("topic %q accepted", bad)
		}
	}
	if _, err := s.Webhook("customers/update", 1); err == nil {
		t.Fatal("a webhook for a missing record must fail")
	}
	_ = strconv.Itoa
}
