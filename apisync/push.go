package apisync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
)

// Push runs an out config now (the manual trigger; schedules and record triggers run it
// too). With no IDs it selects the model's records by the config's filter; with IDs it
// pushes those records, skipping the ones the filter excludes.
//
// By method:
//   - POST: each record through the hub's exporter — created (POST url) on its first
//     push, updated (PUT url/{id}) afterwards, unchanged records skipped, the external ID
//     read from the response at id_path and kept in the record's binding. With
//     paginated, records go in batches of page_size, one POST of a JSON array per batch;
//     the external IDs are read from the response array, element by element.
//   - PUT: one PUT per record (or per batch with paginated) to url, whose {id} is the
//     record's external ID, else its identifier line's value.
//   - DELETE: one DELETE per record to url (with {id} as for PUT) carrying the mapped
//     record; the binding is removed. Counted as updated.
//   - GET: one GET of url with the params as query parameters; the response (a JSON
//     array of objects, or one object; at records_path when set) is mapped by the lines
//     (API key → local field) and written to the model: the record bound to its external
//     ID (at id_path) by an earlier pull, else the one whose identifier field matches, is
//     updated, otherwise one is created, and the external ID is bound to it. With pagination, the listing is walked page by page (Link header,
//     next URL, cursor, page number or offset; see Pagination) and each page's records
//     are written as above before the next page is fetched. A page that cannot be read
//     (an error status after the retries, not JSON, no array at records_path, a next
//     link to another host, a pagination loop) or a listing longer than max_pages stops
//     the pull with an error and the counts so far: the records of the pages before stay
//     written, and the next pull starts again from the first page.
//
// Requests carry the config's auth and headers, honour its timeouts and are retried by
// its retry policy (exponential backoff with jitter on 5xx, 429 and transport errors);
// every exchange is in the audit log. Records that failed are counted and returned in a
// *report.PartialError.
func (s *Sync) Push(ctx context.Context, config string, localIDs ...string) (report.Counts, error) {
	c, err := s.config(config)
	if err != nil {
		return report.Counts{}, err
	}
	if c.cfg.Direction != Out {
		return report.Counts{}, fmt.Errorf("apisync: push %q: it is an in config: %w", config, ErrWrongDirection)
	}
	if c.method() == http.MethodGet {
		return s.pull(ctx, c)
	}
	var total report.Counts
	var errs []error
	failed := 0
	chunk := make([]string, 0, c.pageSize())
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		var n report.Counts
		var err error
		if c.hub() {
			n, err = c.backend.Export(ctx, c.cfg.Model, chunk...)
		} else {
			n, err = s.send(ctx, c, chunk)
		}
		chunk = chunk[:0]
		total = total.Add(n)
		var pe *report.PartialError
		if errors.As(err, &pe) {
			failed += pe.Failed
			errs = append(errs, pe.Errors...)
			return nil
		}
		return err
	}
	for id, err := range s.selectIDs(ctx, c, localIDs) {
		if err != nil {
			return total, fmt.Errorf("apisync: push %q: selecting records: %w", config, err)
		}
		chunk = append(chunk, id)
		if len(chunk) == cap(chunk) {
			if err := flush(); err != nil {
				return total, fmt.Errorf("apisync: push %q: %w", config, err)
			}
		}
	}
	if err := flush(); err != nil {
		return total, fmt.Errorf("apisync: push %q: %w", config, err)
	}
	if failed > 0 {
		return total, fmt.Errorf("apisync: push %q: %w", config, report.Partial(failed, errs))
	}
	return total, nil
}

// selectIDs yields the IDs given, or the IDs of the model's records the filter selects,
// reading the table page by page.
func (s *Sync) selectIDs(ctx context.Context, c *compiled, ids []string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		if len(ids) > 0 {
			for _, id := range ids {
				if !yield(id, nil) {
					return
				}
			}
			return
		}
		for e, err := range s.stores[c.cfg.Model].All(ctx) {
			if err != nil {
				if !yield("", err) {
					return
				}
				continue
			}
			ok, err := c.filter.match(ctx, withID(e.Value, e.ID))
			if err != nil {
				if !yield("", fmt.Errorf("record %s: %w", e.ID, err)) {
					return
				}
				continue
			}
			if ok && !yield(e.ID, nil) {
				return
			}
		}
	}
}

// outRecord is one record on its way out.
type outRecord struct {
	id      string
	payload json.RawMessage
	bound   binding.Binding // held under the send's lease
	ident   string          // the identifier line's value
}

