package backend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/webhook"
)

// The example of the config reference parses into the declared endpoint, with the secret
// taken from the environment.
func TestParseWebhookConfig(t *testing.T) {
	cfg, err := backend.ParseConfig([]byte(`
name: shop
base_url: https://shop.example.com/admin/api/2024-04
webhooks:
  - name: shopify
    scheme: hmac_sha256
    header: X-Shopify-Hmac-Sha256
    encoding: base64
    secrets: ["${SHOPIFY_WEBHOOK_SECRET}", "old-secret"]
    id_header: X-Shopify-Webhook-Id
    event_header: X-Shopify-Topic
    body_limit: 1048576
    max_attempts: 5
    spool: ${SPOOL_DIR}
    events:
      products/create: {model: product, action: import}
      products/delete: {model: product, action: delete, id_path: id}
  - name: billing
    scheme: stripe
    secrets: [whsec_abc]
    tolerance: 10m
    events:
      invoice.paid: {model: invoice, action: import, id_path: data.object.id}
`), func(k string) (string, bool) {
		v, ok := map[string]string{"SHOPIFY_WEBHOOK_SECRET": "s3cr3t", "SPOOL_DIR": "/var/spool/shop"}[k]
		return v, ok
	})
	require.NoError(t, err)
	want := []backend.WebhookConfig{
		{Name: "shopify", Scheme: "hmac_sha256", Header: "X-Shopify-Hmac-Sha256", Encoding: "base64",
			Secrets: []string{"s3cr3t", "old-secret"}, IDHeader: "X-Shopify-Webhook-Id", EventHeader: "X-Shopify-Topic",
			BodyLimit: 1 << 20, MaxAttempts: 5, Spool: "/var/spool/shop", Events: map[string]backend.WebhookEvent{
				"products/create": {Model: "product", Action: "import"},
				"products/delete": {Model: "product", Action: "delete", IDPath: "id"},
			}},
		{Name: "billing", Scheme: "stripe", Secrets: []string{"whsec_abc"}, Tolerance: backend.Duration(10 * time.Minute),
			Events: map[string]backend.WebhookEvent{"invoice.paid": {Model: "invoice", Action: "import", IDPath: "data.object.id"}}},
	}
	assert.Empty(t, cmp.Diff(want, cfg.Webhooks))
}

