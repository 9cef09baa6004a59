package adapter

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/synclog"
)

// closeCounter is a response body that counts Close calls.
type closeCounter struct {
	io.Reader
	closed *atomic.Int32
}

func (c closeCounter) Close() error { c.closed.Add(1); return nil }

// TestBodyClosedWhenTransportReturnsResponseAndError: a base RoundTripper that returns a
// response together with an error (against the contract) must not leak the body and its
// connection.
func TestBodyClosedWhenTransportReturnsResponseAndError(t *testing.T) {
	var closed atomic.Int32
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Request: req,
			Body: closeCounter{Reader: strings.NewReader("x"), closed: &closed}}, errors.New("broken transport")
	})
	c, _ := newClient(t, "http://api.test", WithBaseTransport(rt), WithRetries(2))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrTransport)
	assert.Equal(t, int32(3), closed.Load(), "one body per attempt, each closed")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestErrorMessageCutKeepsUTF8: the response excerpt in Error() is cut on a character
// boundary.
func TestErrorMessageCutKeepsUTF8(t *testing.T) {
	for pad := range 4 {
		e := &Error{Method: "GET", URL: "https://api.test/x", Status: 422, kind: ErrClientError,
			Body: strings.Repeat("a", msgBodyLimit-pad) + strings.Repeat("é€😀", 20)}
		msg := e.Error()
		assert.True(t, utf8.ValidString(msg), "pad %d: %q", pad, msg[len(msg)-12:])
		assert.True(t, strings.HasSuffix(msg, "…"))
	}
}

// TestNewErrorsDoNotQuoteSecrets: a base URL New refuses is quoted without its query
// values, its userinfo password and the configured secrets.
func TestNewErrorsDoNotQuoteSecrets(t *testing.T) {
	for _, tc := range []struct {
		base string
		opts []Option
	}{
		{"https://api.test/v1?api_key=SECRET-1234", nil},
		{"https://api.test/v1#access_token=SECRET-1234", nil},
		{"ftp://bob:SECRET-1234@api.test/", nil},
		{"https://bob:SECRET-1234@api.test/%zz", nil},
		{"https://api.test/SECRET-1234/x?x=1", []Option{WithRedactor(synclog.NewRedactor(synclog.WithSecrets("SECRET-1234")))}},
		{"https://api.test/v1?key=SECRET-1234", []Option{WithRetries(-1)}},
	} {
		_, err := New(tc.base, tc.opts...)
		require.Error(t, err, tc.base)
		assert.NotContains(t, err.Error(), "SECRET-1234", tc.base)
		assert.Contains(t, err.Error(), "api.test", "the error still says which URL")
	}
}

// TestPaginationErrorsDoNotQuoteSecrets: an unparsable next link (Facebook-style, with
// the access token in it) and an invalid page body are quoted redacted.
func TestPaginationErrorsDoNotQuoteSecrets(t *testing.T) {
	t.Run("next link", func(t *testing.T) {
		api := newPGAPI(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"items":[{"id":1}],"next":"/x/%zz?access_token=SECRET-1234&until=1"}`)
		})
		_, err := collectIDs(t, Records(t.Context(), api.doer(), Request{Path: "/"}, NextURL("next"), WithRecordsPath("items")))
		require.ErrorIs(t, err, ErrBadPage)
		assert.Contains(t, err.Error(), "does not parse")
		assert.NotContains(t, err.Error(), "SECRET-1234")
	})
	t.Run("invalid body", func(t *testing.T) {
		d := doerFunc(func(context.Context, *Request) (*Response, error) {
			return &Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}},
				Body: []byte("access_token=SECRET-1234&expires=3600"), URL: &url.URL{Scheme: "https", Host: "api.test"}}, nil
		})
		_, err := collectIDs(t, Records(t.Context(), d, Request{Path: "/"}, Offset("limit", "offset", 10)))
		require.ErrorIs(t, err, ErrBadResponse)
		assert.Contains(t, err.Error(), "access_token=[REDACTED]")
		assert.NotContains(t, err.Error(), "SECRET-1234")
	})
}
