// Package fakeapi is a fake REST API for tests, benchmarks and examples: JSON records in
// named resources, listed with pagination (offset, page number, cursor in body, Link
// header, next URL), read, created (honouring Idempotency-Key), updated, deleted and
// filtered by updated_at_min, with fault injection (5xx bursts, 429 with Retry-After, slow
// responses, connection resets, pages that repeat a record) and counters for assertions.
//
// Routes, for any resource name R:
//
//	GET    /R?limit=&offset=   | ?page=&per_page= | ?cursor=   list, oldest updated_at first
//	       &updated_at_min=RFC3339                              only records updated at or after
//	GET    /R/{id}                                              one record
//	POST   /R                                                   create; a repeated Idempotency-Key
//	                                                            replays the first response
//	PUT    /R/{id}, PATCH /R/{id}                               replace / merge fields
//	DELETE /R/{id}                                              delete
//
// A list answers {"items": [...], "total": n, "next_cursor": "...", "next": "URL"} plus a
// Link header with rel="next" while there are more records; [WithPagination] keeps only
// one style's metadata. Records are JSON objects with a numeric "id" and an RFC 3339
// "updated_at" the server maintains; numbers are stored digit for digit. The server is safe
// for concurrent use.
package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// Style selects which pagination metadata a list response carries.
type Style int

// Pagination styles. StyleAll (the default) emits every kind of metadata, so any paginator
// works; the others emit only their own.
const (
	StyleAll Style = iota
	StyleOffset
	StylePageNumber
	StyleCursor
	StyleLinkHeader
	StyleNextURL
)

// Server is a running fake API. Create it with New and Close it when done.
type Server struct {
	*httptest.Server

	style       Style
	defLimit    int
	maxLimit    int
	idemHeader  string
	idempotency bool
	clock       func() time.Time

	mu        sync.Mutex
	resources map[string]*resource
	faults    []*faultState
	reject    func(resource string, body gjson.Result) string
	stats     Stats
	perKey    map[string]int // POSTs seen per idempotency key
}

type record struct {
	id      int64
	updated time.Time
	body    []byte
}

type resource struct {
	nextID  int64
	byID    map[int64]*record
	order   []*record         // sorted by (updated, id)
	keys    map[string][]byte // Idempotency-Key -> the create's response body
	synth   int               // > 0: read-only synthetic records 1..synth
	synBase time.Time
}

// Stats counts what the server saw and did.
type Stats struct {
	Requests int
	Lists    int
	Gets     int
	// Creates counts records actually created; CreateRequests counts POSTs, including those
	// answered from the idempotency cache (Replays).
	Creates        int
	CreateRequests int
	Replays        int
	Updates        int
	Deletes        int
	// Faults counts injected faults that fired.
	Faults int
}

// Option configures a Server.
type Option func(*Server)

// WithPagination selects the pagination metadata list responses carry (default StyleAll).
func WithPagination(s Style) Option { return func(srv *Server) { srv.style = s } }

// WithPageLimits sets the default and maximum page sizes (default 50 and 250).
func WithPageLimits(def, max int) Option {
	return func(s *Server) { s.defLimit, s.maxLimit = def, max }
}

// WithClock sets the clock that stamps updated_at (default time.Now in UTC).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.clock = now } }

// WithoutIdempotency makes the server ignore Idempotency-Key, as many real APIs do; a
// retried POST then creates another record.
func WithoutIdempotency() Option { return func(s *Server) { s.idempotency = false } }

// New starts a fake API on a loopback address.
func New(opts ...Option) *Server {
	s := &Server{
		defLimit:    50,
		maxLimit:    250,
		idemHeader:  "Idempotency-Key",
		idempotency: true,
		clock:       func() time.Time { return time.Now().UTC() },
		resources:   make(map[string]*resource),
		perKey:      make(map[string]int),
	}
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *Server) res(name string) *resource {
	r := s.resources[name]
	if r == nil {
		r = &resource{byID: make(map[int64]*record), keys: make(map[string][]byte)}
		s.resources[name] = r
	}
	return r
}

