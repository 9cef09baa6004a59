// Package fakecrm is a fake CRM API shaped like HubSpot's CRM v3 objects API, for testing
// and benchmarking connectors without a network or an account: contacts and companies
// with associations, bearer-token auth, cursor pagination in the response body, HubSpot's
// error bodies and rate-limit headers, and knobs for latency, injected faults and a
// request-rate limit. It runs on a loopback address (net/http/httptest), holds
// deterministic seeded data, and counts what it served.
//
// Routes ({type} is "contacts" or "companies"):
//
//	GET    /crm/v3/objects/{type}?limit=&after=&properties=&associations=&archived=
//	GET    /crm/v3/objects/{type}/{id}?properties=&associations=&idProperty=email
//	POST   /crm/v3/objects/{type}         {"properties": {...}, "associations": [...]}
//	PATCH  /crm/v3/objects/{type}/{id}    {"properties": {...}}
//	DELETE /crm/v3/objects/{type}/{id}    archives the record
//	PUT    /crm/v4/objects/{type}/{id}/associations/default/{toType}/{toID}
//
// As in HubSpot, records are updated with PATCH only: a PUT on a record is a 405.
//
// A listing answers
//
//	{"results": [{"id": "1001", "properties": {...}, "createdAt": "…", "updatedAt": "…",
//	  "archived": false, "associations": {"companies": {"results": [{"id": "900001",
//	  "type": "contact_to_company"}]}}}],
//	 "paging": {"next": {"after": "1011", "link": "…"}}}
//
// in ascending ID order, limit 10 by default and at most 100; "paging" is absent on the
// last page. As in HubSpot, property values are strings, a read returns only the default
// properties unless "properties" names others, and associations appear only when asked
// for and not empty. Times are RFC 3339 in UTC with milliseconds.
//
// Errors have HubSpot's shape, {"status": "error", "message": …, "correlationId": …,
// "category": …}: 401 INVALID_AUTHENTICATION for a missing or wrong token, 404
// OBJECT_NOT_FOUND, 400 VALIDATION_ERROR for malformed JSON, unknown or read-only
// properties, invalid emails or lifecycle stages and bad limits, 409 CONFLICT for a
// contact whose email another contact has ("Contact already exists. Existing ID: 1001"),
// and 429 RATE_LIMITS with the X-HubSpot-RateLimit-* headers.
//
// The server is safe for concurrent use.
package fakecrm

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Object types served by the fake.
const (
	Contacts  = "contacts"
	Companies = "companies"
)

// DefaultToken is the access token a Server accepts unless WithToken sets another.
const DefaultToken = "pat-na1-fake-crm-token"

// First IDs of each object type: distinct ranges, so a contact ID used as a company ID
// (a connector's mapping mistake) is not found rather than silently matching.
const (
	firstContactID = 1001
	firstCompanyID = 900001
)

// Page sizes of listings, as HubSpot's.
const (
	defaultLimit = 10
	maxLimit     = 100
)

// Object is one CRM record as the server holds it.
type Object struct {
	ID         string
	Properties map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Archived   bool
	// Associated holds the IDs of the associated records of the other type (a contact's
	// companies, a company's contacts), in ascending ID order.
	Associated []string
}

// Stats counts what the server saw and did.
type Stats struct {
	// Requests counts every request, refused ones included, from its arrival (before the
	// added latency).
	Requests int
	// Lists, Gets, Creates, Updates, Archives and Associations count successful calls of
	// each kind.
	Lists, Gets, Creates, Updates, Archives, Associations int
	// Unauthorized, RateLimited (429 from the rate limit or faults), Conflicts (409),
	// BadRequests (400) and NotFound (404) count refusals.
	Unauthorized, RateLimited, Conflicts, BadRequests, NotFound int
	// Faults counts injected faults (429 and 5xx answered at random; see WithFaults).
	Faults int
}

// Option configures a Server.
type Option func(*Server)

// WithToken sets the bearer token the server accepts (default DefaultToken).
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithSeedData fills the CRM with companies and contacts generated deterministically from
// seed: the same arguments give the same records, IDs and times. Contacts have an email,
// a first and last name, a phone, a lifecycle stage; four contacts in five are associated
// with a company.
func WithSeedData(contacts, companies int, seed uint64) Option {
	return func(s *Server) { s.seed = &seedSpec{contacts, companies, seed} }
}

