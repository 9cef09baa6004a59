package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// testDoer is a minimal net/http Doer so that the pagination tests do not depend on Client.
// Non-2xx statuses are errors, as with Client.
type testDoer struct {
	base   string // joined with relative Request.Path
	client *http.Client
}

func (d *testDoer) Do(ctx context.Context, req *Request) (*Response, error) {
	u, err := url.Parse(req.Path)
	if err != nil {
		return nil, err
	}
	if !u.IsAbs() {
		if u, err = url.Parse(d.base + req.Path); err != nil {
			return nil, err
		}
	}
	if len(req.Query) > 0 {
		q := u.Query()
		for k, vs := range req.Query {
			q[k] = append(q[k], vs...)
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	switch b := req.Body.(type) {
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	case json.RawMessage:
		body = bytes.NewReader(b)
	case nil:
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(j)
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.Header {
		hreq.Header[k] = vs
	}
	client := d.client
	if client == nil {
		client = http.DefaultClient
	}
	hresp, err := client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(hresp.Body)
	if err != nil {
		return nil, err
	}
	if hresp.StatusCode >= 400 {
		return nil, fmt.Errorf("testDoer: %s %s: HTTP %d", method, u, hresp.StatusCode)
	}
	return &Response{StatusCode: hresp.StatusCode, Header: hresp.Header, Body: b, URL: u, Attempts: 1}, nil
}

// pgAPI is a fake paged API that records the request URIs it receives.
type pgAPI struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []string
}

func newPGAPI(t testing.TB, h func(w http.ResponseWriter, r *http.Request)) *pgAPI {
	t.Helper()
	a := &pgAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.reqs = append(a.reqs, r.URL.RequestURI())
		a.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *pgAPI) requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.reqs...)
}

func (a *pgAPI) doer() *testDoer { return &testDoer{base: a.URL, client: a.Client()} }

// pgItems renders records with ids from..to-1 as a JSON array.
func pgItems(from, to int) string {
	var b strings.Builder
	b.WriteByte('[')
	for id := from; id < to; id++ {
		if id > from {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d"}`, id, id)
	}
	b.WriteByte(']')
	return b.String()
}

func qint(r *http.Request, name string, def int) int {
	if v := r.URL.Query().Get(name); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			return n
		}
	}
	return def
}

// collectIDs drains a record iterator; it fails the test if anything is yielded after an error.
func collectIDs(t *testing.T, seq iter.Seq2[gjson.Result, error]) ([]int, error) {
	t.Helper()
	var ids []int
	var firstErr error
	for rec, err := range seq {
		if firstErr != nil {
			t.Fatalf("iterator yielded after the error %v", firstErr)
		}
		if err != nil {
			firstErr = err
			continue
		}
		ids = append(ids, int(rec.Get("id").Int()))
	}
	return ids, firstErr
}

func seqIDs(from, to int) []int {
	var ids []int
	for i := from; i < to; i++ {
		ids = append(ids, i)
	}
	return ids
}

// offsetAPI serves total records with limit/offset.
func offsetAPI(t *testing.T, total int) *pgAPI {
	return newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		limit, off := qint(r, "limit", 50), qint(r, "offset", 0)
		from, to := min(off+1, total+1), min(off+limit+1, total+1)
		fmt.Fprintf(w, `{"products":%s}`, pgItems(from, to))
	})
}

func TestOffset(t *testing.T) {
	for _, tc := range []struct {
		total int
		want  []string
	}{
		{25, []string{"/products?limit=10&offset=0", "/products?limit=10&offset=10", "/products?limit=10&offset=20"}},
		// A full last page needs one more (empty) page to know it was the last.
		{20, []string{"/products?limit=10&offset=0", "/products?limit=10&offset=10", "/products?limit=10&offset=20"}},
		{0, []string{"/products?limit=10&offset=0"}},
	} {
		t.Run(strconv.Itoa(tc.total), func(t *testing.T) {
			api := offsetAPI(t, tc.total)
			ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/products"}, Offset("limit", "offset", 10), WithRecordsPath("products")))
			require.NoError(t, err)
			assert.Equal(t, seqIDs(1, tc.total+1), ids)
			assert.Equal(t, tc.want, api.requests())
		})
	}
}

func TestOffsetResumesFromGivenOffsetAndKeepsCallerRequest(t *testing.T) {
	api := offsetAPI(t, 25)
	req := Request{Path: "/products", Query: url.Values{"offset": {"20"}, "status": {"active"}}}
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), req, Offset("limit", "offset", 10), WithRecordsPath("products")))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(21, 26), ids)
	assert.Equal(t, []string{"/products?limit=10&offset=20&status=active"}, api.requests())
	assert.Equal(t, url.Values{"offset": {"20"}, "status": {"active"}}, req.Query, "the caller's query must not change")
}

func TestOffsetBadOffsetParam(t *testing.T) {
	api := offsetAPI(t, 25)
	req := Request{Path: "/products", Query: url.Values{"offset": {"ten"}}}
	_, err := collectIDs(t, Records(t.Context(), api.doer(), req, Offset("limit", "offset", 10), WithRecordsPath("products")))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `offset parameter "offset" is "ten"`)
}

func TestPageNumber(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		page, size := qint(r, "page", 1), qint(r, "per_page", 5)
		from := (page-1)*size + 1
		fmt.Fprint(w, pgItems(min(from, 24), min(from+size, 24))) // 23 records, body is the array
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/items"}, PageNumber("page", 1, "per_page", 10)))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 24), ids)
	assert.Equal(t, []string{"/items?page=1&per_page=10", "/items?page=2&per_page=10", "/items?page=3&per_page=10"}, api.requests())
}