// Add stores a record in resource and returns its ID. A string "updated_at" field in
// RFC 3339 is kept (to seed history); otherwise the server's clock stamps it.
func (s *Server) Add(resource string, fields map[string]any) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res(resource)
	return s.insertLocked(r, fields).id
}

// Seed adds n records built by gen(i) for i in [0, n).
func (s *Server) Seed(resource string, n int, gen func(i int) map[string]any) {
	for i := range n {
		s.Add(resource, gen(i))
	}
}

// Synthetic makes resource a read-only listing of n generated records with IDs 1..n and
// updated_at one second apart, computed on demand so a million records cost no memory.
// Each record is {"id", "name", "sku", "price", "updated_at"}.
func (s *Server) Synthetic(resource string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res(resource)
	r.synth = n
	r.synBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
}

// SyntheticRecord returns the body of synthetic record i (1-based) as the server serves it.
func SyntheticRecord(dst []byte, i int, updated time.Time) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `,"name":"Product `...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `","sku":"SKU-`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `","price":"`...)
	dst = strconv.AppendInt(dst, int64(i%1000), 10)
	dst = append(dst, `.99","updated_at":"`...)
	dst = updated.AppendFormat(dst, time.RFC3339)
	dst = append(dst, `"}`...)
	return dst
}

func (r *resource) synthUpdated(i int) time.Time {
	return r.synBase.Add(time.Duration(i) * time.Second)
}

func (s *Server) insertLocked(r *resource, fields map[string]any) *record {
	r.nextID++
	rec := &record{id: r.nextID, updated: s.clock().UTC()}
	if u, ok := fields["updated_at"].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, u); err == nil {
			rec.updated = t.UTC()
		}
	}
	rec.body = encode(fields, rec)
	r.byID[rec.id] = rec
	r.insertOrdered(rec)
	return rec
}

func encode(fields map[string]any, rec *record) []byte {
	m := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		m[k] = v
	}
	m["id"] = rec.id
	m["updated_at"] = rec.updated.Format(time.RFC3339Nano)
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("fakeapi: encoding record %d: %v", rec.id, err))
	}
	return b
}

func cmpRec(a *record, u time.Time, id int64) int {
	if c := a.updated.Compare(u); c != 0 {
		return c
	}
	switch {
	case a.id < id:
		return -1
	case a.id > id:
		return 1
	}
	return 0
}

func (r *resource) insertOrdered(rec *record) {
	i, _ := slices.BinarySearchFunc(r.order, rec, func(a, b *record) int { return cmpRec(a, b.updated, b.id) })
	r.order = slices.Insert(r.order, i, rec)
}

func (r *resource) removeOrdered(rec *record) {
	i, found := slices.BinarySearchFunc(r.order, rec, func(a, b *record) int { return cmpRec(a, b.updated, b.id) })
	if found {
		r.order = slices.Delete(r.order, i, i+1)
	}
}

// Record returns the stored body of one record, or false.
func (s *Server) Record(resource string, id int64) (gjson.Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.resources[resource]
	if r == nil {
		return gjson.Result{}, false
	}
	rec, ok := r.byID[id]
	if !ok {
		return gjson.Result{}, false
	}
	return gjson.ParseBytes(rec.body), true
}

// Records returns every record of resource in listing order (oldest updated_at first).
func (s *Server) Records(resource string) []gjson.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.resources[resource]
	if r == nil {
		return nil
	}
	out := make([]gjson.Result, len(r.order))
	for i, rec := range r.order {
		out[i] = gjson.ParseBytes(rec.body)
	}
	return out
}

// Count returns how many records resource holds.
func (s *Server) Count(resource string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.resources[resource]; r != nil {
		if r.synth > 0 {
			return r.synth
		}
		return len(r.byID)
	}
	return 0
}

// Touch rewrites a record's fields (merged) and stamps updated_at with the clock, as if it
// was changed in the external system.
func (s *Server) Touch(resource string, id int64, fields map[string]any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.resources[resource]
	if r == nil || r.byID[id] == nil {
		return false
	}
	s.updateLocked(r, r.byID[id], fields, true)
	return true
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// CreateRequestsByKey returns how many POSTs carried each idempotency key.
func (s *Server) CreateRequestsByKey() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.perKey))
	for k, v := range s.perKey {
		out[k] = v
	}
	return out
}

