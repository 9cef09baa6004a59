package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/webhook"
)

// product is the app's record in the webhook tests.
type product struct {
	Title string `json:"title"`
	Price string `json:"price"`
}

const shopifySecret = "shpss_" + "test-secret-0123456789"

// shopifyWebhook is the webhook endpoint of the tests, as a config file declares it.
func shopifyWebhook() backend.WebhookConfig {
	return backend.WebhookConfig{
		Name: "shopify", Scheme: "hmac_sha256", Header: "X-Shopify-Hmac-Sha256", Encoding: "base64",
		Secrets: []string{shopifySecret}, IDHeader: "X-Shopify-Webhook-Id", EventHeader: "X-Shopify-Topic",
		Events: map[string]backend.WebhookEvent{
			"products/create": {Model: "product", Action: "import"},
			"products/update": {Model: "product", Action: "import"},
			"products/delete": {Model: "product", Action: "delete"},
		},
	}
}

func productModel(store local.Store[product]) backend.Model[product] {
	return backend.Model[product]{
		Name:  "product",
		Local: store,
		Import: &backend.Import{
			List: adapter.Request{Path: "/products"}, Records: "items", Fetch: "/products/{id}",
			Rules: []mapper.Rule{mapper.Direct("title", "title", mapper.Required()), mapper.Direct("price", "price")},
		},
	}
}

// shop is a one-model connector receiving Shopify-style webhooks, mounted under
// /webhooks/ of a test server.
type shop struct {
	api      *fakeapi.Server
	products *local.Memory[product]
	b        *backend.Backend
	srv      *httptest.Server
	signer   *webhook.HMAC
}

func newShop(t testing.TB, wh backend.WebhookConfig, opts ...backend.Option) *shop {
	t.Helper()
	s := &shop{api: fakeapi.New(), products: local.NewMemory[product]()}
	t.Cleanup(s.api.Close)
	all := append([]backend.Option{
		backend.WithModel(productModel(s.products)),
		backend.WithClientOptions(adapter.WithRetries(0)),
	}, opts...)
	var err error
	s.b, err = backend.New(backend.Config{Name: "shop", BaseURL: s.api.URL, Webhooks: []backend.WebhookConfig{wh}}, all...)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", s.b.Webhooks()))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.signer, err = webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{shopifySecret})
	require.NoError(t, err)
	return s
}

func (s *shop) start(t *testing.T) {
	t.Helper()
	require.NoError(t, s.b.Start(context.Background()))
	t.Cleanup(func() { stopHub(t, s.b) })
}

// imported adds a product to the fake API and imports it: its API ID, external ID and
// binding.
func (s *shop) imported(t *testing.T, fields map[string]any) (int64, string, binding.Binding) {
	t.Helper()
	ctx := context.Background()
	id := s.api.Add("products", fields)
	ext := strconv.FormatInt(id, 10)
	_, err := s.b.Import(ctx, "product", ext)
	require.NoError(t, err)
	bd, err := s.b.Bindings().GetByExternal(ctx, "shop", "product", ext)
	require.NoError(t, err)
	return id, ext, bd
}