// leaseTTL bounds how long a crashed sender keeps a record from other senders: long
// enough for every attempt of one request.
func (c *compiled) leaseTTL() time.Duration {
	connect, read := c.cfg.ConnectTimeout.Std(), c.cfg.ReadTimeout.Std()
	if connect <= 0 {
		connect = DefaultConnectTimeout
	}
	if read <= 0 {
		read = DefaultReadTimeout
	}
	attempts := max(c.cfg.Retry.MaxAttempts, 4)
	return time.Duration(attempts)*(connect+read) + time.Minute
}

// send pushes records the hub's exporter does not cover: PUT, DELETE and batches,
// with the backend's client and bindings. Each record's binding is leased while it is
// sent, as the hub's exporter does, so two processes never send one record at once: a
// record leased elsewhere fails with binding.ErrLocked (a job retries it later).
func (s *Sync) send(ctx context.Context, c *compiled, ids []string) (report.Counts, error) {
	var counts report.Counts
	var errs []error
	bs := s.db.Bindings()
	owner := "apisync-" + newErrorID()
	var held []int64
	defer func() {
		for _, id := range held {
			if err := bs.Release(context.WithoutCancel(ctx), id, owner); err != nil {
				s.logger.WarnContext(ctx, "apisync: releasing a lease", "config", c.cfg.Name, "error", err)
			}
		}
	}()
	fail := func(id, step string, err error) {
		counts.Failed++
		rerr := &report.RecordError{Op: "export", Backend: c.cfg.Name, Model: c.cfg.Model, LocalID: id, Step: step, Err: err}
		errs = append(errs, rerr)
		if !errors.Is(err, binding.ErrLocked) {
			s.markFailed(ctx, c, id, owner, rerr)
		}
	}
	var recs []outRecord
	st := s.stores[c.cfg.Model]
	for _, id := range ids {
		// A record that is gone is skipped without a binding; one that exists is read again
		// under its lease, so what is sent is never older than what another push of the
		// record already sent (two pushes of one record run one after the other).
		if _, err := st.Get(ctx, id); errors.Is(err, local.ErrNotFound) {
			counts.Skipped++
			continue
		} else if err != nil {
			fail(id, "read", err)
			continue
		}
		b, created, err := bs.Ensure(ctx, binding.Binding{Backend: c.cfg.Name, Model: c.cfg.Model, LocalID: id})
		if err == nil {
			b, err = bs.Claim(ctx, b.ID, owner, c.leaseTTL())
		}
		if err != nil {
			fail(id, "claim", err)
			continue
		}
		held = append(held, b.ID)
		// skip leaves no trace of a record this push does not send: a binding made just for
		// it is removed again.
		skip := func() {
			counts.Skipped++
			if created {
				if err := bs.Delete(ctx, b.ID); err != nil && !errors.Is(err, binding.ErrNotFound) {
					s.logger.WarnContext(ctx, "apisync: removing an unused binding", "config", c.cfg.Name, "error", err)
				}
			}
		}
		v, err := st.Get(ctx, id)
		if errors.Is(err, local.ErrNotFound) {
			skip()
			continue
		}
		if err != nil {
			fail(id, "read", err)
			continue
		}
		v = withID(v, id)
		payload, err := c.maps.mapOut(ctx, v)
		if errors.Is(err, report.ErrSkip) {
			skip()
			continue
		}
		if err != nil {
			fail(id, "map", err)
			continue
		}
		r := outRecord{id: id, payload: payload, bound: b}
		if c.maps.id != nil {
			if iv := v[c.maps.id.Field]; iv != nil {
				r.ident = fmt.Sprint(plain(iv))
			}
		}
		recs = append(recs, r)
	}
	_, rest := splitURL(c.cfg.URL)
	idPath := c.cfg.IDPath
	if idPath == "" {
		idPath = "id"
	}
	if c.cfg.Paginated && len(recs) > 0 {
		body := make([]json.RawMessage, len(recs))
		ids := make([]string, len(recs))
		for i, r := range recs {
			body[i], ids[i] = r.payload, r.id
		}
		raw, _ := json.Marshal(body)
		req := &adapter.Request{Method: c.method(), Path: rest, Body: json.RawMessage(raw),
			Operation: c.cfg.Name, Model: c.cfg.Model, Record: strings.Join(ids, ",")}
		if c.method() == http.MethodPost {
			sum := sha256.Sum256(append([]byte(c.cfg.Name+"\x00"), raw...))
			req.IdempotencyKey = "apisync-" + hex.EncodeToString(sum[:16])
		}
		resp, err := c.client.Do(ctx, req)
		if err != nil {
			for _, r := range recs {
				fail(r.id, "send", err)
			}
		} else {
			arr := gjson.ParseBytes(resp.Body)
			for i, r := range recs {
				ext := ""
				if arr.IsArray() {
					ext = idString(arr.Get(fmt.Sprintf("%d.%s", i, idPath)))
				}
				s.done(ctx, c, r, ext, owner, &counts, fail)
			}
		}
		return counts, report.Partial(counts.Failed, errs)
	}
	for _, r := range recs {
		ref := r.bound.ExternalID
		if ref == "" {
			ref = r.ident
		}
		path := rest
		if strings.Contains(path, "{id}") {
			if ref == "" {
				fail(r.id, "send", fmt.Errorf("the url needs {id}, and the record has neither an external ID nor an identifier value"))
				continue
			}
			path = strings.ReplaceAll(path, "{id}", url.PathEscape(ref))
		}
		resp, err := c.client.Do(ctx, &adapter.Request{Method: c.method(), Path: path, Body: r.payload,
			Operation: c.cfg.Name, Model: c.cfg.Model, Record: r.id})
		if err != nil {
			fail(r.id, "send", err)
			continue
		}
		s.done(ctx, c, r, idString(gjson.ParseBytes(resp.Body).Get(idPath)), owner, &counts, fail)
	}
	return counts, report.Partial(counts.Failed, errs)
}