// RejectWrites installs a validation hook: when it returns a non-empty message for a
// create or update body, the server answers 422 with that message.
func (s *Server) RejectWrites(f func(resource string, body gjson.Result) string) {
	s.mu.Lock()
	s.reject = f
	s.mu.Unlock()
}

func (s *Server) updateLocked(r *resource, rec *record, fields map[string]any, merge bool) {
	m := map[string]any{}
	if merge {
		if cur, err := decodeObject(rec.body); err == nil {
			m = cur
		}
	}
	for k, v := range fields {
		m[k] = v
	}
	r.removeOrdered(rec)
	rec.updated = s.clock().UTC()
	rec.body = encode(m, rec)
	r.insertOrdered(rec)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	writeJSON(w, status, b)
}

func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	path := strings.Trim(req.URL.Path, "/")
	name, idText, hasID := strings.Cut(path, "/")
	if name == "" || strings.Contains(idText, "/") {
		writeError(w, http.StatusNotFound, "no such route "+req.URL.Path)
		return
	}
	s.mu.Lock()
	s.stats.Requests++
	f := s.matchFaultLocked(req.Method, name)
	s.mu.Unlock()

	repeat := false
	if f != nil {
		switch f.Kind {
		case FaultStatus:
			st := f.Status
			if st == 0 {
				st = http.StatusServiceUnavailable
			}
			writeError(w, st, "injected fault")
			return
		case FaultRateLimit:
			w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
			writeError(w, http.StatusTooManyRequests, "rate limited (injected)")
			return
		case FaultSlow:
			select {
			case <-time.After(f.Delay):
			case <-req.Context().Done():
				return
			}
		case FaultReset:
			hijackClose(w)
			return
		case FaultRepeatRecord:
			repeat = true
		}
	}
	var id int64
	if hasID {
		var err error
		if id, err = strconv.ParseInt(idText, 10, 64); err != nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("record id %q is not a number", idText))
			return
		}
	}
	switch {
	case req.Method == http.MethodGet && !hasID:
		s.list(w, req, name, repeat)
	case req.Method == http.MethodGet:
		s.get(w, name, id)
	case req.Method == http.MethodPost && !hasID:
		s.create(w, req, name, f)
	case (req.Method == http.MethodPut || req.Method == http.MethodPatch) && hasID:
		s.update(w, req, name, id, f)
	case req.Method == http.MethodDelete && hasID:
		s.delete(w, name, id, f)
	default:
		writeError(w, http.StatusMethodNotAllowed, req.Method+" not allowed on "+req.URL.Path)
	}
}

func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
				_ = tc.SetLinger(0) // RST rather than FIN
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Server) get(w http.ResponseWriter, name string, id int64) {
	s.mu.Lock()
	s.stats.Gets++
	r := s.resources[name]
	var body []byte
	if r != nil && r.synth > 0 && id >= 1 && id <= int64(r.synth) {
		body = SyntheticRecord(nil, int(id), r.synthUpdated(int(id)))
	} else if r != nil && r.byID[id] != nil {
		body = r.byID[id].body
	}
	s.mu.Unlock()
	if body == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %d not found", name, id))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func readObject(w http.ResponseWriter, req *http.Request) (map[string]any, []byte, bool) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, 1<<20)); err != nil {
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return nil, nil, false
	}
	m, err := decodeObject(buf.Bytes())
	if err != nil || m == nil {
		writeError(w, http.StatusBadRequest, "body must be a JSON object")
		return nil, nil, false
	}
	delete(m, "id")
	delete(m, "updated_at")
	return m, buf.Bytes(), true
}

// decodeObject decodes a JSON object keeping numbers as json.Number, so integers beyond
// 2^53 are stored digit for digit instead of rounded through float64.
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	return m, nil
}