func TestPageNumberWithoutSizeStopsOnEmptyPage(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		page := qint(r, "p", 0)
		from := page*4 + 1
		fmt.Fprintf(w, `{"data":{"items":%s}}`, pgItems(min(from, 11), min(from+4, 11))) // 10 records
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/items"}, PageNumber("p", 0, "", 0), WithRecordsPath("data.items")))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 11), ids)
	assert.Equal(t, []string{"/items?p=0", "/items?p=1", "/items?p=2", "/items?p=3"}, api.requests())
}

// clampingAPI serves 20 records 10 per page (page numbers from 1) and, like several real
// APIs, answers a page past the end with the last page again. It reports its totals in
// X-Total-Count / X-WP-TotalPages headers and in meta.
func clampingAPI(t *testing.T) *pgAPI {
	return newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		page := min(max(qint(r, "page", 1), 1), 2)
		if r.URL.Query().Has("offset") {
			page = min(qint(r, "offset", 0)/10+1, 2)
		}
		w.Header().Set("X-Total-Count", "20")
		w.Header().Set("X-WP-TotalPages", "2")
		fmt.Fprintf(w, `{"meta":{"total":20,"last_page":2,"bad":"many"},"data":%s}`, pgItems((page-1)*10+1, page*10+1))
	})
}

func TestTotals(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Paginator
	}{
		{"offset, records header", Offset("limit", "offset", 10, TotalRecords("", "X-Total-Count"))},
		{"offset, records path", Offset("limit", "offset", 10, TotalRecords("meta.total", ""))},
		{"offset, pages path", Offset("limit", "offset", 10, TotalPages("meta.last_page", ""))},
		{"page, pages header", PageNumber("page", 1, "per_page", 10, TotalPages("", "X-WP-TotalPages"))},
		{"page, pages path", PageNumber("page", 1, "per_page", 10, TotalPages("meta.last_page", ""))},
		{"page, records path", PageNumber("page", 1, "per_page", 10, TotalRecords("meta.total", ""))},
		{"absent total falls back", PageNumber("page", 1, "per_page", 10, TotalRecords("meta.nope", ""), TotalPages("meta.last_page", ""))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := clampingAPI(t)
			ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, tc.p, WithRecordsPath("data"), WithMaxPages(10, false)))
			require.NoError(t, err)
			assert.Equal(t, seqIDs(1, 21), ids)
			assert.Len(t, api.requests(), 2, "no request past the last page")
		})
	}
	t.Run("without totals a clamping API is a loop, not an endless walk", func(t *testing.T) {
		api := clampingAPI(t)
		_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, PageNumber("page", 1, "per_page", 10), WithRecordsPath("data"), WithMaxPages(10, false)))
		require.ErrorIs(t, err, errPaginationLoop)
		assert.Contains(t, err.Error(), "page 3 (page=3) has the same records as page 2")
	})
	t.Run("bad total", func(t *testing.T) {
		api := clampingAPI(t)
		_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, PageNumber("page", 1, "per_page", 10, TotalRecords("meta.bad", "")), WithRecordsPath("data")))
		require.ErrorIs(t, err, ErrBadPage)
		assert.Contains(t, err.Error(), `total records at path "meta.bad" is "\"many\"", not an integer`)
	})
	t.Run("bad header", func(t *testing.T) {
		d := doerFunc(func(context.Context, *Request) (*Response, error) {
			return &Response{StatusCode: 200, Header: http.Header{"X-Total-Count": {"lots"}}, Body: []byte(`[1,2]`)}, nil
		})
		_, err := collectIDs(t, Records(t.Context(), d, Request{Path: "/"}, Offset("limit", "offset", 2, TotalRecords("", "X-Total-Count"))))
		require.ErrorIs(t, err, ErrBadPage)
		assert.Contains(t, err.Error(), `total records in header X-Total-Count is "lots", not an integer`)
	})
}

func TestPageNumberBadParamAndPagesErrorShape(t *testing.T) {
	api := offsetAPI(t, 25)
	req := Request{Path: "/", Query: url.Values{"page": {"two"}}}
	n := 0
	for resp, err := range Pages(t.Context(), api.doer(), req, PageNumber("page", 1, "", 0), WithRecordsPath("products")) {
		n++
		if n == 1 {
			require.NoError(t, err)
			require.NotNil(t, resp)
			continue
		}
		require.Error(t, err)
		assert.Nil(t, resp, "errors come with a nil response")
		assert.Contains(t, err.Error(), `preparing the request for page 2: adapter: page parameter "page" is "two", not an integer`)
	}
	assert.Equal(t, 2, n)
}

// cursorAPI serves 3 pages chained by the cursors c1, c2.
func cursorAPI(t *testing.T, page func(cursor string) string) *pgAPI {
	return newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, page(r.URL.Query().Get("cursor")))
	})
}

func TestCursor(t *testing.T) {
	api := cursorAPI(t, func(c string) string {
		switch c {
		case "":
			return `{"items":` + pgItems(1, 4) + `,"meta":{"next":"c1"}}`
		case "c1":
			return `{"items":` + pgItems(4, 7) + `,"meta":{"next":"c2"}}`
		default:
			return `{"items":` + pgItems(7, 9) + `,"meta":{"next":""}}`
		}
	})
	req := Request{Path: "/items", Query: url.Values{"limit": {"3"}}}
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), req, Cursor("meta.next", "cursor"), WithRecordsPath("items")))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 9), ids)
	assert.Equal(t, []string{"/items?limit=3", "/items?cursor=c1&limit=3", "/items?cursor=c2&limit=3"}, api.requests())
}