// WithLatency delays every response by d, as a distant API does (see also SetLatency).
func WithLatency(d time.Duration) Option { return func(s *Server) { s.latency = d } }

// WithFaults answers a fraction rate (0 to 1) of the requests that passed authentication
// with a transient failure instead of serving them: a 429 (HubSpot's "secondly limit"),
// or a 500, 502, 503 or 504. Nothing is written for a faulted request, so retrying it is
// safe. The choice is drawn from a generator seeded with seed, so a sequential client sees
// the same faults on every run.
func WithFaults(rate float64, seed uint64) Option {
	return func(s *Server) {
		s.faultRate = min(max(rate, 0), 1)
		s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	}
}

// WithRateLimit refuses requests beyond max per interval (a sliding window, like
// HubSpot's "100 requests per 10 seconds") with 429 and a Retry-After. Every response
// carries X-HubSpot-RateLimit-Max, -Remaining and -Interval-Milliseconds.
func WithRateLimit(max int, interval time.Duration) Option {
	return func(s *Server) { s.limitMax, s.limitInterval = max, interval }
}

// WithClock sets the clock that stamps createdAt and updatedAt (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

type seedSpec struct {
	contacts, companies int
	seed                uint64
}

// Server is a running fake CRM. Create it with New; Close it when done.
type Server struct {
	*httptest.Server

	token         string
	now           func() time.Time
	seed          *seedSpec
	limitMax      int
	limitInterval time.Duration

	mu        sync.Mutex
	latency   time.Duration
	faultRate float64
	rng       *rand.Rand
	objects   map[string]*objectStore
	window    []time.Time // times of the requests inside the rate-limit window
	stats     Stats
	reqSeq    int
	last      time.Time // the latest stamp
}

type objectStore struct {
	kind   string // Contacts or Companies
	nextID int64
	byID   map[int64]*record
	order  []*record // ascending ID: IDs only grow, so adding appends
}

type record struct {
	id         int64
	props      map[string]string
	created    time.Time
	updated    time.Time
	archived   bool
	associated map[int64]struct{}
}