func (s *Server) create(w http.ResponseWriter, req *http.Request, name string, f *Fault) {
	fields, raw, ok := readObject(w, req)
	if !ok {
		return
	}
	key := req.Header.Get(s.idemHeader)
	s.mu.Lock()
	s.stats.CreateRequests++
	if key != "" {
		s.perKey[key]++
	}
	r := s.res(name)
	if r.synth > 0 {
		s.mu.Unlock()
		writeError(w, http.StatusMethodNotAllowed, name+" is a read-only synthetic resource")
		return
	}
	if s.reject != nil {
		if msg := s.reject(name, gjson.ParseBytes(raw)); msg != "" {
			s.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, msg)
			return
		}
	}
	if s.idempotency && key != "" {
		// Like APIs that store idempotent responses, a replay answers what the first
		// request got, even if the record changed or was deleted since.
		if body, seen := r.keys[key]; seen {
			s.stats.Replays++
			s.mu.Unlock()
			if f != nil && f.Kind == FaultResetAfterWrite {
				hijackClose(w)
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, http.StatusCreated, body)
			return
		}
	}
	rec := s.insertLocked(r, fields)
	if s.idempotency && key != "" {
		r.keys[key] = rec.body // updates replace rec.body, never change this slice
	}
	s.stats.Creates++
	body := rec.body
	s.mu.Unlock()
	if f != nil && f.Kind == FaultResetAfterWrite {
		hijackClose(w)
		return
	}
	writeJSON(w, http.StatusCreated, body)
}

