package adapter

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func TestResolveJoinsBaseURL(t *testing.T) {
	for _, base := range []string{"https://api.example.com/v1", "https://api.example.com/v1/", "https://api.example.com/v1//"} {
		c, err := New(base)
		require.NoError(t, err)
		for path, want := range map[string]string{
			"products":                  "https://api.example.com/v1/products",
			"/products":                 "https://api.example.com/v1/products",
			"//products/":               "https://api.example.com/v1/products/",
			"products/7/lines?limit=5":  "https://api.example.com/v1/products/7/lines?limit=5",
			"":                          "https://api.example.com/v1",
			"https://other.example/x?a": "https://other.example/x?a",
			"HTTP://other.example/y":    "HTTP://other.example/y",
		} {
			got, err := c.resolve(path, nil)
			require.NoError(t, err)
			assert.Equal(t, want, got, "base %q path %q", base, path)
		}
		got, err := c.resolve("products?limit=5", url.Values{"page": {"2"}})
		require.NoError(t, err)
		assert.Equal(t, "https://api.example.com/v1/products?limit=5&page=2", got)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		base string
		opts []Option
		want string
	}{
		{"ftp://x", nil, "http:// or https://"},
		{"https://", nil, "no host"},
		{"https://x/?key=1", nil, "query"},
		{"https://x/%zz", nil, "does not parse"},
		{"https://x", []Option{WithTimeouts(-1, 0)}, "WithTimeouts"},
		{"https://x", []Option{WithTimeouts(0, -1)}, "WithTimeouts"},
		{"https://x", []Option{WithRetries(-1)}, "WithRetries"},
		{"https://x", []Option{WithRetryWait(time.Second, time.Millisecond)}, "WithRetryWait"},
		{"https://x", []Option{WithRetryWait(time.Minute, 0)}, "exceeds the maximum"},
		{"https://x", []Option{WithRetryWait(-1, 0)}, "negative"},
		{"https://x", []Option{WithRateLimit(0, 1)}, "WithRateLimit"},
		{"https://x", []Option{WithMaxResponseSize(0)}, "WithMaxResponseSize"},
		{"https://x", []Option{WithIdempotencyKeys("X Idem", false)}, "WithIdempotencyKeys"},
	} {
		_, err := New(tc.base, tc.opts...)
		require.Error(t, err, tc.base)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestRetryWaitZeroKeepsDefault(t *testing.T) {
	c, err := New("https://x", WithRetryWait(0, 5*time.Second))
	require.NoError(t, err)
	assert.Equal(t, defaultRetryWaitMin, c.cfg.waitMin)
	assert.Equal(t, 5*time.Second, c.cfg.waitMax)
	c, err = New("https://x", WithRetryWait(2*time.Second, 0))
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, c.cfg.waitMin)
	assert.Equal(t, defaultRetryWaitMax, c.cfg.waitMax)
}

func TestRelativePathWithoutBaseURL(t *testing.T) {
	c, _ := newClient(t, "")
	_, err := c.Do(context.Background(), &Request{Path: "products"})
	require.ErrorIs(t, err, ErrInvalidRequest)
	assert.Contains(t, err.Error(), "no base URL")
}

func TestGetSendsHeadersAndQuery(t *testing.T) {
	var got *http.Request
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":7,"name":"Lamp","tags":["a","b"]}`)
	}))
	c, _ := newClient(t, srv.URL+"/v1/", WithDefaultHeader("X-Static", "s"), WithDefaultHeader("X-Over", "client"))
	resp, err := c.Do(context.Background(), &Request{Path: "/products/7", Query: url.Values{"fields": {"id,name", "tags"}}, Header: http.Header{"X-Over": {"request"}}})
	require.NoError(t, err)
	assert.Equal(t, "/v1/products/7", got.URL.Path)
	assert.Equal(t, []string{"id,name", "tags"}, got.URL.Query()["fields"])
	assert.Equal(t, "s", got.Header.Get("X-Static"))
	assert.Equal(t, "request", got.Header.Get("X-Over"))
	assert.Equal(t, defaultUserAgent, got.Header.Get("User-Agent"))
	assert.Equal(t, "application/json", got.Header.Get("Accept"))

	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 1, resp.Attempts)
	assert.Equal(t, http.MethodGet, resp.Method)
	assert.Equal(t, "Lamp", gjson.ParseBytes(resp.Body).Get("name").String())
	assert.Equal(t, int64(2), gjson.ParseBytes(resp.Body).Get("tags.#").Int())
	require.NoError(t, resp.validJSON())
}

