package apisync

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/connkit/connkit/adapter"
)

// The pagination styles of an outbound GET (Pagination.Style).
const (
	pageLinkHeader = "link_header" // the rel="next" link of the Link header
	pageNextURL    = "next_url"    // a URL in the body, at next_path
	pageCursor     = "cursor"      // a cursor at cursor_path, sent back in param
	pagePage       = "page"        // a page number in param
	pageOffset     = "offset"      // an offset in param
)

// defaultMaxPages is an outbound GET's page limit when Pagination.MaxPages is 0;
// maxMaxPages is the largest limit a config may set.
const (
	defaultMaxPages = 1000
	maxMaxPages     = 1_000_000
)

var pageStyles = []string{pageLinkHeader, pageNextURL, pageCursor, pagePage, pageOffset}

// Pagination says how an out config with method GET walks a remote listing that comes
// in pages. Each page is fetched with the config's client (auth, headers, timeouts,
// retries, audit log), its records (at the config's records_path, which must be an array
// or null on every page) are mapped and written before the next page is asked for, so
// only one page is held at a time. The walk stops when the style's rule says the listing
// is over; a page that cannot be read (an error status after the retries, a body that is
// not JSON, no array at records_path, a next link to another host, a pagination loop)
// stops the pull with an error, and so does a listing longer than MaxPages. Records
// written before the error stay written.
//
// The zero value means no pagination: one GET, as without the field.
type Pagination struct {
	// Style is link_header, next_url, cursor, page or offset. Required when any other
	// field is set.
	Style string `json:"style,omitempty"`
	// NextPath (next_url, required) is the gjson path of the next page's URL in the page
	// body ("links.next", `@odata\.nextLink`); absolute or relative to the page's URL.
	// The walk stops when it is missing, null or "".
	NextPath string `json:"next_path,omitempty"`
	// CursorPath (cursor, required) is the gjson path of the next cursor in the page body
	// ("meta.next_cursor"), or in the page's last record with CursorFromLastRecord
	// ("id": Stripe's starting_after). The walk stops when it is missing, null or "".
	CursorPath string `json:"cursor_path,omitempty"`
	// CursorFromLastRecord (cursor) reads CursorPath in the last record of the page
	// instead of the page body.
	CursorFromLastRecord bool `json:"cursor_from_last_record,omitempty"`
	// Param (cursor, page, offset; required) is the query parameter that carries the
	// cursor, the page number or the offset.
	Param string `json:"param,omitempty"`
	// SizeParam (page, offset) is the query parameter that carries Size ("per_page",
	// "limit"); it needs Size.
	SizeParam string `json:"size_param,omitempty"`
	// Size (page, offset) is the page size, 1 to MaxPageSize: sent in SizeParam when set,
	// and a page with fewer records ends the walk.
	Size int `json:"size,omitempty"`
	// ZeroBased (page) numbers pages from 0 instead of 1.
	ZeroBased bool `json:"zero_based,omitempty"`
	// HasMorePath (cursor) is the gjson path of a boolean in the page body: false ends the
	// walk whatever the cursor; true with no cursor is an error; true on an empty page goes
	// on (an empty page ends every other walk).
	HasMorePath string `json:"has_more_path,omitempty"`
	// TotalPath (page, offset) is the gjson path of the total number of records in the
	// page body ("meta.total"): the walk stops once that many were received instead of
	// asking for an empty page. The page style needs Size with it.
	TotalPath string `json:"total_path,omitempty"`
	// MaxPages is the most pages one pull reads (default 1000, at most 1,000,000). A
	// listing that still announces more pages after MaxPages is an error, not a silent
	// stop — so is one of exactly MaxPages pages whose end only one more page would show
	// (page or offset style without size or total).
	MaxPages int `json:"max_pages,omitempty"`
	// AllowOtherHosts (link_header, next_url) lets the walk follow a next link to another
	// scheme or host than the page that carried it. Off by default: such a link is an
	// error, since every request carries the config's credentials.
	AllowOtherHosts bool `json:"allow_other_hosts,omitempty"`
}

// isZero reports whether p configures no pagination.
func (p Pagination) isZero() bool { return p == Pagination{} }

