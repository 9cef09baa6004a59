package fakeshop

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook is one webhook delivery as Shopify sends it: the topic, a delivery ID that
// stays the same when Shopify retries it, the raw body (the record itself, not wrapped),
// and the signature of that body. Build one with Shop.Webhook and send it with NewRequest
// as often as a test needs (a retry is the same delivery sent again). Changing Body after
// it was built makes the signature wrong, as a tampered delivery would be.
type Webhook struct {
	Topic string
	// ID is sent in X-Shopify-Webhook-Id; receivers dedupe on it.
	ID string
	// Domain is the shop's myshopify.com domain (X-Shopify-Shop-Domain); Version the API
	// version of the payload.
	Domain  string
	Version string
	// Body is the payload; HMAC its base64 HMAC-SHA256 under the shop's webhook secret.
	Body []byte
	HMAC string
	// TriggeredAt is when the event happened (X-Shopify-Triggered-At).
	TriggeredAt time.Time
}

// Sign returns the value Shopify sends in X-Shopify-Hmac-Sha256 for body: the base64
// (standard, padded) HMAC-SHA256 of the raw body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Webhook builds a delivery of topic ("products/update", "customers/create",
// "orders/updated", "products/delete"…) for the record with that ID: its current JSON,
// or {"id":…} for a delete topic (the record may be gone). Each call is a new delivery
// with a new random ID.
func (s *Shop) Webhook(topic string, id int64) (*Webhook, error) {
	resource, event, ok := strings.Cut(topic, "/")
	if !ok || (resource != Products && resource != Customers && resource != Orders) || event == "" {
		return nil, fmt.Errorf("fakeshop: unknown webhook topic %q (want products/…, customers/… or orders/…)", topic)
	}
	var body []byte
	if event == "delete" {
		body = []byte(`{"id":` + strconv.FormatInt(id, 10) + `}`)
	} else {
		b, ok := s.Get(resource, id)
		if !ok {
			return nil, fmt.Errorf("fakeshop: webhook %s: no %s with id %d", topic, resource, id)
		}
		body = b
	}
	s.count(func(st *Stats) { st.Webhooks++ })
	// A random UUID, as Shopify's: deliveries of two shops (or two runs of one) never share one.
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
	return &Webhook{
		Topic:       topic,
		ID:          fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]),
		Domain:      s.cfg.domain,
		Version:     s.cfg.version,
		Body:        body,
		HMAC:        Sign(s.cfg.secret, body),
		TriggeredAt: s.cfg.now().UTC(),
	}, nil
}

// NewRequest returns the POST that delivers w to url, with Shopify's headers. Each call
// returns a new request for the same delivery.
func (w *Webhook) NewRequest(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(w.Body))
	if err != nil {
		return nil, fmt.Errorf("fakeshop: webhook request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Shopify-Captain-Hook")
	h.Set("X-Shopify-Topic", w.Topic)
	h.Set("X-Shopify-Hmac-Sha256", w.HMAC)
	h.Set("X-Shopify-Shop-Domain", w.Domain)
	h.Set("X-Shopify-API-Version", w.Version)
	h.Set("X-Shopify-Webhook-Id", w.ID)
	h.Set("X-Shopify-Event-Id", w.ID)
	h.Set("X-Shopify-Triggered-At", w.TriggeredAt.Format(time.RFC3339Nano))
	return req, nil
}
