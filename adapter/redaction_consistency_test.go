package adapter

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/synclog"
)

// Issue 9, defect 9: error texts over-redacted and disagreed. Only parameters known to be
// secret are redacted, with one marker, in the adapter error, the pagination error prefix
// and the audit entry alike.
func TestErrorTextsRedactOnlySecretParameters(t *testing.T) {
	const key = "K3y-long-secret-value"
	srv := serve(t, &scripted{statuses: []int{500}})
	ring := synclog.NewRing(10)
	c, _ := newClient(t, srv.URL, WithRecorder(ring), WithRetries(0), WithAuth(APIKeyQuery("api_key", key)))
	req := Request{Path: "/products.json", Query: url.Values{"limit": {"250"}, "status": {"any"}}}
	var err error
	for _, e := range Records(context.Background(), c, req, LinkHeader()) {
		err = e
	}
	require.Error(t, err)
	msg := err.Error()
	assert.NotContains(t, msg, key)
	assert.Equal(t, 2, strings.Count(msg, "limit=250"), "pagination prefix and adapter part both keep limit=250: %s", msg)
	assert.Equal(t, 2, strings.Count(msg, "status=any"), msg)
	assert.Contains(t, msg, "api_key=[REDACTED]", msg)
	assert.NotContains(t, msg, "=REDACTED", msg)
	var ae *Error
	require.True(t, errors.As(err, &ae))
	entries := ringEntries(ring, synclog.Filter{})
	require.Len(t, entries, 1)
	assert.Equal(t, entries[0].URL, ae.URL, "the audit entry and the error show the same URL")
	assert.Contains(t, ae.URL, "limit=250")
	assert.Contains(t, ae.URL, "api_key=[REDACTED]")

	// A secret parameter of the request itself is redacted in the pagination prefix with
	// the same marker, even when the Doer is not a *Client.
	req.Query.Set("access_token", "tok-in-the-query-123")
	var doer DoerFunc = func(ctx context.Context, r *Request) (*Response, error) {
		return nil, errors.New("down")
	}
	for _, e := range Records(context.Background(), doer, req, LinkHeader()) {
		err = e
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "access_token=[REDACTED]")
	assert.Contains(t, err.Error(), "limit=250")
	assert.NotContains(t, err.Error(), "tok-in-the-query-123")
}

// DoerFunc adapts a function to Doer, for tests.
type DoerFunc func(ctx context.Context, r *Request) (*Response, error)

func (f DoerFunc) Do(ctx context.Context, r *Request) (*Response, error) { return f(ctx, r) }

func TestShortSecretDoesNotEatWords(t *testing.T) {
	srv := serve(t, &scripted{statuses: []int{401}, body: `{"error":"wrong password","token":"wrong"}`})
	c, _ := newClient(t, srv.URL, WithAuth(BasicAuth("me", "wrong")), WithRetries(0))
	_, err := c.Do(context.Background(), &Request{Path: "/x", Query: url.Values{"note": {"wrong"}}})
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "wrong password", msg)
	assert.NotContains(t, msg, `"wrong"`, msg)
	assert.Contains(t, msg, "note=[REDACTED]", "a short secret is still redacted as a whole value: %s", msg)
	_ = http.StatusOK
}