func TestCursorHasMore(t *testing.T) {
	t.Run("false stops despite a cursor", func(t *testing.T) {
		api := cursorAPI(t, func(c string) string {
			if c == "" {
				return `{"data":` + pgItems(1, 3) + `,"has_more":true,"next":"x"}`
			}
			return `{"data":` + pgItems(3, 5) + `,"has_more":false,"next":"y"}`
		})
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Cursor("next", "cursor", HasMorePath("has_more")), WithRecordsPath("data")))
		require.NoError(t, err)
		assert.Equal(t, seqIDs(1, 5), ids)
		assert.Len(t, api.requests(), 2)
	})
	t.Run("true without cursor is an error", func(t *testing.T) {
		api := cursorAPI(t, func(string) string { return `{"data":` + pgItems(1, 3) + `,"has_more":true}` })
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Cursor("next", "cursor", HasMorePath("has_more")), WithRecordsPath("data")))
		require.ErrorIs(t, err, ErrBadPage)
		assert.Contains(t, err.Error(), `"has_more" is true but there is no cursor at path "next"`)
		assert.Equal(t, seqIDs(1, 3), ids, "the records of the page are delivered before the error")
	})
}

func TestCursorStripeStyleFromLastRecord(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		after := qint(r, "starting_after", 0)
		to := min(after+1+4, 11)
		fmt.Fprintf(w, `{"object":"list","data":%s,"has_more":%t}`, pgItems(after+1, to), to < 11)
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/v1/customers"},
		Cursor("id", "starting_after", CursorFromLastRecord(), HasMorePath("has_more")), WithRecordsPath("data")))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 11), ids)
	assert.Equal(t, []string{"/v1/customers", "/v1/customers?starting_after=4", "/v1/customers?starting_after=8"}, api.requests())
}

func TestCursorNumberKeepsDigits(t *testing.T) {
	api := cursorAPI(t, func(c string) string {
		if c == "" {
			return `{"items":[{"id":1}],"next":12345678901234567890}`
		}
		return `{"items":[],"next":null}`
	})
	_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Cursor("next", "cursor"), WithRecordsPath("items")))
	require.NoError(t, err)
	assert.Equal(t, []string{"/", "/?cursor=12345678901234567890"}, api.requests())
}

func TestCursorOfWrongType(t *testing.T) {
	api := cursorAPI(t, func(string) string { return `{"items":[{"id":1}],"next":{"token":"x"}}` })
	_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Cursor("next", "cursor"), WithRecordsPath("items")))
	require.ErrorIs(t, err, ErrBadPage)
	assert.Contains(t, err.Error(), `cursor at path "next" of the page body is an object`)
	assert.Contains(t, err.Error(), "page 2")
}

func TestCursorHasMoreMissingLeavesItToTheCursor(t *testing.T) {
	api := cursorAPI(t, func(c string) string {
		if c == "" {
			return `{"data":[{"id":1}],"next":"x"}`
		}
		return `{"data":[{"id":2}]}`
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Cursor("next", "cursor", HasMorePath("has_more")), WithRecordsPath("data")))
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, ids)
}

// TestCursorInBodyGraphQL pages a GraphQL connection: POST with the cursor in
// variables.after, hasNextPage/endCursor in pageInfo.
func TestCursorInBodyGraphQL(t *testing.T) {
	var bodies []string
	var mu sync.Mutex
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		after := gjson.GetBytes(b, "variables.after").String()
		start := 0
		if after != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(after, "end"))
		}
		end := min(start+2, 5)
		fmt.Fprintf(w, `{"data":{"products":{"nodes":%s,"pageInfo":{"hasNextPage":%t,"endCursor":"end%d"}}}}`, pgItems(start+1, end+1), end < 5, end)
	})
	req := Request{Method: http.MethodPost, Path: "/graphql.json", Body: map[string]any{"query": "query($after: String) { products(first: 2, after: $after) { nodes { id } } }"}}
	p := Cursor("data.products.pageInfo.endCursor", "", CursorInBody("variables.after"), HasMorePath("data.products.pageInfo.hasNextPage"))
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), req, p, WithRecordsPath("data.products.nodes")))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 6), ids)
	require.Len(t, bodies, 3)
	assert.JSONEq(t, `{"query":"query($after: String) { products(first: 2, after: $after) { nodes { id } } }"}`, bodies[0])
	assert.JSONEq(t, `{"query":"query($after: String) { products(first: 2, after: $after) { nodes { id } } }","variables":{"after":"end2"}}`, bodies[1])
	assert.Equal(t, "end4", gjson.Get(bodies[2], "variables.after").String())
	assert.Equal(t, map[string]any{"query": "query($after: String) { products(first: 2, after: $after) { nodes { id } } }"}, req.Body, "the caller's body is not modified")
}