// openSQLiteFile opens a fresh connkit database in a SQLite file.
func openSQLiteFile(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "shop.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// deliver POSTs a signed delivery and returns the status code.
func (s *shop) deliver(t testing.TB, client *http.Client, id, topic string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/webhooks/shopify", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shopify-Webhook-Id", id)
	req.Header.Set("X-Shopify-Topic", topic)
	require.NoError(t, s.signer.Sign(req.Header, body, time.Now()))
	if client == nil {
		client = s.srv.Client()
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitDelivery waits until the delivery reaches a status satisfying done, and returns it.
func waitDelivery(t testing.TB, store webhook.Store, endpoint, id string, done func(webhook.Delivery) bool) webhook.Delivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := store.Get(context.Background(), endpoint, id)
		if err == nil && done(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s/%s: %+v, %v", endpoint, id, d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(st webhook.Status) func(webhook.Delivery) bool {
	return func(d webhook.Delivery) bool { return d.Status == st }
}

// A products/create delivery imports the product through the model's importer: fetched
// from the API by the ID in the body, mapped, stored locally and bound.
func TestWebhookImportsRecord(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, shopifyWebhook())
	s.start(t)
	id := s.api.Add("products", map[string]any{"title": "Lamp", "price": "19.90"})

	body := fmt.Appendf(nil, `{"id":%d,"title":"Lamp (stale copy in the delivery)"}`, id)
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "d-1", "products/create", body))
	d := waitDelivery(t, s.b.Deliveries(), "shop/shopify", "d-1", status(webhook.StatusProcessed))
	assert.Equal(t, 1, d.Attempts)
	assert.Equal(t, "products/create", d.Event)
	assert.Equal(t, body, d.Body)
	assert.NotContains(t, d.Header.Get("X-Shopify-Hmac-Sha256"), s.signedWith(body), "the signature is redacted in the stored header")

	bd, err := s.b.Bindings().GetByExternal(ctx, "shop", "product", strconv.FormatInt(id, 10))
	require.NoError(t, err)
	assert.Equal(t, binding.StatusSuccess, bd.Status)
	p, err := s.products.Get(ctx, bd.LocalID)
	require.NoError(t, err)
	assert.Equal(t, product{Title: "Lamp", Price: "19.90"}, p, "the record as the API serves it, not the delivery's copy")

	// An update is imported again through the same binding.
	s.api.Touch("products", id, map[string]any{"title": "Desk lamp"})
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "d-2", "products/update", body))
	waitDelivery(t, s.b.Deliveries(), "shop/shopify", "d-2", status(webhook.StatusProcessed))
	p, err = s.products.Get(ctx, bd.LocalID)
	require.NoError(t, err)
	assert.Equal(t, "Desk lamp", p.Title)
	assert.Equal(t, 1, s.products.Len())
}

func (s *shop) signedWith(body []byte) string {
	h := http.Header{}
	_ = s.signer.Sign(h, body, time.Now())
	return h.Get("X-Shopify-Hmac-Sha256")
}

// A products/delete delivery removes the local record and its binding; deleting a product
// that was never imported, or twice, is processed without error.
func TestWebhookDeleteAction(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, shopifyWebhook())
	id, ext, bd := s.imported(t, map[string]any{"title": "Chair", "price": "50"})
	s.start(t)

	body := fmt.Appendf(nil, `{"id":%d}`, id)
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "del-1", "products/delete", body))
	waitDelivery(t, s.b.Deliveries(), "shop/shopify", "del-1", status(webhook.StatusProcessed))
	_, err := s.products.Get(ctx, bd.LocalID)
	assert.ErrorIs(t, err, local.ErrNotFound, "the local record is deleted")
	_, err = s.b.Bindings().GetByExternal(ctx, "shop", "product", ext)
	assert.ErrorIs(t, err, binding.ErrNotFound, "the binding is deleted")

	// Again (another delivery ID), and for a product never imported: nothing to do.
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "del-2", "products/delete", body))
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "del-3", "products/delete", []byte(`{"id":999999}`)))
	for _, d := range []string{"del-2", "del-3"} {
		got := waitDelivery(t, s.b.Deliveries(), "shop/shopify", d, func(d webhook.Delivery) bool { return d.Status != webhook.StatusPending })
		assert.Equal(t, webhook.StatusProcessed, got.Status, "%s: %s", d, got.LastError)
	}
	assert.Zero(t, s.api.Stats().Deletes, "a delete event never calls the API")
}