// Validate names every bad webhook field, and never quotes a secret.
func TestWebhookConfigErrorsNameTheField(t *testing.T) {
	const secret = "lit3ral-Secret-Value"
	hook := func(mod func(*backend.WebhookConfig)) backend.WebhookConfig {
		w := backend.WebhookConfig{Name: "shopify", Scheme: "hmac_sha256", Header: "X-Sig", Encoding: "hex", Secrets: []string{secret}}
		mod(&w)
		return w
	}
	for _, tc := range []struct {
		name  string
		hooks []backend.WebhookConfig
		want  []string // "field: problem fragment"
	}{
		{"unknown scheme", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) { w.Scheme = "md5" })},
			[]string{`webhooks[0].scheme: unknown scheme "md5": use one of hmac_sha256, standard, stripe`}},
		{"no scheme", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) { w.Scheme = "" })},
			[]string{`webhooks[0].scheme: is required`}},
		{"no secret", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) { w.Secrets = nil })},
			[]string{`webhooks[0].secrets: at least one secret is required`}},
		{"empty secret", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) { w.Secrets = []string{secret, " "} })},
			[]string{`webhooks[0].secrets[1]: is empty`}},
		{"hmac without header or encoding", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) { w.Header, w.Encoding = "", "b64" })},
			[]string{`webhooks[0].header: is required for scheme hmac_sha256`, `webhooks[0].encoding: "b64": use hex or base64`}},
		{"hmac with tolerance", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) { w.Tolerance = backend.Duration(time.Minute) })},
			[]string{`webhooks[0].tolerance: does not apply to scheme hmac_sha256`}},
		{"stripe with hmac fields", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) { w.Scheme, w.Prefix = "stripe", "sha256=" })},
			[]string{`webhooks[0].header: applies to scheme hmac_sha256 only`, `webhooks[0].encoding: applies to scheme hmac_sha256 only`,
				`webhooks[0].prefix: applies to scheme hmac_sha256 only`}},
		{"standard secret not base64", []backend.WebhookConfig{{Name: "sw", Scheme: "standard", Secrets: []string{"whsec_" + secret + "!"}}},
			[]string{`webhooks[0].secrets: webhook: Standard Webhooks verifier: secret 1 of 1 is not base64`}},
		{"names", []backend.WebhookConfig{
			hook(func(w *backend.WebhookConfig) { w.Name = "" }),
			hook(func(w *backend.WebhookConfig) { w.Name = "a/b" }),
			hook(func(*backend.WebhookConfig) {}),
			hook(func(*backend.WebhookConfig) {}),
		}, []string{`webhooks[0].name: is required`, `webhooks[1].name: "a/b": use at most 64 letters`,
			`webhooks[3].name: "shopify" is used by another webhook endpoint`}},
		{"both event sources and negatives", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) {
			w.EventHeader, w.EventPath, w.BodyLimit, w.MaxAttempts, w.Tolerance = "X-Topic", "type", -1, -1, -1
		})}, []string{`webhooks[0].event_path: give event_header or event_path, not both`, `webhooks[0].body_limit: must not be negative`,
			`webhooks[0].max_attempts: must not be negative`, `webhooks[0].tolerance: must not be negative`}},
		{"events without an event source", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) {
			w.Events = map[string]backend.WebhookEvent{"products/update": {Model: "product", Action: "import"}}
		})}, []string{`webhooks[0].event_header: is required to tell the events apart`}},
		{"events", []backend.WebhookConfig{hook(func(w *backend.WebhookConfig) {
			w.EventHeader = "X-Topic"
			w.Events = map[string]backend.WebhookEvent{"a": {Action: "import"}, "b": {Model: "product", Action: "upsert"}}
		})}, []string{`webhooks[0].events.a.model: is required`, `webhooks[0].events.b.action: "upsert": use import or delete`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := backend.Config{Name: "shop", BaseURL: "https://shop.example.com", Webhooks: tc.hooks}
			err := cfg.Validate()
			var ce *backend.ConfigError
			require.ErrorAs(t, err, &ce)
			require.ErrorIs(t, err, backend.ErrInvalidConfig)
			var got []string
			for _, f := range ce.Fields {
				got = append(got, f.Error())
			}
			for _, w := range tc.want {
				assert.True(t, containsPrefix(got, w), "want %q among %q", w, got)
			}
			assert.Len(t, got, len(tc.want), "%q", got)
			assert.NotContains(t, err.Error(), secret)
			_, err = backend.New(cfg)
			assert.ErrorIs(t, err, backend.ErrInvalidConfig, "New validates too")
		})
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Webhook secrets stay out of logs and stored deliveries, whatever the deliveries: a
// forged signature, a signature with the wrong secret, a valid delivery whose processing
// fails, one that is processed; at debug level.
func TestWebhookSecretsNeverLogged(t *testing.T) {
	ctx := context.Background()
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newShop(t, shopifyWebhook(), backend.WithLogger(logger), backend.WithQueue(fastPool),
		backend.WithWebhookHandler("shopify", "orders/paid", func(context.Context, webhook.Delivery) error {
			return errors.New("cannot post the order")
		}))
	s.start(t)
	wrong, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{"another-secret"})
	require.NoError(t, err)
	for _, body := range []string{`{"id":1}`, `not json`, ``} {
		for _, h := range []http.Header{
			{"X-Shopify-Hmac-Sha256": {shopifySecret}}, // the secret itself as the signature
			{"X-Shopify-Hmac-Sha256": {"sha256=" + shopifySecret}},
			{},
		} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/shopify", strings.NewReader(body))
			req.Header = h
			s.b.Webhooks().ServeHTTP(rec, req)
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.NotContains(t, rec.Body.String(), shopifySecret)
		}
		h := http.Header{}
		require.NoError(t, wrong.Sign(h, []byte(body), time.Now()))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/shopify", strings.NewReader(body))
		req.Header = h
		s.b.Webhooks().ServeHTTP(rec, req)
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
	}
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "p-1", "orders/paid", []byte(`{"id":1}`)))
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "p-2", "orders/refunded", []byte(`{"id":2}`)))
	waitDelivery(t, s.b.Deliveries(), "shop/shopify", "p-1", func(d webhook.Delivery) bool { return d.Attempts >= 2 })
	waitDelivery(t, s.b.Deliveries(), "shop/shopify", "p-2", status(webhook.StatusIgnored))

	require.Contains(t, logs.String(), "webhook", "the test logged something to search")
	assert.NotContains(t, logs.String(), shopifySecret)
	for d, err := range s.b.Deliveries().List(ctx, webhook.Filter{}) {
		require.NoError(t, err)
		raw, _ := json.Marshal(d)
		assert.NotContains(t, string(raw), shopifySecret)
	}
}