func TestBodies(t *testing.T) {
	type seen struct {
		method, ctype, body string
	}
	ch := make(chan seen, 1)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.Header.Get("Content-Type"), string(b)}
		w.WriteHeader(201)
	}))
	c, _ := newClient(t, srv.URL)
	ctx := context.Background()

	_, err := c.Do(ctx, &Request{Method: http.MethodPost, Path: "x", Body: map[string]any{"name": "Lamp"}})
	require.NoError(t, err)
	assert.Equal(t, seen{"POST", "application/json", `{"name":"Lamp"}`}, <-ch)

	_, err = c.Do(ctx, &Request{Method: http.MethodPut, Path: "x", Body: json.RawMessage(`{"a":1}`)})
	require.NoError(t, err)
	assert.Equal(t, seen{"PUT", "application/json", `{"a":1}`}, <-ch)

	_, err = c.Do(ctx, &Request{Method: http.MethodPatch, Path: "x", Body: []byte("raw"), Header: http.Header{"Content-Type": {"text/plain"}}})
	require.NoError(t, err)
	assert.Equal(t, seen{"PATCH", "text/plain", "raw"}, <-ch)

	_, err = c.Do(ctx, &Request{Method: http.MethodPost, Path: "x", Body: "a=b", Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
	require.NoError(t, err)
	assert.Equal(t, seen{"POST", "application/x-www-form-urlencoded", "a=b"}, <-ch)

	_, err = c.Do(ctx, &Request{Method: http.MethodDelete, Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, seen{"DELETE", "", ""}, <-ch)

	resp, err := c.Do(ctx, &Request{Method: "OPTIONS", Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, "OPTIONS", (<-ch).method)
}

func TestBadBodiesAreRejectedBeforeSending(t *testing.T) {
	s := &scripted{statuses: []int{200}}
	srv := serve(t, s)
	c, _ := newClient(t, srv.URL)
	ctx := context.Background()

	_, err := c.Do(ctx, &Request{Method: http.MethodPost, Path: "x", Body: json.RawMessage(`{broken`)})
	require.ErrorIs(t, err, ErrInvalidRequest)
	assert.Contains(t, err.Error(), "not valid JSON")

	_, err = c.Do(ctx, &Request{Method: http.MethodPost, Path: "x", Body: map[string]any{"f": func() {}}})
	require.ErrorIs(t, err, ErrInvalidRequest)
	assert.Contains(t, err.Error(), "encoding the map[string]interface {} body as JSON")

	_, err = c.Do(ctx, &Request{Method: "BAD METHOD", Path: "x"})
	require.ErrorIs(t, err, ErrInvalidRequest)

	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 0, e.Attempts)
	assert.Equal(t, int32(0), s.hits.Load(), "nothing may be sent")
}

func TestResponseTooLarge(t *testing.T) {
	big := strings.Repeat("x", 4096)
	for _, chunked := range []bool{false, true} {
		s := &scripted{statuses: []int{200}}
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.hits.Add(1)
			if chunked {
				io.WriteString(w, big[:100])
				w.(http.Flusher).Flush()
				io.WriteString(w, big[100:])
				return
			}
			w.Header().Set("Content-Length", "4096")
			io.WriteString(w, big)
		}))
		c, _ := newClient(t, srv.URL, WithMaxResponseSize(1024))
		resp, err := c.Do(context.Background(), &Request{Path: "big"})
		require.ErrorIs(t, err, ErrResponseTooLarge, "chunked=%v", chunked)
		assert.Nil(t, resp)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 200, e.Status)
		assert.Equal(t, 1, e.Attempts, "a too-large body is not retried")
		assert.Contains(t, err.Error(), "limit of 1024 bytes")
		assert.Equal(t, int32(1), s.hits.Load())

		// Exactly at the limit is fine.
		c2, _ := newClient(t, srv.URL, WithMaxResponseSize(4096))
		resp, err = c2.Do(context.Background(), &Request{Path: "big"})
		require.NoError(t, err)
		assert.Len(t, resp.Body, 4096)
	}
}

