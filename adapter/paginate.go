package adapter

// Pagination: Pages and Records walk a paged listing one page at a time, driven by a
// Paginator strategy (offset/limit, page number, cursor in the body, Link header, next URL
// in the body). They only need a Doer, so they work with *Client and with any test double.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/connkit/connkit/synclog"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Pagination errors. Errors returned by Pages and Records wrap one of these (or the Doer's
// error, or the context's error) and name the page number and the path, cursor or URL concerned.
var (
	// ErrBadPage means a page could not be read or walked: invalid JSON (then
	// ErrBadResponse matches too), no array at the records path, a cursor that is neither
	// string nor number, an error status returned without an error by the Doer, a next
	// link that cannot be resolved, a pagination loop (the API sent back a cursor or next
	// URL already requested in the same walk, or served the same records twice in a row:
	// usually a wrong cursor path or paging parameter name), or a next link to another
	// scheme or host than the page that carried it (it would send the client's credentials
	// elsewhere; see AllowOtherHosts). The message says which.
	ErrBadPage = errors.New("adapter: bad page")
	// ErrMaxPages is returned only with WithMaxPages(n, true), when the page limit is reached
	// while the API still announces more pages.
	ErrMaxPages = errors.New("adapter: page limit reached")
)

// The kinds of ErrBadPage that tests tell apart.
var (
	errPaginationLoop = fmt.Errorf("%w: pagination loop", ErrBadPage)
	errForeignNextURL = fmt.Errorf("%w: next page URL on another host", ErrBadPage)
)

// Paginator is a pagination strategy: how to ask for the first page and how to derive the
// next request from the last page. Implementations must be stateless (all state lives in
// the Request), so that one Paginator can drive several walks at once.
type Paginator interface {
	// First prepares the first request, e.g. sets the page size. It must keep parameters
	// the caller already set to resume a walk (a starting offset, page or cursor).
	First(req *Request)
	// Next turns req, the request that produced resp, into the request for the following
	// page. records is the (non-empty) array found at the records path of resp. It
	// returns false when there is no next page.
	Next(req *Request, resp *Response, records gjson.Result) (more bool, err error)
}

// PageOption configures Pages and Records.
type PageOption func(*pageConfig)

type pageConfig struct {
	recordsPath string
	maxPages    int
	maxPagesErr bool
	prefetch    int // WithPrefetch; <= 1: one request at a time
}

// WithRecordsPath sets the gjson path of the records array in each page body, e.g.
// "products" or "data.items". "" (the default) and "@this" mean the body itself is the
// array. A JSON null at the path counts as an empty page; a missing value or a non-array is
// an ErrBadPage error.
func WithRecordsPath(path string) PageOption {
	return func(c *pageConfig) { c.recordsPath = path }
}

// WithMaxPages stops the walk after n pages, even if the API announces more; n <= 0
// means no limit, the default. The stop is clean unless failIfMore is true: then reaching
// the limit while the API still announces a next page is an ErrMaxPages error. Use that
// where a truncated listing must not pass for a complete one (e.g. before deleting
// records missing from it).
func WithMaxPages(n int, failIfMore bool) PageOption {
	return func(c *pageConfig) { c.maxPages, c.maxPagesErr = n, failIfMore }
}

// Pages fetches the pages of a listing one by one, starting with req, and yields each
// response. It stops after a page with no records (that page is still yielded), when the
// Paginator finds no next page, or at the WithMaxPages limit. Errors (from the Doer, the
// context, an unreadable page, a pagination loop) are yielded once, with a nil response, and
// end the walk. Breaking out of the loop stops immediately: no further request is sent
// (with WithPrefetch, those in flight are cancelled).
//
// A walk that would never end is an ErrBadPage error (a pagination loop): a request
// (URL, query and body) already sent in this walk, or a page with the same records as the page before (an
// API that ignores a misspelt paging parameter).
//
// Only one page is held at a time (up to n with WithPrefetch(n)). Loop detection keeps a 64-bit hash per page requested,
// not the pages. req is copied; the caller's Query, Header and Body are not modified.
func Pages(ctx context.Context, d Doer, req Request, p Paginator, opts ...PageOption) iter.Seq2[*Response, error] {
	cfg := newPageConfig(opts)
	return func(yield func(*Response, error) bool) {
		pageWalk(ctx, d, req, p, cfg, func(resp *Response, _ gjson.Result, err error) bool {
			return yield(resp, err)
		})
	}
}

// Records is Pages flattened to the records: it yields each element of the array at the
// records path (WithRecordsPath) of every page, in order. A yielded gjson.Result keeps its
// page's body (with a Client as the Doer) or records array alive while it is retained,
// nothing more.
func Records(ctx context.Context, d Doer, req Request, p Paginator, opts ...PageOption) iter.Seq2[gjson.Result, error] {
	cfg := newPageConfig(opts)
	return func(yield func(gjson.Result, error) bool) {
		pageWalk(ctx, d, req, p, cfg, func(_ *Response, records gjson.Result, err error) bool {
			if err != nil {
				yield(gjson.Result{}, err)
				return false
			}
			more := true
			records.ForEach(func(_, rec gjson.Result) bool {
				more = yield(rec, nil)
				return more
			})
			return more
		})
	}
}

