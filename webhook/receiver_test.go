package webhook_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/webhook"
)

const shopSecret = "shpss_receiver_secret"

// rig is a Shopify-style receiver on a memory store, with a recording notify hook.
type rig struct {
	t         *testing.T
	v         *webhook.HMAC
	store     webhook.Store
	r         *webhook.Receiver
	logs      *bytes.Buffer
	mu        sync.Mutex
	notified  []webhook.Delivery
	notifyErr error
}

func newRig(t *testing.T, opts ...webhook.Option) *rig {
	t.Helper()
	v, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{shopSecret})
	mustNoErr(t, err)
	g := &rig{t: t, v: v, store: webhook.NewMemory(), logs: &bytes.Buffer{}}
	base := []webhook.Option{
		webhook.WithIDHeader("X-Shopify-Webhook-Id"),
		webhook.WithEventHeader("X-Shopify-Topic"),
		webhook.WithClock(func() time.Time { return testNow }),
		webhook.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&g.mu, g.logs}, nil))),
		webhook.WithNotify(func(ctx context.Context, d webhook.Delivery) error {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.notifyErr != nil {
				return g.notifyErr
			}
			g.notified = append(g.notified, d)
			return nil
		}),
	}
	g.r, err = webhook.NewReceiver("shopify", v, g.store, append(base, opts...)...)
	mustNoErr(t, err)
	return g
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (g *rig) request(id, topic, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/shopify", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if id != "" {
		req.Header.Set("X-Shopify-Webhook-Id", id)
	}
	req.Header.Set("X-Shopify-Topic", topic)
	mustNoErr(g.t, g.v.Sign(req.Header, []byte(body), testNow))
	return req
}

type answer struct {
	code   int
	header http.Header
	Status string `json:"status"`
	ID     string `json:"id"`
	Error  string `json:"error"`
	raw    string
}

func (g *rig) serve(req *http.Request) answer {
	g.t.Helper()
	rec := httptest.NewRecorder()
	g.r.ServeHTTP(rec, req)
	a := answer{code: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		g.t.Fatalf("answer %d %q is not JSON: %v", rec.Code, rec.Body, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		g.t.Fatalf("answer Content-Type %q", ct)
	}
	return a
}

func (g *rig) count() int {
	g.t.Helper()
	n := 0
	for _, err := range g.store.List(g.t.Context(), webhook.Filter{}) {
		mustNoErr(g.t, err)
		n++
	}
	return n
}

func (g *rig) notifications() []webhook.Delivery {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]webhook.Delivery(nil), g.notified...)
}

func (g *rig) get(id string) webhook.Delivery {
	g.t.Helper()
	d, err := g.store.Get(g.t.Context(), "shopify", id)
	mustNoErr(g.t, err)
	return d
}

