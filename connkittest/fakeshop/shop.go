// Package fakeshop is a fake Shopify-style REST Admin API for tests, benchmarks and
// examples: a deterministic, seeded shop of products (with variants), customers and orders,
// served with the shapes, limits and errors of the real API, so a connector can be tested
// end to end without a network or a shop.
//
// What it imitates:
//
//   - Routes under /admin/api/{version}/: shop.json (the shop itself, the cheap call a
//     connection test makes), products.json, customers.json, orders.json (listings),
//     {resource}/count.json, {resource}/{id}.json (GET, PUT, DELETE) and POST on the
//     listings. Bodies are wrapped as Shopify wraps them: {"products":[…]},
//     {"product":{…}}, {"count":n}.
//   - Authentication by the X-Shopify-Access-Token header; a wrong or missing token is a
//     401 with Shopify's error body.
//   - Cursor pagination in the Link header (rel="next" and rel="previous", with an opaque
//     page_info); a request with page_info may carry only limit and fields, anything else
//     is a 400, as on the real API. limit defaults to 50 and may not exceed 250.
//   - Filters: updated_at_min, updated_at_max, since_id, ids, status (orders list only
//     open orders unless status=any); order=updated_at asc|desc, id asc|desc (default id
//     asc); fields=a,b.
//   - Records repeated across page boundaries, as a real listing does when records move
//     under it during a walk (WithRepeats): a connector must count them once.
//   - The leaky bucket (default 40 calls, leaking 2 a second): every response carries
//     X-Shopify-Shop-Api-Call-Limit: used/size, a full bucket answers 429 with a decimal
//     Retry-After.
//   - Writes: POST and PUT of products and customers, PUT of orders, with 422
//     {"errors":{field:[…]}} validation errors; POST honours an Idempotency-Key header
//     (replaying the first response), which the real REST API does not document: it lets
//     tests prove a connector's retried creates make one record.
//   - Faults (WithFaults): a fraction of requests fail with 500/502/503, a 429 with a
//     decimal Retry-After, or a reset connection; some writes are applied and then the
//     connection is reset, so the client cannot know.
//   - Webhooks signed like Shopify's (Shop.Webhook): base64 HMAC-SHA256 of the raw body in
//     X-Shopify-Hmac-Sha256, with X-Shopify-Topic, X-Shopify-Webhook-Id and
//     X-Shopify-Shop-Domain.
//
// IDs have 13 or 14 digits like Shopify's, so a connector that squeezes them through a
// float64 or an int32 fails here as it would in production. The data depends only on the
// seed and the sizes. Counters (Shop.Stats) let tests assert what the client did.
//
// Use it as an http.Handler (httptest.NewServer(shop), then shop.APIPath() under the
// server's URL) or let it start its own loopback server with Start.
package fakeshop

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resource names, as they appear in paths ("/products.json") and in Shop methods.
const (
	Products  = "products"
	Customers = "customers"
	Orders    = "orders"
)

// DefaultVersion is the API version the shop answers with when none is configured.
const DefaultVersion = "2024-04"

// Shop is a fake Shopify store. It is an http.Handler and safe for concurrent use.
type Shop struct {
	cfg config

	mu        sync.Mutex
	res       map[string]*collection
	nextID    int64 // for records created through the API
	bucket    float64
	leakedAt  time.Time
	faultRand *rand.Rand
	idem      map[string]idemEntry // Idempotency-Key → first response
	stats     Stats
	srv       *httptest.Server
}

type idemEntry struct {
	status int
	body   []byte
}

// Stats counts what the shop saw and did, for assertions.
type Stats struct {
	// Requests counts every request that reached the shop, whatever its answer.
	Requests int
	// Throttled counts 429 answers because the leaky bucket was full (not injected ones).
	Throttled int
	// Unauthorized counts 401 answers.
	Unauthorized int
	// Faults counts injected faults (5xx, 429, resets).
	Faults int
	// Lists, Gets, Counts, Creates, Updates and Deletes count served requests by kind;
	// Creates counts records really created, Replays the POSTs answered from the
	// idempotency cache instead.
	Lists, Gets, Counts, Creates, Updates, Deletes, Replays int
	// BadRequests counts 400 and 422 answers.
	BadRequests int
	// Webhooks counts deliveries built by Shop.Webhook.
	Webhooks int
}