func newPageConfig(opts []PageOption) pageConfig {
	var cfg pageConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return cfg
}

// pageWalk drives the pagination. fn is called once per page, or once with an error; it is
// never called again after it returned false or after an error.
func pageWalk(ctx context.Context, d Doer, req Request, p Paginator, cfg pageConfig, fn func(*Response, gjson.Result, error) bool) {
	if oc, ok := p.(optionChecker); ok {
		if err := oc.optionError(); err != nil {
			fn(nil, gjson.Result{}, fmt.Errorf("adapter: pagination: %w", err))
			return
		}
	}
	cur := pageCloneRequest(&req)
	p.First(&cur)
	red := doerRedactor(d)
	seed := maphash.MakeSeed()
	seen := make(map[uint64]int) // request fingerprint hash → page that sent it
	var prevRecords uint64       // hash of the previous page's records
	fetcher := newPageFetcher(ctx, d, p, cfg)
	// A Client's response bodies are fresh and never written again: the records can be
	// read from them in place rather than from a copy.
	_, owned := d.(*Client)
	defer fetcher.close()
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			fn(nil, gjson.Result{}, fmt.Errorf("adapter: pagination stopped before page %d (%s): %w", page, pageDescribe(p, &cur, red), err))
			return
		}
		key := pageRequestKey(&cur)
		h := maphash.String(seed, key)
		if earlier, ok := seen[h]; ok {
			fn(nil, gjson.Result{}, fmt.Errorf("%w: page %d would request %s again, already requested for page %d; the API keeps returning the same cursor or next link (check the cursor path, or the API)",
				errPaginationLoop, page, pageDescribe(p, &cur, red), earlier))
			return
		}
		seen[h] = page

		send := pageCloneRequest(&cur) // the Doer gets its own copy: it cannot disturb our state
		resp, err := fetcher.fetch(page, &send)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				err = fmt.Errorf("%w (%w)", cerr, err)
			}
			fn(nil, gjson.Result{}, fmt.Errorf("adapter: fetching page %d (%s): %w", page, pageDescribe(p, &cur, red), err))
			return
		}
		records, empty, err := pageRecords(resp, cfg.recordsPath, page, owned)
		if err != nil {
			fn(nil, gjson.Result{}, err)
			return
		}
		if !empty {
			// Same records as the page before: the API ignores the paging parameter (a
			// misspelt offset or page name) and would serve this page forever.
			h := maphash.String(seed, records.Raw)
			if page > 1 && h == prevRecords {
				fn(nil, gjson.Result{}, fmt.Errorf("%w: page %d (%s) has the same records as page %d; the API probably ignores the paging parameter, check its name",
					errPaginationLoop, page, pageDescribe(p, &cur, red), page-1))
				return
			}
			prevRecords = h
		}
		if resp.URL != nil && cur.Body == nil {
			// The URL actually fetched, so that an absolute next link back to a page first
			// requested by a relative path is caught too.
			seen[maphash.String(seed, pageMethod(&cur)+" "+pageCanonicalURL(resp.URL))] = page
		}
		// An empty page ends the walk (some APIs keep a next link on their empty last page),
		// unless the page says outright that more follow (a cursor walk's HasMorePath):
		// some APIs serve empty pages mid-listing.
		if !fn(resp, records, nil) || (empty && !moreAfterEmpty(p, resp)) {
			return
		}
		more, err := p.Next(&cur, resp, records)
		if err != nil {
			fn(nil, gjson.Result{}, fmt.Errorf("adapter: preparing the request for page %d: %w", page+1, err))
			return
		}
		if !more {
			return
		}
		if cfg.maxPages > 0 && page >= cfg.maxPages {
			if cfg.maxPagesErr {
				fn(nil, gjson.Result{}, fmt.Errorf("%w: stopped after %d pages but the API announces more (%s); raise WithMaxPages or narrow the query",
					ErrMaxPages, page, pageDescribe(p, &cur, red)))
			}
			return
		}
	}
}

// moreAfterEmpty reports whether an empty page says more pages follow: a cursor walk's
// HasMorePath true.
func moreAfterEmpty(p Paginator, resp *Response) bool {
	c, ok := p.(*cursorPaginator)
	return ok && c.hasMorePath != "" && gjson.GetBytes(resp.Body, c.hasMorePath).Type == gjson.True
}