func TestCursorInBodyLoop(t *testing.T) {
	var n atomic.Int64
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"items":[{"id":%d}],"next":"same"}`, n.Add(1))
	})
	req := Request{Method: http.MethodPost, Path: "/search", Body: json.RawMessage(`{"q":"x"}`)}
	_, err := collectIDs(t, Records(t.Context(), api.doer(), req, Cursor("next", "", CursorInBody("after")), WithRecordsPath("items"), WithMaxPages(20, false)))
	require.ErrorIs(t, err, errPaginationLoop)
	assert.Contains(t, err.Error(), `page 3 would request cursor "same" (body path after) again, already requested for page 2`)
}

// shopifyAPI serves 7 products 3 per page with page_info cursors in Link headers, as Shopify
// does: rel="previous" and rel="next" in one header, absolute URLs.
func shopifyAPI(t *testing.T, relative bool) *pgAPI {
	return newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		start := 0
		if pi := r.URL.Query().Get("page_info"); pi != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(pi, "pi"))
		}
		end := min(start+3, 7)
		base := "http://" + r.Host
		if relative {
			base = ""
		}
		var links []string
		if start > 0 {
			links = append(links, fmt.Sprintf(`<%s/admin/api/2024-01/products.json?limit=3&page_info=pi%d>; rel="previous"`, base, max(start-3, 0)))
		}
		if end < 7 {
			links = append(links, fmt.Sprintf(`<%s/admin/api/2024-01/products.json?limit=3&page_info=pi%d>; rel="next"`, base, end))
		}
		if len(links) > 0 {
			w.Header().Set("Link", strings.Join(links, ", "))
		}
		fmt.Fprintf(w, `{"products":%s}`, pgItems(start+1, end+1))
	})
}

func TestLinkHeaderShopify(t *testing.T) {
	for _, relative := range []bool{false, true} {
		t.Run(fmt.Sprintf("relative=%t", relative), func(t *testing.T) {
			api := shopifyAPI(t, relative)
			req := Request{Path: "/admin/api/2024-01/products.json", Query: url.Values{"limit": {"3"}}}
			ids, err := collectIDs(t, Records(t.Context(), api.doer(), req, LinkHeader(), WithRecordsPath("products")))
			require.NoError(t, err)
			assert.Equal(t, seqIDs(1, 8), ids)
			assert.Equal(t, []string{
				"/admin/api/2024-01/products.json?limit=3",
				"/admin/api/2024-01/products.json?limit=3&page_info=pi3",
				"/admin/api/2024-01/products.json?limit=3&page_info=pi6",
			}, api.requests())
		})
	}
}

func TestLinkHeaderSeveralHeaderFields(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		page := qint(r, "page", 1)
		w.Header().Add("Link", `</items?page=1>; rel="first"`)
		if page < 3 {
			w.Header().Add("Link", fmt.Sprintf(`<?page=%d>; title="next, please"; REL="Next Last"`, page+1))
		}
		fmt.Fprint(w, pgItems(page*10, page*10+2))
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/items"}, LinkHeader()))
	require.NoError(t, err)
	assert.Equal(t, []int{10, 11, 20, 21, 30, 31}, ids)
	assert.Equal(t, []string{"/items", "/items?page=2", "/items?page=3"}, api.requests())
}

func TestNextURL(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("page") {
		case "":
			fmt.Fprintf(w, `{"value":%s,"links":{"next":"http://%s/v2/things?page=2"}}`, pgItems(1, 3), r.Host) // absolute
		case "2":
			fmt.Fprintf(w, `{"value":%s,"links":{"next":"things?page=3"}}`, pgItems(3, 5)) // relative to /v2/things
		default:
			fmt.Fprintf(w, `{"value":%s,"links":{"next":null}}`, pgItems(5, 6))
		}
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/v2/things"}, NextURL("links.next"), WithRecordsPath("value")))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 6), ids)
	assert.Equal(t, []string{"/v2/things", "/v2/things?page=2", "/v2/things?page=3"}, api.requests())
}

func TestNextURLOData(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("$skiptoken") == "" {
			fmt.Fprintf(w, `{"@odata.context":"x","value":%s,"@odata.nextLink":"http://%s/odata/People?$skiptoken=2"}`, pgItems(1, 3), r.Host)
			return
		}
		fmt.Fprintf(w, `{"@odata.context":"x","value":%s}`, pgItems(3, 4))
	})
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/odata/People"}, NextURL(`@odata\.nextLink`), WithRecordsPath("value")))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 4), ids)
	assert.Len(t, api.requests(), 2)
}

func TestNextURLToAnotherHost(t *testing.T) {
	other := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"items":[{"id":9}]}`) })
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"items":[{"id":1}],"next":%q}`, other.URL+"/steal")
	})
	t.Run("refused by default", func(t *testing.T) {
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, NextURL("next"), WithRecordsPath("items")))
		require.ErrorIs(t, err, errForeignNextURL)
		assert.Equal(t, []int{1}, ids)
		assert.Empty(t, other.requests())
	})
	t.Run("AllowOtherHosts", func(t *testing.T) {
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, NextURL("next", AllowOtherHosts()), WithRecordsPath("items")))
		require.NoError(t, err)
		assert.Equal(t, []int{1, 9}, ids)
		assert.Equal(t, []string{"/steal"}, other.requests())
	})
}

func TestNextURLUnusable(t *testing.T) {
	for _, tc := range []struct{ next, want string }{
		{"ftp://files.example.com/p2", `next URL "ftp://files.example.com/p2" from the body path "next" is not an http(s) URL`},
		{"http://[::1", `next URL "http://[::1" from the body path "next" does not parse`},
	} {
		t.Run(tc.next, func(t *testing.T) {
			api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"items":[{"id":1}],"next":%q}`, tc.next)
			})
			_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, NextURL("next", AllowOtherHosts()), WithRecordsPath("items")))
			require.ErrorIs(t, err, ErrBadPage)
			assert.Contains(t, err.Error(), tc.want)
			assert.Len(t, api.requests(), 1)
		})
	}
}

func TestCursorInBodyBodyKinds(t *testing.T) {
	for _, body := range []any{[]byte(`{"q":1}`), `{"q":1}`, json.RawMessage(`{"q":1}`), map[string]int{"q": 1}, nil} {
		t.Run(fmt.Sprintf("%T", body), func(t *testing.T) {
			req := Request{Method: http.MethodPost, Body: body}
			more, err := Cursor("next", "", CursorInBody("vars.after")).Next(&req, &Response{Body: []byte(`{"next":"c2"}`)}, gjson.Parse(`[1]`))
			require.NoError(t, err)
			require.True(t, more)
			assert.Equal(t, "c2", gjson.GetBytes(req.Body.(json.RawMessage), "vars.after").String())
			if body != nil {
				assert.Equal(t, int64(1), gjson.GetBytes(req.Body.(json.RawMessage), "q").Int())
			}
		})
	}
	req := Request{Body: func() {}}
	_, err := Cursor("next", "", CursorInBody("after")).Next(&req, &Response{Body: []byte(`{"next":"c2"}`)}, gjson.Parse(`[1]`))
	assert.ErrorContains(t, err, "encoding the request body func() as JSON to set the cursor")
}