func TestReceiveAccepted(t *testing.T) {
	g := newRig(t)
	const body = `{"id":820982911946154508,"email":"jon@example.com"}`
	req := g.request("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "orders/create", body)
	req.Header.Set("Authorization", "Bearer sk_live_abc")
	req.Header.Set("Cookie", "session=s3cr3t")
	req.Header.Set("X-Shopify-Shop-Domain", "shop.example.com")
	a := g.serve(req)
	if a.code != http.StatusOK || a.Status != "accepted" || a.ID != "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043" {
		t.Fatalf("answer %d %s", a.code, a.raw)
	}
	d := g.get("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
	if d.Status != webhook.StatusPending || d.Event != "orders/create" || string(d.Body) != body || !d.ReceivedAt.Equal(testNow) {
		t.Fatalf("stored %+v", d)
	}
	for name, want := range map[string]string{
		"X-Shopify-Hmac-Sha256": "[REDACTED]",
		"Authorization":         "Bearer [REDACTED]",
		"Cookie":                "[REDACTED]",
		"X-Shopify-Shop-Domain": "shop.example.com",
		"X-Shopify-Topic":       "orders/create",
	} {
		if got := d.Header.Get(name); got != want {
			t.Errorf("stored %s = %q, want %q", name, got, want)
		}
	}
	for _, s := range []string{"sk_live_abc", "s3cr3t", req.Header.Get("X-Shopify-Hmac-Sha256")} {
		if strings.Contains(fmt.Sprint(d.Header), s) {
			t.Errorf("stored header keeps %q: %v", s, d.Header)
		}
	}
	if n := g.notifications(); len(n) != 1 || n[0].ID != d.ID || n[0].Status != webhook.StatusPending {
		t.Fatalf("notified %+v, want the stored delivery once", n)
	}
}

func TestReceiveRedactsCustomSignatureHeader(t *testing.T) {
	v, err := webhook.NewHMAC("X-Sig", webhook.Hex, []string{"k"})
	mustNoErr(t, err)
	s := webhook.NewMemory()
	r, err := webhook.NewReceiver("custom", v, s)
	mustNoErr(t, err)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	req.Header.Set("webhook-id", "1")
	mustNoErr(t, v.Sign(req.Header, []byte(`{}`), testNow))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	d, err := s.Get(t.Context(), "custom", "1")
	mustNoErr(t, err)
	if got := d.Header.Get("X-Sig"); got != "[REDACTED]" {
		t.Fatalf("stored X-Sig = %q, want it redacted", got)
	}
}

func TestReceiveWrongMethod(t *testing.T) {
	g := newRig(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodHead, http.MethodDelete, http.MethodPatch} {
		req := g.request("1", "orders/create", `{}`)
		req.Method = m
		rec := httptest.NewRecorder()
		g.r.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s: answer %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if g.count() != 0 || len(g.notifications()) != 0 {
		t.Fatal("a non-POST request was stored or notified")
	}
}

func TestReceiveBodyLimit(t *testing.T) {
	g := newRig(t, webhook.WithBodyLimit(1024))
	fits := `{"pad":"` + strings.Repeat("x", 1024-10) + `"}`
	if len(fits) != 1024 {
		t.Fatalf("test body is %d bytes", len(fits))
	}
	if a := g.serve(g.request("fits", "orders/create", fits)); a.code != http.StatusOK {
		t.Fatalf("a body at the limit: answer %d %s", a.code, a.raw)
	}
	over := `{"pad":"` + strings.Repeat("x", 1024-9) + `"}`
	req := g.request("over", "orders/create", over)
	if a := g.serve(req); a.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body one byte over the limit: answer %d %s", a.code, a.raw)
	}
	// Without a Content-Length (chunked), the limit holds while reading.
	req = g.request("chunked", "orders/create", over)
	req.ContentLength = -1
	req.Body = io.NopCloser(io.MultiReader(strings.NewReader(over), strings.NewReader(strings.Repeat(" ", 1<<20))))
	if a := g.serve(req); a.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the limit: answer %d %s", a.code, a.raw)
	}
	if g.count() != 1 {
		t.Fatalf("%d deliveries stored, want only the one that fits", g.count())
	}

	// The default limit is 1 MiB.
	d := newRig(t)
	big := `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	if a := d.serve(d.request("big", "orders/create", big)); a.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body over 1 MiB with the default limit: answer %d", a.code)
	}
}

func TestReceiveVerificationFailures(t *testing.T) {
	g := newRig(t)
	const body = `{"id":1}`
	good := g.request("1", "orders/create", body)
	cases := map[string]*http.Request{}
	tampered := g.request("2", "orders/create", body)
	tampered.Body = io.NopCloser(strings.NewReader(`{"id":2}`))
	cases["tampered body"] = tampered
	missing := g.request("3", "orders/create", body)
	missing.Header.Del("X-Shopify-Hmac-Sha256")
	cases["missing signature"] = missing
	wrong := g.request("4", "orders/create", body)
	other, _ := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{"another secret"})
	mustNoErr(t, other.Sign(wrong.Header, []byte(body), testNow))
	cases["wrong secret"] = wrong
	garbage := g.request("5", "orders/create", body)
	garbage.Header.Set("X-Shopify-Hmac-Sha256", "%%%")
	cases["garbage signature"] = garbage

	var bodies []string
	for name, req := range cases {
		a := g.serve(req)
		if a.code != http.StatusUnauthorized {
			t.Errorf("%s: answer %d %s, want 401", name, a.code, a.raw)
		}
		bodies = append(bodies, a.raw)
	}
	for _, b := range bodies {
		if b != bodies[0] {
			t.Errorf("401 bodies differ (%q vs %q): they must say nothing about why", b, bodies[0])
		}
	}
	if g.count() != 0 || len(g.notifications()) != 0 {
		t.Fatal("an unverified delivery was stored or notified")
	}
	if !strings.Contains(g.logs.String(), "delivery refused") || !strings.Contains(g.logs.String(), "signature verification failed") {
		t.Fatalf("refusals are not logged with their detail: %s", g.logs)
	}
	if a := g.serve(good); a.code != http.StatusOK {
		t.Fatalf("the genuine delivery after the refusals: %d", a.code)
	}
}

func TestReceiveStaleAndFutureStandardWebhooks(t *testing.T) {
	v, err := webhook.NewStandardWebhooks([]string{standardVectors[0].secret})
	mustNoErr(t, err)
	s := webhook.NewMemory()
	r, err := webhook.NewReceiver("std", v, s, webhook.WithClock(func() time.Time { return testNow }), webhook.WithEventPath("type"))
	mustNoErr(t, err)
	post := func(id string, at time.Time) int {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"type":"invoice.paid"}`))
		req.Header.Set("webhook-id", id)
		mustNoErr(t, v.Sign(req.Header, []byte(`{"type":"invoice.paid"}`), at))
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := post("stale", testNow.Add(-6*time.Minute)); c != http.StatusUnauthorized {
		t.Errorf("stale: %d", c)
	}
	if c := post("future", testNow.Add(6*time.Minute)); c != http.StatusUnauthorized {
		t.Errorf("future: %d", c)
	}
	if c := post("fresh", testNow.Add(-4*time.Minute)); c != http.StatusOK {
		t.Errorf("fresh: %d", c)
	}
	d, err := s.Get(t.Context(), "std", "fresh")
	mustNoErr(t, err)
	if d.Event != "invoice.paid" {
		t.Fatalf("event from the body path = %q", d.Event)
	}
	if _, err := s.Get(t.Context(), "std", "stale"); !errors.Is(err, webhook.ErrNotFound) {
		t.Fatalf("the stale delivery was stored: %v", err)
	}
}

