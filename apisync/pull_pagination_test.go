package apisync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
)

// pagedAPI is a fake listing of n orders served in pages by one pagination style.
type pagedAPI struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []string // the query of each request
	fault func(page int, w http.ResponseWriter) bool
	next  string // link_header/next_url: host of the next links ("" = this server)
}

// order is the i-th remote record.
func order(i int) map[string]any {
	return map[string]any{"id": i, "name": fmt.Sprintf("order %d", i), "mail": fmt.Sprintf("o%d@x.io", i)}
}

func orders(from, to, n int) []map[string]any {
	out := []map[string]any{}
	for i := max(from, 0); i < min(to, n); i++ {
		out = append(out, order(i))
	}
	return out
}

// newPagedAPI serves n records, size per page, in style; overlap repeats the last record
// of each page at the start of the next one.
func newPagedAPI(t *testing.T, style string, n, size, overlap int) *pagedAPI {
	api := &pagedAPI{}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		api.mu.Lock()
		api.reqs = append(api.reqs, r.URL.RawQuery)
		fault := api.fault
		nextHost := api.next
		api.mu.Unlock()
		if nextHost == "" {
			nextHost = "http://" + r.Host
		}
		atoi := func(k string) int { v, _ := strconv.Atoi(q.Get(k)); return v }
		page := 0 // 0-based page number
		switch style {
		case "link_header", "next_url":
			page = atoi("p")
		case "cursor":
			if c := q.Get("cursor"); c != "" {
				page, _ = strconv.Atoi(strings.TrimPrefix(c, "c"))
			}
		case "cursor_last":
			if c := q.Get("starting_after"); c != "" {
				last, _ := strconv.Atoi(c)
				page = (last + 1) / size
			}
		case "page":
			page = atoi("page") - 1
			require.Equal(t, strconv.Itoa(size), q.Get("per_page"))
		case "page0":
			page = atoi("page")
		case "offset":
			page = atoi("offset") / size
			require.Equal(t, strconv.Itoa(size), q.Get("limit"))
		}
		if fault != nil && fault(page, w) {
			return
		}
		recs := orders(page*size-overlap, (page+1)*size, n)
		more := (page+1)*size < n
		w.Header().Set("Content-Type", "application/json")
		var body any = recs
		switch style {
		case "link_header":
			if more {
				w.Header().Add("Link", fmt.Sprintf(`<%s/api/orders?p=%d>; rel="next", <%s/api/orders?p=0>; rel="first"`, nextHost, page+1, nextHost))
			}
		case "next_url":
			next := any(nil)
			if more {
				next = fmt.Sprintf("/api/orders?p=%d", page+1)
				if api.next != "" {
					next = fmt.Sprintf("%s/api/orders?p=%d", api.next, page+1)
				}
			}
			body = map[string]any{"data": recs, "links": map[string]any{"next": next}}
		case "cursor":
			cur := ""
			if more {
				cur = fmt.Sprintf("c%d", page+1)
			}
			body = map[string]any{"data": recs, "meta": map[string]any{"next_cursor": cur, "has_more": more}}
		case "cursor_last":
			body = map[string]any{"data": recs, "has_more": more}
		case "page", "page0":
			body = map[string]any{"data": recs, "meta": map[string]any{"total": n}}
		}
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(api.Close)
	return api
}

func (api *pagedAPI) queries() []string {
	api.mu.Lock()
	defer api.mu.Unlock()
	return append([]string(nil), api.reqs...)
}