func TestNextURLNotAString(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"items":[{"id":1}],"next":42}`) })
	_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, NextURL("next"), WithRecordsPath("items")))
	require.ErrorIs(t, err, ErrBadPage)
	assert.Contains(t, err.Error(), `next URL at path "next" is a number`)
}

func TestLoopDetection(t *testing.T) {
	t.Run("cursor", func(t *testing.T) {
		next := map[string]string{"": "a", "a": "b", "b": "a"} // a → b → a
		var n atomic.Int64                                     // distinct records per page
		api := cursorAPI(t, func(c string) string { return fmt.Sprintf(`{"items":[{"id":%d}],"next":%q}`, n.Add(1), next[c]) })
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Cursor("next", "cursor"), WithRecordsPath("items"), WithMaxPages(20, false)))
		require.ErrorIs(t, err, errPaginationLoop)
		assert.Contains(t, err.Error(), `page 4 would request cursor "a" (parameter cursor) again, already requested for page 2`)
		assert.Len(t, ids, 3)
		assert.Len(t, api.requests(), 3)
	})
	t.Run("link header", func(t *testing.T) {
		var n atomic.Int64
		api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", `</items?page_info=stuck>; rel="next"`)
			fmt.Fprintf(w, `[{"id":%d}]`, n.Add(1))
		})
		_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/items"}, LinkHeader(), WithMaxPages(20, false)))
		require.ErrorIs(t, err, errPaginationLoop)
		assert.Contains(t, err.Error(), "page 3 would request URL "+api.URL+"/items?page_info=stuck again, already requested for page 2")
		assert.Len(t, api.requests(), 2)
	})
	t.Run("next URL back to the first page", func(t *testing.T) {
		var n atomic.Int64
		api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
			next := "/items?page=2"
			if r.URL.Query().Get("page") == "2" {
				next = "http://" + r.Host + "/items" // the first page, requested as a relative path
			}
			fmt.Fprintf(w, `{"items":[{"id":%d}],"next":%q}`, n.Add(1), next)
		})
		_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/items"}, NextURL("next"), WithRecordsPath("items"), WithMaxPages(20, false)))
		require.ErrorIs(t, err, errPaginationLoop)
		assert.Contains(t, err.Error(), "already requested for page 1")
		assert.Len(t, api.requests(), 2)
	})
	t.Run("custom paginator", func(t *testing.T) {
		api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `[{"id":1}]`) })
		_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/items"}, stuckPaginator{}, WithMaxPages(20, false)))
		require.ErrorIs(t, err, errPaginationLoop)
		assert.Contains(t, err.Error(), "page 2 would request GET /items?token=[REDACTED] again, already requested for page 1")
	})
}

func TestSamePageTwiceIsALoop(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, pgItems(1, 11)) }) // ignores paging
	ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "ofset", 10), WithMaxPages(20, false)))
	require.ErrorIs(t, err, errPaginationLoop)
	assert.Contains(t, err.Error(), "page 2 (ofset=10) has the same records as page 1; the API probably ignores the paging parameter")
	assert.Equal(t, seqIDs(1, 11), ids, "the repeated page is not delivered")
	assert.Len(t, api.requests(), 2)
}

// stuckPaginator always asks for the same page again.
type stuckPaginator struct{}

func (stuckPaginator) First(req *Request) { req.Query = url.Values{"token": {"s3cret"}} }
func (stuckPaginator) Next(*Request, *Response, gjson.Result) (bool, error) {
	return true, nil
}

func TestMaxPages(t *testing.T) {
	t.Run("clean stop", func(t *testing.T) {
		api := offsetAPI(t, 100)
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10), WithRecordsPath("products"), WithMaxPages(3, false)))
		require.NoError(t, err)
		assert.Equal(t, seqIDs(1, 31), ids)
		assert.Len(t, api.requests(), 3)
	})
	t.Run("error when more remain", func(t *testing.T) {
		api := offsetAPI(t, 100)
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10), WithRecordsPath("products"), WithMaxPages(3, true)))
		require.ErrorIs(t, err, ErrMaxPages)
		assert.Contains(t, err.Error(), "stopped after 3 pages but the API announces more (offset=30)")
		assert.Equal(t, seqIDs(1, 31), ids)
		assert.Len(t, api.requests(), 3)
	})
	t.Run("no error when the last page is the limit", func(t *testing.T) {
		api := offsetAPI(t, 25)
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10), WithRecordsPath("products"), WithMaxPages(3, true)))
		require.NoError(t, err)
		assert.Len(t, ids, 25)
	})
}

func TestBreakStopsFetching(t *testing.T) {
	for _, at := range []int{1, 5, 10} { // first, middle and last record of page 1
		t.Run(fmt.Sprintf("records at %d", at), func(t *testing.T) {
			api := offsetAPI(t, 100)
			n := 0
			for _, err := range Records(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10), WithRecordsPath("products")) {
				require.NoError(t, err)
				if n++; n == at {
					break
				}
			}
			assert.Len(t, api.requests(), 1)
		})
	}
	t.Run("pages", func(t *testing.T) {
		api := offsetAPI(t, 100)
		n := 0
		for resp, err := range Pages(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10), WithRecordsPath("products")) {
			require.NoError(t, err)
			require.NotNil(t, resp)
			if n++; n == 2 {
				break
			}
		}
		assert.Len(t, api.requests(), 2)
	})
}

func TestPagesYieldsEveryPageIncludingTheEmptyLast(t *testing.T) {
	api := offsetAPI(t, 20)
	var sizes []int64
	for resp, err := range Pages(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10), WithRecordsPath("products")) {
		require.NoError(t, err)
		sizes = append(sizes, gjson.ParseBytes(resp.Body).Get("products.#").Int())
	}
	assert.Equal(t, []int64{10, 10, 0}, sizes)
}

func TestContextCancel(t *testing.T) {
	t.Run("between pages", func(t *testing.T) {
		api := offsetAPI(t, 100)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ids, err := collectIDs(t, func(yield func(gjson.Result, error) bool) {
			for rec, err := range Records(ctx, api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10), WithRecordsPath("products")) {
				if rec.Get("id").Int() == 3 {
					cancel()
				}
				if !yield(rec, err) {
					return
				}
			}
		})
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "pagination stopped before page 2 (offset=10)")
		assert.Len(t, ids, 10, "the page already fetched is delivered")
		assert.Len(t, api.requests(), 1)
	})
	t.Run("already cancelled", func(t *testing.T) {
		api := offsetAPI(t, 100)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := collectIDs(t, Records(ctx, api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10)))
		require.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, api.requests())
	})
	t.Run("during a request, Doer error without the context error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		d := doerFunc(func(context.Context, *Request) (*Response, error) {
			cancel()
			return nil, errors.New("connection reset")
		})
		_, err := collectIDs(t, Records(ctx, d, Request{Path: "/"}, Offset("limit", "offset", 10)))
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "connection reset")
	})
}

type doerFunc func(context.Context, *Request) (*Response, error)

func (f doerFunc) Do(ctx context.Context, req *Request) (*Response, error) { return f(ctx, req) }

func TestDoerErrorYieldedOnceAndEnds(t *testing.T) {
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("offset") == "10" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, pgItems(1, 11))
	})
	errs := 0
	n := 0
	for _, err := range Records(t.Context(), api.doer(), Request{Path: "/"}, Offset("limit", "offset", 10)) {
		if err != nil {
			errs++
			assert.Contains(t, err.Error(), "fetching page 2 (offset=10)")
			assert.Contains(t, err.Error(), "HTTP 500")
			continue
		}
		n++
	}
	assert.Equal(t, 1, errs)
	assert.Equal(t, 10, n)
	assert.Len(t, api.requests(), 2)
}

func TestBadPages(t *testing.T) {
	for _, tc := range []struct {
		name, page2, path, want string
	}{
		{"non-array at path", `{"items":{"id":1}}`, "items", `page 2 from http://HOST/?offset=10 has an object at records path "items", not an array`},
		{"string at path", `{"items":"none"}`, "items", `has a string at records path "items"`},
		{"body not an array", `{"items":[]}`, "", `page 2 from http://HOST/?offset=10 has an object at records path ""`},
		{"missing path", `{"data":[]}`, "items", `page 2 from http://HOST/?offset=10 has no value at records path "items"`},
		{"invalid JSON", `{"items":[{"id":1},`, "items", `page 2 from http://HOST/?offset=10: bad response: body is not valid JSON (19 bytes, starting "{\"items\":[{\"id\":1},")`},
		{"empty body", ``, "items", `body is not valid JSON (0 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("offset") == "10" {
					fmt.Fprint(w, tc.page2)
					return
				}
				if tc.path == "" {
					fmt.Fprint(w, pgItems(1, 11))
				} else {
					fmt.Fprintf(w, `{"%s":%s}`, tc.path, pgItems(1, 11))
				}
			})
			ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, Offset("", "offset", 10), WithRecordsPath(tc.path)))
			require.ErrorIs(t, err, ErrBadPage)
			assert.Contains(t, err.Error(), strings.ReplaceAll(tc.want, "HOST", strings.TrimPrefix(api.URL, "http://")))
			assert.Equal(t, strings.Contains(tc.want, "not valid JSON"), errors.Is(err, ErrBadResponse), "ErrBadResponse only for invalid JSON")
			assert.Len(t, ids, 10)
		})
	}
}

func TestEmptyPages(t *testing.T) {
	for _, body := range []string{`{"items":[]}`, `{"items":null}`} {
		t.Run(body, func(t *testing.T) {
			api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", `</?page=2>; rel="next"`)
				fmt.Fprint(w, body)
			})
			ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, LinkHeader(), WithRecordsPath("items")))
			require.NoError(t, err)
			assert.Empty(t, ids)
			assert.Len(t, api.requests(), 1, "an empty page ends the walk even with a next link")
		})
	}
	t.Run("204 No Content", func(t *testing.T) {
		api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", `</?page=2>; rel="next"`)
			w.WriteHeader(http.StatusNoContent)
		})
		ids, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, LinkHeader(), WithRecordsPath("items")))
		require.NoError(t, err)
		assert.Empty(t, ids)
		assert.Len(t, api.requests(), 1)
	})
}

func TestDoerReturningErrorStatusOrNothing(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/items?api_key=k3y&page=1")
	d := doerFunc(func(context.Context, *Request) (*Response, error) {
		return &Response{StatusCode: http.StatusNotFound, URL: u, Body: []byte(`{}`)}, nil
	})
	_, err := collectIDs(t, Records(t.Context(), d, Request{}, LinkHeader()))
	require.ErrorIs(t, err, ErrBadPage)
	assert.Contains(t, err.Error(), "page 1 from https://api.example.com/items?api_key=[REDACTED]&page=1: HTTP status 404")

	nothing := doerFunc(func(context.Context, *Request) (*Response, error) { return nil, nil })
	_, err = collectIDs(t, Records(t.Context(), nothing, Request{}, LinkHeader()))
	require.ErrorIs(t, err, ErrBadPage)
}

func TestRelativeNextWithoutResponseURL(t *testing.T) {
	d := doerFunc(func(context.Context, *Request) (*Response, error) {
		return &Response{StatusCode: 200, Header: http.Header{"Link": {`</p2>; rel=next`}}, Body: []byte(`[1]`)}, nil
	})
	_, err := collectIDs(t, Records(t.Context(), d, Request{Path: "/items"}, LinkHeader()))
	require.ErrorIs(t, err, ErrBadPage)
	assert.Contains(t, err.Error(), `cannot resolve the relative next URL "/p2"`)
}

func TestConcurrentWalksShareOnePaginator(t *testing.T) {
	api := offsetAPI(t, 35)
	p := Offset("limit", "offset", 10)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			n := 0
			for _, err := range Records(t.Context(), api.doer(), Request{Path: "/"}, p, WithRecordsPath("products")) {
				assert.NoError(t, err)
				n++
			}
			assert.Equal(t, 35, n)
		})
	}
	wg.Wait()
}

func TestNextLink(t *testing.T) {
	shopify := `<https://shop.myshopify.com/admin/api/2024-01/products.json?limit=2&page_info=abc>; rel="previous", <https://shop.myshopify.com/admin/api/2024-01/products.json?limit=2&page_info=def>; rel="next"`
	for _, tc := range []struct {
		name   string
		fields []string
		want   string
	}{
		{"simple", []string{`<https://a/x?page=2>; rel="next"`}, "https://a/x?page=2"},
		{"prev and next", []string{`<https://a/1>; rel="prev", <https://a/3>; rel="next"`}, "https://a/3"},
		{"shopify", []string{shopify}, "https://shop.myshopify.com/admin/api/2024-01/products.json?limit=2&page_info=def"},
		{"several fields", []string{`<https://a/1>; rel=prev`, `<https://a/3>; rel=next`}, "https://a/3"},
		{"unquoted", []string{`</p/2>;rel=next`}, "/p/2"},
		{"case", []string{`</p/2>; REL="NeXt"`}, "/p/2"},
		{"several rels", []string{`</p/9>; rel="last next"`}, "/p/9"},
		{"not a prefix match", []string{`</p/2>; rel="nextpage"`, `</p/3>; rel="next-archive"`}, ""},
		{"quoted comma and semicolon", []string{`</p/2>; title="a, b; <c>"; rel="next"`}, "/p/2"},
		{"comma in URL", []string{`</items?ids=1,2>; rel="prev", </items?ids=3,4>; rel="next"`}, "/items?ids=3,4"},
		{"escaped quote", []string{`</p/2>; title="say \"hi\", rel=next"; rel=next`}, "/p/2"},
		{"escaped quote hides rel", []string{`</p/2>; title="say \"hi\", rel=next"`}, ""},
		{"first rel wins", []string{`</p/1>; rel="prev"; rel="next"`}, ""},
		{"first next wins", []string{`</p/2>; rel=next, </p/3>; rel=next`}, "/p/2"},
		{"valueless param", []string{`</p/2>; crossorigin; rel=next`}, "/p/2"},
		{"whitespace", []string{"  </p/2> \t;\trel = \"next\" , "}, "/p/2"},
		{"empty elements", []string{`,, </p/2>; rel=next ,`}, "/p/2"},
		{"empty params", []string{`</p/2>;;rel=next`}, "/p/2"},
		{"no header", nil, ""},
		{"empty", []string{""}, ""},
		{"no brackets", []string{`https://a/2; rel="next"`}, ""},
		{"unclosed bracket", []string{`<https://a/2; rel="next"`}, ""},
		{"unterminated quote", []string{`</p/2>; rel="next`}, ""},
		{"trailing backslash", []string{`</p/2>; rel="next\`}, ""},
		{"garbage after target", []string{`</p/2> garbage; rel=next`}, ""},
		{"garbage param", []string{`</p/2>; =next`}, ""},
		{"kept before garbage", []string{`</p/2>; rel=next, garbage, </p/3>; rel=next`}, "/p/2"},
		{"garbage field does not spoil others", []string{`</p/1>; rel=prev, garbage`, `</p/3>; rel=next`}, "/p/3"},
		{"binary", []string{"\x00<\xff>;\x00rel=next"}, ""},
		{"only a bracket", []string{"<"}, ""},
		{"only semicolon", []string{"<a>;"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, f := range tc.fields {
				h.Add("Link", f)
			}
			assert.Equal(t, tc.want, nextLink(h))
		})
	}
}

func TestParseLinkHeader(t *testing.T) {
	h := http.Header{"Link": {`<https://a/2>; rel="next last"; Title="Page \"2\""; hreflang=de, </1>; rel=prev`}}
	links := parseLinkHeader(h)
	require.Len(t, links, 2)
	assert.Equal(t, "https://a/2", links[0].URL)
	assert.Equal(t, map[string]string{"rel": "next last", "title": `Page "2"`, "hreflang": "de"}, links[0].Params)
	assert.Equal(t, []string{"next", "last"}, links[0].rels())
	assert.True(t, links[0].hasRel("LAST"))
	assert.Equal(t, link{URL: "/1", Params: map[string]string{"rel": "prev"}}, links[1])
}

func FuzzParseLinkHeader(f *testing.F) {
	for _, s := range []string{`<a>; rel=next`, `<a>; t="x\"y"; rel="n", <b>`, `<`, `<a>;`, `"`, `<a>; rel="`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = nextLink(http.Header{"Link": {s}}) // must not panic
	})
}

// benchPages renders 100 cursor-chained pages of 100 records: page i (0-based) is requested
// with cursor=p<i> (none for the first) and names cursor p<i+1>, except the last.
func benchPages() map[string][]byte {
	pages := make(map[string][]byte, 100)
	for i := range 100 {
		next := ""
		if i < 99 {
			next = "p" + strconv.Itoa(i+1)
		}
		cursor := ""
		if i > 0 {
			cursor = "p" + strconv.Itoa(i)
		}
		pages[cursor] = []byte(fmt.Sprintf(`{"items":%s,"next":%q}`, pgItems(i*100+1, i*100+101), next))
	}
	return pages
}

const benchIDSum = 10000 * 10001 / 2

// benchCompare runs baseline and ours alternately in each iteration, so that both see the
// same machine load, and reports their times per op and ours as a multiple of the
// baseline's ("x-baseline"). ns/op is the sum of both.
func benchCompare(b *testing.B, baseline, ours func(b *testing.B)) {
	var base, mine time.Duration
	for b.Loop() {
		t0 := time.Now()
		baseline(b)
		t1 := time.Now()
		ours(b)
		base += t1.Sub(t0)
		mine += time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(base.Nanoseconds())/n, "baseline-ns/op")
	b.ReportMetric(float64(mine.Nanoseconds())/n, "records-ns/op")
	b.ReportMetric(float64(mine)/float64(base), "x-baseline")
}

// BenchmarkRecords iterates 100 pages of 100 records with Records and with a hand-written
// net/http + gjson loop against the same httptest server.
func BenchmarkRecords(b *testing.B) {
	pages := benchPages()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(pages[r.URL.Query().Get("cursor")])
	}))
	defer srv.Close()
	client := srv.Client()
	d := &testDoer{base: srv.URL, client: client}
	p := Cursor("next", "cursor")

	benchCompare(b, func(b *testing.B) {
		sum := int64(0)
		cursor := ""
		for {
			u := srv.URL + "/items"
			if cursor != "" {
				u += "?cursor=" + url.QueryEscape(cursor)
			}
			resp, err := client.Get(u)
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			gjson.GetBytes(body, "items").ForEach(func(_, rec gjson.Result) bool {
				sum += rec.Get("id").Int()
				return true
			})
			if cursor = gjson.GetBytes(body, "next").String(); cursor == "" {
				break
			}
		}
		if sum != benchIDSum {
			b.Fatalf("baseline sum %d", sum)
		}
	}, func(b *testing.B) {
		sum := int64(0)
		for rec, err := range Records(b.Context(), d, Request{Path: "/items"}, p, WithRecordsPath("items")) {
			if err != nil {
				b.Fatal(err)
			}
			sum += rec.Get("id").Int()
		}
		if sum != benchIDSum {
			b.Fatalf("sum %d", sum)
		}
	})
}