func TestReceiveNotJSON(t *testing.T) {
	g := newRig(t)
	for _, body := range []string{`not json`, `{"a":`, ``, `{"a":1}}`, "\xff\xfe"} {
		if a := g.serve(g.request("x", "orders/create", body)); a.code != http.StatusBadRequest || a.Error == "" {
			t.Errorf("body %q: answer %d %s, want 400", body, a.code, a.raw)
		}
	}
	nilBody := g.request("x", "orders/create", "")
	nilBody.Body = nil // a hand-made request: read as empty, not a panic
	if a := g.serve(nilBody); a.code != http.StatusBadRequest {
		t.Errorf("nil body: answer %d %s, want 400", a.code, a.raw)
	}
	if g.count() != 0 {
		t.Fatal("a body that is not JSON was stored")
	}
	// An unsigned non-JSON body is refused as unsigned first: nothing about JSON leaks.
	req := g.request("x", "orders/create", `not json`)
	req.Header.Del("X-Shopify-Hmac-Sha256")
	if a := g.serve(req); a.code != http.StatusUnauthorized {
		t.Fatalf("unsigned non-JSON: %d", a.code)
	}
}

func TestReceiveInvalidIDOrEvent(t *testing.T) {
	g := newRig(t)
	for name, req := range map[string]*http.Request{
		"ID with a control character": g.request("a\x01b", "orders/create", `{}`),
		"ID over 255 bytes":           g.request(strings.Repeat("i", 256), "orders/create", `{}`),
		"event not UTF-8":             g.request("ok", "orders/\xff", `{}`),
	} {
		if a := g.serve(req); a.code != http.StatusBadRequest {
			t.Errorf("%s: answer %d %s", name, a.code, a.raw)
		}
	}
	if a := g.serve(g.request(strings.Repeat("i", 255), "orders/create", `{}`)); a.code != http.StatusOK {
		t.Fatalf("ID of 255 bytes: %d", a.code)
	}
}

