package fakeshop

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

const (
	defaultLimit = 50
	maxLimit     = 250
	maxBody      = 1 << 20
)

// serve answers an authenticated, admitted request. resetAfterWrite makes a write happen
// and the connection close without an answer.
func (s *Shop) serve(w http.ResponseWriter, r *http.Request, rt route, resetAfterWrite bool) {
	switch {
	case rt.resource == "shop":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		s.count(func(st *Stats) { st.Gets++ })
		body, _ := json.Marshal(map[string]any{"shop": map[string]any{
			"id": 48_000_000_000 + int64(s.cfg.seed), "name": "connkit demo", "domain": s.cfg.domain,
			"myshopify_domain": s.cfg.domain, "currency": "USD", "iana_timezone": "America/New_York",
			"plan_name": "basic", "created_at": formatTime(seedStart),
		}})
		writeBytes(w, http.StatusOK, body)
	case rt.count:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		s.serveCount(w, r, rt)
	case rt.id == 0:
		switch r.Method {
		case http.MethodGet:
			s.serveList(w, r, rt)
		case http.MethodPost:
			s.serveCreate(w, r, rt, resetAfterWrite)
		default:
			methodNotAllowed(w, "GET, POST")
		}
	default:
		switch r.Method {
		case http.MethodGet:
			s.serveGet(w, r, rt)
		case http.MethodPut:
			s.serveUpdate(w, r, rt, resetAfterWrite)
		case http.MethodDelete:
			s.serveDelete(w, rt)
		default:
			methodNotAllowed(w, "GET, PUT, DELETE")
		}
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, `{"errors":"Method Not Allowed"}`)
}

// badRequest answers 400 or 422 with Shopify's {"errors":…} body.
func (s *Shop) badRequest(w http.ResponseWriter, status int, errs any) {
	s.count(func(st *Stats) { st.BadRequests++ })
	b, _ := json.Marshal(map[string]any{"errors": errs})
	writeBytes(w, status, b)
}

// filter selects records of a listing or a count.
type filter struct {
	UpdatedMin int64   `json:"umin,omitempty"` // Unix seconds, 0: none
	UpdatedMax int64   `json:"umax,omitempty"`
	SinceID    int64   `json:"since,omitempty"`
	IDs        []int64 `json:"ids,omitempty"`
	Status     string  `json:"status,omitempty"`
}

func (f *filter) match(it *item) bool {
	u := it.updated.Unix()
	switch {
	case f.UpdatedMin != 0 && u < f.UpdatedMin,
		f.UpdatedMax != 0 && u > f.UpdatedMax,
		f.SinceID != 0 && it.id <= f.SinceID,
		len(f.IDs) > 0 && !slices.Contains(f.IDs, it.id):
		return false
	}
	return f.Status == "" || f.Status == "any" || f.Status == it.status
}

// pageInfo is what an opaque page_info cursor carries: the walk's filter and order, and
// where the page before ended.
type pageInfo struct {
	Resource string `json:"r"`
	Order    string `json:"o"` // "id" or "updated_at"
	Desc     bool   `json:"d,omitempty"`
	Filter   filter `json:"f"`
	// Key is the (updated_at in Unix nanoseconds, id) of the record the cursor starts
	// after (or before, when Back is set); Incl starts at it instead (a repeat).
	Key  [2]int64 `json:"k"`
	Back bool     `json:"b,omitempty"`
	Incl bool     `json:"i,omitempty"`
	Page int      `json:"n"`
}

func (p pageInfo) encode() string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageInfo(s, resource string) (pageInfo, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return pageInfo{}, false
	}
	var p pageInfo
	if err := json.Unmarshal(b, &p); err != nil || p.Resource != resource || (p.Order != "id" && p.Order != "updated_at") || p.Page < 0 {
		return pageInfo{}, false
	}
	return p, true
}