// Option configures a Shop.
type Option func(*config)

type config struct {
	version    string
	token      string
	secret     string
	domain     string
	seed       uint64
	products   int
	customers  int
	orders     int
	bucketSize int
	leakRate   float64
	latency    time.Duration
	faultRate  float64
	repeats    int
	now        func() time.Time
}

// WithSize sets how many products, customers and orders the shop is seeded with
// (default 2,000, 1,000 and 3,000).
func WithSize(products, customers, orders int) Option {
	return func(c *config) { c.products, c.customers, c.orders = products, customers, orders }
}

// WithSeed sets the seed of the generated data and of the fault sequence (default 1).
func WithSeed(seed uint64) Option { return func(c *config) { c.seed = seed } }

// WithBucket sets the leaky bucket: size calls, leaking perSecond calls a second (default
// 40 and 2, Shopify's standard plan; the real API leaks size/20 a second on every plan,
// which a perSecond of 0 selects). A size of 0 disables the limit.
func WithBucket(size int, perSecond float64) Option {
	return func(c *config) { c.bucketSize, c.leakRate = size, perSecond }
}

// WithLatency delays every answer by d (default none), as a remote shop would.
func WithLatency(d time.Duration) Option { return func(c *config) { c.latency = d } }

// WithFaults makes that fraction (0 to 1) of requests fail: 500, 502 or 503, a 429 with a
// decimal Retry-After, a reset connection, or — for writes — a reset after the write
// was applied. The sequence is drawn from the seed. Default 0.
func WithFaults(rate float64) Option { return func(c *config) { c.faultRate = rate } }

// WithToken sets the access token requests must carry in X-Shopify-Access-Token
// (default "shpat_fake").
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithWebhookSecret sets the secret webhooks are signed with (default
// "fakeshop-webhook-secret").
func WithWebhookSecret(secret string) Option { return func(c *config) { c.secret = secret } }

// WithVersion sets the API version of APIPath, Start's URL and webhooks (default
// DefaultVersion). Requests may use any version of the form YYYY-MM (or "unstable"),
// which the shop echoes in X-Shopify-API-Version.
func WithVersion(v string) Option { return func(c *config) { c.version = v } }

// WithRepeats makes every n-th page boundary of a walk repeat the previous page's last
// record at the start of the next page, as a listing does when a record is updated
// while it is walked (default 4; 0 never repeats).
func WithRepeats(n int) Option { return func(c *config) { c.repeats = n } }

// WithClock sets the clock that stamps writes and drains the bucket (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// New builds a seeded shop. It serves requests as an http.Handler; Start serves it on a
// loopback address.
func New(opts ...Option) *Shop {
	cfg := config{
		version: DefaultVersion, token: "shpat_fake", secret: "fakeshop-webhook-secret",
		domain: "connkit-demo.myshopify.com", seed: 1,
		products: 2000, customers: 1000, orders: 3000,
		bucketSize: 40, leakRate: 2, repeats: 4, now: time.Now,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	cfg.faultRate = min(max(cfg.faultRate, 0), 1)
	cfg.products, cfg.customers, cfg.orders = max(cfg.products, 0), max(cfg.customers, 0), max(cfg.orders, 0)
	cfg.bucketSize, cfg.repeats, cfg.latency = max(cfg.bucketSize, 0), max(cfg.repeats, 0), max(cfg.latency, 0)
	if cfg.leakRate <= 0 {
		cfg.leakRate = max(float64(cfg.bucketSize)/20, 1)
	}
	if cfg.version == "" {
		cfg.version = DefaultVersion
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	s := &Shop{
		cfg:       cfg,
		idem:      make(map[string]idemEntry),
		faultRand: rand.New(rand.NewPCG(cfg.seed, 0xfa17)),
		leakedAt:  cfg.now(),
		nextID:    9_100_000_000_000,
	}
	s.res = seed(cfg)
	return s
}

// Start serves the shop on a loopback address and returns the API's base URL
// (http://127.0.0.1:port/admin/api/2024-04), the value a connector's base_url takes.
// Close stops it.
func (s *Shop) Start() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		s.srv = httptest.NewServer(s)
	}
	return s.srv.URL + s.APIPath()
}

// Close stops the server Start started, if any.
func (s *Shop) Close() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// APIPath returns the path of the API root, "/admin/api/" + version.
func (s *Shop) APIPath() string { return "/admin/api/" + s.cfg.version }

// Token returns the access token the shop accepts.
func (s *Shop) Token() string { return s.cfg.token }

// Stats returns a snapshot of the counters.
func (s *Shop) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Count returns how many records of resource the shop holds.
func (s *Shop) Count(resource string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.res[resource]; c != nil {
		return len(c.byID)
	}
	return 0
}

// IDs returns the IDs of resource's records, ascending.
func (s *Shop) IDs(resource string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.res[resource]
	if c == nil {
		return nil
	}
	ids := make([]int64, len(c.byIDOrder))
	for i, r := range c.byIDOrder {
		ids[i] = r.id
	}
	return ids
}

// Get returns the JSON of one record as the API serves it, or false.
func (s *Shop) Get(resource string, id int64) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.res[resource]
	if c == nil {
		return nil, false
	}
	r, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	return bytes.Clone(r.body), true
}