func TestReceiveDuplicates(t *testing.T) {
	g := newRig(t)
	first := g.serve(g.request("dup", "orders/create", `{"v":1}`))
	again := g.serve(g.request("dup", "orders/create", `{"v":2}`))
	if first.Status != "accepted" || again.code != http.StatusOK || again.Status != "duplicate" {
		t.Fatalf("answers %s then %d %s", first.raw, again.code, again.raw)
	}
	if d := g.get("dup"); string(d.Body) != `{"v":1}` || g.count() != 1 {
		t.Fatalf("stored %s, %d deliveries", d.Body, g.count())
	}
	// Still pending: the redelivery notifies again (a lost enqueue is repaired).
	if n := len(g.notifications()); n != 2 {
		t.Fatalf("notified %d times, want 2 while pending", n)
	}
	_, err := g.store.Finish(t.Context(), "shopify", "dup", webhook.Outcome{Status: webhook.StatusProcessed, At: testNow})
	mustNoErr(t, err)
	if a := g.serve(g.request("dup", "orders/create", `{"v":1}`)); a.Status != "duplicate" {
		t.Fatalf("answer %s", a.raw)
	}
	if n := len(g.notifications()); n != 2 {
		t.Fatalf("a processed delivery's redelivery notified (%d)", n)
	}
}

func TestReceiveIDFromBodyHash(t *testing.T) {
	g := newRig(t)
	const body = `{"no":"id header"}`
	a := g.serve(g.request("", "orders/create", body))
	sum := sha256.Sum256([]byte(body))
	want := "sha256:" + hex.EncodeToString(sum[:])
	if a.code != http.StatusOK || a.ID != want {
		t.Fatalf("answer %d %s, want ID %s", a.code, a.raw, want)
	}
	if b := g.serve(g.request("", "orders/create", body)); b.Status != "duplicate" || b.ID != want {
		t.Fatalf("the same body again: %s", b.raw)
	}
	if c := g.serve(g.request("", "orders/create", `{"no":"id header","other":1}`)); c.Status != "accepted" {
		t.Fatalf("another body: %s", c.raw)
	}
}

// failingStore fails Insert while fail is set.
type failingStore struct {
	webhook.Store
	fail atomic.Bool
}

func (s *failingStore) Insert(ctx context.Context, d webhook.Delivery) (webhook.Delivery, bool, error) {
	if s.fail.Load() {
		return webhook.Delivery{}, false, errors.New("database is locked")
	}
	return s.Store.Insert(ctx, d)
}

func TestReceiveStoreFailure(t *testing.T) {
	v, _ := webhook.NewHMAC("X-Sig", webhook.Hex, []string{"k"})
	s := &failingStore{Store: webhook.NewMemory()}
	s.fail.Store(true)
	notified := 0
	r, err := webhook.NewReceiver("ep", v, s, webhook.WithNotify(func(context.Context, webhook.Delivery) error { notified++; return nil }))
	mustNoErr(t, err)
	req := func() *http.Request {
		q := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
		q.Header.Set("webhook-id", "1")
		mustNoErr(t, v.Sign(q.Header, []byte(`{}`), testNow))
		return q
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req())
	if rec.Code != http.StatusServiceUnavailable || notified != 0 {
		t.Fatalf("store down: answer %d, notified %d", rec.Code, notified)
	}
	if strings.Contains(rec.Body.String(), "locked") {
		t.Fatalf("the answer leaks the store error: %s", rec.Body)
	}
	s.fail.Store(false)
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, req())
	if rec.Code != http.StatusOK || notified != 1 {
		t.Fatalf("store back: answer %d, notified %d", rec.Code, notified)
	}
}

func TestReceiveNotifyFailureIsRepairedByRedelivery(t *testing.T) {
	g := newRig(t)
	g.notifyErr = errors.New("queue unavailable")
	if a := g.serve(g.request("n1", "orders/create", `{}`)); a.code != http.StatusServiceUnavailable {
		t.Fatalf("notify failed: answer %d", a.code)
	}
	if d := g.get("n1"); d.Status != webhook.StatusPending {
		t.Fatalf("stored %s, want pending", d.Status)
	}
	g.mu.Lock()
	g.notifyErr = nil
	g.mu.Unlock()
	if a := g.serve(g.request("n1", "orders/create", `{}`)); a.code != http.StatusOK || a.Status != "duplicate" {
		t.Fatalf("redelivery: %d %s", a.code, a.raw)
	}
	if n := g.notifications(); len(n) != 1 || n[0].ID != "n1" {
		t.Fatalf("notified %v, want n1 once the queue is back", n)
	}
}