// The delete action waits for the binding's lease: while an import holds it, the local
// record is not deleted under it.
func TestWebhookDeleteWaitsForLease(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, shopifyWebhook(), backend.WithLeaseTTL(3*time.Second))
	id, _, bd := s.imported(t, map[string]any{"title": "Chair"})
	_, err := s.b.Bindings().Claim(ctx, bd.ID, "someone-else", 2*time.Second)
	require.NoError(t, err)
	s.start(t)

	require.Equal(t, http.StatusOK, s.deliver(t, nil, "del-1", "products/delete", fmt.Appendf(nil, `{"id":%d}`, id)))
	time.Sleep(300 * time.Millisecond)
	_, err = s.products.Get(ctx, bd.LocalID)
	require.NoError(t, err, "not deleted while another worker holds the lease")
	require.NoError(t, s.b.Bindings().Release(ctx, bd.ID, "someone-else"))
	waitDelivery(t, s.b.Deliveries(), "shop/shopify", "del-1", status(webhook.StatusProcessed))
	_, err = s.products.Get(ctx, bd.LocalID)
	assert.ErrorIs(t, err, local.ErrNotFound)
}

// An event type with no action or handler is stored and marked ignored, with no API call;
// a body without the record's ID fails the delivery for good (no retry can add an ID).
func TestWebhookUnknownEventIgnoredAndMissingIDFails(t *testing.T) {
	s := newShop(t, shopifyWebhook())
	s.start(t)
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "u-1", "orders/create", []byte(`{"id":5}`)))
	d := waitDelivery(t, s.b.Deliveries(), "shop/shopify", "u-1", status(webhook.StatusIgnored))
	assert.Equal(t, 1, d.Attempts)

	require.Equal(t, http.StatusOK, s.deliver(t, nil, "u-2", "products/create", []byte(`{"title":"no id"}`)))
	d = waitDelivery(t, s.b.Deliveries(), "shop/shopify", "u-2", status(webhook.StatusFailed))
	assert.Contains(t, d.LastError, `no product ID at "id"`)
	time.Sleep(100 * time.Millisecond)
	d, err := s.b.Deliveries().Get(context.Background(), "shop/shopify", "u-2")
	require.NoError(t, err)
	assert.Equal(t, 1, d.Attempts, "a permanent failure is not retried")
	assert.Zero(t, s.api.Stats().Requests)
}

// fastPool is an in-process queue that retries quickly.
func fastPool(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
	return queue.NewPool(w, queue.WithBackoff(20*time.Millisecond, 50*time.Millisecond)), nil
}

