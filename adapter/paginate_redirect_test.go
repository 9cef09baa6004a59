package adapter

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// A first page redirected to another host, whose next link stays on that host: following
// it would send the client's credentials there (net/http drops them only on the redirect
// itself). The walk refuses the link: next links must stay on the host the page was asked
// at, not the one that answered after a redirect.
func TestNextLinkAfterRedirectToAnotherHost(t *testing.T) {
	var withToken atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			withToken.Add(1)
		}
		if r.URL.Query().Get("p") == "" {
			w.Header().Set("Link", `</items?p=1>; rel="next"`)
		}
		fmt.Fprint(w, `[{"id":1}]`)
	}))
	defer other.Close()
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The same server under another host name: 127.0.0.1 → localhost.
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/items", http.StatusFound)
	}))
	defer home.Close()
	c, err := New(home.URL, WithAuth(BearerAuth("very-secret-token")), WithRetries(0))
	require.NoError(t, err)
	var got int
	var walkErr error
	for _, err := range Records(t.Context(), c, Request{Path: "/items"}, LinkHeader()) {
		if err != nil {
			walkErr = err
			break
		}
		got++
	}
	require.ErrorIs(t, walkErr, errForeignNextURL)
	require.Equal(t, 1, got, "the first page's records, then the refusal")
	require.Zero(t, withToken.Load(), "the token never reached the other host")
	require.NotContains(t, walkErr.Error(), "very-secret-token")
}