// pagedStyles: each style's config (records_path and pagination) for newPagedAPI.
var pagedStyles = map[string]string{
	"link_header": "pagination: {style: link_header}\n",
	"next_url":    "records_path: data\npagination: {style: next_url, next_path: links.next}\n",
	"cursor":      "records_path: data\npagination: {style: cursor, cursor_path: meta.next_cursor, param: cursor, has_more_path: meta.has_more}\n",
	"cursor_last": "records_path: data\npagination: {style: cursor, cursor_path: id, cursor_from_last_record: true, param: starting_after, has_more_path: has_more}\n",
	"page":        "records_path: data\npagination: {style: page, param: page, size_param: per_page, size: %d, total_path: meta.total}\n",
	"page0":       "records_path: data\npagination: {style: page, param: page, zero_based: true, size_param: per_page, size: %d}\n",
	"offset":      "pagination: {style: offset, param: offset, size_param: limit, size: %d}\n",
}

func pullConfig(url, extra string) string {
	return fmt.Sprintf(`name: pull_orders
direction: out
model: order
url: %s/api/orders
methods: [GET]
retry: {max_attempts: 2, min_wait: 1ms, max_wait: 2ms}
lines: [{field: email, key: mail, identifier: true}, {field: name, key: name}]
%s`, url, extra)
}

func styleConfig(style string, size int) string {
	c := pagedStyles[style]
	if strings.Contains(c, "%d") {
		c = fmt.Sprintf(c, size)
	}
	return c
}

// checkPulled: the model holds exactly orders 0..n-1, each bound to its external ID.
func checkPulled(t *testing.T, s *apisync.Sync, db *sqlstore.DB, n int) {
	t.Helper()
	ctx := context.Background()
	assert.Equal(t, n, countRecords(t, s, "order"))
	st, err := s.Records("order")
	require.NoError(t, err)
	for i := range n {
		b, err := db.Bindings().GetByExternal(ctx, "pull_orders", "order", strconv.Itoa(i))
		require.NoError(t, err, "binding of order %d", i)
		assert.Equal(t, binding.StatusSuccess, b.Status)
		v, err := st.Get(ctx, b.LocalID)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("o%d@x.io", i), v["email"])
		assert.Equal(t, fmt.Sprintf("order %d", i), v["name"])
	}
}

// Each style walks every page: 250 records in pages of 100 (25 in pages of 10 for some
// styles, to spare time: each pulled record is matched by a scan of the table) are all
// created and bound; a second pull creates nothing and updates them.
func TestPullPaginationStyles(t *testing.T) {
	for _, style := range []string{"link_header", "next_url", "cursor", "cursor_last", "page", "page0", "offset"} {
		t.Run(style, func(t *testing.T) {
			ctx := context.Background()
			n, size := 25, 10
			if style == "link_header" || style == "page" {
				n, size = 250, 100
			}
			api := newPagedAPI(t, style, n, size, 0)
			db := openDB(t)
			s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, styleConfig(style, size))))
			counts, err := s.Push(ctx, "pull_orders")
			require.NoError(t, err)
			assert.Equal(t, report.Counts{Created: n}, counts)
			assert.Len(t, api.queries(), 3, "three pages, no empty fourth: %v", api.queries())
			checkPulled(t, s, db, n)

			counts, err = s.Push(ctx, "pull_orders")
			require.NoError(t, err)
			assert.Equal(t, report.Counts{Updated: n}, counts)
			assert.Len(t, api.queries(), 6)
			checkPulled(t, s, db, n)
		})
	}
}

// The same on Postgres (and SQLite), with a short last page of the offset style.
func TestPullPaginationDatabases(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *sqlstore.DB) {
		api := newPagedAPI(t, "offset", 25, 10, 0)
		s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, styleConfig("offset", 10))))
		counts, err := s.Push(context.Background(), "pull_orders")
		require.NoError(t, err)
		assert.Equal(t, report.Counts{Created: 25}, counts)
		assert.Equal(t, []string{"limit=10&offset=0", "limit=10&offset=10", "limit=10&offset=20"}, api.queries())
		checkPulled(t, s, db, 25)
	})
}