// pageRecords validates a page and returns the array at the records path and whether it is
// empty (not its length: counting would cost one more scan of the page).
func pageRecords(resp *Response, path string, page int, owned bool) (records gjson.Result, empty bool, err error) {
	if resp == nil {
		return gjson.Result{}, false, fmt.Errorf("%w: page %d: the Doer returned neither a response nor an error", ErrBadPage, page)
	}
	if resp.StatusCode >= 300 {
		return gjson.Result{}, false, fmt.Errorf("%w: page %d from %s: HTTP status %d", ErrBadPage, page, pageRedactURL(pageRedactor(resp), resp.URL), resp.StatusCode)
	}
	if resp.StatusCode == http.StatusNoContent && len(resp.Body) == 0 {
		return gjson.Result{}, true, nil
	}
	if !gjson.ValidBytes(resp.Body) {
		// Redacted before it is cut: a cut secret can no longer be recognised.
		excerpt := pageExcerpt(pageRedactor(resp).Body(resp.Body, resp.Header.Get("Content-Type")), 64)
		return gjson.Result{}, false, fmt.Errorf("%w: page %d from %s: %w (%d bytes, starting %q)", ErrBadPage, page, pageRedactURL(pageRedactor(resp), resp.URL), ErrBadResponse, len(resp.Body), excerpt)
	}
	switch {
	case owned:
		body := unsafe.String(unsafe.SliceData(resp.Body), len(resp.Body)) // read only
		if path == "" || path == "@this" {
			records = gjson.Parse(body)
		} else {
			records = gjson.Get(body, path)
		}
	case path == "" || path == "@this":
		records = gjson.ParseBytes(resp.Body)
	default:
		records = gjson.GetBytes(resp.Body, path)
	}
	switch {
	case records.IsArray():
		return records, pageArrayEmpty(records.Raw), nil
	case records.Type == gjson.Null && records.Exists():
		return gjson.Result{}, true, nil // "items": null — an empty page
	case !records.Exists():
		return gjson.Result{}, false, fmt.Errorf("%w: page %d from %s has no value at records path %q; check WithRecordsPath", ErrBadPage, page, pageRedactURL(pageRedactor(resp), resp.URL), path)
	default:
		return gjson.Result{}, false, fmt.Errorf("%w: page %d from %s has %s at records path %q, not an array; check WithRecordsPath", ErrBadPage, page, pageRedactURL(pageRedactor(resp), resp.URL), pageJSONKind(records), path)
	}
}

// pageArrayEmpty reports whether the raw JSON array raw (valid, starting with '[') has no
// element, without scanning the elements.
func pageArrayEmpty(raw string) bool {
	for i := 1; i < len(raw); i++ {
		switch raw[i] {
		case ' ', '\t', '\n', '\r':
		case ']':
			return true
		default:
			return false
		}
	}
	return true
}

func pageJSONKind(r gjson.Result) string {
	switch {
	case r.IsObject():
		return "an object"
	case r.Type == gjson.String:
		return "a string"
	case r.Type == gjson.Number:
		return "a number"
	case r.Type == gjson.True, r.Type == gjson.False:
		return "a boolean"
	}
	return "a " + r.Type.String()
}

// pageExcerpt cuts s to about n bytes, on a character boundary.
func pageExcerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// pageRedactor returns the redactor for texts quoted from resp: its client's, which knows
// the client's credentials, or the default one for responses from other Doers.
func pageRedactor(resp *Response) *synclog.Redactor {
	if resp != nil && resp.client != nil {
		return resp.client.red
	}
	return defaultRedactor()
}

// doerRedactor returns d's redactor when d is a *Client, the default one otherwise.
func doerRedactor(d Doer) *synclog.Redactor {
	if c, ok := d.(*Client); ok && c != nil {
		return c.red
	}
	return defaultRedactor()
}

func pageCloneRequest(r *Request) Request {
	c := *r
	c.Query = pageCloneValues(r.Query)
	c.Header = r.Header.Clone()
	return c
}

func pageCloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

func pageMethod(r *Request) string {
	if r.Method == "" {
		return http.MethodGet
	}
	return strings.ToUpper(r.Method)
}

// pageRequestKey fingerprints everything that selects a page: method, target and body.
func pageRequestKey(r *Request) string {
	var b strings.Builder
	b.WriteString(pageMethod(r))
	b.WriteByte(' ')
	if u, err := url.Parse(r.Path); err == nil && u.IsAbs() {
		if len(r.Query) > 0 {
			q := u.Query()
			for k, vs := range r.Query {
				q[k] = append(q[k], vs...)
			}
			u.RawQuery = q.Encode()
		}
		b.WriteString(pageCanonicalURL(u))
	} else {
		b.WriteString(r.Path)
		b.WriteByte('?')
		b.WriteString(r.Query.Encode())
	}
	if r.Body != nil {
		b.WriteByte('\n')
		switch body := r.Body.(type) {
		case []byte:
			b.Write(body)
		case string:
			b.WriteString(body)
		case json.RawMessage:
			b.Write(body)
		default:
			if j, err := json.Marshal(body); err == nil {
				b.Write(j)
			} else {
				fmt.Fprintf(&b, "%#v", body)
			}
		}
	}
	return b.String()
}

// pageCanonicalURL spells a URL with its query sorted and without fragment, so that equal
// requests compare equal.
func pageCanonicalURL(u *url.URL) string {
	c := *u
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" {
		c.RawQuery = c.Query().Encode()
	}
	return c.String()
}

// pageDescriber is implemented by the built-in paginators to name what identifies a page
// (a cursor, a URL) in error messages.
type pageDescriber interface {
	describe(req *Request, red *synclog.Redactor) string
}