// A Go handler that fails leaves the delivery failed with its error; the queue retries it
// and it ends processed. With max_attempts used up it stays failed, and Reprocess retries
// it on purpose. Reprocessing a processed delivery replays it.
func TestWebhookHandlerFailureRetriedThenReprocess(t *testing.T) {
	ctx := context.Background()
	wh := shopifyWebhook()
	wh.MaxAttempts = 3
	var calls sync.Map // delivery ID → *atomic.Int32
	failUntil := map[string]*atomic.Int32{"r-1": new(atomic.Int32), "r-2": new(atomic.Int32)}
	failUntil["r-1"].Store(2)
	failUntil["r-2"].Store(100)
	var seenFailed atomic.Bool
	var store webhook.Store
	h := func(ctx context.Context, d webhook.Delivery) error {
		c, _ := calls.LoadOrStore(d.ID, new(atomic.Int32))
		n := c.(*atomic.Int32).Add(1)
		if n > 1 {
			got, err := store.Get(ctx, d.Endpoint, d.ID)
			if err == nil && got.Status == webhook.StatusFailed && got.LastError != "" {
				seenFailed.Store(true)
			}
		}
		if n <= failUntil[d.ID].Load() {
			return fmt.Errorf("attempt %d: the ERP is down", n)
		}
		return nil
	}
	s := newShop(t, wh, backend.WithQueue(fastPool), backend.WithWebhookHandler("shopify", "orders/paid", h))
	store = s.b.Deliveries()
	s.start(t)
	count := func(id string) int32 {
		c, ok := calls.Load(id)
		if !ok {
			return 0
		}
		return c.(*atomic.Int32).Load()
	}

	require.Equal(t, http.StatusOK, s.deliver(t, nil, "r-1", "orders/paid", []byte(`{"id":1}`)))
	d := waitDelivery(t, store, "shop/shopify", "r-1", status(webhook.StatusProcessed))
	assert.Equal(t, 3, d.Attempts, "two failures, then success")
	assert.Equal(t, "", d.LastError, "success clears the error")
	assert.True(t, seenFailed.Load(), "between attempts the delivery was failed with the error")
	assert.EqualValues(t, 3, count("r-1"))

	// Always failing: 3 attempts, then left failed.
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "r-2", "orders/paid", []byte(`{"id":2}`)))
	d = waitDelivery(t, store, "shop/shopify", "r-2", func(d webhook.Delivery) bool { return d.Attempts == 3 })
	assert.Equal(t, webhook.StatusFailed, d.Status)
	assert.Contains(t, d.LastError, "attempt 3: the ERP is down")
	time.Sleep(200 * time.Millisecond)
	assert.EqualValues(t, 3, count("r-2"), "no attempt past max_attempts")
	var failed []string
	for d, err := range store.List(ctx, webhook.Filter{Endpoint: "shop/shopify", Status: webhook.StatusFailed}) {
		require.NoError(t, err)
		failed = append(failed, d.ID)
	}
	assert.Equal(t, []string{"r-2"}, failed)

	// The ERP is back: a retry on purpose processes it.
	failUntil["r-2"].Store(0)
	r, err := s.b.Webhook("shopify")
	require.NoError(t, err)
	require.NoError(t, r.Reprocess(ctx, "r-2"))
	d = waitDelivery(t, store, "shop/shopify", "r-2", status(webhook.StatusProcessed))
	assert.Equal(t, 4, d.Attempts)

	// A replay of a processed delivery runs its handler again.
	require.NoError(t, r.Reprocess(ctx, "r-1"))
	d = waitDelivery(t, store, "shop/shopify", "r-1", func(d webhook.Delivery) bool { return d.Attempts == 4 })
	assert.Equal(t, webhook.StatusProcessed, d.Status)
	assert.EqualValues(t, 4, count("r-1"))

	_, err = s.b.Webhook("github")
	assert.ErrorIs(t, err, backend.ErrUnknownWebhook)
	assert.ErrorIs(t, r.Reprocess(ctx, "nope"), webhook.ErrNotFound)
}

// Deliveries are served under the endpoint's name only: another path is 404, another
// method 405, a bad signature 401, and none of them stores anything.
func TestWebhookRouting(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, shopifyWebhook())
	post := func(path string, h http.Header, body string) int {
		req, err := http.NewRequest(http.MethodPost, s.srv.URL+path, bytes.NewReader([]byte(body)))
		require.NoError(t, err)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := s.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNotFound, post("/webhooks/github", nil, `{}`))
	assert.Equal(t, http.StatusNotFound, post("/webhooks/shopify/extra", nil, `{}`))
	assert.Equal(t, http.StatusNotFound, post("/webhooks/", nil, `{}`))
	assert.Equal(t, http.StatusUnauthorized, post("/webhooks/shopify", http.Header{"X-Shopify-Hmac-Sha256": {"AAAA"}}, `{}`))
	resp, err := s.srv.Client().Get(s.srv.URL + "/webhooks/shopify")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	for _, err := range s.b.Deliveries().List(ctx, webhook.Filter{}) {
		require.NoError(t, err)
		t.Fatal("a refused request was stored")
	}
	assert.Equal(t, http.StatusOK, s.deliver(t, nil, "ok", "products/create", []byte(`{"id":1}`)))
}