func TestInvalidJSONIsBadResponse(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/empty" {
			return
		}
		io.WriteString(w, `{"id": 7,`)
	}))
	c, _ := newClient(t, srv.URL)
	resp, err := c.Do(context.Background(), &Request{Path: "broken?token=abc", Operation: "import product"})
	require.NoError(t, err, "the call itself succeeds; JSON is checked on demand")
	require.ErrorIs(t, resp.validJSON(), ErrBadResponse)
	var e *Error
	require.ErrorAs(t, resp.validJSON(), &e)
	assert.Equal(t, 200, e.Status)
	assert.Equal(t, "import product", e.Op)
	assert.Equal(t, `{"id": 7,`, e.Body)
	assert.Equal(t, "adapter: import product: GET "+srv.URL+"/broken?token=[REDACTED]: 200 OK: bad response: body is not valid JSON: the body (Content-Type \"application/json\") is not valid JSON", resp.validJSON().Error())
	assert.NotContains(t, resp.validJSON().Error(), "abc")

	// A Response built by a test double (no client) still gives a typed error.
	bare := &Response{StatusCode: 200, Body: []byte("<html>")}
	require.ErrorIs(t, bare.validJSON(), ErrBadResponse)
	require.ErrorAs(t, bare.validJSON(), &e)

	resp, err = c.Do(context.Background(), &Request{Path: "empty"})
	require.NoError(t, err)
	require.ErrorIs(t, resp.validJSON(), ErrBadResponse)
	assert.Contains(t, resp.validJSON().Error(), "the body is empty")
}

func TestNewIdempotencyKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := newIdempotencyKey()
		require.Len(t, k, 36)
		assert.Equal(t, byte('4'), k[14], k)
		assert.Contains(t, "89ab", string(k[19]), k)
		assert.False(t, seen[k])
		seen[k] = true
	}
}

func TestErrorURLRedactsOnlySecretParameters(t *testing.T) {
	u, _ := url.Parse("https://user:pw@api.example.com/a%20b/products?page_info=xyz&flag&api_key=k-123456789&limit=250")
	assert.Equal(t, "https://user@api.example.com/a%20b/products?page_info=xyz&flag&api_key=[REDACTED]&limit=250",
		pageRedactURL(defaultRedactor(), u))
}

func TestDoWithNilRequestAndContext(t *testing.T) {
	s := &scripted{statuses: []int{200}}
	srv := serve(t, s)
	c, _ := newClient(t, srv.URL)
	//lint:ignore SA1012 the nil context is the point of the test
	resp, err := c.Do(nil, nil) //nolint:staticcheck
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
}

func TestHeadNoContentAndRedirect(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "1234")
			w.WriteHeader(200)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/old":
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
		case "/new":
			io.WriteString(w, `{"moved":true}`)
		}
	}))
	c, _ := newClient(t, srv.URL)
	ctx := context.Background()
	resp, err := c.Do(ctx, &Request{Method: http.MethodHead, Path: "head"})
	require.NoError(t, err)
	assert.Empty(t, resp.Body)
	resp, err = c.Do(ctx, &Request{Method: http.MethodDelete, Path: "empty"})
	require.NoError(t, err)
	assert.Equal(t, 204, resp.StatusCode)
	assert.Empty(t, resp.Body)
	resp, err = c.Do(ctx, &Request{Path: "old"})
	require.NoError(t, err)
	assert.True(t, gjson.ParseBytes(resp.Body).Get("moved").Bool())
	assert.Equal(t, "/new", resp.URL.Path)
	assert.Equal(t, 1, resp.Attempts, "a redirect is not a retry")
}

func TestIdleConnectionsPooled(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, _ := newClient(t, srv.URL)
	for range 3 {
		_, err := c.Do(context.Background(), &Request{Path: "x"})
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), conns.Load(), "keep-alive reuses the connection")
	c.transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err, "still usable")
	assert.Equal(t, int32(2), conns.Load(), "the idle connection was closed")

	// A failed call does not drop the pool (retryablehttp would).
	_, _ = c.Do(context.Background(), &Request{Path: "http://" + closedAddr(t) + "/x"})
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, int32(2), conns.Load())
}