func pageDescribe(p Paginator, r *Request, red *synclog.Redactor) string {
	if d, ok := p.(pageDescriber); ok {
		return d.describe(r, red)
	}
	return pageMethod(r) + " " + pageRedactTarget(r, red)
}

func pageRedactTarget(r *Request, red *synclog.Redactor) string {
	target := r.Path
	if len(r.Query) > 0 {
		if strings.Contains(target, "?") {
			target += "&" + r.Query.Encode()
		} else {
			target += "?" + r.Query.Encode()
		}
	}
	u, err := url.Parse(target)
	if err != nil {
		return strconv.Quote(red.String(target))
	}
	return pageRedactURL(red, u)
}

// pageRedactURL spells a URL for an error message the way the client's errors and audit
// entries do: red.URL, which redacts only secret parameters (synclog's one list of names)
// and literal secrets.
func pageRedactURL(red *synclog.Redactor, u *url.URL) string {
	if u == nil {
		return "(unknown URL)"
	}
	return red.URL(u.String())
}

// PaginatorOption configures a built-in Paginator. Each option says which paginators it
// applies to; given to another one, it makes the walk fail with ErrInvalidRequest before
// anything is sent.
type PaginatorOption func(*paginatorOptions)

// paginatorOptions collects the options of every built-in paginator.
type paginatorOptions struct {
	totals          pageTotals
	hasMorePath     string
	fromLastRecord  bool
	bodyPath        string
	allowOtherHosts bool
	used            []paginatorUse
}

type paginatorKind uint8

const (
	forOffset paginatorKind = 1 << iota
	forPageNumber
	forCursor
	forURL
)

type paginatorUse struct {
	name  string
	kinds paginatorKind
}

func (o *paginatorOptions) use(name string, k paginatorKind) {
	o.used = append(o.used, paginatorUse{name, k})
}

// newPaginatorOptions applies opts for a paginator of kind k (named what) and returns
// the error for options that do not apply to it.
func newPaginatorOptions(opts []PaginatorOption, k paginatorKind, what string) (paginatorOptions, error) {
	var o paginatorOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	for _, u := range o.used {
		if u.kinds&k == 0 {
			return o, fmt.Errorf("%w: the option %s does not apply to %s", ErrInvalidRequest, u.name, what)
		}
	}
	return o, nil
}

// optionChecker is implemented by the built-in paginators: the walk fails with its error
// before the first request.
type optionChecker interface{ optionError() error }

type pageTotals struct {
	recordsPath, recordsHeader string
	pagesPath, pagesHeader     string
}

// TotalRecords and TotalPages tell Offset and PageNumber where the API reports the size of the listing
// (in the body or in a header), so that the walk stops at the last page instead of asking
// for an empty one — and stops cleanly with APIs that answer an out-of-range page with the
// last page again. A total that is configured but absent leaves the decision to the
// page-size and empty-page rules; one that is present but not an integer is an ErrBadPage
// error.
//
// TotalRecords reads the total number of records at a gjson path of the page body (e.g.
// "meta.total", "total_count") or, when the body has none, from a response header (e.g.
// "X-Total-Count", "X-WP-Total"); either may be "".
func TotalRecords(path, header string) PaginatorOption {
	return func(o *paginatorOptions) {
		o.totals.recordsPath, o.totals.recordsHeader = path, header
		o.use("TotalRecords", forOffset|forPageNumber)
	}
}

// TotalPages reads the total number of pages at a gjson path of the page body (e.g.
// "meta.last_page", "total_pages") or, when the body has none, from a response header
// (e.g. "X-WP-TotalPages"); either may be "". See TotalRecords.
func TotalPages(path, header string) PaginatorOption {
	return func(o *paginatorOptions) {
		o.totals.pagesPath, o.totals.pagesHeader = path, header
		o.use("TotalPages", forOffset|forPageNumber)
	}
}

// read returns the totals the response reports, -1 for those it does not.
func (t pageTotals) read(resp *Response) (records, pages int, err error) {
	if records, err = totalFrom(resp, t.recordsPath, t.recordsHeader, "records"); err != nil {
		return -1, -1, err
	}
	pages, err = totalFrom(resp, t.pagesPath, t.pagesHeader, "pages")
	return records, pages, err
}

func totalFrom(resp *Response, path, header, what string) (int, error) {
	if path != "" {
		if v := gjson.GetBytes(resp.Body, path); v.Exists() && v.Type != gjson.Null {
			n, err := strconv.Atoi(strings.TrimSpace(v.String()))
			if err != nil || (v.Type != gjson.Number && v.Type != gjson.String) {
				return -1, fmt.Errorf("%w: total %s at path %q is %s, not an integer", ErrBadPage, what, path, strconv.Quote(v.Raw))
			}
			return n, nil
		}
	}
	if header != "" {
		if h := strings.TrimSpace(resp.Header.Get(header)); h != "" {
			n, err := strconv.Atoi(h)
			if err != nil {
				return -1, fmt.Errorf("%w: total %s in header %s is %q, not an integer", ErrBadPage, what, header, h)
			}
			return n, nil
		}
	}
	return -1, nil
}