// A record repeated at the start of the next page (a listing that moved) is updated,
// not created twice.
func TestPullPaginationRepeatedRecords(t *testing.T) {
	api := newPagedAPI(t, "next_url", 25, 10, 1)
	db := openDB(t)
	s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, styleConfig("next_url", 0))))
	counts, err := s.Push(context.Background(), "pull_orders")
	require.NoError(t, err)
	assert.Equal(t, report.Counts{Created: 25, Updated: 2}, counts)
	checkPulled(t, s, db, 25)
}

// The params are sent on every page of a page-number walk, with the paging parameters.
func TestPullPaginationKeepsParams(t *testing.T) {
	api := newPagedAPI(t, "page", 25, 10, 0)
	s := openSync(t, nil, parseAll(t, nil, pullConfig(api.URL, "params: [{key: status, value: open}]\n"+styleConfig("page", 10))))
	counts, err := s.Push(context.Background(), "pull_orders")
	require.NoError(t, err)
	assert.Equal(t, report.Counts{Created: 25}, counts)
	assert.Equal(t, []string{"page=1&per_page=10&status=open", "page=2&per_page=10&status=open", "page=3&per_page=10&status=open"}, api.queries(),
		"the total (25) ends the walk at page 3")
}

// A page in the middle that keeps failing stops the pull with an error after the retries;
// the records of the pages before stay written.
func TestPullPaginationServerError(t *testing.T) {
	for _, style := range []string{"link_header", "cursor", "page"} {
		t.Run(style, func(t *testing.T) {
			api := newPagedAPI(t, style, 25, 10, 0)
			api.fault = func(page int, w http.ResponseWriter) bool {
				if page != 1 {
					return false
				}
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"error":"down"}`))
				return true
			}
			db := openDB(t)
			s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, styleConfig(style, 10))))
			counts, err := s.Push(context.Background(), "pull_orders")
			require.Error(t, err)
			assert.ErrorIs(t, err, adapter.ErrServer)
			assert.Contains(t, err.Error(), "page 2")
			assert.Equal(t, report.Counts{Created: 10}, counts)
			assert.Len(t, api.queries(), 3, "page 1, then page 2 twice (retry policy of 2 attempts)")
			checkPulled(t, s, db, 10)
		})
	}
}

// A page that is not JSON stops the pull with a clear error.
func TestPullPaginationNotJSON(t *testing.T) {
	api := newPagedAPI(t, "offset", 25, 10, 0)
	api.fault = func(page int, w http.ResponseWriter) bool {
		if page != 2 {
			return false
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>maintenance</html>"))
		return true
	}
	db := openDB(t)
	s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, styleConfig("offset", 10))))
	counts, err := s.Push(context.Background(), "pull_orders")
	require.Error(t, err)
	assert.ErrorIs(t, err, adapter.ErrBadPage)
	assert.ErrorIs(t, err, adapter.ErrBadResponse)
	assert.Contains(t, err.Error(), "page 3")
	assert.Contains(t, err.Error(), "<html>maintenance")
	assert.Contains(t, err.Error(), `"pull_orders"`)
	assert.Equal(t, report.Counts{Created: 20}, counts)
	checkPulled(t, s, db, 20)
}

// A page whose records_path is not an array stops the pull with an error naming the path.
func TestPullPaginationRecordsNotArray(t *testing.T) {
	api := newPagedAPI(t, "cursor", 25, 10, 0)
	api.fault = func(page int, w http.ResponseWriter) bool {
		if page != 1 {
			return false
		}
		_, _ = w.Write([]byte(`{"data":{"id":1},"meta":{"next_cursor":"c2"}}`))
		return true
	}
	s := openSync(t, nil, parseAll(t, nil, pullConfig(api.URL, styleConfig("cursor", 0))))
	counts, err := s.Push(context.Background(), "pull_orders")
	require.ErrorIs(t, err, adapter.ErrBadPage)
	assert.Contains(t, err.Error(), `records path "data"`)
	assert.Equal(t, report.Counts{Created: 10}, counts)
}

// More pages than max_pages is an error, not a silent stop; exactly max_pages is fine.
func TestPullPaginationMaxPages(t *testing.T) {
	for _, style := range []string{"link_header", "cursor", "offset"} {
		t.Run(style, func(t *testing.T) {
			api := newPagedAPI(t, style, 25, 10, 0)
			s := openSync(t, nil, parseAll(t, nil, pullConfig(api.URL, strings.Replace(styleConfig(style, 10), "}", ", max_pages: 2}", 1))))
			counts, err := s.Push(context.Background(), "pull_orders")
			require.ErrorIs(t, err, adapter.ErrMaxPages)
			assert.Equal(t, report.Counts{Created: 20}, counts)
			assert.Len(t, api.queries(), 2)

			api = newPagedAPI(t, style, 25, 10, 0)
			s = openSync(t, nil, parseAll(t, nil, pullConfig(api.URL, strings.Replace(styleConfig(style, 10), "}", ", max_pages: 3}", 1))))
			counts, err = s.Push(context.Background(), "pull_orders")
			require.NoError(t, err)
			assert.Equal(t, report.Counts{Created: 25}, counts)
		})
	}
}

// A next link to another host is refused (the client would send its credentials there)
// unless allow_other_hosts is set.
func TestPullPaginationOtherHost(t *testing.T) {
	for _, style := range []string{"link_header", "next_url"} {
		t.Run(style, func(t *testing.T) {
			other := newPagedAPI(t, style, 25, 10, 0)
			api := newPagedAPI(t, style, 25, 10, 0)
			api.next = other.URL
			s := openSync(t, nil, parseAll(t, map[string]string{"TOK": "s3cret-token"},
				strings.Replace(pullConfig(api.URL, styleConfig(style, 0)), "methods:", "auth: {type: bearer, token: '${TOK}'}\nmethods:", 1)))
			counts, err := s.Push(context.Background(), "pull_orders")
			require.ErrorIs(t, err, adapter.ErrBadPage)
			assert.Contains(t, err.Error(), "another host")
			assert.Equal(t, report.Counts{Created: 10}, counts)
			assert.Empty(t, other.queries(), "nothing is sent to the other host")

			api = newPagedAPI(t, style, 25, 10, 0)
			api.next = other.URL
			cfg := strings.Replace(styleConfig(style, 0), "}", ", allow_other_hosts: true}", 1)
			s = openSync(t, nil, parseAll(t, nil, pullConfig(api.URL, cfg)))
			counts, err = s.Push(context.Background(), "pull_orders")
			require.NoError(t, err)
			assert.Equal(t, report.Counts{Created: 25}, counts)
			assert.Len(t, other.queries(), 2, "pages 2 and 3 come from the other host")
		})
	}
}

// records_path without pagination: one GET, the records read there (an array, or one
// object).
func TestPullRecordsPath(t *testing.T) {
	for _, tc := range []struct{ body, path string }{
		{`{"data":[{"id":1,"name":"a","mail":"a@x.io"},{"id":2,"name":"b","mail":"b@x.io"}]}`, "data"},
		{`{"result":{"item":{"id":1,"name":"a","mail":"a@x.io"}}}`, "result.item"},
	} {
		rc := newReceiver(t, func(int, received) (int, string) { return 200, tc.body })
		db := openDB(t)
		s := openSync(t, db, parseAll(t, nil, pullConfig(rc.URL, "records_path: "+tc.path+"\n")))
		counts, err := s.Push(context.Background(), "pull_orders")
		require.NoError(t, err)
		assert.Equal(t, strings.Count(tc.body, `"mail"`), counts.Created, tc.path)
		assert.Len(t, rc.requests(), 1)
		_, err = db.Bindings().GetByExternal(context.Background(), "pull_orders", "order", "1")
		require.NoError(t, err)
	}
	rc := newReceiver(t, func(int, received) (int, string) { return 200, `{"data":"nope"}` })
	s := openSync(t, nil, parseAll(t, nil, pullConfig(rc.URL, "records_path: data\n")))
	_, err := s.Push(context.Background(), "pull_orders")
	require.ErrorIs(t, err, adapter.ErrBadResponse)
	assert.Contains(t, err.Error(), `records_path "data"`)
}

// Every combination that makes no sense is an error naming the field and its line.
func TestPaginationConfigErrors(t *testing.T) {
	const head = "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [GET]\nlines: [{field: a, key: a}]\n" // 6 lines
	const headPost = "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines: [{field: a, key: a}]\n"
	const headIn = "name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [GET]\nlines: [{field: a, key: a}]\n"
	cases := []struct {
		name, file, field string
		line              int
		problem           string
	}{
		{"pagination on a POST", headPost + "pagination: {style: link_header}\n", "pagination", 7, "out configs with method GET"},
		{"pagination on an in config", headIn + "pagination:\n  style: page\n  param: page\n", "pagination", 7, "out configs with method GET"},
		{"records_path on a POST", headPost + "records_path: data\n", "records_path", 7, "out configs with method GET"},
		{"records_path on an in config", headIn + "records_path: data\n", "records_path", 7, "out configs with method GET"},
		{"no style", head + "pagination:\n  param: page\n", "pagination.style", 7, "is required"},
		{"unknown style", head + "pagination:\n  style: pages\n", "pagination.style", 8, `unknown style "pages"`},
		{"unknown field", head + "pagination:\n  style: page\n  param: page\n  per_page: 10\n", "pagination.per_page", 10, "not a known field"},
		{"wrong type", head + "pagination:\n  style: page\n  param: page\n  size: ten\n", "pagination.size", 10, "must be a number"},
		{"next_url without next_path", head + "pagination:\n  style: next_url\n", "pagination.next_path", 7, "is required by the next_url style"},
		{"next_path on link_header", head + "pagination:\n  style: link_header\n  next_path: next\n", "pagination.next_path", 9, "not used by the link_header style"},
		{"cursor without cursor_path", head + "pagination:\n  style: cursor\n  param: cursor\n", "pagination.cursor_path", 7, "is required by the cursor style"},
		{"cursor without param", head + "pagination:\n  style: cursor\n  cursor_path: next\n", "pagination.param", 7, "is required by the cursor style"},
		{"cursor_path on page", head + "pagination:\n  style: page\n  param: page\n  cursor_path: next\n", "pagination.cursor_path", 10, "not used by the page style"},
		{"cursor_from_last_record on next_url", head + "pagination:\n  style: next_url\n  next_path: next\n  cursor_from_last_record: true\n", "pagination.cursor_from_last_record", 10, "not used by the next_url style"},
		{"has_more_path on offset", head + "pagination:\n  style: offset\n  param: offset\n  has_more_path: more\n", "pagination.has_more_path", 10, "not used by the offset style"},
		{"page without param", head + "pagination:\n  style: page\n  size: 10\n", "pagination.param", 7, "is required by the page style"},
		{"offset without param", head + "pagination:\n  style: offset\n", "pagination.param", 7, "is required by the offset style"},
		{"param on link_header", head + "pagination:\n  style: link_header\n  param: page\n", "pagination.param", 9, "not used by the link_header style"},
		{"size on cursor", head + "pagination:\n  style: cursor\n  cursor_path: next\n  param: c\n  size: 10\n", "pagination.size", 11, "not used by the cursor style"},
		{"size_param on next_url", head + "pagination:\n  style: next_url\n  next_path: next\n  size_param: limit\n", "pagination.size_param", 10, "not used by the next_url style"},
		{"size too large", head + "pagination:\n  style: page\n  param: page\n  size: 5000\n", "pagination.size", 10, "between 1 and 1000"},
		{"negative size", head + "pagination:\n  style: offset\n  param: offset\n  size: -1\n", "pagination.size", 10, "between 1 and 1000"},
		{"size_param without size", head + "pagination:\n  style: offset\n  param: offset\n  size_param: limit\n", "pagination.size_param", 10, "needs size"},
		{"size_param equal to param", head + "pagination:\n  style: offset\n  param: offset\n  size_param: offset\n  size: 10\n", "pagination.size_param", 10, "must differ from param"},
		{"param also in params", head + "params: [{key: page, value: 3}]\npagination:\n  style: page\n  param: page\n", "pagination.param", 10, `"page" is also set by params`},
		{"size_param also in url", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a?per_page=5\nmethods: [GET]\nlines: [{field: a, key: a}]\n" +
			"pagination:\n  style: page\n  param: page\n  size_param: per_page\n  size: 10\n", "pagination.size_param", 10, `"per_page" is also set in url`},
		{"zero_based on offset", head + "pagination:\n  style: offset\n  param: offset\n  zero_based: true\n", "pagination.zero_based", 10, "not used by the offset style"},
		{"total_path on cursor", head + "pagination:\n  style: cursor\n  cursor_path: next\n  param: c\n  total_path: total\n", "pagination.total_path", 11, "not used by the cursor style"},
		{"total_path on page without size", head + "pagination:\n  style: page\n  param: page\n  total_path: total\n", "pagination.total_path", 10, "needs size"},
		{"allow_other_hosts on page", head + "pagination:\n  style: page\n  param: page\n  allow_other_hosts: true\n", "pagination.allow_other_hosts", 10, "not used by the page style"},
		{"negative max_pages", head + "pagination:\n  style: link_header\n  max_pages: -1\n", "pagination.max_pages", 9, "between 1 and 1000000"},
		{"max_pages too large", head + "pagination:\n  style: link_header\n  max_pages: 2000000\n", "pagination.max_pages", 9, "between 1 and 1000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apisync.Parse([]byte(tc.file), "p.yaml", func(string) (string, bool) { return "", false })
			require.ErrorIs(t, err, apisync.ErrInvalidConfig)
			var ce *apisync.ConfigError
			require.ErrorAs(t, err, &ce)
			var fe *apisync.FieldError
			for _, f := range ce.Fields {
				if f.Field == tc.field {
					fe = f
				}
			}
			require.NotNil(t, fe, "no error for field %s in %v", tc.field, err)
			assert.Equal(t, tc.line, fe.Line, "line of %s", tc.field)
			assert.Contains(t, fe.Problem, tc.problem)
			assert.Contains(t, err.Error(), "p.yaml:"+strconv.Itoa(tc.line)+": "+tc.field)
		})
	}
	// The same checks hold for a config built in Go.
	c := apisync.Config{Name: "a", Direction: apisync.Out, Model: "m", URL: "https://x.io/a", Methods: []string{"GET"},
		Lines: []apisync.Line{{Field: "a", Key: "a"}}, Pagination: apisync.Pagination{Style: "cursor", Param: "c"}}
	err := c.Validate()
	require.ErrorIs(t, err, apisync.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "pagination.cursor_path: is required")
	c.Pagination.CursorPath = "next"
	require.NoError(t, c.Validate())
}

// Each page's records are written before the next page is asked for: a pull holds one
// page at a time.
func TestPullPaginationWritesPageByPage(t *testing.T) {
	api := newPagedAPI(t, "cursor", 25, 10, 0)
	var s *apisync.Sync
	var mu sync.Mutex
	var seen []int // records stored when each page was asked for
	api.fault = func(int, http.ResponseWriter) bool {
		st, err := s.Records("order")
		if err != nil {
			return false
		}
		n := 0
		for range st.All(context.Background()) {
			n++
		}
		mu.Lock()
		seen = append(seen, n)
		mu.Unlock()
		return false
	}
	s = openSync(t, nil, parseAll(t, nil, pullConfig(api.URL, styleConfig("cursor", 0))))
	_, err := s.Push(context.Background(), "pull_orders")
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{0, 10, 20}, seen)
}