// parseFilter reads the filter parameters of a first page or a count.
func parseFilter(q url.Values, resource string) (filter, map[string][]string) {
	var f filter
	errs := map[string][]string{}
	readTime := func(name string) int64 {
		v := strings.TrimSpace(q.Get(name))
		if v == "" {
			return 0
		}
		t, ok := parseShopTime(v)
		if !ok {
			errs[name] = []string{"is invalid"}
			return 0
		}
		return t.Unix()
	}
	f.UpdatedMin, f.UpdatedMax = readTime("updated_at_min"), readTime("updated_at_max")
	if v := q.Get("since_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 0 {
			errs["since_id"] = []string{"is invalid"}
		}
		f.SinceID = id
	}
	if v := q.Get("ids"); v != "" {
		for _, part := range strings.Split(v, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
			if err != nil {
				errs["ids"] = []string{"is invalid"}
				break
			}
			f.IDs = append(f.IDs, id)
		}
	}
	f.Status = q.Get("status")
	switch resource {
	case Orders:
		if f.Status == "" {
			f.Status = "open" // the real default: closed and cancelled orders need status=any
		}
		if !slices.Contains([]string{"open", "closed", "cancelled", "any"}, f.Status) {
			errs["status"] = []string{"is invalid"}
		}
	case Products:
		if f.Status != "" && !slices.Contains([]string{"active", "draft", "archived", "any"}, f.Status) {
			errs["status"] = []string{"is invalid"}
		}
	default:
		f.Status = ""
	}
	return f, errs
}

// parseShopTime reads the time formats Shopify accepts in filters.
func parseShopTime(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseLimit(q url.Values) (int, bool) {
	v := q.Get("limit")
	if v == "" {
		return defaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, false
	}
	return n, true
}

func (s *Shop) serveList(w http.ResponseWriter, r *http.Request, rt route) {
	q := r.URL.Query()
	limit, ok := parseLimit(q)
	if !ok {
		s.badRequest(w, http.StatusBadRequest, map[string][]string{"limit": {fmt.Sprintf("must be between 1 and %d", maxLimit)}})
		return
	}
	var p pageInfo
	first := true
	if pi := q.Get("page_info"); q.Has("page_info") {
		for k := range q {
			if k != "page_info" && k != "limit" && k != "fields" {
				s.badRequest(w, http.StatusBadRequest, map[string][]string{"page_info": {
					fmt.Sprintf("cannot be combined with %s: a request with page_info may only add limit and fields", k)}})
				return
			}
		}
		if p, ok = decodePageInfo(pi, rt.resource); !ok {
			s.badRequest(w, http.StatusBadRequest, "page_info - Invalid value.")
			return
		}
		first = false
	} else {
		f, errs := parseFilter(q, rt.resource)
		p = pageInfo{Resource: rt.resource, Order: "id", Filter: f}
		switch o := strings.Join(strings.Fields(q.Get("order")), " "); o {
		case "", "id", "id asc", "created_at", "created_at asc":
		case "id desc", "created_at desc":
			p.Desc = true
		case "updated_at", "updated_at asc":
			p.Order = "updated_at"
		case "updated_at desc":
			p.Order, p.Desc = "updated_at", true
		default:
			errs["order"] = []string{"is invalid"}
		}
		if len(errs) > 0 {
			s.badRequest(w, http.StatusBadRequest, errs)
			return
		}
	}
	fields := fieldSet(q.Get("fields"))

	s.mu.Lock()
	s.stats.Lists++
	c := s.res[rt.resource]
	page, more := walk(c, p, limit)
	var body bytes.Buffer
	body.WriteString(`{"` + rt.resource + `":[`)
	for i, it := range page {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(pick(it.body, fields))
	}
	body.WriteString("]}")
	var links []string
	if len(page) > 0 {
		self := pageURL(r)
		hasPrev := !first && (!p.Back || more)
		hasNext := (!p.Back && more) || p.Back
		if hasPrev {
			prev := p
			prev.Back, prev.Incl, prev.Page = true, false, max(p.Page-1, 0)
			prev.Key = key(page[0], p.Order)
			links = append(links, linkTo(self, q, limit, prev.encode(), "previous"))
		}
		if hasNext {
			next := p
			next.Back, next.Page = false, p.Page+1
			next.Key = key(page[len(page)-1], p.Order)
			next.Incl = s.cfg.repeats > 0 && limit > 1 && next.Page%s.cfg.repeats == 0
			links = append(links, linkTo(self, q, limit, next.encode(), "next"))
		}
	}
	s.mu.Unlock()
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	writeBytes(w, http.StatusOK, body.Bytes())
}

func key(it *item, order string) [2]int64 {
	if order == "id" {
		return [2]int64{0, it.id}
	}
	return [2]int64{it.updated.UnixNano(), it.id}
}

func cmpKey(a, b [2]int64) int {
	switch {
	case a[0] != b[0]:
		if a[0] < b[0] {
			return -1
		}
		return 1
	case a[1] < b[1]:
		return -1
	case a[1] > b[1]:
		return 1
	}
	return 0
}

// walk returns the page p asks for, in the listing's order, and whether more records
// follow in the direction walked. Called with s.mu held.
func walk(c *collection, p pageInfo, limit int) ([]*item, bool) {
	list := c.byIDOrder
	if p.Order == "updated_at" {
		list = c.byUpdated
	}
	asc := !p.Desc
	if p.Back {
		asc = !asc
	}
	var start int
	started := p.Page > 0 || p.Back || p.Key != [2]int64{}
	if asc {
		start = 0
		if started {
			start, _ = slices.BinarySearchFunc(list, p.Key, func(it *item, k [2]int64) int { return cmpKey(key(it, p.Order), k) })
			if start < len(list) && cmpKey(key(list[start], p.Order), p.Key) == 0 && !p.Incl {
				start++
			}
		}
	} else {
		start = len(list) - 1
		if started {
			i, found := slices.BinarySearchFunc(list, p.Key, func(it *item, k [2]int64) int { return cmpKey(key(it, p.Order), k) })
			start = i - 1
			if found && p.Incl {
				start = i
			}
		}
	}
	page := make([]*item, 0, limit)
	more := false
	for i := start; i >= 0 && i < len(list); {
		if it := list[i]; p.Filter.match(it) {
			if len(page) == limit {
				more = true
				break
			}
			page = append(page, it)
		}
		if asc {
			i++
		} else {
			i--
		}
	}
	if p.Back {
		slices.Reverse(page)
	}
	return page, more
}

func pageURL(r *http.Request) url.URL {
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	if r.TLS != nil {
		u.Scheme = "https"
	}
	return u
}

func linkTo(self url.URL, q url.Values, limit int, pageInfo, rel string) string {
	nq := url.Values{}
	nq.Set("limit", strconv.Itoa(limit))
	if f := q.Get("fields"); f != "" {
		nq.Set("fields", f)
	}
	nq.Set("page_info", pageInfo)
	self.RawQuery = nq.Encode()
	return "<" + self.String() + `>; rel="` + rel + `"`
}

// fieldSet reads fields=a,b; nil means every field.
func fieldSet(v string) map[string]bool {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	set := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			set[f] = true
		}
	}
	return set
}