// Offset paginates with an offset and a limit: offset=0, then offset+n where n is the number
// of records received. The walk stops at an empty page, at a page with fewer than limit
// records (unless a total given by TotalRecords says more remain: the API caps its pages
// below limit), or when a total given by TotalRecords or TotalPages is reached. With limit
// <= 0 or limitParam == "" no limit is sent. An offset already present in the request's Query is kept (to resume a walk).
func Offset(limitParam, offsetParam string, limit int, opts ...PaginatorOption) Paginator {
	o, err := newPaginatorOptions(opts, forOffset, "Offset")
	return &offsetPaginator{limitParam: limitParam, offsetParam: offsetParam, limit: limit, totals: o.totals, optErr: err}
}

type offsetPaginator struct {
	limitParam, offsetParam string
	limit                   int
	totals                  pageTotals
	optErr                  error
}

func (o *offsetPaginator) optionError() error { return o.optErr }

func (o *offsetPaginator) First(req *Request) {
	q := pageQuery(req)
	if o.limitParam != "" && o.limit > 0 {
		q.Set(o.limitParam, strconv.Itoa(o.limit))
	}
	if !q.Has(o.offsetParam) {
		q.Set(o.offsetParam, "0")
	}
}

func (o *offsetPaginator) Next(req *Request, resp *Response, records gjson.Result) (bool, error) {
	n := pageCount(records)
	if n == 0 {
		return false, nil
	}
	q := pageQuery(req)
	off, err := strconv.Atoi(q.Get(o.offsetParam))
	if err != nil {
		return false, fmt.Errorf("adapter: offset parameter %q is %q, not an integer", o.offsetParam, q.Get(o.offsetParam))
	}
	next := off + n
	totalRecords, totalPages, err := o.totals.read(resp)
	if err != nil {
		return false, err
	}
	if (totalRecords >= 0 && next >= totalRecords) || (totalPages >= 0 && o.limit > 0 && next >= totalPages*o.limit) {
		return false, nil
	}
	// A short page ends the walk, unless a total of records says more remain: an API that
	// caps its pages below limit (the offset counts what was received, so nothing is
	// skipped).
	if o.limit > 0 && n < o.limit && totalRecords < 0 {
		return false, nil
	}
	q.Set(o.offsetParam, strconv.Itoa(next))
	return true, nil
}

func (o *offsetPaginator) describe(req *Request, red *synclog.Redactor) string {
	return fmt.Sprintf("%s=%s", o.offsetParam, req.Query.Get(o.offsetParam))
}

// PageNumber paginates with a page number: pageParam=first, first+1, … (first is usually 0
// or 1). If sizeParam is not "" and size > 0, sizeParam=size is sent; with size > 0 the walk
// stops at a page with fewer than size records — or, when a total still announces more
// after such a page, fails with ErrBadPage: the API caps its pages below size, and the
// next page number would skip the rest of this one. It also stops at an empty page, and
// when a total given by TotalRecords or TotalPages is reached (a total of records needs
// size > 0). A page
// number already present in the request's Query is kept (to resume a walk).
func PageNumber(pageParam string, first int, sizeParam string, size int, opts ...PaginatorOption) Paginator {
	o, err := newPaginatorOptions(opts, forPageNumber, "PageNumber")
	return &pageNumberPaginator{pageParam: pageParam, first: first, sizeParam: sizeParam, size: size, totals: o.totals, optErr: err}
}

func (p *pageNumberPaginator) optionError() error { return p.optErr }

type pageNumberPaginator struct {
	pageParam, sizeParam string
	first, size          int
	totals               pageTotals
	optErr               error
}

func (p *pageNumberPaginator) First(req *Request) {
	q := pageQuery(req)
	if p.sizeParam != "" && p.size > 0 {
		q.Set(p.sizeParam, strconv.Itoa(p.size))
	}
	if !q.Has(p.pageParam) {
		q.Set(p.pageParam, strconv.Itoa(p.first))
	}
}

func (p *pageNumberPaginator) Next(req *Request, resp *Response, records gjson.Result) (bool, error) {
	n := pageCount(records)
	if n == 0 {
		return false, nil
	}
	q := pageQuery(req)
	page, err := strconv.Atoi(q.Get(p.pageParam))
	if err != nil {
		return false, fmt.Errorf("adapter: page parameter %q is %q, not an integer", p.pageParam, q.Get(p.pageParam))
	}
	done := page - p.first + 1 // pages up to and including this one
	totalRecords, totalPages, err := p.totals.read(resp)
	if err != nil {
		return false, err
	}
	if (totalPages >= 0 && done >= totalPages) || (totalRecords >= 0 && p.size > 0 && done*p.size >= totalRecords) {
		return false, nil
	}
	if p.size > 0 && n < p.size {
		if totalRecords >= 0 || totalPages >= 0 {
			// The total says more remain, but the API sent fewer than size: it caps its
			// pages, and the next page number would skip the rest of this one.
			return false, fmt.Errorf("%w: page %d has %d records, fewer than the size %d asked for, but the total announces more: the API caps its page size; ask for at most %d",
				ErrBadPage, page, n, p.size, n)
		}
		return false, nil
	}
	q.Set(p.pageParam, strconv.Itoa(page+1))
	return true, nil
}