// FuzzWebhookConfig: webhook declarations whose values come from the environment (the
// fuzz environment of FuzzParseConfig, every value marked) never leak those values into
// errors; configs that parse are valid, survive a JSON round trip, and build a backend
// whose receivers refuse an unsigned delivery.
func FuzzWebhookConfig(f *testing.F) {
	for _, s := range []string{
		`{name: s, base_url: "https://x", webhooks: [{name: shopify, scheme: hmac_sha256, header: X-Sig, encoding: base64, secrets: ["${SECRET}"]}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: gh, scheme: hmac_sha256, header: X-Hub-Signature-256, encoding: hex, prefix: "sha256=", secrets: ["${A}", "${NO_B}"]}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: sw, scheme: standard, secrets: ["${SW_SECRET}"], tolerance: "${TOL}"}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: sw, scheme: standard, secrets: ["whsec_c2VjcmV0"]}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: st, scheme: stripe, secrets: ["${STRIPE}"], event_path: type}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: "${NAME}", scheme: "${SCHEME}", secrets: ["${EMPTY}"]}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: x, scheme: hmac_sha256, header: "${HDR}", encoding: "${ENC}", secrets: ["${K}"], max_attempts: "${N}"}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: x, scheme: stripe, secrets: [k], events: {"${EV}": {model: "${M}", action: "${ACT}"}}}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: x, scheme: stripe, secrets: [k]}, {name: x, scheme: stripe, secrets: [k]}]}`,
		`{name: s, base_url: "https://x", webhooks: [{name: x, scheme: stripe, secrets: [k], events: {e: {model: m, action: import}}}]}`,
		`{name: s, base_url: "https://x", webhooks: {name: x}}`,
		`{name: s, base_url: "https://x", webhooks: [{name: x, scheme: stripe, secrets: [k], body_limit: -5, secret: typo}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := backend.ParseConfig(data, fuzzEnv)
		if err != nil {
			var ce *backend.ConfigError
			if !errors.As(err, &ce) || len(ce.Fields) == 0 {
				t.Fatalf("error is not a *ConfigError naming a field: %T %v", err, err)
			}
			if !bytes.Contains(data, []byte(fuzzSecretMark)) && strings.Contains(err.Error(), fuzzSecretMark) {
				t.Fatalf("a value from the environment is in the error text: %v", err)
			}
			return
		}
		js, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(js, []byte("$")) {
			again, err := backend.ParseConfig(js, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("the config written as JSON does not parse: %v\n%s", err, js)
			}
			if d := cmp.Diff(cfg, again, cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("JSON round trip changed the config (-parsed +again):\n%s", d)
			}
		}
		// Events naming models are checked by New against the registered ones: register a
		// product model, and accept a ConfigError about the others.
		b, err := backend.New(cfg, backend.WithModel(productModel(local.NewMemory[product]())))
		if err != nil {
			if !errors.Is(err, backend.ErrInvalidConfig) {
				t.Fatalf("New of a valid config: %v", err)
			}
			if !bytes.Contains(data, []byte(fuzzSecretMark)) && strings.Contains(err.Error(), fuzzSecretMark) {
				t.Fatalf("a value from the environment is in New's error: %v", err)
			}
			return
		}
		for _, w := range cfg.Webhooks {
			rec := httptest.NewRecorder()
			b.Webhooks().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+w.Name, strings.NewReader(`{"id":1}`)))
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("endpoint %q answered an unsigned delivery %d", w.Name, rec.Code)
			}
		}
	})
}
