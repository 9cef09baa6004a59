package adapter

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/connkit/connkit/synclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The response-header cache must never serve a redaction made before a secret became
// known, nor follow changes a caller makes to the Response's header map.
func TestResponseHeaderCacheFollowsSecretsAndIgnoresCallerChanges(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", "session "+r.URL.Query().Get("e"))
		io.WriteString(w, `{}`)
	}))
	ring := synclog.NewRing(10)
	c, _ := newClient(t, srv.URL, WithRecorder(ring))
	get := func(e string) *Response {
		t.Helper()
		resp, err := c.Do(context.Background(), &Request{Path: "x", Query: url.Values{"e": {e}}})
		require.NoError(t, err)
		return resp
	}
	last := func() synclog.Entry {
		t.Helper()
		es := ringEntries(ring, synclog.Filter{})
		require.NotEmpty(t, es)
		return es[0] // newest first
	}
	// Twice, so the second is served from the cache.
	// A caller changing its Response's header does not change what later entries show.
	resp := get(token)
	resp.Header.Set("X-Echo", "session v2")
	get("v2")
	assert.Equal(t, "session v2", last().ResponseHeader.Get("X-Echo"))

	get(token)
	get(token)
	assert.Equal(t, "session "+token, last().ResponseHeader.Get("X-Echo"), "not a secret yet")

	// Once the value is a secret (as a fetched OAuth2 token becomes one), the next entry
	// is redacted although the response header is the same as the cached one.
	c.addSecrets(token)
	get(token)
	got := last().ResponseHeader.Get("X-Echo")
	assert.NotContains(t, got, token)
	assert.Contains(t, got, synclog.Redacted)
}