// 1,000 deliveries, 200 of them sent twice, arrive concurrently through the HTTP path and
// the in-process pool: every one is stored once and its handler runs exactly once. With a
// spool too, where the redeliveries meet their first copies in the spool or in the store.
func TestWebhookThousandConcurrentDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spool bool
		opts  func(t *testing.T) []backend.Option
	}{
		{"memory", false, func(*testing.T) []backend.Option { return nil }},
		{"sqlite-file", false, func(t *testing.T) []backend.Option {
			return []backend.Option{backend.WithDB(openSQLiteFile(t))}
		}},
		{"memory-spool", true, func(*testing.T) []backend.Option { return nil }},
		{"sqlite-file-spool", true, func(t *testing.T) []backend.Option {
			return []backend.Option{backend.WithDB(openSQLiteFile(t))}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			const n, dups, senders = 1000, 200, 32
			var runs [n]atomic.Int32
			h := func(ctx context.Context, d webhook.Delivery) error {
				i, err := strconv.Atoi(d.ID[2:])
				if err != nil {
					return queue.Permanent(err)
				}
				runs[i].Add(1)
				return nil
			}
			hook := shopifyWebhook()
			if tc.spool {
				hook.Spool = t.TempDir()
			}
			s := newShop(t, hook, append(tc.opts(t), backend.WithWebhookHandler("shopify", "orders/paid", h))...)
			s.start(t)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
			t.Cleanup(client.CloseIdleConnections)

			work := make(chan int)
			var wg sync.WaitGroup
			var bad atomic.Int32
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						i %= n
						if code := s.deliver(t, client, fmt.Sprintf("o-%d", i), "orders/paid", fmt.Appendf(nil, `{"id":%d}`, i)); code != http.StatusOK {
							bad.Add(1)
						}
					}
				}()
			}
			for i := range n + dups {
				if i >= n {
					i = (i - n) * 5 // every fifth delivery again, while the first copies are processed
				}
				work <- i
			}
			close(work)
			wg.Wait()
			require.Zero(t, bad.Load(), "every delivery was answered 200")

			deadline := time.Now().Add(60 * time.Second)
			for {
				done := 0
				for d, err := range s.b.Deliveries().List(ctx, webhook.Filter{Status: webhook.StatusProcessed}) {
					require.NoError(t, err)
					require.Equal(t, 1, d.Attempts, "delivery %s", d.ID)
					done++
				}
				if done == n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d deliveries processed", done, n)
				}
				time.Sleep(20 * time.Millisecond)
			}
			total := 0
			for d, err := range s.b.Deliveries().List(ctx, webhook.Filter{}) {
				require.NoError(t, err)
				total++
				_ = d
			}
			assert.Equal(t, n, total, "each delivery stored once")
			time.Sleep(100 * time.Millisecond) // a second run, if any, would show now
			for i := range runs {
				if got := runs[i].Load(); got != 1 {
					t.Errorf("delivery o-%d processed %d times", i, got)
				}
			}
		})
	}
}

// Handlers given in Go must name a configured endpoint and must not take an event the
// config already handles; config events must name a model that can do their action.
func TestWebhookDeclarationErrors(t *testing.T) {
	noop := func(context.Context, webhook.Delivery) error { return nil }
	cfg := backend.Config{Name: "shop", BaseURL: "https://shop.example.com", Webhooks: []backend.WebhookConfig{shopifyWebhook()}}
	model := backend.WithModel(productModel(local.NewMemory[product]()))

	_, err := backend.New(cfg, model, backend.WithWebhookHandler("github", "push", noop))
	assert.ErrorIs(t, err, backend.ErrUnknownWebhook)

	_, err = backend.New(cfg, model, backend.WithWebhookHandler("shopify", "x", noop), backend.WithWebhookHandler("shopify", "x", noop))
	assert.ErrorContains(t, err, "registered twice")

	noEvents := backend.Config{Name: "shop", BaseURL: "https://shop.example.com", Webhooks: []backend.WebhookConfig{shopifyWebhook()}}
	noEvents.Webhooks[0].EventHeader, noEvents.Webhooks[0].Events = "", nil
	_, err = backend.New(noEvents, model, backend.WithWebhookHandler("shopify", "orders/paid", noop))
	assert.ErrorContains(t, err, "the endpoint reads no event type")
	_, err = backend.New(noEvents, model, backend.WithWebhookHandler("shopify", "", noop))
	assert.NoError(t, err, "a handler of every delivery")

	_, err = backend.New(cfg, model, backend.WithWebhookHandler("shopify", "products/update", noop))
	var ce *backend.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "webhooks[0].events.products/update", ce.Fields[0].Field)

	// Models are checked at New: unknown, and without Import.Fetch.
	wh := shopifyWebhook()
	wh.Events["orders/create"] = backend.WebhookEvent{Model: "order", Action: "import"}
	noFetch := productModel(local.NewMemory[product]())
	noFetch.Import.Fetch = ""
	_, err = backend.New(backend.Config{Name: "shop", BaseURL: "https://shop.example.com", Webhooks: []backend.WebhookConfig{wh}},
		backend.WithModel(noFetch))
	require.ErrorIs(t, err, backend.ErrInvalidConfig)
	require.ErrorAs(t, err, &ce)
	var fields []string
	for _, f := range ce.Fields {
		fields = append(fields, f.Field+": "+f.Problem)
	}
	assert.ElementsMatch(t, []string{
		`webhooks[0].events.orders/create.model: unknown model "order" (registered: [product])`,
		`webhooks[0].events.products/create.model: model "product" has no Import.Fetch path, which action import needs to fetch one record`,
		`webhooks[0].events.products/update.model: model "product" has no Import.Fetch path, which action import needs to fetch one record`,
	}, fields)
	assert.NotContains(t, err.Error(), shopifySecret)
}