func TestReceiveNeverProcessesOnTheRequest(t *testing.T) {
	var calls atomic.Int32
	g := newRig(t, webhook.WithHandler("orders/create", func(context.Context, webhook.Delivery) error {
		calls.Add(1)
		return nil
	}))
	g.serve(g.request("1", "orders/create", `{}`))
	if calls.Load() != 0 {
		t.Fatal("the handler ran during ServeHTTP")
	}
	mustNoErr(t, g.r.Process(t.Context(), "1"))
	if calls.Load() != 1 || g.get("1").Status != webhook.StatusProcessed {
		t.Fatalf("after Process: %d calls, status %s", calls.Load(), g.get("1").Status)
	}
}

func TestProcessOutcomes(t *testing.T) {
	var calls sync.Map // event → *atomic.Int32
	count := func(event string) int32 {
		v, _ := calls.LoadOrStore(event, new(atomic.Int32))
		return v.(*atomic.Int32).Load()
	}
	h := func(fn func(d webhook.Delivery) error) webhook.Handler {
		return func(_ context.Context, d webhook.Delivery) error {
			v, _ := calls.LoadOrStore(d.Event, new(atomic.Int32))
			v.(*atomic.Int32).Add(1)
			return fn(d)
		}
	}
	failures := 2
	g := newRig(t,
		webhook.WithHandler("ok", h(func(webhook.Delivery) error { return nil })),
		webhook.WithHandler("flaky", h(func(webhook.Delivery) error {
			if failures > 0 {
				failures--
				return errors.New("remote API timed out")
			}
			return nil
		})),
		webhook.WithHandler("other-shop", h(func(webhook.Delivery) error { return fmt.Errorf("shop 7: %w", webhook.ErrIgnore) })),
		webhook.WithHandler("bad", h(func(webhook.Delivery) error { return queue.Permanent(errors.New("order has no ID")) })),
		webhook.WithHandler("panics", h(func(webhook.Delivery) error { panic("nil map") })),
	)
	ctx := t.Context()
	for _, ev := range []string{"ok", "flaky", "other-shop", "bad", "panics", "unknown"} {
		g.serve(g.request(ev, ev, `{}`))
	}

	mustNoErr(t, g.r.Process(ctx, "ok"))
	mustNoErr(t, g.r.Process(ctx, "ok")) // a second job of the same delivery
	if d := g.get("ok"); d.Status != webhook.StatusProcessed || d.Attempts != 1 || count("ok") != 1 {
		t.Fatalf("ok: %s after %d attempts, %d calls", d.Status, d.Attempts, count("ok"))
	}

	for i := 1; i <= 2; i++ {
		err := g.r.Process(ctx, "flaky")
		if err == nil || !strings.Contains(err.Error(), "remote API timed out") {
			t.Fatalf("flaky attempt %d: %v", i, err)
		}
		if d := g.get("flaky"); d.Status != webhook.StatusFailed || d.LastError != "remote API timed out" || d.Attempts != i {
			t.Fatalf("flaky after attempt %d: %+v", i, d)
		}
	}
	mustNoErr(t, g.r.Process(ctx, "flaky")) // the queue's retry succeeds
	if d := g.get("flaky"); d.Status != webhook.StatusProcessed || d.LastError != "" || d.Attempts != 3 {
		t.Fatalf("flaky after success: %+v", d)
	}

	mustNoErr(t, g.r.Process(ctx, "other-shop"))
	if d := g.get("other-shop"); d.Status != webhook.StatusIgnored || !strings.Contains(d.LastError, "shop 7") {
		t.Fatalf("ErrIgnore: %+v", d)
	}

	err := g.r.Process(ctx, "bad") // TestProcessPermanentReachesTheQueue: the queue cancels it
	if err == nil || !strings.Contains(err.Error(), "order has no ID") {
		t.Fatalf("permanent: %v", err)
	}
	if d := g.get("bad"); d.Status != webhook.StatusFailed {
		t.Fatalf("bad: %s", d.Status)
	}

	err = g.r.Process(ctx, "panics")
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking handler: %v", err)
	}
	if d := g.get("panics"); d.Status != webhook.StatusFailed || !strings.Contains(d.LastError, "nil map") {
		t.Fatalf("panics: %+v", d)
	}

	mustNoErr(t, g.r.Process(ctx, "unknown"))
	if d := g.get("unknown"); d.Status != webhook.StatusIgnored {
		t.Fatalf("an event with no handler ended %s, want ignored", d.Status)
	}

	if err := g.r.Process(ctx, "never-received"); !errors.Is(err, webhook.ErrNotFound) {
		t.Fatalf("Process of an unknown ID: %v", err)
	}
}