func idString(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Number:
		return r.Raw
	}
	return ""
}

// done records a sent record: its binding (removed after a DELETE) and its count.
func (s *Sync) done(ctx context.Context, c *compiled, r outRecord, ext, owner string, counts *report.Counts, fail func(id, step string, err error)) {
	bs := s.db.Bindings()
	if c.method() == http.MethodDelete {
		if err := bs.Delete(ctx, r.bound.ID); err != nil && !errors.Is(err, binding.ErrNotFound) {
			fail(r.id, "mark", err)
			return
		}
		counts.Updated++
		return
	}
	if _, err := bs.MarkSuccess(ctx, r.bound.ID, binding.Success{Owner: owner, ExternalID: ext, Hash: hashOf(r.payload)}); err != nil {
		fail(r.id, "mark", err)
		return
	}
	if r.bound.SyncedAt.IsZero() {
		counts.Created++
	} else {
		counts.Updated++
	}
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// markFailed keeps a failed record's error in its binding (best effort: the error is
// returned to the caller anyway). owner names the lease the caller may hold.
func (s *Sync) markFailed(ctx context.Context, c *compiled, id, owner string, err error) {
	bs := s.db.Bindings()
	b, _, gerr := bs.Ensure(ctx, binding.Binding{Backend: c.cfg.Name, Model: c.cfg.Model, LocalID: id})
	if gerr == nil && b.LeaseOwner != owner {
		owner = "" // not ours: write only if no one holds it
	}
	if gerr == nil {
		_, gerr = bs.MarkFailed(ctx, b.ID, binding.Failure{Owner: owner, Error: err.Error()})
	}
	if gerr != nil {
		s.logger.WarnContext(ctx, "apisync: cannot record a failed push", "config", c.cfg.Name, "record", id, "error", gerr)
	}
}

// query builds an outbound GET's query parameters from the params.
func outQuery(ps []Param) url.Values {
	q := url.Values{}
	suffix := map[string]string{"!=": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "in": "in", "like": "like"}
	for _, p := range ps {
		key := p.Key
		if op := p.Operator; op != "" && op != "=" {
			key += "[" + suffix[op] + "]"
		}
		var val string
		if list, ok := p.Value.([]any); ok {
			parts := make([]string, len(list))
			for i, v := range list {
				parts[i] = scalarText(v)
			}
			val = strings.Join(parts, ",")
		} else {
			val = scalarText(p.Value)
		}
		q.Add(key, val)
	}
	return q
}

func scalarText(v any) string {
	if n, ok := v.(json.Number); ok {
		return n.String() // exact, whatever its size
	}
	switch x := plain(v).(type) {
	case float64:
		b, _ := json.Marshal(x)
		return string(b)
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// pull runs an outbound GET: fetch, map each returned object to local values, write it
// (found through its binding, else matched by the identifier line), bind its external ID. With pagination it walks the
// listing page by page, each page's records written before the next page is fetched.
func (s *Sync) pull(ctx context.Context, c *compiled) (report.Counts, error) {
	_, rest := splitURL(c.cfg.URL)
	req := adapter.Request{Method: http.MethodGet, Path: rest, Query: outQuery(c.cfg.Params),
		Operation: c.cfg.Name, Model: c.cfg.Model}
	p := pulling{s: s, c: c, req: map[string]any{"config": c.cfg.Name, "model": c.cfg.Model, "method": http.MethodGet}, idPath: c.cfg.IDPath}
	if p.idPath == "" {
		p.idPath = "id"
	}
	if pg, opts := c.cfg.Pagination.paginator(c.cfg.RecordsPath); pg != nil {
		for it, err := range adapter.Records(ctx, c.client, req, pg, opts...) {
			if err != nil {
				// The records of the pages before stay written.
				err = fmt.Errorf("apisync: push %q: %w (after %d record(s))", c.cfg.Name, err, p.n)
				if p.counts.Failed > 0 {
					err = errors.Join(err, fmt.Errorf("apisync: push %q: %w", c.cfg.Name, report.Partial(p.counts.Failed, p.errs)))
				}
				return p.counts, err
			}
			p.record(ctx, it)
		}
		return p.result()
	}
	resp, err := c.client.Do(ctx, &req)
	if err != nil {
		return report.Counts{}, fmt.Errorf("apisync: push %q: %w", c.cfg.Name, err)
	}
	body := gjson.ParseBytes(resp.Body)
	if c.cfg.RecordsPath != "" && c.cfg.RecordsPath != "@this" && gjson.ValidBytes(resp.Body) {
		body = body.Get(c.cfg.RecordsPath)
		if body.Type == gjson.Null && body.Exists() {
			return p.result() // null: no records
		}
		if !(body.IsArray() || body.IsObject()) {
			return report.Counts{}, fmt.Errorf("apisync: push %q: %w: want a JSON array or object at records_path %q", c.cfg.Name, adapter.ErrBadResponse, c.cfg.RecordsPath)
		}
	}
	if !gjson.ValidBytes(resp.Body) || !(body.IsArray() || body.IsObject()) {
		return report.Counts{}, fmt.Errorf("apisync: push %q: %w: want a JSON array or object", c.cfg.Name, adapter.ErrBadResponse)
	}
	if body.IsArray() {
		body.ForEach(func(_, it gjson.Result) bool { p.record(ctx, it); return true })
	} else {
		p.record(ctx, body)
	}
	return p.result()
}

// pulling is the state of one pull: counts and per-record errors.
type pulling struct {
	s      *Sync
	c      *compiled
	req    map[string]any
	idPath string
	n      int // records seen
	counts report.Counts
	errs   []error
}

// record maps and writes one pulled record and binds its external ID; a failure is
// counted and kept.
func (p *pulling) record(ctx context.Context, it gjson.Result) {
	s, c := p.s, p.c
	i := p.n
	p.n++
	ext := idString(it.Get(p.idPath))
	name := ext
	if name == "" {
		name = fmt.Sprintf("#%d", i)
	}
	fail := func(step string, err error) {
		p.counts.Failed++
		if len(p.errs) < maxPullErrors { // a long listing that fails throughout holds no more
			p.errs = append(p.errs, &report.RecordError{Op: "import", Backend: c.cfg.Name, Model: c.cfg.Model, ExternalID: name, Step: step, Err: err})
		}
	}
	if !it.IsObject() {
		fail("parse", errors.New("not a JSON object"))
		return
	}
	vals, err := s.mapIn(ctx, c.maps, []byte(it.Raw), p.req, true)
	if err != nil {
		fail("map", err)
		return
	}
	bs := s.db.Bindings()
	// A record pulled before is found through its binding, in one lookup: matching by the
	// identifier line scans the model's table, which makes a pull of n known records
	// cost n scans. The identifier line still matches records the pull has not bound.
	var bound binding.Binding
	if ext != "" {
		var lerr error
		if bound, lerr = bs.GetByExternal(ctx, c.cfg.Name, c.cfg.Model, ext); lerr != nil && !errors.Is(lerr, binding.ErrNotFound) {
			fail("bind", lerr)
			return
		}
	}
	var id string
	var created bool
	if bound.LocalID != "" {
		id, err = s.updateBound(ctx, c, bound.LocalID, vals)
	}
	if err == nil && id == "" {
		id, created, err = s.upsert(ctx, c, vals, ext)
	}
	if err != nil {
		fail("write", err)
		return
	}
	if created {
		p.counts.Created++
	} else {
		p.counts.Updated++
	}
	if ext != "" {
		b := binding.Binding{ID: bound.ID, Backend: c.cfg.Name, Model: c.cfg.Model, LocalID: id, ExternalID: ext, Status: binding.StatusSuccess, SyncedAt: time.Now().UTC()}
		if b.ID == 0 {
			if old, err := bs.GetByLocal(ctx, c.cfg.Name, c.cfg.Model, id); err == nil {
				b.ID = old.ID
			}
		}
		if _, err := bs.Upsert(ctx, b); err != nil {
			fail("bind", err)
			p.counts.Updated, p.counts.Created = p.counts.Updated-boolInt(!created), p.counts.Created-boolInt(created)
		}
	}
}

func (p *pulling) result() (report.Counts, error) {
	if p.counts.Failed > 0 {
		return p.counts, fmt.Errorf("apisync: push %q: %w", p.c.cfg.Name, report.Partial(p.counts.Failed, p.errs))
	}
	return p.counts, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// maxPullErrors caps the record errors a pull keeps (as the importer's MaxErrors); the
// count of failures is exact.
const maxPullErrors = 1000

// errIdentifierTaken: a pulled record's identifier matches a local record bound to
// another external record.
var errIdentifierTaken = errors.New("identifier taken by another record")

// updateBound merges vals into the local record id, bound to the pulled record, and
// returns id; "" when that record no longer exists (the caller then matches or creates).
func (s *Sync) updateBound(ctx context.Context, c *compiled, id string, vals Record) (string, error) {
	old, err := s.stores[c.cfg.Model].Get(ctx, id)
	if errors.Is(err, local.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for k, v := range vals {
		old[k] = v
	}
	return id, s.Update(ctx, c.cfg.Model, id, old)
}

// upsert writes mapped values: the record matched by the identifier line is updated,
// otherwise a record is created. Triggers fire as for Create and Update.
// A record matched by the identifier line but bound to another external record (ext
// given) is not written: two remote records would otherwise take turns owning one local
// record, and its binding would move from one to the other.
func (s *Sync) upsert(ctx context.Context, c *compiled, vals Record, ext string) (id string, created bool, err error) {
	if l := c.maps.id; l != nil {
		if want, ok := vals[l.Field]; ok && want != nil {
			id, found, err := s.findBy(ctx, s.stores[c.cfg.Model], l.Field, want)
			if err != nil {
				return "", false, err
			}
			if found && ext != "" {
				b, err := s.db.Bindings().GetByLocal(ctx, c.cfg.Name, c.cfg.Model, id)
				switch {
				case err == nil && b.ExternalID != "" && b.ExternalID != ext:
					return "", false, fmt.Errorf("%w: its %s %v is that of local record %s, which is bound to external record %q; not overwritten",
						errIdentifierTaken, l.Field, want, id, b.ExternalID)
				case err != nil && !errors.Is(err, binding.ErrNotFound):
					return "", false, err
				}
			}
			if found {
				old, err := s.stores[c.cfg.Model].Get(ctx, id)
				if err != nil {
					return "", false, err
				}
				for k, v := range vals {
					old[k] = v
				}
				return id, false, s.Update(ctx, c.cfg.Model, id, old)
			}
		}
	}
	id, err = s.Create(ctx, c.cfg.Model, vals)
	return id, true, err
}

// findBy returns the ID of the first record of st whose field equals want ("id" is the
// local ID). It reads the table page by page.
func (s *Sync) findBy(ctx context.Context, st recordReader, field string, want any) (string, bool, error) {
	if field == "id" {
		id := scalarText(want)
		if _, err := st.Get(ctx, id); err != nil {
			if errors.Is(err, local.ErrNotFound) {
				return "", false, nil
			}
			return "", false, err
		}
		return id, true, nil
	}
	for e, err := range st.All(ctx) {
		if err != nil {
			return "", false, err
		}
		if ok, _ := compare(readPath(e.Value, field), "=", want, nil); ok {
			return e.ID, true, nil
		}
	}
	return "", false, nil
}

// recordReader reads a model's records (a store, or its view inside a transaction).
type recordReader interface {
	Get(ctx context.Context, id string) (Record, error)
	All(ctx context.Context) iter.Seq2[sqlstore.Entry[Record], error]
}