func (p *pageNumberPaginator) describe(req *Request, red *synclog.Redactor) string {
	return fmt.Sprintf("%s=%s", p.pageParam, req.Query.Get(p.pageParam))
}

// HasMorePath names a boolean in the page body (e.g. "has_more", "meta.has_next") that
// says whether another page follows. When it is false the walk stops whatever the cursor;
// when it is true but the cursor is empty, the walk fails with ErrBadPage rather than
// silently stop; when it is true on an empty page, the walk goes on (an empty page ends
// every other walk). When it is missing, the cursor alone decides.
func HasMorePath(path string) PaginatorOption {
	return func(o *paginatorOptions) { o.hasMorePath = path; o.use("HasMorePath", forCursor) }
}

// CursorFromLastRecord reads the cursor path from the last record of the page instead of
// the page body — Stripe style: starting_after=<id of the last object>, with
// Cursor("id", "starting_after", CursorFromLastRecord(), HasMorePath("has_more")).
func CursorFromLastRecord() PaginatorOption {
	return func(o *paginatorOptions) { o.fromLastRecord = true; o.use("CursorFromLastRecord", forCursor) }
}

// CursorInBody sends the cursor in the JSON request body at the sjson path (e.g.
// "variables.after") instead of a query parameter — GraphQL style, where the request is a
// POST whose body carries the query and its variables. The request's Body must be JSON
// ([]byte, string, json.RawMessage, or a value encodable as JSON); the cursorParam of Cursor
// is then unused.
func CursorInBody(path string) PaginatorOption {
	return func(o *paginatorOptions) { o.bodyPath = path; o.use("CursorInBody", forCursor) }
}

// Cursor paginates with an opaque cursor read from each page body at the gjson cursorPath
// (e.g. "next_cursor", "meta.next") and sent back in the cursorParam query parameter. The
// walk stops when the cursor is missing, null or "", or when HasMorePath says false. A
// cursor must be a string or a number. A cursor already present in the request's Query is
// used for the first page (to resume a walk). A cursor that was already requested is an
// ErrBadPage error (a pagination loop).
func Cursor(cursorPath, cursorParam string, opts ...PaginatorOption) Paginator {
	o, err := newPaginatorOptions(opts, forCursor, "Cursor")
	return &cursorPaginator{cursorPath: cursorPath, cursorParam: cursorParam,
		hasMorePath: o.hasMorePath, fromLastRecord: o.fromLastRecord, bodyPath: o.bodyPath, optErr: err}
}

type cursorPaginator struct {
	cursorPath, cursorParam string
	hasMorePath             string
	fromLastRecord          bool
	bodyPath                string // sjson path of the cursor in the request body; "" = query
	optErr                  error
}

func (c *cursorPaginator) optionError() error { return c.optErr }

func (c *cursorPaginator) First(*Request) {}

func (c *cursorPaginator) Next(req *Request, resp *Response, records gjson.Result) (bool, error) {
	hasMore := gjson.Result{}
	if c.hasMorePath != "" {
		hasMore = gjson.GetBytes(resp.Body, c.hasMorePath)
		if hasMore.Exists() && !hasMore.Bool() {
			return false, nil
		}
	}
	var cur gjson.Result
	where := "page body"
	if c.fromLastRecord {
		var last gjson.Result
		records.ForEach(func(_, r gjson.Result) bool { last = r; return true })
		cur = last.Get(c.cursorPath)
		where = "last record"
	} else {
		cur = gjson.GetBytes(resp.Body, c.cursorPath)
	}
	var v string
	switch cur.Type {
	case gjson.String:
		v = cur.Str
	case gjson.Number:
		v = cur.Raw // as sent: no float rounding of large IDs
	case gjson.Null:
		// missing or null: no next page
	default:
		return false, fmt.Errorf("%w: cursor at path %q of the %s is %s, not a string or number", ErrBadPage, c.cursorPath, where, pageJSONKind(cur))
	}
	if v == "" {
		if hasMore.Exists() && hasMore.Bool() {
			return false, fmt.Errorf("%w: %q is true but there is no cursor at path %q of the %s; check the cursor path", ErrBadPage, c.hasMorePath, c.cursorPath, where)
		}
		return false, nil
	}
	if c.bodyPath != "" {
		body, err := pageJSONBody(req.Body)
		if err != nil {
			return false, err
		}
		if body, err = sjson.SetBytes(body, c.bodyPath, v); err != nil {
			return false, fmt.Errorf("adapter: setting the cursor at path %q of the request body: %w", c.bodyPath, err)
		}
		req.Body = json.RawMessage(body)
		return true, nil
	}
	pageQuery(req).Set(c.cursorParam, v)
	return true, nil
}