// Update changes top-level fields of one record as a merchant would in the admin, and
// stamps its updated_at with the shop's clock. It returns the new JSON.
func (s *Shop) Update(resource string, id int64, fields map[string]any) (json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.res[resource]
	if c == nil {
		return nil, fmt.Errorf("fakeshop: unknown resource %q", resource)
	}
	r, ok := c.byID[id]
	if !ok {
		return nil, fmt.Errorf("fakeshop: no %s with id %d", resource, id)
	}
	m, err := decodeObject(r.body)
	if err != nil {
		return nil, err
	}
	for k, v := range fields {
		if k == "id" || k == "created_at" || k == "updated_at" {
			continue
		}
		m[k] = v
	}
	if err := c.put(r, m, s.stamp()); err != nil {
		return nil, err
	}
	return bytes.Clone(r.body), nil
}

// stamp is the time a write records: the shop's clock to the second, as Shopify's.
func (s *Shop) stamp() time.Time { return s.cfg.now().Truncate(time.Second) }

// ServeHTTP implements http.Handler.
func (s *Shop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")

	rt, ok := s.route(r)
	if !ok {
		writeJSON(w, http.StatusNotFound, `{"errors":"Not Found"}`)
		return
	}
	h.Set("X-Shopify-API-Version", rt.version)
	h.Set("X-Request-Id", strconv.FormatInt(s.requestID(), 16))
	if got := r.Header.Get("X-Shopify-Access-Token"); subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.token)) != 1 || got == "" {
		s.count(func(st *Stats) { st.Unauthorized++ })
		writeJSON(w, http.StatusUnauthorized, `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`)
		return
	}
	fault := s.drawFault(r.Method)
	switch fault {
	case faultReset:
		reset(w)
		return
	case fault500:
		writeJSON(w, http.StatusInternalServerError, `{"errors":"Internal Server Error"}`)
		return
	case fault502:
		h.Set("Content-Type", "text/html")
		writeJSON(w, http.StatusBadGateway, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		return
	case fault503:
		writeJSON(w, http.StatusServiceUnavailable, `{"errors":"Unavailable Shop"}`)
		return
	case fault429:
		h.Set("Retry-After", "0.5")
		writeJSON(w, http.StatusTooManyRequests, `{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}`)
		return
	}
	if used, full := s.take(); full {
		h.Set("X-Shopify-Shop-Api-Call-Limit", fmt.Sprintf("%d/%d", s.cfg.bucketSize, s.cfg.bucketSize))
		h.Set("Retry-After", s.retryAfter())
		writeJSON(w, http.StatusTooManyRequests, `{"errors":"Exceeded `+strconv.FormatFloat(s.cfg.leakRate, 'f', -1, 64)+` calls per second for api client. Reduce request rates to resume uninterrupted service."}`)
		return
	} else if s.cfg.bucketSize > 0 {
		h.Set("X-Shopify-Shop-Api-Call-Limit", fmt.Sprintf("%d/%d", used, s.cfg.bucketSize))
	}
	if s.cfg.latency > 0 {
		select {
		case <-time.After(s.cfg.latency):
		case <-r.Context().Done():
			return
		}
	}
	s.serve(w, r, rt, fault == faultResetAfterWrite)
}

