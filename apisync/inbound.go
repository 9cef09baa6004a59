package apisync

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/synclog"
)

// Limits of inbound request bodies beyond the size (Config.MaxBody).
const (
	// MaxDepth is the deepest nesting of arrays and objects accepted.
	MaxDepth = 32
	// maxNumberLen is the longest number literal accepted; longer ones (and numbers out
	// of float64's range) are refused rather than rounded.
	maxNumberLen = 64
	// maxItems is the most records one POST or PUT may carry.
	maxItems = MaxPageSize
)

// Handler returns the inbound endpoint of every in config, routed by path: mount it on
// any mux (http.Handle("/api/", s.Handler())) or serve it alone.
//
// Each request goes through the pipeline, in order:
//
//  1. config lookup by path: no in config at the path → 404 (the credentials to check
//     live in the configs, so the path is resolved first);
//  2. authentication against the path's configs (constant-time) → 401;
//  3. method allowed by an authenticated config → 405 with Allow;
//  4. body read (POST, PUT, DELETE) up to max_body → 413; JSON parse: valid UTF-8, at
//     most MaxDepth levels, numbers exact and within range → 400;
//  5. mapping by the lines (API key → local field) → 400 naming the line;
//  6. record processing: GET lists the records the config's filter, its fixed params
//     and the caller's query params select, page by page (?page=, ?page_size= up to
//     page_size); POST creates (an object or an array, all or nothing); PUT updates the
//     record matched by the identifier line (404 when none); DELETE deletes the record
//     whose identifier is given as the query parameter named by the identifier line's key
//     or in the body;
//  7. a JSON response: {"data": …} (GET adds page, page_size, has_more) or
//     {"error": {"status", "code", "message", "error_id"}};
//  8. an audit entry (direction in) with secrets redacted.
//
// Processing past the config's timeout ends with 408 and stores nothing; any other
// failure is a 500 whose error_id is also in the audit entry's error.
//
// Lookups read the model's table page by page (sqlstore keeps values as JSON without
// per-field indexes): a GET, and a PUT or DELETE by an identifier other than id, cost
// a scan of the table, which suits tables of thousands of records. Identify records by
// id, or add an expression index on the table (RecordStore.Table), for larger ones.
func (s *Sync) Handler() http.Handler { return &inbound{s: s, redactor: s.inboundRedactor()} }

type inbound struct {
	s        *Sync
	redactor *synclog.Redactor
}

func (s *Sync) inboundRedactor() *synclog.Redactor {
	var secrets, headers, params []string
	for _, c := range s.configs {
		if c.cfg.Direction != In {
			continue
		}
		a := c.cfg.Auth
		secrets = append(secrets, a.Password, a.Token, a.APIKey)
		if a.Type == "api_key" {
			n := c.inAuth.name
			if c.inAuth.in == "query" {
				params = append(params, n)
			} else {
				headers = append(headers, n)
			}
		}
	}
	secrets = slices.DeleteFunc(secrets, func(s string) bool { return s == "" })
	return synclog.NewRedactor(synclog.WithSecrets(secrets...), synclog.WithHeaders(headers...), synclog.WithQueryParams(params...))
}

// inboundAuth checks the credentials of an in config.
type inboundAuth struct {
	typ      string
	user     [32]byte
	secret   [32]byte // password, token or API key, hashed so compares take constant time
	in, name string
}

func newInboundAuth(a Auth) *inboundAuth {
	ia := &inboundAuth{typ: a.Type, in: a.In, name: a.Name}
	switch a.Type {
	case "basic":
		ia.user, ia.secret = sha256.Sum256([]byte(a.Username)), sha256.Sum256([]byte(a.Password))
	case "bearer":
		ia.secret = sha256.Sum256([]byte(a.Token))
	case "api_key":
		ia.secret = sha256.Sum256([]byte(a.APIKey))
		if ia.in == "" {
			ia.in = "header"
		}
		if ia.name == "" {
			ia.name = "X-API-Key"
			if ia.in == "query" {
				ia.name = "api_key"
			}
		}
	}
	return ia
}

func (a *inboundAuth) check(r *http.Request) bool {
	eq := func(want [32]byte, got string) bool {
		h := sha256.Sum256([]byte(got))
		return subtle.ConstantTimeCompare(want[:], h[:]) == 1
	}
	switch a.typ {
	case "", "none":
		return true
	case "basic":
		u, p, ok := r.BasicAuth()
		// Both compares run, so the time does not tell which part was wrong.
		uok, pok := eq(a.user, u), eq(a.secret, p)
		return ok && uok && pok
	case "bearer":
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		return ok && strings.EqualFold(scheme, "Bearer") && eq(a.secret, strings.TrimSpace(tok))
	case "api_key":
		var got string
		if a.in == "query" {
			got = r.URL.Query().Get(a.name)
		} else {
			got = r.Header.Get(a.name)
		}
		return got != "" && eq(a.secret, got)
	}
	return false
}