func TestProcessPermanentReachesTheQueue(t *testing.T) {
	// The queue sees through Process's wrapping: a Permanent handler error cancels the job.
	g := newRig(t, webhook.WithHandler("bad", func(context.Context, webhook.Delivery) error {
		return queue.Permanent(errors.New("no ID"))
	}))
	g.serve(g.request("b", "bad", `{}`))
	workers := &queue.Workers{}
	queue.AddWorker(workers, func(ctx context.Context, job *queue.Job[deliveryJob]) error {
		return g.r.Process(ctx, job.Args.ID)
	})
	pool := queue.NewPool(workers, queue.WithBackoff(time.Millisecond, time.Millisecond))
	ctx := t.Context()
	mustNoErr(t, pool.Start(ctx))
	defer func() { mustNoErr(t, pool.Stop(ctx)) }()
	info, err := pool.Enqueue(ctx, deliveryJob{ID: "b"}, queue.WithMaxAttempts(5))
	mustNoErr(t, err)
	for {
		j, err := pool.GetJob(ctx, info.ID)
		mustNoErr(t, err)
		if j.State == queue.StateCancelled {
			if j.Attempt != 1 {
				t.Fatalf("cancelled after %d attempts, want 1", j.Attempt)
			}
			break
		}
		if j.State == queue.StateCompleted || j.State == queue.StateDiscarded {
			t.Fatalf("job ended %s, want cancelled", j.State)
		}
		time.Sleep(time.Millisecond)
	}
}

type deliveryJob struct {
	ID string `json:"id"`
}

func (deliveryJob) Kind() string { return "webhook_test_delivery" }

func TestReprocessAndResume(t *testing.T) {
	var calls atomic.Int32
	fail := atomic.Bool{}
	fail.Store(true)
	g := newRig(t, webhook.WithHandler("orders/create", func(context.Context, webhook.Delivery) error {
		calls.Add(1)
		if fail.Load() {
			return errors.New("down")
		}
		return nil
	}))
	ctx := t.Context()
	g.serve(g.request("r1", "orders/create", `{}`))
	g.serve(g.request("r2", "orders/create", `{}`))
	g.serve(g.request("r3", "orders/create", `{}`))
	if err := g.r.Process(ctx, "r1"); err == nil {
		t.Fatal("want the handler's error")
	}
	fail.Store(false)
	mustNoErr(t, g.r.Process(ctx, "r2"))

	// Retry the failed one: back to pending, notified again, processed.
	before := len(g.notifications())
	mustNoErr(t, g.r.Reprocess(ctx, "r1"))
	if d := g.get("r1"); d.Status != webhook.StatusPending || d.LastError != "down" {
		t.Fatalf("after Reprocess: %+v", d)
	}
	if n := g.notifications(); len(n) != before+1 || n[len(n)-1].ID != "r1" {
		t.Fatalf("Reprocess did not notify r1: %v", n)
	}
	mustNoErr(t, g.r.Process(ctx, "r1"))
	if d := g.get("r1"); d.Status != webhook.StatusProcessed || d.Attempts != 2 {
		t.Fatalf("r1 after retry: %+v", d)
	}

	// Replay a processed one: the handler runs again.
	n := calls.Load()
	mustNoErr(t, g.r.Reprocess(ctx, "r2"))
	mustNoErr(t, g.r.Process(ctx, "r2"))
	if calls.Load() != n+1 {
		t.Fatal("a replayed delivery was not processed again")
	}
	if err := g.r.Reprocess(ctx, "nope"); !errors.Is(err, webhook.ErrNotFound) {
		t.Fatalf("Reprocess of an unknown ID: %v", err)
	}

	// Resume notifies what is still pending (r3) and nothing else.
	before = len(g.notifications())
	got, err := g.r.Resume(ctx)
	mustNoErr(t, err)
	if ns := g.notifications()[before:]; got != 1 || len(ns) != 1 || ns[0].ID != "r3" {
		t.Fatalf("Resume = %d, notified %v, want r3 only", got, ns)
	}
}