func (s *Shop) requestID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.stats.Requests)*7919 + 0x5a5a
}

func (s *Shop) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// take adds one call to the bucket after draining it; full reports a refusal.
func (s *Shop) take() (used int, full bool) {
	if s.cfg.bucketSize <= 0 {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	if el := now.Sub(s.leakedAt).Seconds(); el > 0 {
		s.bucket = max(0, s.bucket-el*s.cfg.leakRate)
	}
	s.leakedAt = now
	if s.bucket+1 > float64(s.cfg.bucketSize)+1e-9 {
		s.stats.Throttled++
		return s.cfg.bucketSize, true
	}
	s.bucket++
	return int(math.Ceil(s.bucket - 1e-9)), false
}

// retryAfter is the Retry-After of a throttled call: Shopify's "2.0" on the standard
// bucket, four leaks' worth of seconds in general, always with a decimal.
func (s *Shop) retryAfter() string {
	if s.cfg.leakRate <= 0 {
		return "2.0"
	}
	return strconv.FormatFloat(4/s.cfg.leakRate, 'f', 1, 64)
}

type faultKind int

const (
	noFault faultKind = iota
	fault500
	fault502
	fault503
	fault429
	faultReset
	faultResetAfterWrite
)

func (s *Shop) drawFault(method string) faultKind {
	if s.cfg.faultRate <= 0 {
		return noFault
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faultRand.Float64() >= s.cfg.faultRate {
		return noFault
	}
	s.stats.Faults++
	if method == http.MethodPost || method == http.MethodPut {
		if s.faultRand.IntN(3) == 0 {
			return faultResetAfterWrite
		}
	}
	return []faultKind{fault500, fault502, fault503, fault429, faultReset}[s.faultRand.IntN(5)]
}

// reset closes the connection without an answer.
func reset(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// route is a parsed request path.
type route struct {
	version  string
	resource string // products, customers, orders
	id       int64  // 0: the collection
	count    bool   // {resource}/count.json
}

func (s *Shop) route(r *http.Request) (route, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/admin/api/")
	if !ok {
		return route{}, false
	}
	version, rest, ok := strings.Cut(rest, "/")
	if !ok || !validVersion(version) {
		return route{}, false
	}
	rest, ok = strings.CutSuffix(rest, ".json")
	if !ok {
		return route{}, false
	}
	if rest == "shop" {
		return route{version: version, resource: "shop"}, true
	}
	res, sub, _ := strings.Cut(rest, "/")
	if res != Products && res != Customers && res != Orders {
		return route{}, false
	}
	rt := route{version: version, resource: res}
	switch {
	case sub == "":
	case sub == "count":
		rt.count = true
	default:
		id, err := strconv.ParseInt(sub, 10, 64)
		if err != nil || id <= 0 || strings.Contains(sub, "/") {
			return route{}, false
		}
		rt.id = id
	}
	return rt, true
}

func validVersion(v string) bool {
	if v == "unstable" {
		return true
	}
	if len(v) != 7 || v[4] != '-' {
		return false
	}
	for i, c := range v {
		if i != 4 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