// pick keeps only the top-level fields in set (all when set is nil).
func pick(body []byte, set map[string]bool) []byte {
	if set == nil {
		return body
	}
	out := []byte{'{'}
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		if set[k.Str] {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, k.Raw...)
			out = append(out, ':')
			out = append(out, v.Raw...)
		}
		return true
	})
	return append(out, '}')
}

func (s *Shop) serveCount(w http.ResponseWriter, r *http.Request, rt route) {
	f, errs := parseFilter(r.URL.Query(), rt.resource)
	if len(errs) > 0 {
		s.badRequest(w, http.StatusBadRequest, errs)
		return
	}
	s.mu.Lock()
	s.stats.Counts++
	n := 0
	for _, it := range s.res[rt.resource].byIDOrder {
		if f.match(it) {
			n++
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, `{"count":`+strconv.Itoa(n)+`}`)
}

func (s *Shop) serveGet(w http.ResponseWriter, r *http.Request, rt route) {
	s.mu.Lock()
	s.stats.Gets++
	c := s.res[rt.resource]
	it, ok := c.byID[rt.id]
	var body []byte
	if ok {
		body = append([]byte(`{"`+c.singular+`":`), pick(it.body, fieldSet(r.URL.Query().Get("fields")))...)
		body = append(body, '}')
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, `{"errors":"Not Found"}`)
		return
	}
	writeBytes(w, http.StatusOK, body)
}

func (s *Shop) serveDelete(w http.ResponseWriter, rt route) {
	s.mu.Lock()
	c := s.res[rt.resource]
	it, ok := c.byID[rt.id]
	if ok {
		c.remove(it)
		s.stats.Deletes++
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, `{"errors":"Not Found"}`)
		return
	}
	writeJSON(w, http.StatusOK, `{}`)
}