func (s *Server) update(w http.ResponseWriter, req *http.Request, name string, id int64, f *Fault) {
	fields, raw, ok := readObject(w, req)
	if !ok {
		return
	}
	s.mu.Lock()
	r := s.resources[name]
	if r == nil || r.byID[id] == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %d not found", name, id))
		return
	}
	if s.reject != nil {
		if msg := s.reject(name, gjson.ParseBytes(raw)); msg != "" {
			s.mu.Unlock()
			writeError(w, http.StatusUnprocessableEntity, msg)
			return
		}
	}
	rec := r.byID[id]
	s.updateLocked(r, rec, fields, req.Method == http.MethodPatch)
	s.stats.Updates++
	body := rec.body
	s.mu.Unlock()
	if f != nil && f.Kind == FaultResetAfterWrite {
		hijackClose(w)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) delete(w http.ResponseWriter, name string, id int64, f *Fault) {
	s.mu.Lock()
	r := s.resources[name]
	if r == nil || r.byID[id] == nil {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %d not found", name, id))
		return
	}
	rec := r.byID[id]
	r.removeOrdered(rec)
	delete(r.byID, id)
	s.stats.Deletes++
	s.mu.Unlock()
	if f != nil && f.Kind == FaultResetAfterWrite {
		hijackClose(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// position is a listing cursor: the (updated_at, id) of the last record served.
func encodeCursor(u time.Time, id int64) string {
	return strconv.FormatInt(u.UnixNano(), 36) + "." + strconv.FormatInt(id, 36)
}

func decodeCursor(c string) (time.Time, int64, bool) {
	a, b, ok := strings.Cut(c, ".")
	if !ok {
		return time.Time{}, 0, false
	}
	n, err1 := strconv.ParseInt(a, 36, 64)
	id, err2 := strconv.ParseInt(b, 36, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, 0, false
	}
	return time.Unix(0, n).UTC(), id, true
}

func intParam(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("query parameter %s=%q must be a non-negative integer", name, v)
	}
	return n, nil
}

// view is a read-only window on a resource's ordered records, real or synthetic.
type view struct {
	r *resource
}

func (v view) len() int {
	if v.r.synth > 0 {
		return v.r.synth
	}
	return len(v.r.order)
}

func (v view) key(i int) (time.Time, int64) {
	if v.r.synth > 0 {
		return v.r.synthUpdated(i + 1), int64(i + 1)
	}
	rec := v.r.order[i]
	return rec.updated, rec.id
}

func (v view) appendBody(dst []byte, i int) []byte {
	if v.r.synth > 0 {
		return SyntheticRecord(dst, i+1, v.r.synthUpdated(i+1))
	}
	return append(dst, v.r.order[i].body...)
}

// search returns the first index whose key is >= (u, id) (or > when strict).
func (v view) search(u time.Time, id int64, strict bool) int {
	lo, hi := 0, v.len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		mu, mid := v.key(m)
		c := mu.Compare(u)
		if c == 0 {
			switch {
			case mid < id:
				c = -1
			case mid > id:
				c = 1
			}
		}
		if c < 0 || (strict && c == 0) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// skip returns the index n*size records after lo, at most end, without overflowing
// however large n is (an offset or page number straight from a query).
func skip(lo, end, n, size int) int {
	if n >= (end-lo+size-1)/size+1 {
		return end
	}
	return min(lo+n*size, end)
}

func (s *Server) list(w http.ResponseWriter, req *http.Request, name string, repeat bool) {
	q := req.URL.Query()
	limit, err := intParam(q, "limit", 0)
	if err == nil && limit == 0 {
		limit, err = intParam(q, "per_page", s.defLimit)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if limit == 0 {
		limit = s.defLimit
	}
	limit = max(1, min(limit, s.maxLimit))
	var since time.Time
	if v := q.Get("updated_at_min"); v != "" {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("updated_at_min=%q is not an RFC 3339 time", v))
			return
		}
	}

	s.mu.Lock()
	s.stats.Lists++
	r := s.res(name)
	v := view{r}
	lo := v.search(since, 0, false) // first record in the filter
	start := lo
	switch {
	case q.Get("cursor") != "":
		u, id, ok := decodeCursor(q.Get("cursor"))
		if !ok {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, fmt.Sprintf("cursor %q is not one this server issued", q.Get("cursor")))
			return
		}
		start = max(lo, v.search(u, id, true))
	case q.Get("page") != "":
		page, err := intParam(q, "page", 1)
		if err != nil || page < 1 {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "page must be an integer >= 1")
			return
		}
		start = skip(lo, v.len(), page-1, limit)
	default:
		off, err := intParam(q, "offset", 0)
		if err != nil {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		start = skip(lo, v.len(), off, 1)
	}
	n := v.len()
	end := min(start+limit, n)
	total := n - lo

	buf := make([]byte, 0, 64+(end-start+1)*128)
	buf = append(buf, `{"items":[`...)
	first := true
	if repeat && start > lo && start < end { // only a page with records of its own repeats one
		buf = v.appendBody(buf, start-1)
		first = false
	}
	for i := start; i < end; i++ {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = v.appendBody(buf, i)
	}
	buf = append(buf, ']')
	var nextCursor string
	if end < n && end > start {
		u, id := v.key(end - 1)
		nextCursor = encodeCursor(u, id)
	}
	s.mu.Unlock()

	if s.style == StyleAll || s.style == StyleOffset || s.style == StylePageNumber {
		buf = append(buf, `,"total":`...)
		buf = strconv.AppendInt(buf, int64(total), 10)
	}
	var nextURL string
	if nextCursor != "" {
		nq := url.Values{}
		for k, vs := range q {
			if k != "cursor" && k != "offset" && k != "page" {
				nq[k] = vs
			}
		}
		nq.Set("cursor", nextCursor)
		u := url.URL{Scheme: "http", Host: req.Host, Path: req.URL.Path, RawQuery: nq.Encode()}
		nextURL = u.String()
	}
	if s.style == StyleAll || s.style == StyleCursor {
		buf = append(buf, `,"next_cursor":`...)
		buf = strconv.AppendQuote(buf, nextCursor)
	}
	if s.style == StyleAll || s.style == StyleNextURL {
		if nextURL == "" {
			buf = append(buf, `,"next":null`...)
		} else {
			buf = append(buf, `,"next":`...)
			buf = strconv.AppendQuote(buf, nextURL)
		}
	}
	buf = append(buf, '}')
	if nextURL != "" && (s.style == StyleAll || s.style == StyleLinkHeader) {
		w.Header().Set("Link", "<"+nextURL+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, buf)
}