func TestNewReceiverErrors(t *testing.T) {
	v, _ := webhook.NewHMAC("X-Sig", webhook.Hex, []string{"k"})
	s := webhook.NewMemory()
	noop := func(context.Context, webhook.Delivery) error { return nil }
	for name, mk := range map[string]func() (*webhook.Receiver, error){
		"no endpoint": func() (*webhook.Receiver, error) { return webhook.NewReceiver("", v, s) },
		"no verifier": func() (*webhook.Receiver, error) { return webhook.NewReceiver("ep", nil, s) },
		"no store":    func() (*webhook.Receiver, error) { return webhook.NewReceiver("ep", v, nil) },
		"header and path": func() (*webhook.Receiver, error) {
			return webhook.NewReceiver("ep", v, s, webhook.WithEventHeader("X-T"), webhook.WithEventPath("type"))
		},
		"handler twice": func() (*webhook.Receiver, error) {
			return webhook.NewReceiver("ep", v, s, webhook.WithHandler("a", noop), webhook.WithHandler("a", noop))
		},
		"nil handler": func() (*webhook.Receiver, error) {
			return webhook.NewReceiver("ep", v, s, webhook.WithHandler("a", nil))
		},
		"zero body limit":    func() (*webhook.Receiver, error) { return webhook.NewReceiver("ep", v, s, webhook.WithBodyLimit(0)) },
		"empty ID header":    func() (*webhook.Receiver, error) { return webhook.NewReceiver("ep", v, s, webhook.WithIDHeader("")) },
		"empty event header": func() (*webhook.Receiver, error) { return webhook.NewReceiver("ep", v, s, webhook.WithEventHeader("")) },
		"empty event path":   func() (*webhook.Receiver, error) { return webhook.NewReceiver("ep", v, s, webhook.WithEventPath("")) },
	} {
		if r, err := mk(); err == nil || r != nil {
			t.Errorf("%s: got %v, %v; want an error", name, r, err)
		}
	}
	r, err := webhook.NewReceiver("ep", v, s)
	mustNoErr(t, err)
	if _, err := r.Resume(t.Context()); err == nil {
		t.Error("Resume without a Notify hook succeeded")
	}
}