func (c *cursorPaginator) describe(req *Request, red *synclog.Redactor) string {
	if c.bodyPath != "" {
		if body, err := pageJSONBody(req.Body); err == nil {
			if v := gjson.GetBytes(body, c.bodyPath); v.Exists() {
				return fmt.Sprintf("cursor %q (body path %s)", v.String(), c.bodyPath)
			}
		}
		return pageMethod(req) + " " + pageRedactTarget(req, red)
	}
	if req.Query.Has(c.cursorParam) {
		return fmt.Sprintf("cursor %q (parameter %s)", req.Query.Get(c.cursorParam), c.cursorParam)
	}
	return pageMethod(req) + " " + pageRedactTarget(req, red)
}

// AllowOtherHosts lets LinkHeader and NextURL follow a next link to another scheme or host
// than the page that carried it. Off by default (ErrBadPage), because the client
// sends its credentials with every request.
func AllowOtherHosts() PaginatorOption {
	return func(o *paginatorOptions) { o.allowOtherHosts = true; o.use("AllowOtherHosts", forURL) }
}

// LinkHeader paginates by following the rel="next" target of the Link response headers
// (RFC 8288), as GitHub and Shopify (page_info cursors) do. Several links per header,
// several Link headers, quoted parameters, several space-separated relation types and any
// letter case are understood; a malformed link is ignored. Relative targets are resolved
// against the URL of the page. The walk stops when there is no next link.
func LinkHeader(opts ...PaginatorOption) Paginator {
	return newURLPaginator("", "LinkHeader", opts)
}

// NextURL paginates by following the URL found at the gjson path in each page body, e.g.
// "next", "links.next", or `@odata\.nextLink` for OData (gjson needs that dot escaped).
// The URL may be absolute or relative to the page's URL. The walk stops when it is
// missing, null or "".
func NextURL(path string, opts ...PaginatorOption) Paginator {
	return newURLPaginator(path, "NextURL", opts)
}

func newURLPaginator(path, what string, opts []PaginatorOption) *urlPaginator {
	o, err := newPaginatorOptions(opts, forURL, what)
	return &urlPaginator{bodyPath: path, allowOtherHosts: o.allowOtherHosts, optErr: err}
}

type urlPaginator struct {
	bodyPath        string // "" = Link header
	allowOtherHosts bool
	optErr          error
}

func (u *urlPaginator) optionError() error { return u.optErr }

func (u *urlPaginator) First(*Request) {}

func (u *urlPaginator) Next(req *Request, resp *Response, _ gjson.Result) (bool, error) {
	var raw, from string
	if u.bodyPath == "" {
		raw, from = nextLink(resp.Header), "Link header"
	} else {
		v := gjson.GetBytes(resp.Body, u.bodyPath)
		switch v.Type {
		case gjson.String:
			raw = strings.TrimSpace(v.Str)
		case gjson.Null:
		default:
			return false, fmt.Errorf("%w: next URL at path %q is %s, not a string", ErrBadPage, u.bodyPath, pageJSONKind(v))
		}
		from = fmt.Sprintf("body path %q", u.bodyPath)
	}
	if raw == "" {
		return false, nil
	}
	ref, err := url.Parse(raw)
	if err != nil {
		// Next links can carry credentials (Facebook's paging.next holds the access
		// token), and url.Parse's error repeats the link: quote neither as it is.
		return false, fmt.Errorf("%w: next URL %q from the %s does not parse: %v", ErrBadPage,
			pageRedactor(resp).URL(raw), from, pageRedactor(resp).String(stripURLError(err).Error()))
	}
	base := resp.URL
	if base == nil || !base.IsAbs() {
		if b, err := url.Parse(req.Path); err == nil && b.IsAbs() {
			base = b
		} else {
			base = nil
		}
	}
	next := ref
	if base != nil {
		next = base.ResolveReference(ref)
	} else if !ref.IsAbs() {
		return false, fmt.Errorf("%w: cannot resolve the relative next URL %q from the %s: the Doer returned no Response.URL", ErrBadPage, raw, from)
	}
	if !next.IsAbs() || (next.Scheme != "http" && next.Scheme != "https") {
		return false, fmt.Errorf("%w: next URL %s from the %s is not an http(s) URL", ErrBadPage, strconv.Quote(pageRedactURL(pageRedactor(resp), next)), from)
	}
	// The host a next link must stay on is the one this page was asked at, not the one a
	// redirect answered from: the next request carries the credentials to its host.
	home := requestedURL(req, resp)
	if home == nil {
		home = base
	}
	if home != nil && !u.allowOtherHosts && (!strings.EqualFold(home.Scheme, next.Scheme) || !strings.EqualFold(home.Host, next.Host)) {
		return false, fmt.Errorf("%w: next URL %s from the %s leaves %s://%s; use AllowOtherHosts if that API really paginates across hosts",
			errForeignNextURL, pageRedactURL(pageRedactor(resp), next), from, home.Scheme, home.Host)
	}
	next.Fragment, next.RawFragment = "", ""
	req.Path = next.String()
	req.Query = nil // the next URL is complete
	return true, nil
}