// memDoer serves pre-rendered cursor pages without a network, to isolate the iterator's own
// cost.
type memDoer map[string][]byte

func (m memDoer) Do(_ context.Context, req *Request) (*Response, error) {
	return &Response{StatusCode: http.StatusOK, Body: m[req.Query.Get("cursor")]}, nil
}

// BenchmarkRecordsInMemory is BenchmarkRecords without HTTP: Records over a Doer that
// returns ready pages, against a plain gjson loop over the same pages.
func BenchmarkRecordsInMemory(b *testing.B) {
	pages := benchPages()
	d := memDoer(pages)
	p := Cursor("next", "cursor")
	benchCompare(b, func(b *testing.B) {
		sum := int64(0)
		cursor := ""
		for {
			body := pages[cursor]
			gjson.GetBytes(body, "items").ForEach(func(_, rec gjson.Result) bool {
				sum += rec.Get("id").Int()
				return true
			})
			if cursor = gjson.GetBytes(body, "next").String(); cursor == "" {
				break
			}
		}
		if sum != benchIDSum {
			b.Fatalf("baseline sum %d", sum)
		}
	}, func(b *testing.B) {
		sum := int64(0)
		for rec, err := range Records(b.Context(), d, Request{Path: "/items"}, p, WithRecordsPath("items")) {
			if err != nil {
				b.Fatal(err)
			}
			sum += rec.Get("id").Int()
		}
		if sum != benchIDSum {
			b.Fatalf("sum %d", sum)
		}
	})
}