// 1,000 concurrent deliveries, 200 of them redeliveries of others: every one answered
// 200, none lost, each processed exactly once, while processing runs on workers.
func TestConcurrentDeliveries(t *testing.T) {
	const unique, dups = 800, 200
	var mu sync.Mutex
	processed := map[string]int{}
	jobs := make(chan string, 4*(unique+dups))
	g := newRig(t,
		webhook.WithHandler("orders/create", func(_ context.Context, d webhook.Delivery) error {
			mu.Lock()
			processed[d.ID]++
			mu.Unlock()
			return nil
		}),
		webhook.WithNotify(func(_ context.Context, d webhook.Delivery) error {
			jobs <- d.ID
			return nil
		}),
	)
	ctx := t.Context()
	var workers sync.WaitGroup
	for range 4 {
		workers.Go(func() {
			for id := range jobs {
				// As a queue does: an attempt that failed (here: the delivery's handler is
				// running on another worker) is tried again.
				err := g.r.Process(ctx, id)
				for try := 0; err != nil && try < 1000; try++ {
					time.Sleep(time.Millisecond)
					err = g.r.Process(ctx, id)
				}
				if err != nil {
					t.Errorf("Process(%s): %v", id, err)
				}
			}
		})
	}
	var (
		wg       sync.WaitGroup
		accepted atomic.Int32
		dupes    atomic.Int32
		start    = make(chan struct{})
	)
	for i := range unique + dups {
		id := fmt.Sprintf("d%03d", i%unique) // the last 200 repeat the first 200
		body := fmt.Sprintf(`{"n":%d}`, i%unique)
		req := g.request(id, "orders/create", body)
		wg.Go(func() {
			<-start
			rec := httptest.NewRecorder()
			g.r.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Errorf("%s: answer %d %s", id, rec.Code, rec.Body)
				return
			}
			if strings.Contains(rec.Body.String(), `"accepted"`) {
				accepted.Add(1)
			} else {
				dupes.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(jobs)
	workers.Wait()

	if accepted.Load() != unique || dupes.Load() != dups {
		t.Fatalf("accepted %d and duplicates %d, want %d and %d", accepted.Load(), dupes.Load(), unique, dups)
	}
	if st := g.r.Stats(); st != (webhook.Stats{Requests: unique + dups, Accepted: unique, Duplicates: dups}) {
		t.Errorf("Stats = %+v, want %d accepted and %d duplicates", st, unique, dups)
	}
	if len(processed) != unique {
		t.Fatalf("%d deliveries processed, want %d", len(processed), unique)
	}
	for id, n := range processed {
		if n != 1 {
			t.Errorf("%s processed %d times", id, n)
		}
	}
	n := 0
	for d, err := range g.store.List(ctx, webhook.Filter{Endpoint: "shopify"}) {
		mustNoErr(t, err)
		if d.Status != webhook.StatusProcessed || d.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts", d.ID, d.Status, d.Attempts)
		}
		n++
	}
	if n != unique {
		t.Fatalf("%d deliveries stored, want %d", n, unique)
	}
}

// TestReceiverStats: every answer is counted once, under its outcome.
func TestReceiverStats(t *testing.T) {
	g := newRig(t)
	g.serve(g.request("a", "products/update", `{"id":1}`))
	g.serve(g.request("a", "products/update", `{"id":1}`))
	bad := g.request("b", "products/update", `{"id":2}`)
	bad.Header.Set("X-Shopify-Hmac-Sha256", "AAAA")
	g.serve(bad)
	g.serve(httptest.NewRequest(http.MethodGet, "/webhooks/shopify", nil))
	g.serve(g.request("c", "products/update", `not json`))
	g.notifyErr = errors.New("queue down")
	g.serve(g.request("d", "products/update", `{"id":4}`))
	want := webhook.Stats{Requests: 6, Accepted: 1, Duplicates: 1, Unauthorized: 1, Invalid: 2, Unavailable: 1}
	if got := g.r.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// A replay asked for while an attempt runs is not lost: the running attempt's outcome is
// stale, and the delivery is processed again, once, by the same Process call — whether or
// not the replay's own job ever runs.
func TestReprocessDuringAttempt(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	g := newRig(t, webhook.WithHandler("orders/create", func(context.Context, webhook.Delivery) error {
		if calls.Add(1) == 1 {
			close(started)
			<-release // the first attempt read the delivery and is working on it
		}
		return nil
	}))
	ctx := t.Context()
	g.serve(g.request("r1", "orders/create", `{}`))
	done := make(chan error, 1)
	go func() { done <- g.r.Process(ctx, "r1") }()
	<-started
	mustNoErr(t, g.r.Reprocess(ctx, "r1"))
	close(release)
	mustNoErr(t, <-done)
	if n := calls.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2 (the attempt, then the replay)", n)
	}
	d := g.get("r1")
	if d.Status != webhook.StatusProcessed || d.Attempts != 1 || d.Generation != 1 {
		t.Fatalf("after the replay: status %s, attempts %d, generation %d; want processed, 1, 1", d.Status, d.Attempts, d.Generation)
	}
	// The replay's own job, running later, finds it processed and does nothing.
	mustNoErr(t, g.r.Process(ctx, "r1"))
	if n := calls.Load(); n != 2 {
		t.Fatalf("handler ran %d times after the replay's job, want 2", n)
	}
}