func (a *inboundAuth) challenge() string {
	switch a.typ {
	case "basic":
		return `Basic realm="apisync"`
	case "bearer":
		return `Bearer realm="apisync"`
	}
	return ""
}

// statusError is an inbound failure with its status and a message safe to return.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// badInput is a 400: the request's data cannot be mapped or processed.
type badInput struct{ msg string }

func (e *badInput) Error() string { return e.msg }

func errStatus(status int, format string, args ...any) *statusError {
	return &statusError{status: status, msg: fmt.Sprintf(format, args...)}
}

var codes = map[int]string{
	http.StatusBadRequest: "bad_request", http.StatusUnauthorized: "unauthorized", http.StatusNotFound: "not_found",
	http.StatusMethodNotAllowed: "method_not_allowed", http.StatusRequestTimeout: "timeout",
	http.StatusRequestEntityTooLarge: "body_too_large", http.StatusInternalServerError: "internal_error",
}

func (h *inbound) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	entry := synclog.Entry{Time: start.UTC(), Backend: AuditBackend, Direction: synclog.Inbound, Method: r.Method,
		URL: r.URL.RequestURI(), RequestHeader: r.Header.Clone()}
	var touched []string
	status, resp, body, c, err := h.serve(w, r.WithContext(context.WithValue(r.Context(), touchedKey{}, &touched)))
	if err == nil {
		entry.Record = strings.Join(touched, ",")
	}
	if c != nil {
		entry.Operation, entry.Model = c.cfg.Name, c.cfg.Model
		for k, v := range c.cfg.Headers {
			w.Header().Set(k, v)
		}
	}
	var errorID string
	if err != nil {
		var se *statusError
		var bi *badInput
		var me *mapper.MappingError
		switch {
		case errors.As(err, &se):
			status = se.status
		case errors.Is(err, context.DeadlineExceeded):
			status = http.StatusRequestTimeout
			err = errors.New("processing took longer than the config's timeout; nothing was stored")
		case errors.As(err, &bi):
			status = http.StatusBadRequest
		case errors.As(err, &me) && !errors.Is(err, mapper.ErrExpression):
			status = http.StatusBadRequest
		default:
			status = http.StatusInternalServerError
			errorID = newErrorID()
		}
		msg := err.Error()
		if errorID != "" {
			msg = "internal error; quote error_id " + errorID + " to find it in the audit log"
			entry.Error = "error_id " + errorID + ": " + err.Error()
			h.s.logger.ErrorContext(r.Context(), "apisync: inbound request failed", "config", entry.Operation, "error_id", errorID, "error", h.redactor.String(err.Error()))
		} else {
			entry.Error = msg
		}
		e := map[string]any{"status": status, "code": codes[status], "message": msg}
		if errorID != "" {
			e["error_id"] = errorID
		}
		resp = map[string]any{"error": e}
	}
	out, merr := json.Marshal(resp)
	if merr != nil {
		status = http.StatusInternalServerError
		out = []byte(`{"error":{"status":500,"code":"internal_error","message":"the response could not be encoded"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(out, '\n'))

	entry.Status = status
	entry.Duration = time.Since(start)
	entry.Attempts = 1
	entry.RequestBody = string(body)
	entry.ResponseBody = string(out)
	entry.ResponseHeader = w.Header().Clone()
	h.redactor.Entry(&entry)
	if rerr := h.s.recorder.Record(context.WithoutCancel(r.Context()), entry); rerr != nil {
		h.s.logger.WarnContext(r.Context(), "apisync: audit entry not recorded", "error", rerr)
	}
}

// touchedKey carries, in a request's context, the IDs of the records it wrote, for the
// audit entry's Record.
type touchedKey struct{}

func touch(ctx context.Context, ids ...string) {
	if t, ok := ctx.Value(touchedKey{}).(*[]string); ok {
		*t = append(*t, ids...)
	}
}

func newErrorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serve runs the pipeline up to the response value. A panic is a failure (500 with an
// error ID), not a dropped connection.
func (h *inbound) serve(w http.ResponseWriter, r *http.Request) (status int, resp any, body []byte, c *compiled, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	cands := h.s.routes[path]
	if len(cands) == 0 {
		return 0, nil, nil, nil, errStatus(http.StatusNotFound, "no sync config is served at %s", path)
	}
	var authed []*compiled
	for _, c := range cands {
		if c.inAuth.check(r) {
			authed = append(authed, c)
		}
	}
	if len(authed) == 0 {
		if ch := cands[0].inAuth.challenge(); ch != "" {
			w.Header().Set("WWW-Authenticate", ch)
		}
		return 0, nil, nil, nil, errStatus(http.StatusUnauthorized, "missing or wrong credentials")
	}
	var allow []string
	for _, a := range authed {
		if slices.Contains(a.cfg.Methods, r.Method) {
			c = a
			break
		}
		allow = append(allow, a.cfg.Methods...)
	}
	if c == nil {
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(slices.Compact(allow), ", "))
		return 0, nil, nil, authed[0], errStatus(http.StatusMethodNotAllowed, "method %s is not allowed here", r.Method)
	}
	timeout := c.cfg.Timeout.Std()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	var doc any
	if r.Method != http.MethodGet {
		limit := c.cfg.MaxBody
		if limit <= 0 {
			limit = DefaultMaxBody
		}
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, nil, nil, c, errStatus(http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", limit)
		}
		if err != nil {
			return 0, nil, nil, c, errStatus(http.StatusBadRequest, "reading the body: %v", err)
		}
		if len(bytes.TrimSpace(body)) > 0 || r.Method != http.MethodDelete {
			if doc, err = parseBody(body); err != nil {
				return 0, nil, body, c, errStatus(http.StatusBadRequest, "invalid JSON: %v", err)
			}
		}
	}
	req := map[string]any{"config": c.cfg.Name, "model": c.cfg.Model, "method": r.Method, "path": path,
		"query": queryMap(r), "body": doc}
	ctx = withRequest(ctx, req)
	switch r.Method {
	case http.MethodGet:
		status, resp, err = h.list(ctx, c, r)
	case http.MethodPost:
		status, resp, err = h.create(ctx, c, doc, req)
	case http.MethodPut:
		status, resp, err = h.update(ctx, c, doc, req)
	case http.MethodDelete:
		status, resp, err = h.remove(ctx, c, r, doc, req)
	}
	// A write that committed is reported as done even if the time limit passed just after:
	// 408 always means nothing was stored.
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		err = context.DeadlineExceeded
	}
	return status, resp, body, c, err
}

func queryMap(r *http.Request) map[string]any {
	q := map[string]any{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			q[k] = v[0]
		}
	}
	return q
}

// parseBody decodes a JSON body: valid UTF-8, one value, at most MaxDepth levels of
// nesting, numbers kept exact (json.Number) and refused when longer than 64 characters
// or out of float64's range.
func parseBody(body []byte) (any, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

func readValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, errors.New("empty body")
	}
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", MaxDepth)
		}
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("key %q appears twice", k)
				}
				if m[k], err = readValue(dec, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			s := []any{}
			for dec.More() {
				v, err := readValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				s = append(s, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return s, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		if len(t) > maxNumberLen {
			return nil, fmt.Errorf("number of %d characters: at most %d are accepted", len(t), maxNumberLen)
		}
		if f, err := strconv.ParseFloat(string(t), 64); err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s is out of range", t)
		}
		return t, nil
	}
	return tok, nil
}

// items returns the objects of a POST or PUT body: one object or an array of them.
func items(doc any) (objs []map[string]any, single bool, err error) {
	switch d := doc.(type) {
	case map[string]any:
		return []map[string]any{d}, true, nil
	case []any:
		if len(d) == 0 {
			return nil, false, &badInput{"the body is an empty array"}
		}
		if len(d) > maxItems {
			return nil, false, &badInput{fmt.Sprintf("the body holds %d records: at most %d per request", len(d), maxItems)}
		}
		for i, e := range d {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false, &badInput{fmt.Sprintf("item %d is not a JSON object", i)}
			}
			objs = append(objs, m)
		}
		return objs, false, nil
	}
	return nil, false, &badInput{"the body must be a JSON object or an array of objects"}
}

// mapItems maps each object to local values, naming the failing item.
func (h *inbound) mapItems(ctx context.Context, c *compiled, objs []map[string]any, single, create bool, req map[string]any) ([]Record, error) {
	out := make([]Record, len(objs))
	for i, o := range objs {
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		v, err := h.s.mapIn(ctx, c.maps, raw, req, create)
		var me *mapper.MappingError
		if errors.As(err, &me) && !errors.Is(err, mapper.ErrExpression) {
			// Name the line and the API key the caller sent, not the local field.
			msg := me.Rule
			var line int
			if _, scanErr := fmt.Sscanf(me.Rule, "lines[%d]", &line); scanErr == nil && line < len(c.cfg.Lines) && c.cfg.Lines[line].Key != "" {
				msg += fmt.Sprintf(" (key %q)", c.cfg.Lines[line].Key)
			}
			err = &badInput{msg + ": " + me.Cause.Error()}
		}
		if err != nil {
			if !single {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// respond maps the records as written back to the API's keys for the response.
func (h *inbound) respond(ctx context.Context, c *compiled, ids []string, written []Record) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(ids))
	for i, id := range ids {
		p, err := c.maps.mapOut(ctx, withID(maps.Clone(written[i]), id))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func pick(data []json.RawMessage, single bool) any {
	if single && len(data) == 1 {
		return data[0]
	}
	return data
}

func (h *inbound) create(ctx context.Context, c *compiled, doc any, req map[string]any) (int, any, error) {
	objs, single, err := items(doc)
	if err != nil {
		return 0, nil, err
	}
	vals, err := h.mapItems(ctx, c, objs, single, true, req)
	if err != nil {
		return 0, nil, err
	}
	ids := make([]string, len(vals))
	for i, v := range vals {
		vals[i] = withoutID(v)
	}
	st := h.s.stores[c.cfg.Model]
	if len(vals) == 1 && !h.s.triggers(c.cfg.Model, triggerCreate) {
		// One record and nothing to enqueue with it: one statement is atomic already.
		if ids[0], err = st.Create(ctx, vals[0]); err != nil {
			return 0, nil, err
		}
	} else if err = h.s.db.InTx(ctx, func(tx *sql.Tx) error {
		for i, v := range vals {
			id, err := st.WithTx(tx).Create(ctx, v)
			if err != nil {
				return err
			}
			ids[i] = id
			if err := h.s.trigger(ctx, tx, c.cfg.Model, triggerCreate, id); err != nil {
				return err
			}
		}
		return ctx.Err()
	}); err != nil {
		return 0, nil, err
	}
	touch(ctx, ids...)
	// Committed: the answer is built past the time limit too, so 408 keeps meaning
	// "nothing was stored" (a client retrying a 408 must not create the records twice).
	data, err := h.respond(context.WithoutCancel(ctx), c, ids, vals)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, map[string]any{"data": pick(data, single)}, nil
}

// identifier returns the identifier line's value in mapped values.
func identifier(c *compiled, v Record) (any, error) {
	l := c.maps.id
	if l == nil {
		return nil, &badInput{"the config has no identifier line"}
	}
	id, ok := v[l.Field]
	if !ok || id == nil || id == "" {
		return nil, &badInput{fmt.Sprintf("the identifier %s is missing", l.Key)}
	}
	return id, nil
}

func (h *inbound) update(ctx context.Context, c *compiled, doc any, req map[string]any) (int, any, error) {
	objs, single, err := items(doc)
	if err != nil {
		return 0, nil, err
	}
	vals, err := h.mapItems(ctx, c, objs, single, false, req)
	if err != nil {
		return 0, nil, err
	}
	ids := make([]string, len(vals))
	written := make([]Record, len(vals))
	st := h.s.stores[c.cfg.Model]
	err = h.s.db.InTx(ctx, func(tx *sql.Tx) error {
		tst := st.WithTx(tx)
		for i, v := range vals {
			want, err := identifier(c, v)
			if err != nil {
				return err
			}
			id, found, err := h.s.findBy(ctx, tst, c.maps.id.Field, want)
			if err != nil {
				return err
			}
			if !found {
				return errStatus(http.StatusNotFound, "no %s record has %s = %v", c.cfg.Model, c.maps.id.Key, plain(want))
			}
			old, err := tst.Get(ctx, id)
			if err != nil {
				return err
			}
			for k, x := range withoutID(v) {
				old[k] = x
			}
			if err := tst.Update(ctx, id, old); err != nil {
				return err
			}
			ids[i], written[i] = id, old
			if err := h.s.trigger(ctx, tx, c.cfg.Model, triggerUpdate, id); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return 0, nil, err
	}
	touch(ctx, ids...)
	data, err := h.respond(context.WithoutCancel(ctx), c, ids, written) // committed: see create
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"data": pick(data, single)}, nil
}

func (h *inbound) remove(ctx context.Context, c *compiled, r *http.Request, doc any, req map[string]any) (int, any, error) {
	l := c.maps.id
	if l == nil {
		return 0, nil, &badInput{"the config has no identifier line"}
	}
	var want any
	if q := r.URL.Query().Get(l.Key); q != "" {
		want = q
	} else if doc != nil {
		objs, single, err := items(doc)
		if err != nil {
			return 0, nil, err
		}
		if !single {
			return 0, nil, &badInput{"DELETE takes one record"}
		}
		vals, err := h.mapItems(ctx, c, objs, true, false, req)
		if err != nil {
			return 0, nil, err
		}
		if want, err = identifier(c, vals[0]); err != nil {
			return 0, nil, err
		}
	} else {
		return 0, nil, &badInput{fmt.Sprintf("give the identifier as the query parameter %s or in the body", l.Key)}
	}
	var id string
	st := h.s.stores[c.cfg.Model]
	err := h.s.db.InTx(ctx, func(tx *sql.Tx) error {
		tst := st.WithTx(tx)
		var found bool
		var err error
		if id, found, err = h.s.findBy(ctx, tst, l.Field, want); err != nil {
			return err
		}
		if !found {
			return errStatus(http.StatusNotFound, "no %s record has %s = %v", c.cfg.Model, l.Key, plain(want))
		}
		if err := tst.Delete(ctx, id); err != nil {
			if errors.Is(err, local.ErrNotFound) {
				return errStatus(http.StatusNotFound, "no %s record has %s = %v", c.cfg.Model, l.Key, plain(want))
			}
			return err
		}
		if err := h.s.trigger(ctx, tx, c.cfg.Model, triggerDelete, id); err != nil {
			return err
		}
		return ctx.Err()
	})
	if err != nil {
		return 0, nil, err
	}
	touch(ctx, id)
	return http.StatusOK, map[string]any{"data": map[string]any{"deleted": id}}, nil
}

// list serves a GET: the records that pass the config's filter, its fixed params and
// the caller's query params, one page.
func (h *inbound) list(ctx context.Context, c *compiled, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	page, size := 1, c.pageSize()
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return 0, nil, &badInput{"page must be a whole number from 1"}
		}
		page = n
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, nil, &badInput{fmt.Sprintf("page_size must be a whole number from 1 to %d", c.pageSize())}
		}
		size = min(n, c.pageSize())
	}
	var conds []Condition
	for _, p := range c.cfg.Params {
		if p.Value != nil {
			conds = append(conds, Condition{Field: paramField(p), Operator: paramOp(p), Value: p.Value})
		}
	}
	for key, vals := range q {
		if key == "page" || key == "page_size" || (c.inAuth.typ == "api_key" && c.inAuth.in == "query" && key == c.inAuth.name) {
			continue
		}
		i := slices.IndexFunc(c.cfg.Params, func(p Param) bool { return p.Key == key && p.Value == nil })
		if i < 0 {
			return 0, nil, &badInput{fmt.Sprintf("unknown query parameter %q", key)}
		}
		if len(vals) != 1 {
			return 0, nil, &badInput{fmt.Sprintf("query parameter %q is given %d times", key, len(vals))}
		}
		p := c.cfg.Params[i]
		var v any = vals[0]
		if paramOp(p) == "in" {
			var list []any
			for part := range strings.SplitSeq(vals[0], ",") {
				list = append(list, part)
			}
			v = list
		}
		conds = append(conds, Condition{Field: paramField(p), Operator: paramOp(p), Value: v})
	}
	f, err := newFilter(conds, "")
	if err != nil {
		return 0, nil, err
	}
	skip := (page - 1) * size
	data := make([]json.RawMessage, 0, size)
	more := false
	for e, err := range h.s.stores[c.cfg.Model].All(ctx) {
		if err != nil {
			return 0, nil, err
		}
		rec := withID(e.Value, e.ID)
		ok, err := f.match(ctx, rec)
		if err != nil {
			return 0, nil, &badInput{err.Error()}
		}
		if ok {
			if ok, err = c.filter.match(ctx, rec); err != nil {
				return 0, nil, err
			}
		}
		if !ok {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(data) == size {
			more = true
			break
		}
		p, err := c.maps.mapOut(ctx, rec)
		if err != nil {
			return 0, nil, err
		}
		data = append(data, p)
	}
	return http.StatusOK, map[string]any{"data": data, "page": page, "page_size": size, "has_more": more}, nil
}

func paramField(p Param) string {
	if p.Field != "" {
		return p.Field
	}
	return p.Key
}

func paramOp(p Param) string {
	if p.Operator == "" {
		return "="
	}
	return p.Operator
}