// readRecord reads the {"product":{…}} body of a write.
func (s *Shop) readRecord(w http.ResponseWriter, r *http.Request, singular string) (map[string]any, bool) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.badRequest(w, http.StatusRequestEntityTooLarge, "request body too large")
			return nil, false
		}
		s.badRequest(w, http.StatusBadRequest, "could not read the request body")
		return nil, false
	}
	top, err := decodeObject(raw)
	var rec map[string]any
	if err == nil {
		rec, _ = top[singular].(map[string]any)
	}
	if rec == nil {
		s.badRequest(w, http.StatusBadRequest, map[string]string{singular: "Required parameter missing or invalid"})
		return nil, false
	}
	return rec, true
}

func (s *Shop) serveCreate(w http.ResponseWriter, r *http.Request, rt route, resetAfterWrite bool) {
	c := s.res[rt.resource]
	in, ok := s.readRecord(w, r, c.singular)
	if !ok {
		return
	}
	idemKey := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	if e, ok := s.idem[rt.resource+"\x00"+idemKey]; idemKey != "" && ok {
		s.stats.Replays++
		s.mu.Unlock()
		writeBytes(w, e.status, e.body)
		return
	}
	now := s.stamp()
	rec, errs := s.buildLocked(rt.resource, nil, in, now)
	if len(errs) > 0 {
		s.mu.Unlock()
		s.badRequest(w, http.StatusUnprocessableEntity, errs)
		return
	}
	it, err := c.add(rec)
	if err != nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, `{"errors":"Internal Server Error"}`)
		return
	}
	s.stats.Creates++
	body := append(append([]byte(`{"`+c.singular+`":`), it.body...), '}')
	if idemKey != "" {
		s.idem[rt.resource+"\x00"+idemKey] = idemEntry{status: http.StatusCreated, body: body}
	}
	s.mu.Unlock()
	if resetAfterWrite {
		reset(w)
		return
	}
	loc := pageURL(r)
	loc.RawQuery = ""
	loc.Path = strings.TrimSuffix(loc.Path, ".json") + "/" + strconv.FormatInt(it.id, 10) + ".json"
	w.Header().Set("Location", loc.String())
	writeBytes(w, http.StatusCreated, body)
}

func (s *Shop) serveUpdate(w http.ResponseWriter, r *http.Request, rt route, resetAfterWrite bool) {
	c := s.res[rt.resource]
	in, ok := s.readRecord(w, r, c.singular)
	if !ok {
		return
	}
	s.mu.Lock()
	it, found := c.byID[rt.id]
	if !found {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, `{"errors":"Not Found"}`)
		return
	}
	old, err := decodeObject(it.body)
	if err != nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, `{"errors":"Internal Server Error"}`)
		return
	}
	now := s.stamp()
	rec, errs := s.buildLocked(rt.resource, old, in, now)
	if len(errs) > 0 {
		s.mu.Unlock()
		s.badRequest(w, http.StatusUnprocessableEntity, errs)
		return
	}
	if err := c.put(it, rec, now); err != nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, `{"errors":"Internal Server Error"}`)
		return
	}
	s.stats.Updates++
	body := append(append([]byte(`{"`+c.singular+`":`), it.body...), '}')
	s.mu.Unlock()
	if resetAfterWrite {
		reset(w)
		return
	}
	writeBytes(w, http.StatusOK, body)
}

// The fields a client may write, per resource; others are ignored, as Shopify ignores
// read-only and unknown fields.
var writable = map[string][]string{
	Products:  {"title", "body_html", "vendor", "product_type", "handle", "status", "tags", "template_suffix", "published_scope"},
	Customers: {"email", "first_name", "last_name", "phone", "state", "tags", "note", "accepts_marketing", "tax_exempt", "currency"},
	Orders:    {"email", "note", "tags", "buyer_accepts_marketing"},
}

var writableVariant = []string{"title", "price", "sku", "compare_at_price", "option1", "option2", "option3", "inventory_quantity",
	"barcode", "grams", "weight", "weight_unit", "requires_shipping", "taxable", "inventory_management", "position"}