func TestNotRetriedPOSTIsLogged(t *testing.T) {
	s := &scripted{statuses: []int{503, 200}}
	srv := serve(t, s)
	var msgs []string
	h := &captureHandler{fn: func(msg string, attrs map[string]string) { msgs = append(msgs, msg+": "+attrs["reason"]) }}
	c, _ := newClient(t, srv.URL, WithLogger(newSlog(h)))
	_, err := c.Do(context.Background(), &Request{Method: http.MethodPost, Path: "orders", Body: "{}"})
	require.ErrorIs(t, err, ErrServer)
	assert.Equal(t, []string{"adapter: not retrying a non-idempotent request without an idempotency key: status 503"}, msgs)
}

// fakeRT is a test double for WithBaseTransport.
type fakeRT func(*http.Request) (*http.Response, error)

func (f fakeRT) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBaseTransportTestDoubleAndMethodCase(t *testing.T) {
	var methods []string
	rt := fakeRT(func(r *http.Request) (*http.Response, error) {
		methods = append(methods, r.Method)
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"n":1}`)), ContentLength: -1, Request: r}, nil
	})
	c, _ := newClient(t, "https://api.example.com", WithBaseTransport(rt))
	resp, err := c.Do(context.Background(), &Request{Method: "post", Path: "x", IdempotencyKey: "k"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), gjson.ParseBytes(resp.Body).Get("n").Int())
	_, err = c.Do(context.Background(), &Request{Method: "PURGE", Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, []string{"POST", "PURGE"}, methods)
}

func TestOptionsCoverage(t *testing.T) {
	s := &scripted{statuses: []int{200}, seen: make(chan *http.Request, 2)}
	srv := serve(t, s)
	c, _ := newClient(t, srv.URL, WithDefaultHeader("User-Agent", "shop-sync/2"))
	_, err := c.Do(context.Background(), &Request{Path: "x", Query: url.Values{"a": {"1", "2"}, "b": {"3"}}})
	require.NoError(t, err)
	r := <-s.seen
	assert.Equal(t, "shop-sync/2", r.Header.Get("User-Agent"))
	assert.Equal(t, "a=1&a=2&b=3", r.URL.RawQuery)

	_, err = New("http://x", WithMaxRetryAfter(-time.Second))
	require.ErrorContains(t, err, "WithMaxRetryAfter")
	var tl error = &tooLargeError{limit: 1}
	assert.ErrorIs(t, tl, ErrResponseTooLarge)
}

func TestRealSleeper(t *testing.T) {
	require.NoError(t, sleepCtx(context.Background(), time.Millisecond))
	require.NoError(t, sleepCtx(context.Background(), 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, sleepCtx(ctx, time.Hour), context.Canceled)
	require.ErrorIs(t, sleepCtx(ctx, 0), context.Canceled)
}

// A plain path is joined to the parsed base URL without parsing the result: the URL must
// be exactly the one parsing gives.
func TestFastURLMatchesParse(t *testing.T) {
	for _, base := range []string{"http://api.test", "https://api.test/v1/", "http://127.0.0.1:8080/a/b", "http://[::1]:9/x"} {
		c, err := New(base)
		require.NoError(t, err)
		require.NotNil(t, c.baseURL, base)
		for _, path := range []string{"products/42.json", "/products", "a//b/", "x.y-z_~", "//lead", "dots/../x", "UPPER/9"} {
			for _, q := range []url.Values{nil, {"limit": {"250"}, "page info": {"a&b"}}} {
				raw, err := c.resolve(path, q)
				require.NoError(t, err)
				want, err := url.Parse(raw)
				require.NoError(t, err)
				got := c.fastURL(new(url.URL), path, raw)
				require.NotNil(t, got, "%s + %s", base, path)
				assert.Equal(t, want, got, "%s + %s", base, path)
				assert.Equal(t, raw, got.String())
			}
		}
		for _, path := range []string{"", "a b", "a%20b", "a?x=1", "a#f", "é", "http://other.test/x", "a;b", "a:b"} {
			raw, _ := c.resolve(path, nil)
			assert.Nil(t, c.fastURL(new(url.URL), path, raw), "%q must be parsed", path)
		}
	}
	c, err := New("http://api.test/a%2Fb")
	require.NoError(t, err)
	assert.Nil(t, c.baseURL, "an escaped base path is parsed each time")
}