// A backend without webhooks serves none, and its webhook calls say so.
func TestNoWebhooks(t *testing.T) {
	b, err := backend.New(backend.Config{Name: "crm", BaseURL: "https://crm.example.com"})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	b.Webhooks().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/shopify", bytes.NewReader([]byte(`{}`))))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	_, err = b.Webhook("shopify")
	assert.True(t, errors.Is(err, backend.ErrUnknownWebhook), "%v", err)
	require.NoError(t, b.Start(context.Background()))
	stopHub(t, b)
}

// Two backends on one database, each with an endpoint named shopify: a delivery ID sent
// to both is two deliveries, each processed by its own backend, and neither backend's
// Start resumes the other's.
func TestWebhookBackendsShareDatabase(t *testing.T) {
	ctx := context.Background()
	db := openSQLiteFile(t)
	var eu, us atomic.Int32
	build := func(name string, runs *atomic.Int32) (*backend.Backend, *httptest.Server) {
		b, err := backend.New(backend.Config{Name: name, BaseURL: "https://shop.example.com", Webhooks: []backend.WebhookConfig{shopifyWebhook()}},
			backend.WithDB(db), backend.WithModel(productModel(local.NewMemory[product]())),
			backend.WithWebhookHandler("shopify", "orders/paid", func(context.Context, webhook.Delivery) error { runs.Add(1); return nil }))
		require.NoError(t, err)
		srv := httptest.NewServer(http.StripPrefix("/webhooks", b.Webhooks()))
		t.Cleanup(srv.Close)
		return b, srv
	}
	euB, euSrv := build("shop-eu", &eu)
	usB, usSrv := build("shop-us", &us)
	signer, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{shopifySecret})
	require.NoError(t, err)
	for _, srv := range []*httptest.Server{euSrv, usSrv} {
		s := &shop{srv: srv, signer: signer}
		require.Equal(t, http.StatusOK, s.deliver(t, nil, "x-1", "orders/paid", []byte(`{"id":1}`)))
	}
	require.NoError(t, euB.Start(ctx))
	t.Cleanup(func() { stopHub(t, euB) })
	waitDelivery(t, db.Webhooks(), "shop-eu/shopify", "x-1", status(webhook.StatusProcessed))
	time.Sleep(100 * time.Millisecond)
	d, err := db.Webhooks().Get(ctx, "shop-us/shopify", "x-1")
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusPending, d.Status, "shop-eu's Start left shop-us's delivery alone")
	require.NoError(t, usB.Start(ctx))
	t.Cleanup(func() { stopHub(t, usB) })
	waitDelivery(t, db.Webhooks(), "shop-us/shopify", "x-1", status(webhook.StatusProcessed))
	assert.EqualValues(t, 1, eu.Load())
	assert.EqualValues(t, 1, us.Load())
}