// buildLocked merges in into old (nil for a create) and validates the result, returning
// the record to store or Shopify-style field errors.
func (s *Shop) buildLocked(resource string, old, in map[string]any, now time.Time) (map[string]any, map[string][]string) {
	errs := map[string][]string{}
	create := old == nil
	rec := old
	if create {
		s.nextID += 1 + int64(len(s.idem)%7)
		rec = map[string]any{"id": s.nextID, "created_at": formatTime(now)}
	}
	for _, k := range writable[resource] {
		if v, ok := in[k]; ok {
			rec[k] = v
		}
	}
	switch resource {
	case Products:
		if t, _ := rec["title"].(string); strings.TrimSpace(t) == "" {
			errs["title"] = []string{"can't be blank"}
		}
		if st, ok := rec["status"]; ok && st != nil && !slices.Contains([]any{"active", "draft", "archived"}, st) {
			errs["status"] = []string{"is not included in the list"}
		}
		if create {
			if _, ok := rec["status"]; !ok {
				rec["status"] = "active"
			}
			if h, _ := rec["handle"].(string); h == "" {
				t, _ := rec["title"].(string)
				rec["handle"] = handleize(t) + "-" + strconv.FormatInt(s.nextID%100000, 10)
			}
			rec["admin_graphql_api_id"] = "gid://shopify/Product/" + strconv.FormatInt(s.nextID, 10)
		}
		if vs, ok := in["variants"]; ok || create {
			s.mergeVariantsLocked(rec, vs, now, errs)
		}
	case Customers:
		if e, ok := rec["email"].(string); ok && e != "" {
			if !strings.Contains(e, "@") || strings.ContainsAny(strings.TrimSpace(e), " ") {
				errs["email"] = []string{"is invalid"}
			} else if s.emailTakenLocked(e, rec["id"]) {
				errs["email"] = []string{"has already been taken"}
			}
		}
		if create && rec["email"] == nil && rec["phone"] == nil && rec["first_name"] == nil && rec["last_name"] == nil {
			errs["customer"] = []string{"must have a name, phone number or email address"}
		}
		if create {
			rec["state"], rec["orders_count"], rec["total_spent"], rec["addresses"] = "disabled", 0, "0.00", []any{}
		}
	case Orders:
		if create {
			errs["base"] = []string{"orders are created at checkout in this fake; use PUT to update note, tags or email"}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	rec["updated_at"] = formatTime(now)
	return rec, nil
}

func (s *Shop) emailTakenLocked(email string, self any) bool {
	email = strings.ToLower(strings.TrimSpace(email))
	selfID, _ := asInt(self)
	for _, it := range s.res[Customers].byIDOrder {
		if it.id != selfID && strings.EqualFold(strings.TrimSpace(gjson.GetBytes(it.body, "email").Str), email) {
			return true
		}
	}
	return false
}

// mergeVariantsLocked applies a variants array as Shopify does: variants with an id are
// updated, those without are created, existing ones left out are deleted; a product always
// keeps at least one variant.
func (s *Shop) mergeVariantsLocked(rec map[string]any, in any, now time.Time, errs map[string][]string) {
	pid, _ := asInt(rec["id"])
	existing := map[int64]map[string]any{}
	if old, ok := rec["variants"].([]any); ok {
		for _, v := range old {
			if m, ok := v.(map[string]any); ok {
				if id, ok := asInt(m["id"]); ok {
					existing[id] = m
				}
			}
		}
	}
	list, ok := in.([]any)
	if in != nil && !ok {
		errs["variants"] = []string{"is invalid"}
		return
	}
	if len(list) == 0 {
		if len(existing) > 0 {
			return // PUT without variants keeps them
		}
		list = []any{map[string]any{}}
	}
	out := make([]any, 0, len(list))
	for i, raw := range list {
		vin, ok := raw.(map[string]any)
		if !ok {
			errs["variants"] = []string{"is invalid"}
			return
		}
		var v map[string]any
		if id, ok := asInt(vin["id"]); ok && vin["id"] != nil {
			if v = existing[id]; v == nil {
				errs["variants"] = []string{fmt.Sprintf("variant %d does not belong to product %d", id, pid)}
				return
			}
		} else {
			s.nextID++
			v = map[string]any{"id": s.nextID, "product_id": pid, "title": "Default Title", "price": "0.00", "sku": "",
				"inventory_quantity": 0, "created_at": formatTime(now)}
		}
		for _, k := range writableVariant {
			if x, ok := vin[k]; ok {
				v[k] = x
			}
		}
		v["position"] = i + 1
		if p, ok := v["price"]; ok {
			ps := fmt.Sprint(p)
			if f, err := strconv.ParseFloat(ps, 64); err != nil || f < 0 {
				errs["variants.price"] = []string{"must be a number greater than or equal to 0"}
				return
			}
			v["price"] = ps
		}
		v["updated_at"] = formatTime(now)
		out = append(out, v)
	}
	rec["variants"] = out
}
