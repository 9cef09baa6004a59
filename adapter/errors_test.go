package adapter

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusSentinels(t *testing.T) {
	all := []error{ErrUnauthorized, ErrNotFound, ErrTimeout, ErrRateLimited, ErrServer, ErrClientError, ErrBadResponse, ErrResponseTooLarge, ErrInvalidRequest, ErrTransport}
	for status, want := range map[int][]error{
		400: {ErrClientError},
		401: {ErrUnauthorized},
		403: {ErrUnauthorized},
		404: {ErrNotFound},
		405: {ErrClientError},
		408: {ErrTimeout},
		409: {ErrClientError},
		422: {ErrClientError},
		429: {ErrRateLimited},
		500: {ErrServer},
		501: {ErrServer},
		503: {ErrServer},
	} {
		s := &scripted{statuses: []int{status}, header: http.Header{"X-Shopify-Request-Id": {"req-9"}}, body: `{"errors":"nope"}`}
		srv := serve(t, s)
		c, _ := newClient(t, srv.URL, WithRetries(0))
		resp, err := c.Do(context.Background(), &Request{Path: "things/1", Operation: "import thing"})
		require.Error(t, err, status)
		for _, sentinel := range all {
			assert.Equal(t, contains(want, sentinel), errors.Is(err, sentinel), "status %d vs %v", status, sentinel)
		}
		assert.NotErrorIs(t, err, context.Canceled)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, status, e.Status)
		assert.Equal(t, "import thing", e.Op)
		assert.Equal(t, http.MethodGet, e.Method)
		assert.Equal(t, srv.URL+"/things/1", e.URL)
		assert.Equal(t, "req-9", e.RequestID)
		assert.Equal(t, `{"errors":"nope"}`, e.Body)
		assert.Equal(t, 1, e.Attempts)
		assert.True(t, strings.HasPrefix(err.Error(), "adapter: import thing: GET "+srv.URL+"/things/1: "+strconv.Itoa(status)), err.Error())
		assert.Contains(t, err.Error(), `(request id req-9)`)
		assert.Contains(t, err.Error(), `response: {"errors":"nope"}`)
		require.NotNil(t, resp)
		assert.Equal(t, `{"errors":"nope"}`, string(resp.Body))
	}
}

func contains(errs []error, target error) bool {
	for _, e := range errs {
		if e == target {
			return true
		}
	}
	return false
}

func TestErrorBodyExcerptIsBoundedAndRedacted(t *testing.T) {
	long := `{"password":"hunter22","msg":"` + strings.Repeat("x", 2000) + `"}`
	s := &scripted{statuses: []int{400}, body: long}
	srv := serve(t, s)
	c, _ := newClient(t, srv.URL)
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.NotContains(t, e.Body, "hunter22")
	assert.Contains(t, e.Body, "[REDACTED]")
	assert.Less(t, len(e.Body), bodyExcerptLimit+64)
	assert.Less(t, len(err.Error()), 600)
}

func TestRequestIDHeaders(t *testing.T) {
	for _, h := range []string{"X-Request-Id", "X-Request-ID", "x-amzn-requestid", "X-Shopify-Request-Id"} {
		hd := http.Header{}
		hd.Set(h, "id-1")
		assert.Equal(t, "id-1", requestID(hd), h)
	}
	assert.Equal(t, "", requestID(http.Header{}))
}

func TestTransportErrorIsTyped(t *testing.T) {
	c, _ := newClient(t, "http://"+closedAddr(t), WithRetries(0))
	resp, err := c.Do(context.Background(), &Request{Path: "x?api_key=supersecret"})
	assert.Nil(t, resp)
	require.ErrorIs(t, err, ErrTransport)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 0, e.Status)
	assert.NotContains(t, err.Error(), "supersecret", "url.Error text with the raw URL must not leak")
	assert.Contains(t, err.Error(), "api_key=[REDACTED]")
}

func TestErrorFormatting(t *testing.T) {
	e := &Error{Method: "GET", URL: "https://api.example.com/products?page_info=[REDACTED]", Status: 503, RequestID: "abc", Attempts: 4, kind: ErrServer}
	assert.Equal(t, "adapter: GET https://api.example.com/products?page_info=[REDACTED]: 503 Service Unavailable after 4 attempts (request id abc): server error", e.Error())
	e = &Error{Op: "export order", Method: "POST", URL: "https://x/orders", Attempts: 1, kind: ErrTransport, Err: errors.New("connection reset")}
	assert.Equal(t, "adapter: export order: POST https://x/orders: transport error: connection reset", e.Error())
	assert.False(t, e.Is(nil))
}