// requestedURL is the absolute URL req was sent to before any redirect: its path when
// absolute, else the path joined to the client's base URL; nil when neither is known (a
// Doer that is not a *Client).
func requestedURL(req *Request, resp *Response) *url.URL {
	raw := req.Path
	if !isAbsoluteURL(raw) {
		if resp.client == nil {
			return nil
		}
		var err error
		if raw, err = resp.client.resolve(req.Path, nil); err != nil {
			return nil
		}
	}
	if u, err := url.Parse(raw); err == nil && u.IsAbs() {
		return u
	}
	return nil
}

func (u *urlPaginator) describe(req *Request, red *synclog.Redactor) string {
	return "URL " + pageRedactTarget(req, red)
}

// pageJSONBody returns a fresh copy of a request body as JSON bytes ("{}" for nil).
func pageJSONBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return []byte("{}"), nil
	case []byte:
		return append([]byte(nil), b...), nil
	case json.RawMessage:
		return append([]byte(nil), b...), nil
	case string:
		return []byte(b), nil
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("adapter: encoding the request body %T as JSON to set the cursor: %w", body, err)
		}
		return j, nil
	}
}

func pageQuery(req *Request) url.Values {
	if req.Query == nil {
		req.Query = url.Values{}
	}
	return req.Query
}

func pageCount(records gjson.Result) int {
	n := 0
	records.ForEach(func(_, _ gjson.Result) bool { n++; return true })
	return n
}

// Link is one link of a Link header (RFC 8288).
type link struct {
	// URL is the target as written (URI-Reference, not resolved).
	URL string
	// Params holds the link parameters, names lower-cased; the first occurrence wins.
	// Values are unquoted. Valueless parameters map to "".
	Params map[string]string
}

// Rels returns the relation types of the link's rel parameter, lower-cased.
func (l link) rels() []string {
	return strings.Fields(strings.ToLower(l.Params["rel"]))
}

// HasRel reports whether rel (compared case-insensitively) is one of the link's relation types.
func (l link) hasRel(rel string) bool {
	for _, r := range strings.Fields(l.Params["rel"]) {
		if strings.EqualFold(r, rel) {
			return true
		}
	}
	return false
}

// parseLinkHeader parses all Link header fields of h (RFC 8288 section 3). A malformed
// link-value is skipped along with the rest of its header field; links before it are kept.
// It never panics on bad input.
func parseLinkHeader(h http.Header) []link {
	var links []link
	for _, v := range h.Values("Link") {
		links = parseLinkValue(v, links)
	}
	return links
}

// nextLink returns the target of the first rel="next" link in h's Link headers, unresolved,
// or "" if there is none.
func nextLink(h http.Header) string {
	for _, l := range parseLinkHeader(h) {
		if l.hasRel("next") {
			return l.URL
		}
	}
	return ""
}

// parseLinkValue parses one Link field value: #link-value, where
// link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param ) and
// link-param = token BWS [ "=" BWS ( token / quoted-string ) ].
func parseLinkValue(s string, links []link) []link {
	i := 0
	for {
		i = linkSkipOWS(s, i)
		for i < len(s) && s[i] == ',' { // empty list elements are allowed
			i = linkSkipOWS(s, i+1)
		}
		if i >= len(s) {
			return links
		}
		if s[i] != '<' {
			return links
		}
		end := strings.IndexByte(s[i+1:], '>')
		if end < 0 {
			return links
		}
		l := link{URL: strings.TrimSpace(s[i+1 : i+1+end]), Params: map[string]string{}}
		i += end + 2
		for {
			i = linkSkipOWS(s, i)
			if i >= len(s) || s[i] == ',' {
				break
			}
			if s[i] != ';' {
				return links
			}
			i = linkSkipOWS(s, i+1)
			start := i
			for i < len(s) && linkTokenChar(s[i]) {
				i++
			}
			if i == start {
				if i >= len(s) || s[i] == ',' || s[i] == ';' {
					continue // empty parameter ("; ;"), tolerated
				}
				return links
			}
			name := strings.ToLower(s[start:i])
			value := ""
			i = linkSkipOWS(s, i)
			if i < len(s) && s[i] == '=' {
				i = linkSkipOWS(s, i+1)
				if i < len(s) && s[i] == '"' {
					var ok bool
					value, i, ok = linkReadQuoted(s, i)
					if !ok {
						return links
					}
				} else {
					start := i
					for i < len(s) && linkTokenChar(s[i]) {
						i++
					}
					value = s[start:i]
				}
			}
			if _, dup := l.Params[name]; !dup {
				l.Params[name] = value
			}
		}
		links = append(links, l)
	}
}

func linkSkipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// linkReadQuoted reads a quoted-string starting at s[i] == '"'; it returns the unescaped value
// and the index after the closing quote.
func linkReadQuoted(s string, i int) (string, int, bool) {
	var b strings.Builder
	for i++; i < len(s); i++ {
		switch s[i] {
		case '"':
			return b.String(), i + 1, true
		case '\\':
			i++
			if i >= len(s) {
				return "", i, false
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return "", i, false
}

// linkTokenChar reports whether c is a tchar (RFC 9110 section 5.6.2).
func linkTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