// A delivery waiting for its next attempt when the process stops keeps it: the in-process
// queue's scheduled retry dies with the process, so Start queues the failed deliveries
// with attempts left again (and leaves alone those whose attempts are used up).
func TestWebhookFailedDeliveryRetriedAfterRestart(t *testing.T) {
	ctx := context.Background()
	db := openSQLiteFile(t)
	wh := shopifyWebhook()
	wh.MaxAttempts = 3
	var down atomic.Bool
	down.Store(true)
	var calls sync.Map // delivery ID → *atomic.Int32
	h := func(_ context.Context, d webhook.Delivery) error {
		c, _ := calls.LoadOrStore(d.ID, new(atomic.Int32))
		c.(*atomic.Int32).Add(1)
		if down.Load() {
			return errors.New("the ERP is down")
		}
		return nil
	}
	called := func(id string) int32 {
		c, ok := calls.Load(id)
		if !ok {
			return 0
		}
		return c.(*atomic.Int32).Load()
	}
	slowPool := func(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
		return queue.NewPool(w, queue.WithBackoff(time.Hour, time.Hour)), nil // the retry would come after the stop
	}
	first := newShop(t, wh, backend.WithDB(db), backend.WithQueue(slowPool), backend.WithWebhookHandler("shopify", "orders/paid", h))
	require.NoError(t, first.b.Start(ctx))
	require.Equal(t, http.StatusOK, first.deliver(t, nil, "waiting", "orders/paid", []byte(`{"id":1}`)))
	waitDelivery(t, db.Webhooks(), "shop/shopify", "waiting", status(webhook.StatusFailed))
	// One whose attempts are used up stays failed until a Reprocess.
	spent, _, err := db.Webhooks().Insert(ctx, webhook.Delivery{Endpoint: "shop/shopify", ID: "spent", Event: "orders/paid", Body: []byte(`{"id":2}`)})
	require.NoError(t, err)
	for range wh.MaxAttempts {
		spent, err = db.Webhooks().Finish(ctx, spent.Endpoint, spent.ID, webhook.Outcome{Status: webhook.StatusFailed, Error: "the ERP is down"})
		require.NoError(t, err)
	}
	stopHub(t, first.b) // the "waiting" delivery's retry, an hour away, is dropped with the pool

	down.Store(false)
	second := newShop(t, wh, backend.WithDB(db), backend.WithQueue(fastPool), backend.WithWebhookHandler("shopify", "orders/paid", h))
	second.start(t)
	d := waitDelivery(t, db.Webhooks(), "shop/shopify", "waiting", status(webhook.StatusProcessed))
	assert.Equal(t, 2, d.Attempts)
	assert.EqualValues(t, 2, called("waiting"))
	time.Sleep(100 * time.Millisecond)
	got, err := db.Webhooks().Get(ctx, "shop/shopify", "spent")
	require.NoError(t, err)
	assert.Equal(t, webhook.StatusFailed, got.Status)
	assert.Equal(t, wh.MaxAttempts, got.Attempts)
	assert.Zero(t, called("spent"), "a delivery with its attempts used up was retried")
}

// An update event whose import is still fetching the record when the record's delete event
// is processed must not write the record back after the delete: the two actions on one
// record run one after the other, so the delete comes last and the record stays deleted.
func TestWebhookDeleteDuringImportOfSameRecord(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, shopifyWebhook())
	id, ext, bd := s.imported(t, map[string]any{"title": "Chair", "price": "50"})
	s.start(t)

	// The update's import fetches slowly: the delete event arrives while it waits.
	s.api.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Method: http.MethodGet, Resource: "products", Delay: time.Second})
	body := fmt.Appendf(nil, `{"id":%d}`, id)
	before := s.api.Stats().Requests
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "upd-1", "products/update", body))
	for deadline := time.Now().Add(30 * time.Second); s.api.Stats().Requests == before; time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the update's import never fetched the product")
	}
	// The update's fetch is in flight (the fake counts a request as it arrives).
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "del-1", "products/delete", body))
	for _, d := range []string{"upd-1", "del-1"} {
		got := waitDelivery(t, s.b.Deliveries(), "shop/shopify", d, func(d webhook.Delivery) bool { return d.Status != webhook.StatusPending })
		require.Equal(t, webhook.StatusProcessed, got.Status, "%s: %s", d, got.LastError)
	}
	_, err := s.products.Get(ctx, bd.LocalID)
	assert.ErrorIs(t, err, local.ErrNotFound, "the update's import wrote the deleted record back")
	_, err = s.b.Bindings().GetByExternal(ctx, "shop", "product", ext)
	assert.ErrorIs(t, err, binding.ErrNotFound, "the deleted record's binding came back")
	assert.Zero(t, s.products.Len(), "local products left")
}