// New starts a fake CRM on a loopback address.
func New(opts ...Option) *Server {
	s := &Server{
		token: DefaultToken,
		now:   time.Now,
		objects: map[string]*objectStore{
			Contacts:  {kind: Contacts, nextID: firstContactID, byID: map[int64]*record{}},
			Companies: {kind: Companies, nextID: firstCompanyID, byID: map[int64]*record{}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	if s.seed != nil {
		s.fill(*s.seed)
	}
	s.Server = httptest.NewServer(s.routes())
	return s
}

// Token returns the bearer token the server accepts.
func (s *Server) Token() string { return s.token }

// SetLatency changes the delay added to every response.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// SetFaultRate changes the fraction of requests answered with a transient failure (see
// WithFaults); 0 turns faults off.
func (s *Server) SetFaultRate(rate float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultRate = min(max(rate, 0), 1)
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(1, 2))
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Add stores a new record of kind ("contacts" or "companies") with the given properties,
// as if created in the CRM's own interface, and returns its ID. It panics on an unknown
// kind.
func (s *Server) Add(kind string, props map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.store(kind).add(s.stamp(), props)
	return strconv.FormatInt(r.id, 10)
}

// Associate associates contact contactID with company companyID, as the v4 association
// endpoint does. It reports false when either does not exist.
func (s *Server) Associate(contactID, companyID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok1 := s.objects[Contacts].get(contactID)
	co, ok2 := s.objects[Companies].get(companyID)
	if !ok1 || !ok2 {
		return false
	}
	link(c, co)
	return true
}

// Update changes properties of a record (an empty value clears one) and stamps its
// updatedAt, as an edit in the CRM's own interface does. It reports false when the record
// does not exist.
func (s *Server) Update(kind, id string, props map[string]string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.store(kind).get(id)
	if !ok {
		return false
	}
	r.set(props)
	r.touch(s.stamp(), kind)
	return true
}

// Get returns one record of kind (archived ones too), or false.
func (s *Server) Get(kind, id string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.store(kind).get(id)
	if !ok {
		return Object{}, false
	}
	return r.object(), true
}

// List returns every record of kind that is not archived, in ascending ID order.
func (s *Server) List(kind string) []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.store(kind)
	out := make([]Object, 0, len(st.byID))
	for _, r := range st.sorted() {
		if !r.archived {
			out = append(out, r.object())
		}
	}
	return out
}

func (s *Server) store(kind string) *objectStore {
	st, ok := s.objects[kind]
	if !ok {
		panic(fmt.Sprintf("fakecrm: unknown object type %q (want %q or %q)", kind, Contacts, Companies))
	}
	return st
}

// stamp is the current time with HubSpot's millisecond precision, and at least a
// millisecond after the previous stamp, so every write gets a later updatedAt than the
// writes before it (tests can tell any two versions apart). Callers hold s.mu.
func (s *Server) stamp() time.Time {
	t := s.now().UTC().Truncate(time.Millisecond)
	if !t.After(s.last) {
		t = s.last.Add(time.Millisecond)
	}
	s.last = t
	return t
}

func (st *objectStore) add(at time.Time, props map[string]string) *record {
	r := &record{id: st.nextID, props: map[string]string{}, created: at, updated: at, associated: map[int64]struct{}{}}
	st.nextID++
	r.set(props)
	r.touch(at, st.kind)
	r.props["createdate"] = formatTime(at)
	st.byID[r.id] = r
	st.order = append(st.order, r)
	return r
}

func (st *objectStore) get(id string) (*record, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != id {
		return nil, false
	}
	r, ok := st.byID[n]
	return r, ok
}

// sorted returns the records in ascending ID order (the store's own slice: callers do not
// modify it).
func (st *objectStore) sorted() []*record { return st.order }

// from returns the records with an ID of at least id, in ascending ID order.
func (st *objectStore) from(id int64) []*record {
	i, _ := slices.BinarySearchFunc(st.order, id, func(r *record, id int64) int { return cmp.Compare(r.id, id) })
	return st.order[i:]
}

func (r *record) set(props map[string]string) {
	for k, v := range props {
		if v == "" {
			delete(r.props, k)
		} else {
			r.props[k] = v
		}
	}
}

func (r *record) touch(at time.Time, kind string) {
	if at.Before(r.updated) {
		at = r.updated
	}
	r.updated = at
	r.props[modifiedProperty(kind)] = formatTime(at)
	r.props["hs_object_id"] = strconv.FormatInt(r.id, 10)
}

func (r *record) object() Object {
	o := Object{ID: strconv.FormatInt(r.id, 10), Properties: maps.Clone(r.props), CreatedAt: r.created,
		UpdatedAt: r.updated, Archived: r.archived}
	for _, id := range slices.Sorted(maps.Keys(r.associated)) {
		o.Associated = append(o.Associated, strconv.FormatInt(id, 10))
	}
	return o
}

func link(contact, company *record) {
	contact.associated[company.id] = struct{}{}
	company.associated[contact.id] = struct{}{}
}

func modifiedProperty(kind string) string {
	if kind == Companies {
		return "hs_lastmodifieddate"
	}
	return "lastmodifieddate"
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Properties each type knows; writes naming any other are refused. Read-only ones are
// maintained by the server.
var (
	writable = map[string]map[string]bool{
		Contacts: set("email", "firstname", "lastname", "phone", "company", "jobtitle", "lifecyclestage",
			"city", "country", "website"),
		Companies: set("name", "domain", "industry", "phone", "city", "country", "numberofemployees",
			"lifecyclestage"),
	}
	readOnly = set("createdate", "lastmodifieddate", "hs_lastmodifieddate", "hs_object_id")
	defaults = map[string][]string{
		Contacts:  {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"},
		Companies: {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"},
	}
	lifecycleStages = set("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
		"customer", "evangelist", "other")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var (
	firstNames = []string{"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret",
		"Ken", "Radia", "Dennis", "Katherine", "Tim", "Hedy", "Linus"}
	lastNames = []string{"Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus",
		"Hamilton", "Thompson", "Perlman", "Ritchie", "Johnson", "Berners-Lee", "Lamarr", "Torvalds"}
	companyWords = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka",
		"Soylent", "Tyrell", "Cyberdyne", "Aperture"}
	industries = []string{"COMPUTER_SOFTWARE", "RETAIL", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE",
		"MANUFACTURING"}
	stages = []string{"subscriber", "lead", "marketingqualifiedlead", "opportunity", "customer"}
)

// seedBase is the createdAt of the first seeded record; records follow a minute apart.
var seedBase = time.Date(2024, 1, 2, 9, 0, 0, 0, time.UTC)

func (s *Server) fill(spec seedSpec) {
	rng := rand.New(rand.NewPCG(spec.seed, spec.seed+1))
	at := seedBase
	companies := make([]*record, 0, spec.companies)
	for i := range spec.companies {
		w := companyWords[rng.IntN(len(companyWords))]
		name := fmt.Sprintf("%s %d", w, i+1)
		companies = append(companies, s.objects[Companies].add(at, map[string]string{
			"name": name, "domain": fmt.Sprintf("%s%d.example.com", strings.ToLower(w), i+1),
			"industry": industries[rng.IntN(len(industries))], "city": "Springfield",
		}))
		at = at.Add(time.Minute)
	}
	for i := range spec.contacts {
		first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		c := s.objects[Contacts].add(at, map[string]string{
			"email":     fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), i+1),
			"firstname": first, "lastname": last,
			"phone":          fmt.Sprintf("+1 555 %04d", rng.IntN(10000)),
			"lifecyclestage": stages[rng.IntN(len(stages))],
		})
		if len(companies) > 0 && i%5 != 4 {
			link(c, companies[rng.IntN(len(companies))])
		}
		at = at.Add(time.Minute)
	}
	s.last = at
}

// apiError is HubSpot's error body.
type apiError struct {
	Status        string         `json:"status"`
	Message       string         `json:"message"`
	CorrelationID string         `json:"correlationId"`
	Category      string         `json:"category"`
	Errors        []errorDetail  `json:"errors,omitempty"`
	Context       map[string]any `json:"context,omitempty"`
}

type errorDetail struct {
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
	Name    string `json:"name,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail writes an error body and counts it. Callers hold s.mu.
func (s *Server) fail(w http.ResponseWriter, status int, category, msg string, details ...errorDetail) {
	switch status {
	case http.StatusUnauthorized:
		s.stats.Unauthorized++
	case http.StatusTooManyRequests:
		s.stats.RateLimited++
	case http.StatusConflict:
		s.stats.Conflicts++
	case http.StatusBadRequest:
		s.stats.BadRequests++
	case http.StatusNotFound:
		s.stats.NotFound++
	}
	writeJSON(w, status, apiError{Status: "error", Message: msg, Category: category, Errors: details,
		CorrelationID: fmt.Sprintf("00000000-0000-4000-8000-%012d", s.reqSeq)})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /crm/v3/objects/{type}", s.list)
	mux.HandleFunc("POST /crm/v3/objects/{type}", s.create)
	mux.HandleFunc("GET /crm/v3/objects/{type}/{id}", s.read)
	mux.HandleFunc("PATCH /crm/v3/objects/{type}/{id}", s.update)
	mux.HandleFunc("DELETE /crm/v3/objects/{type}/{id}", s.archive)
	mux.HandleFunc("PUT /crm/v4/objects/{type}/{id}/associations/default/{toType}/{toID}", s.associate)
	mux.HandleFunc("PUT /crm/v3/objects/{type}/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Allow", "GET, PATCH, DELETE")
		s.fail(w, http.StatusMethodNotAllowed, "VALIDATION_ERROR", "PUT is not supported: update a record with PATCH")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "No route for "+r.Method+" "+r.URL.Path)
	})
	return s.gate(mux)
}

// gate runs what every request goes through, in HubSpot's order: latency, authentication,
// rate limit, then (injected) faults.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		delay := s.latency
		s.stats.Requests++ // on arrival: a request waiting out the latency is counted
		s.reqSeq++
		s.mu.Unlock()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		s.mu.Lock()
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || tok != s.token || tok == "" {
			s.fail(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION",
				"Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "+
					"find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
			s.mu.Unlock()
			return
		}
		if s.limitMax > 0 {
			now := s.now()
			cut := 0
			for cut < len(s.window) && now.Sub(s.window[cut]) >= s.limitInterval {
				cut++
			}
			s.window = s.window[cut:]
			h := w.Header()
			h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", strconv.FormatInt(s.limitInterval.Milliseconds(), 10))
			h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(s.limitMax))
			if len(s.window) >= s.limitMax {
				wait := s.limitInterval - now.Sub(s.window[0])
				h.Set("X-HubSpot-RateLimit-Remaining", "0")
				h.Set("Retry-After", strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10))
				s.fail(w, http.StatusTooManyRequests, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.")
				s.mu.Unlock()
				return
			}
			s.window = append(s.window, now)
			h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(s.limitMax-len(s.window)))
		}
		if s.faultRate > 0 && s.rng.Float64() < s.faultRate {
			s.stats.Faults++
			switch k := s.rng.IntN(5); k {
			case 0:
				w.Header().Set("X-HubSpot-RateLimit-Secondly-Remaining", "0")
				s.fail(w, http.StatusTooManyRequests, "RATE_LIMITS", "You have reached your secondly limit.")
			default:
				status := []int{500, 502, 503, 504}[k-1]
				s.fail(w, status, "INTERNAL_ERROR", http.StatusText(status))
			}
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// objectType resolves the {type} path value ("contacts", "contact", "0-1"); it writes a
// 404 and returns "" for anything else. Callers hold s.mu.
func (s *Server) objectType(w http.ResponseWriter, r *http.Request, name string) string {
	switch strings.ToLower(r.PathValue(name)) {
	case "contacts", "contact", "0-1":
		return Contacts
	case "companies", "company", "0-2":
		return Companies
	}
	s.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Unable to infer object type from: "+r.PathValue(name))
	return ""
}

// view is what a read shows of a record: the asked-for (or default) properties, and the
// asked-for associations.
type view struct {
	props        []string
	associations bool // the other type's associations were asked for
}

func (s *Server) viewOf(kind string, r *http.Request) view {
	q := r.URL.Query()
	v := view{props: defaults[kind]}
	if p := splitList(q["properties"]); len(p) > 0 {
		v.props = append(p, "createdate", modifiedProperty(kind), "hs_object_id")
	}
	for _, a := range splitList(q["associations"]) {
		if (kind == Contacts && (a == "companies" || a == "company")) || (kind == Companies && (a == "contacts" || a == "contact")) {
			v.associations = true
		}
	}
	return v
}

func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

type association struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type objectJSON struct {
	ID           string                              `json:"id"`
	Properties   map[string]*string                  `json:"properties"`
	CreatedAt    string                              `json:"createdAt"`
	UpdatedAt    string                              `json:"updatedAt"`
	Archived     bool                                `json:"archived"`
	Associations map[string]map[string][]association `json:"associations,omitempty"`
}

func (r *record) json(kind string, v view) objectJSON {
	o := objectJSON{ID: strconv.FormatInt(r.id, 10), Properties: make(map[string]*string, len(v.props)),
		CreatedAt: formatTime(r.created), UpdatedAt: formatTime(r.updated), Archived: r.archived}
	for _, p := range v.props {
		if val, ok := r.props[p]; ok {
			o.Properties[p] = &val
		} else {
			o.Properties[p] = nil // HubSpot lists an asked-for property without a value as null
		}
	}
	if v.associations && len(r.associated) > 0 {
		other, typ := Companies, "contact_to_company"
		if kind == Companies {
			other, typ = Contacts, "company_to_contact"
		}
		list := make([]association, 0, len(r.associated))
		for _, id := range slices.Sorted(maps.Keys(r.associated)) {
			list = append(list, association{ID: strconv.FormatInt(id, 10), Type: typ})
		}
		o.Associations = map[string]map[string][]association{other: {"results": list}}
	}
	return o
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := s.objectType(w, r, "type")
	if kind == "" {
		return
	}
	q := r.URL.Query()
	limit := defaultLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxLimit {
			s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR",
				fmt.Sprintf("limit must be a number between 1 and %d, got %q", maxLimit, l))
			return
		}
		limit = n
	}
	var after int64
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("after: invalid paging cursor %q", a))
			return
		}
		after = n
	}
	archived := q.Get("archived") == "true"
	v := s.viewOf(kind, r)
	type paging struct {
		Next struct {
			After string `json:"after"`
			Link  string `json:"link"`
		} `json:"next"`
	}
	var page struct {
		Results []objectJSON `json:"results"`
		Paging  *paging      `json:"paging,omitempty"`
	}
	page.Results = []objectJSON{}
	for _, rec := range s.objects[kind].from(after) {
		if rec.archived != archived {
			continue
		}
		if len(page.Results) == limit {
			p := &paging{}
			p.Next.After = strconv.FormatInt(rec.id, 10)
			nq := r.URL.Query()
			nq.Set("after", p.Next.After)
			p.Next.Link = s.URL + r.URL.Path + "?" + nq.Encode()
			page.Paging = p
			break
		}
		page.Results = append(page.Results, rec.json(kind, v))
	}
	s.stats.Lists++
	writeJSON(w, http.StatusOK, page)
}

// lookup finds the record a path names, by ID or, with idProperty=email, by email; it
// writes a 404 when there is none. Callers hold s.mu.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, kind string) *record {
	id := r.PathValue("id")
	st := s.objects[kind]
	if kind == Contacts && r.URL.Query().Get("idProperty") == "email" {
		if rec := st.byEmail(id, 0); rec != nil {
			return rec
		}
	} else if rec, ok := st.get(id); ok && !rec.archived {
		return rec
	}
	s.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "resource not found")
	return nil
}

func (st *objectStore) byEmail(email string, except int64) *record {
	email = strings.ToLower(email)
	for _, rec := range st.byID {
		if rec.id != except && !rec.archived && strings.ToLower(rec.props["email"]) == email {
			return rec
		}
	}
	return nil
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := s.objectType(w, r, "type")
	if kind == "" {
		return
	}
	rec := s.lookup(w, r, kind)
	if rec == nil {
		return
	}
	s.stats.Gets++
	writeJSON(w, http.StatusOK, rec.json(kind, s.viewOf(kind, r)))
}

// writeBody is a create or update request body.
type writeBody struct {
	Properties   map[string]json.RawMessage `json:"properties"`
	Associations []struct {
		To struct {
			ID json.RawMessage `json:"id"`
		} `json:"to"`
		Types []struct {
			AssociationCategory string `json:"associationCategory"`
			AssociationTypeID   int    `json:"associationTypeId"`
		} `json:"types"`
	} `json:"associations"`
}

// maxBody bounds request bodies, as HubSpot's gateway does.
const maxBody = 1 << 20

// decode reads and validates a write body: JSON, known writable properties, string-able
// values, a valid email and lifecycle stage. It writes a 400 and returns false when the
// body is refused. Callers hold s.mu.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, kind string) (map[string]string, *writeBody, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input: "+err.Error())
		return nil, nil, false
	}
	var body writeBody
	if err := json.Unmarshal(data, &body); err != nil {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error())
		return nil, nil, false
	}
	props := make(map[string]string, len(body.Properties))
	var bad []errorDetail
	for _, name := range slices.Sorted(maps.Keys(body.Properties)) {
		raw := body.Properties[name]
		switch {
		case readOnly[name]:
			bad = append(bad, errorDetail{Message: fmt.Sprintf("%q is a read only property; its value cannot be set.", name),
				Code: "READ_ONLY_VALUE", Name: name})
			continue
		case !writable[kind][name]:
			bad = append(bad, errorDetail{Message: fmt.Sprintf("Property %q does not exist", name),
				Code: "PROPERTY_DOESNT_EXIST", Name: name})
			continue
		}
		val, ok := scalar(raw)
		if !ok {
			bad = append(bad, errorDetail{Message: fmt.Sprintf("%s was not a valid value for %q", raw, name),
				Code: "INVALID_OPTION", Name: name})
			continue
		}
		switch {
		case name == "email" && val != "":
			if a, err := mail.ParseAddress(val); err != nil || a.Address != val {
				bad = append(bad, errorDetail{Message: fmt.Sprintf("Email address %s is invalid", val),
					Code: "INVALID_EMAIL", Name: name})
				continue
			}
		case name == "lifecyclestage" && val != "" && !lifecycleStages[val]:
			bad = append(bad, errorDetail{Message: fmt.Sprintf("%s was not one of the allowed options", val),
				Code: "INVALID_OPTION", Name: name})
			continue
		}
		props[name] = val
	}
	if len(bad) > 0 {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Property values were not valid", bad...)
		return nil, nil, false
	}
	return props, &body, true
}

// scalar turns a JSON property value into HubSpot's string form: strings as they are,
// numbers digit for digit, booleans as "true"/"false", null as "" (clears the value).
func scalar(raw json.RawMessage) (string, bool) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return string(raw), true
	}
	return "", false
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := s.objectType(w, r, "type")
	if kind == "" {
		return
	}
	props, body, ok := s.decode(w, r, kind)
	if !ok {
		return
	}
	if kind == Contacts && props["email"] != "" {
		if dup := s.objects[Contacts].byEmail(props["email"], 0); dup != nil {
			s.fail(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("Contact already exists. Existing ID: %d", dup.id))
			return
		}
	}
	other := Companies
	if kind == Companies {
		other = Contacts
	}
	var targets []*record
	for _, a := range body.Associations {
		id := strings.Trim(string(a.To.ID), `"`)
		t, found := s.objects[other].get(id)
		if !found || t.archived {
			s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR",
				fmt.Sprintf("One or more associations are invalid: %s %s does not exist", other, id))
			return
		}
		targets = append(targets, t)
	}
	rec := s.objects[kind].add(s.stamp(), props)
	for _, t := range targets {
		if kind == Contacts {
			link(rec, t)
		} else {
			link(t, rec)
		}
	}
	s.stats.Creates++
	writeJSON(w, http.StatusCreated, rec.json(kind, view{props: slices.Sorted(maps.Keys(rec.props))}))
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := s.objectType(w, r, "type")
	if kind == "" {
		return
	}
	rec := s.lookup(w, r, kind)
	if rec == nil {
		return
	}
	props, _, ok := s.decode(w, r, kind)
	if !ok {
		return
	}
	if kind == Contacts && props["email"] != "" {
		if dup := s.objects[Contacts].byEmail(props["email"], rec.id); dup != nil {
			s.fail(w, http.StatusConflict, "CONFLICT",
				fmt.Sprintf("A contact with the email '%s' already exists. Existing ID: %d", props["email"], dup.id))
			return
		}
	}
	rec.set(props)
	rec.touch(s.stamp(), kind)
	s.stats.Updates++
	writeJSON(w, http.StatusOK, rec.json(kind, view{props: slices.Sorted(maps.Keys(rec.props))}))
}

func (s *Server) archive(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind := s.objectType(w, r, "type")
	if kind == "" {
		return
	}
	rec := s.lookup(w, r, kind)
	if rec == nil {
		return
	}
	rec.archived = true
	rec.touch(s.stamp(), kind)
	s.stats.Archives++
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) associate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.objectType(w, r, "type")
	if from == "" {
		return
	}
	to := s.objectType(w, r, "toType")
	if to == "" {
		return
	}
	if from == to {
		s.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "associations between two "+from+" are not supported")
		return
	}
	a, ok1 := s.objects[from].get(r.PathValue("id"))
	b, ok2 := s.objects[to].get(r.PathValue("toID"))
	if !ok1 || !ok2 || a.archived || b.archived {
		s.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "resource not found")
		return
	}
	if from == Contacts {
		link(a, b)
	} else {
		link(b, a)
	}
	s.stats.Associations++
	writeJSON(w, http.StatusOK, map[string]any{"status": "COMPLETE", "results": []map[string]any{{
		"fromObjectTypeId": typeID(from), "fromObjectId": a.id, "toObjectTypeId": typeID(to), "toObjectId": b.id,
		"associationTypes": []map[string]any{{"category": "HUBSPOT_DEFINED", "typeId": associationTypeID(from), "label": nil}},
	}}})
}

func typeID(kind string) string {
	if kind == Companies {
		return "0-2"
	}
	return "0-1"
}

// associationTypeID is HubSpot's default (unlabeled) association type from kind to the
// other type: 279 contact → company, 280 company → contact.
func associationTypeID(from string) int {
	if from == Companies {
		return 280
	}
	return 279
}