// TestRecordsThroughClient paginates through the real Client: Shopify-style Link headers,
// an API key in the query (added by the Client, absent from the next links), then a
// failing page whose *Error must come through.
func TestRecordsThroughClient(t *testing.T) {
	shop := shopifyAPI(t, false)
	var failPage2 atomic.Bool
	api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("api_key") != "k3y" {
			http.Error(w, `{"errors":"no key"}`, http.StatusUnauthorized)
			return
		}
		if failPage2.Load() && r.URL.Query().Get("page_info") != "" {
			http.Error(w, `{"errors":"Not Found"}`, http.StatusNotFound)
			return
		}
		shop.Config.Handler.ServeHTTP(w, r)
	})
	client, err := New(api.URL+"/admin/api/2024-01", WithAuth(APIKeyQuery("api_key", "k3y")), WithRetries(0))
	require.NoError(t, err)
	req := Request{Path: "products.json", Query: url.Values{"limit": {"3"}}}

	ids, err := collectIDs(t, Records(t.Context(), client, req, LinkHeader(), WithRecordsPath("products")))
	require.NoError(t, err)
	assert.Equal(t, seqIDs(1, 8), ids)
	assert.Equal(t, []string{
		"/admin/api/2024-01/products.json?api_key=k3y&limit=3",
		"/admin/api/2024-01/products.json?api_key=k3y&limit=3&page_info=pi3",
		"/admin/api/2024-01/products.json?api_key=k3y&limit=3&page_info=pi6",
	}, api.requests())

	failPage2.Store(true)
	ids, err = collectIDs(t, Records(t.Context(), client, req, LinkHeader(), WithRecordsPath("products")))
	require.ErrorIs(t, err, ErrNotFound)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusNotFound, e.Status)
	assert.Contains(t, err.Error(), `fetching page 2 (URL `)
	assert.NotContains(t, err.Error(), "k3y")
	assert.Equal(t, seqIDs(1, 4), ids)
}