// With a spool, deliveries answered before Stop are in the store once Stop returns, and
// the spool's file is gone; a spool directory that cannot be made is a configuration error
// naming the endpoint.
func TestWebhookSpoolStop(t *testing.T) {
	ctx := context.Background()
	hook := shopifyWebhook()
	hook.Spool = t.TempDir()
	s := newShop(t, hook, backend.WithDB(openSQLiteFile(t)))
	require.NoError(t, s.b.Start(ctx))
	files, err := filepath.Glob(filepath.Join(hook.Spool, "*.spool"))
	require.NoError(t, err)
	require.Len(t, files, 1, "the receiver's spool file")
	for i := range 20 {
		require.Equal(t, http.StatusOK, s.deliver(t, nil, fmt.Sprintf("stop-%d", i), "orders/paid", fmt.Appendf(nil, `{"id":%d}`, i)))
	}
	stopHub(t, s.b)
	for i := range 20 {
		_, err := s.b.Deliveries().Get(ctx, "shop/shopify", fmt.Sprintf("stop-%d", i))
		require.NoError(t, err, "delivery %d is in the store after Stop", i)
	}
	_, err = os.Stat(files[0])
	require.ErrorIs(t, err, os.ErrNotExist, "Stop closed the spool and removed its file")

	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	hook.Spool = filepath.Join(notDir, "spool")
	_, err = backend.New(backend.Config{Name: "shop", BaseURL: "https://shop.example.com", Webhooks: []backend.WebhookConfig{hook}},
		backend.WithModel(productModel(local.NewMemory[product]())))
	var cfgErr *backend.ConfigError
	require.ErrorAs(t, err, &cfgErr)
	require.ErrorContains(t, err, "webhooks[0]")
	require.ErrorContains(t, err, "WithSpool")
}

// stopCountingQueue counts Stop calls and fails Enqueue while down is set.
type stopCountingQueue struct {
	queue.Queue
	down    atomic.Bool
	stopped atomic.Int32
}

func (q *stopCountingQueue) Enqueue(ctx context.Context, a queue.Args, o ...queue.EnqueueOption) (queue.JobInfo, error) {
	if q.down.Load() {
		return queue.JobInfo{}, errors.New("queue down")
	}
	return q.Queue.Enqueue(ctx, a, o...)
}

func (q *stopCountingQueue) Stop(ctx context.Context) error {
	q.stopped.Add(1)
	return q.Queue.Stop(ctx)
}

// A spool that cannot be flushed at shutdown (its deliveries cannot be queued) uses up
// Stop's deadline; Stop still stops the queue, and reports the spool.
func TestWebhookStopStopsQueueWhenSpoolFlushTimesOut(t *testing.T) {
	hook := shopifyWebhook()
	hook.Spool = t.TempDir()
	q := &stopCountingQueue{}
	s := newShop(t, hook, backend.WithQueue(func(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
		q.Queue = queue.NewPool(w)
		return q, nil
	}))
	require.NoError(t, s.b.Start(context.Background()))
	q.down.Store(true)
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "x-1", "orders/paid", []byte(`{"id":1}`)))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.b.Stop(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "closing the spool")
	require.EqualValues(t, 1, q.stopped.Load(), "the queue is stopped even though the spool flush took the whole deadline")
	files, _ := filepath.Glob(filepath.Join(hook.Spool, "*.spool"))
	require.Len(t, files, 1, "the delivery not handed on stays in its spool file for the next start")
}