// validatePagination checks records_path and pagination: each field is checked against
// the config's direction and method and the style's needs.
func (c *Config) validatePagination(add func(field, format string, args ...any)) {
	p := c.Pagination
	outGet := c.Direction == Out && len(c.Methods) == 1 && c.Methods[0] == http.MethodGet
	if c.RecordsPath != "" && !outGet && c.Direction != "" {
		add("records_path", "is for out configs with method GET (where to find the records in the response)")
	}
	if p.isZero() {
		return
	}
	if !outGet {
		if c.Direction != "" {
			add("pagination", "is for out configs with method GET (pulling a paginated listing)")
		}
		return
	}
	if p.Style == "" {
		add("pagination.style", "is required: one of %s", strings.Join(pageStyles, ", "))
		return
	}
	style := p.Style
	known := false
	for _, s := range pageStyles {
		known = known || s == style
	}
	if !known {
		add("pagination.style", "unknown style %q: use one of %s", style, strings.Join(pageStyles, ", "))
		return
	}
	only := func(field string, set bool, styles ...string) {
		if !set {
			return
		}
		for _, s := range styles {
			if s == style {
				return
			}
		}
		add("pagination."+field, "is not used by the %s style (only by %s)", style, strings.Join(styles, " and "))
	}
	only("next_path", p.NextPath != "", pageNextURL)
	only("cursor_path", p.CursorPath != "", pageCursor)
	only("cursor_from_last_record", p.CursorFromLastRecord, pageCursor)
	only("has_more_path", p.HasMorePath != "", pageCursor)
	only("param", p.Param != "", pageCursor, pagePage, pageOffset)
	only("size_param", p.SizeParam != "", pagePage, pageOffset)
	only("size", p.Size != 0, pagePage, pageOffset)
	only("zero_based", p.ZeroBased, pagePage)
	only("total_path", p.TotalPath != "", pagePage, pageOffset)
	only("allow_other_hosts", p.AllowOtherHosts, pageLinkHeader, pageNextURL)
	switch style {
	case pageNextURL:
		if p.NextPath == "" {
			add("pagination.next_path", "is required by the next_url style: the gjson path of the next page's URL in the body (e.g. links.next)")
		}
	case pageCursor:
		if p.CursorPath == "" {
			add("pagination.cursor_path", "is required by the cursor style: the gjson path of the next cursor (e.g. meta.next_cursor)")
		}
		if p.Param == "" {
			add("pagination.param", "is required by the cursor style: the query parameter that carries the cursor")
		}
	case pagePage, pageOffset:
		if p.Param == "" {
			add("pagination.param", "is required by the %s style: the query parameter that carries the %s", style, map[string]string{pagePage: "page number", pageOffset: "offset"}[style])
		}
		if p.Size < 0 || p.Size > MaxPageSize {
			add("pagination.size", "must be between 1 and %d", MaxPageSize)
		}
		if p.SizeParam != "" && p.Size == 0 {
			add("pagination.size_param", "needs size: the page size to send")
		}
		if style == pagePage && p.TotalPath != "" && p.Size == 0 {
			add("pagination.total_path", "needs size with the page style (pages are counted in records)")
		}
	}
	if p.Param != "" && p.Param == p.SizeParam {
		add("pagination.size_param", "must differ from param")
	}
	for _, q := range c.Params {
		if p.Param != "" && q.Key == p.Param {
			add("pagination.param", "query parameter %q is also set by params", q.Key)
		}
		if p.SizeParam != "" && q.Key == p.SizeParam {
			add("pagination.size_param", "query parameter %q is also set by params", q.Key)
		}
	}
	// In the url's own query too: sent twice, the API would read either (most read the first).
	if u, err := url.Parse(c.URL); err == nil {
		inURL := u.Query()
		if p.Param != "" && inURL.Has(p.Param) {
			add("pagination.param", "query parameter %q is also set in url", p.Param)
		}
		if p.SizeParam != "" && inURL.Has(p.SizeParam) {
			add("pagination.size_param", "query parameter %q is also set in url", p.SizeParam)
		}
	}
	if p.MaxPages < 0 || p.MaxPages > maxMaxPages {
		add("pagination.max_pages", "must be between 1 and %d (default %d)", maxMaxPages, defaultMaxPages)
	}
}

// paginator returns the adapter's paginator and page options for a validated
// pagination, or nil when there is none.
func (p Pagination) paginator(recordsPath string) (adapter.Paginator, []adapter.PageOption) {
	if p.isZero() {
		return nil, nil
	}
	var pg adapter.Paginator
	var hosts []adapter.PaginatorOption
	if p.AllowOtherHosts {
		hosts = append(hosts, adapter.AllowOtherHosts())
	}
	var totals []adapter.PaginatorOption
	if p.TotalPath != "" {
		totals = append(totals, adapter.TotalRecords(p.TotalPath, ""))
	}
	switch p.Style {
	case pageLinkHeader:
		pg = adapter.LinkHeader(hosts...)
	case pageNextURL:
		pg = adapter.NextURL(p.NextPath, hosts...)
	case pageCursor:
		var opts []adapter.PaginatorOption
		if p.HasMorePath != "" {
			opts = append(opts, adapter.HasMorePath(p.HasMorePath))
		}
		if p.CursorFromLastRecord {
			opts = append(opts, adapter.CursorFromLastRecord())
		}
		pg = adapter.Cursor(p.CursorPath, p.Param, opts...)
	case pagePage:
		first := 1
		if p.ZeroBased {
			first = 0
		}
		pg = adapter.PageNumber(p.Param, first, p.SizeParam, p.Size, totals...)
	case pageOffset:
		pg = adapter.Offset(p.SizeParam, p.Param, p.Size, totals...)
	default:
		return nil, nil
	}
	maxPages := p.MaxPages
	if maxPages == 0 {
		maxPages = defaultMaxPages
	}
	return pg, []adapter.PageOption{adapter.WithRecordsPath(recordsPath), adapter.WithMaxPages(maxPages, true)}
}
