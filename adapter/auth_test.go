package adapter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connkit/connkit/synclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func echoAuthServer(t *testing.T, check func(r *http.Request) bool) string {
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !check(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte("{}"))
	})).URL
}

func TestBasicAuth(t *testing.T) {
	url := echoAuthServer(t, func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		return ok && u == "shop" && p == "pa:ss"
	})
	c, _ := newClient(t, url, WithAuth(BasicAuth("shop", "pa:ss")))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)

	bad, _ := newClient(t, url, WithAuth(BasicAuth("shop", "wrong")))
	_, err = bad.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrUnauthorized)
}

func TestBearerAuth(t *testing.T) {
	url := echoAuthServer(t, func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer tok-123" })
	c, _ := newClient(t, url, WithAuth(BearerAuth("tok-123")))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
}

func TestAPIKeyHeaderAndQuery(t *testing.T) {
	url := echoAuthServer(t, func(r *http.Request) bool { return r.Header.Get("X-API-Key") == "key-1" })
	c, _ := newClient(t, url, WithAuth(APIKeyHeader("X-API-Key", "key-1")))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)

	var raw atomic.Value
	url = echoAuthServer(t, func(r *http.Request) bool {
		raw.Store(r.URL.RawQuery)
		return r.URL.Query().Get("api_key") == "key-2" && len(r.URL.Query()["api_key"]) == 1
	})
	c, _ = newClient(t, url, WithAuth(APIKeyQuery("api_key", "key-2")))
	resp, err := c.Do(context.Background(), &Request{Path: "x", Query: neturl.Values{"page": {"3"}}})
	require.NoError(t, err)
	assert.Equal(t, "api_key=key-2&page=3", raw.Load())
	assert.Equal(t, "key-2", resp.URL.Query().Get("api_key"), "Response.URL is the URL as sent")

	// Retries keep one copy of the parameter.
	s := &scripted{statuses: []int{503, 200}, seen: make(chan *http.Request, 4)}
	srv := serve(t, s)
	c, _ = newClient(t, srv.URL, WithAuth(APIKeyQuery("api_key", "key-2")))
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	<-s.seen
	assert.Equal(t, "api_key=key-2", (<-s.seen).URL.RawQuery)
}

func TestAuthFunc(t *testing.T) {
	url := echoAuthServer(t, func(r *http.Request) bool { return r.Header.Get("X-Custom") == "yes" })
	c, _ := newClient(t, url, WithAuth(authFunc(func(r *http.Request) error {
		r.Header.Set("X-Custom", "yes")
		return nil
	})))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)

	boom := errors.New("vault sealed")
	s := &scripted{statuses: []int{200}}
	srv := serve(t, s)
	c, _ = newClient(t, srv.URL, WithAuth(authFunc(func(*http.Request) error { return boom })))
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Equal(t, int32(0), s.hits.Load(), "no request without credentials")
}

func TestHMACSignatureVerifiedByServer(t *testing.T) {
	secret := []byte("hmac-secret-1")
	var verified atomic.Int32
	var hits atomic.Int32
	now := time.Unix(1_700_000_000, 0)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Ts")
		want := "sha256=" + signHMAC(secret, r.Method, r.URL.RequestURI(), ts, body)
		if r.Header.Get("X-Sig") != want || ts != strconv.FormatInt(now.Unix(), 10) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		verified.Add(1)
		if hits.Add(1) == 1 {
			w.WriteHeader(503) // the retry must be signed again
			return
		}
		w.Write([]byte("{}"))
	}))
	auth := HMACAuth(secret, HMACFormat{SignatureHeader: "X-Sig", TimestampHeader: "X-Ts", Prefix: "sha256="})
	c, _ := newClient(t, srv.URL, WithAuth(auth), WithClock(func() time.Time { return now }, nil)) // signs with the client's clock
	resp, err := c.Do(context.Background(), &Request{Method: http.MethodPut, Path: "orders/1?x=a%20b&y=2", Body: map[string]string{"status": "paid"}})
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Attempts)
	assert.Equal(t, int32(2), verified.Load())

	_, err = c.Do(context.Background(), &Request{Path: "orders"})
	require.NoError(t, err)
	assert.Equal(t, int32(3), verified.Load())
}

func TestHMACSignatureKnownVector(t *testing.T) {
	// Recomputed independently: printf 'POST\n/v1/orders?a=1\n1700000000\n{"x":1}' | openssl dgst -sha256 -hmac key
	got := signHMAC([]byte("key"), "POST", "/v1/orders?a=1", "1700000000", []byte(`{"x":1}`))
	assert.Equal(t, "b190a99d53f39b1c8c47831b84fa0e6dcb481da5644cfc8e273172e230066e45", got)
	assert.NotEqual(t, got, signHMAC([]byte("key"), "POST", "/v1/orders?a=2", "1700000000", []byte(`{"x":1}`)))

	r, _ := http.NewRequest("GET", "http://x/p", nil)
	require.NoError(t, HMACAuth([]byte("key"), HMACFormat{Base64: true}).Apply(r))
	assert.Len(t, r.Header.Get("X-Signature"), 44)
	_, err := strconv.ParseInt(r.Header.Get("X-Timestamp"), 10, 64)
	require.NoError(t, err)
	require.Error(t, HMACAuth(nil, HMACFormat{}).Apply(r), "an empty secret is refused")
}

// tokenServer is an OAuth2 token endpoint that hands out tok-1, tok-2, … and rotates
// refresh tokens rt-1 → rt-2 → ….
type tokenServer struct {
	hits     atomic.Int32
	mu       sync.Mutex
	grants   []string
	refresh  []string
	delay    time.Duration
	fail     bool
	lifetime int
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := ts.hits.Add(1)
	if ts.delay > 0 {
		time.Sleep(ts.delay)
	}
	r.ParseForm()
	ts.mu.Lock()
	ts.grants = append(ts.grants, r.Form.Get("grant_type"))
	ts.refresh = append(ts.refresh, r.Form.Get("refresh_token"))
	ts.mu.Unlock()
	if ts.fail {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	life := ts.lifetime
	if life == 0 {
		life = 3600
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d,"refresh_token":"rt-%d"}`, n, life, n+1)
}

// apiServer accepts only the listed bearer tokens.
func apiServer(t *testing.T, valid ...string) (*atomic.Int32, string) {
	var hits atomic.Int32
	ok := map[string]bool{}
	for _, v := range valid {
		ok["Bearer "+v] = true
	}
	return &hits, serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !ok[r.Header.Get("Authorization")] {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	})).URL
}

func TestOAuth2ClientCredentialsFetchedOnceAcrossGoroutines(t *testing.T) {
	ts := &tokenServer{delay: 20 * time.Millisecond}
	tokenURL := serve(t, ts).URL
	apiHits, api := apiServer(t, "tok-1")
	auth := OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "client-secret-1", TokenURL: tokenURL, Scopes: []string{"read"}})
	c, _ := newClient(t, api, WithAuth(auth))

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := c.Do(context.Background(), &Request{Path: "x"})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), ts.hits.Load(), "one token request for 50 goroutines")
	assert.Equal(t, int32(50), apiHits.Load())
	assert.Equal(t, []string{"client_credentials"}, ts.grants)
	assert.Equal(t, "[REDACTED]", c.red.String("tok-1"), "fetched tokens become secrets")
	assert.Equal(t, "[REDACTED]", c.red.String("client-secret-1"))
}

func TestOAuth2UnauthorizedRefreshesOnceAndRetries(t *testing.T) {
	ts := &tokenServer{}
	tokenURL := serve(t, ts).URL
	apiHits, api := apiServer(t, "tok-2") // the first token is rejected
	auth := OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "s", TokenURL: tokenURL})
	c, ft := newClient(t, api, WithAuth(auth), WithRetries(0))
	resp, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err, "401 → refresh → retry even with retries disabled")
	assert.Equal(t, 2, resp.Attempts)
	assert.Equal(t, int32(2), ts.hits.Load())
	assert.Equal(t, int32(2), apiHits.Load())
	assert.Empty(t, ft.Waits(), "no backoff before the refreshed retry")

	// Later calls reuse tok-2.
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, int32(2), ts.hits.Load())
}

func TestOAuth2UnauthorizedTwiceFails(t *testing.T) {
	ts := &tokenServer{}
	tokenURL := serve(t, ts).URL
	apiHits, api := apiServer(t) // rejects everything
	auth := OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "s", TokenURL: tokenURL})
	c, _ := newClient(t, api, WithAuth(auth))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrUnauthorized)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 401, e.Status)
	assert.Equal(t, 2, e.Attempts, "one refresh-and-retry, then give up")
	assert.Equal(t, int32(2), apiHits.Load())
	assert.Equal(t, int32(2), ts.hits.Load())
}

func TestOAuth2ConcurrentUnauthorizedRefreshOnce(t *testing.T) {
	ts := &tokenServer{delay: 10 * time.Millisecond}
	tokenURL := serve(t, ts).URL
	_, api := apiServer(t, "tok-2")
	auth := OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "s", TokenURL: tokenURL})
	c, _ := newClient(t, api, WithAuth(auth))
	// Everyone gets tok-1 first.
	r, _ := http.NewRequest("GET", api, nil)
	require.NoError(t, auth.Apply(r))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := c.Do(context.Background(), &Request{Path: "x"})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, int32(2), ts.hits.Load(), "tok-1 once, then one refresh for all 20 goroutines")
}

func TestOAuth2TokenEndpointFailure(t *testing.T) {
	ts := &tokenServer{fail: true}
	tokenURL := serve(t, ts).URL
	apiHits, api := apiServer(t, "tok-1")
	auth := OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "s", TokenURL: tokenURL})
	c, _ := newClient(t, api, WithAuth(auth))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Contains(t, err.Error(), "OAuth2 token request failed")
	assert.Contains(t, err.Error(), "invalid_client")
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, int32(0), apiHits.Load())
}

func TestOAuth2CallerGivesUpWhileTokenInFlight(t *testing.T) {
	ts := &tokenServer{delay: 100 * time.Millisecond}
	tokenURL := serve(t, ts).URL
	_, api := apiServer(t, "tok-1")
	auth := OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "s", TokenURL: tokenURL})
	c, _ := newClient(t, api, WithAuth(auth))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := c.Do(ctx, &Request{Path: "x"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, ErrUnauthorized)
	// The token request finished anyway and is reused.
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, int32(1), ts.hits.Load())
}

func TestOAuth2RefreshTokenRotation(t *testing.T) {
	ts := &tokenServer{}
	tokenURL := serve(t, ts).URL
	_, api := apiServer(t, "tok-1", "tok-2")
	var mu sync.Mutex
	var rotated []string
	cfg := &oauth2.Config{ClientID: "id", ClientSecret: "s", Endpoint: oauth2.Endpoint{TokenURL: tokenURL}}
	auth := OAuth2RefreshToken(cfg, &oauth2.Token{RefreshToken: "rt-0"}, func(_ context.Context, tok *oauth2.Token) error {
		mu.Lock()
		defer mu.Unlock()
		rotated = append(rotated, tok.RefreshToken)
		return nil
	})
	c, _ := newClient(t, api, WithAuth(auth))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, []string{"rt-2"}, rotated, "the new refresh token is handed over for persistence")

	// Force a refresh: the next one must use the rotated refresh token.
	r, _ := http.NewRequest("GET", api, nil)
	r.Header.Set("Authorization", "Bearer tok-1")
	ok, err := auth.(refresher).Refresh(context.Background(), r)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, []string{"rt-0", "rt-2"}, ts.refresh)
	assert.Equal(t, []string{"refresh_token", "refresh_token"}, ts.grants)
	assert.Equal(t, []string{"rt-2", "rt-3"}, rotated)
	assert.Equal(t, "[REDACTED]", c.red.String("rt-3"))
}

func TestOAuth2RefreshTokenStartsWithStoredAccessToken(t *testing.T) {
	ts := &tokenServer{}
	tokenURL := serve(t, ts).URL
	_, api := apiServer(t, "stored-access")
	cfg := &oauth2.Config{ClientID: "id", Endpoint: oauth2.Endpoint{TokenURL: tokenURL}}
	auth := OAuth2RefreshToken(cfg, &oauth2.Token{AccessToken: "stored-access", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}, nil)
	c, _ := newClient(t, api, WithAuth(auth))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, int32(0), ts.hits.Load())

	noRT := OAuth2RefreshToken(cfg, nil, nil)
	c, _ = newClient(t, api, WithAuth(noRT))
	_, err = c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Contains(t, err.Error(), "has no refresh token to start from")
}

func TestOAuth2RotationCallbackFailureIsLogged(t *testing.T) {
	ts := &tokenServer{}
	tokenURL := serve(t, ts).URL
	_, api := apiServer(t, "tok-1")
	var logged atomic.Int32
	var mu sync.Mutex
	var texts []string
	h := &captureHandler{fn: func(msg string, attrs map[string]string) {
		logged.Add(1)
		mu.Lock()
		texts = append(texts, msg+" "+attrs["error"])
		mu.Unlock()
	}}
	cfg := &oauth2.Config{ClientID: "id", Endpoint: oauth2.Endpoint{TokenURL: tokenURL}}
	auth := OAuth2RefreshToken(cfg, &oauth2.Token{RefreshToken: "rt-0"}, func(_ context.Context, tok *oauth2.Token) error {
		// The caller's error quotes both new tokens: the log line must not.
		return fmt.Errorf("disk full while saving %s / %s", tok.AccessToken, tok.RefreshToken)
	})
	c, _ := newClient(t, api, WithAuth(auth), WithLogger(newSlog(h)))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err, "the new token is still used")
	assert.Equal(t, int32(1), logged.Load())
	require.Len(t, texts, 1)
	assert.Contains(t, texts[0], "disk full while saving")
	assert.NotContains(t, texts[0], "tok-1")
	assert.NotContains(t, texts[0], "rt-2")
}

// TestOAuth2TokenRequestsAreAudited: every token request (client credentials and refresh
// token) is an audit entry, with the client secret, the refresh token sent and the tokens
// received redacted.
func TestOAuth2TokenRequestsAreAudited(t *testing.T) {
	for _, tc := range []struct {
		name  string
		auth  func(tokenURL string) Auth
		grant string
	}{
		{"client credentials, secret in header", func(u string) Auth {
			return OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "client-secret-1", TokenURL: u, AuthStyle: oauth2.AuthStyleInHeader})
		}, "grant_type=client_credentials"},
		{"client credentials, secret in body", func(u string) Auth {
			return OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "client-secret-1", TokenURL: u, AuthStyle: oauth2.AuthStyleInParams})
		}, "grant_type=client_credentials"},
		{"refresh token", func(u string) Auth {
			cfg := &oauth2.Config{ClientID: "id", ClientSecret: "client-secret-1", Endpoint: oauth2.Endpoint{TokenURL: u, AuthStyle: oauth2.AuthStyleInParams}}
			return OAuth2RefreshToken(cfg, &oauth2.Token{RefreshToken: "rt-start-0"}, nil)
		}, "grant_type=refresh_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := &tokenServer{}
			tokenURL := serve(t, ts).URL
			_, api := apiServer(t, "tok-1")
			ring := synclog.NewRing(10)
			c, _ := newClient(t, api, WithAuth(tc.auth(tokenURL+"/token")), WithRecorder(ring), WithBackendName("crm"))
			_, err := c.Do(context.Background(), &Request{Path: "x"})
			require.NoError(t, err)

			es := ringEntries(ring, synclog.Filter{Operation: tokenOperation})
			require.Len(t, es, 1, "one audit entry for the token request")
			e := es[0]
			assert.Equal(t, "crm", e.Backend)
			assert.Equal(t, http.MethodPost, e.Method)
			assert.Equal(t, tokenURL+"/token", e.URL)
			assert.Equal(t, 200, e.Status)
			assert.Equal(t, 1, e.Attempts)
			assert.Contains(t, e.RequestBody, tc.grant)
			assert.Contains(t, e.ResponseBody, `"access_token":"[REDACTED]"`)
			assert.Contains(t, e.ResponseBody, `"expires_in":3600`, "the rest of the response stays readable")
			for _, secret := range []string{"client-secret-1", "tok-1", "rt-2", "rt-start-0", "aWQ6Y2xpZW50LXNlY3JldC0x"} {
				for name, text := range map[string]string{"request body": e.RequestBody, "response body": e.ResponseBody,
					"request header": fmt.Sprint(e.RequestHeader), "response header": fmt.Sprint(e.ResponseHeader), "url": e.URL} {
					assert.NotContains(t, text, secret, "%s leaks %s", name, secret)
				}
			}
			assert.Len(t, ringEntries(ring, synclog.Filter{}), 2, "the token request and the call")
		})
	}

	// A failing token request is audited too, as a failure.
	ts := &tokenServer{fail: true}
	tokenURL := serve(t, ts).URL
	ring := synclog.NewRing(10)
	auth := OAuth2ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "client-secret-1", TokenURL: tokenURL})
	c, _ := newClient(t, "http://127.0.0.1:1", WithAuth(auth), WithRecorder(ring))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.Error(t, err)
	es := ringEntries(ring, synclog.Filter{Operation: tokenOperation, FailedOnly: true})
	require.NotEmpty(t, es)
	assert.Equal(t, 400, es[0].Status)
	assert.Contains(t, es[0].ResponseBody, "invalid_client")
}

// Issue 9, defect 9: x/oauth2's "cannot fetch token: 400 Bad Request" is prose, not a
// "token: value" pair; the status code must survive redaction of the returned error.
func TestOAuth2TokenErrorKeepsStatusCode(t *testing.T) {
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest) // sniffed as text/plain: x/oauth2 keeps its generic text
		w.Write([]byte(`{"error":"invalid_grant"}`))
	}))
	c, err := New(srv.URL, WithAuth(OAuth2RefreshToken(&oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{TokenURL: srv.URL + "/token"}},
		&oauth2.Token{RefreshToken: "from-file"}, nil)))
	require.NoError(t, err)
	_, err = c.Do(context.Background(), &Request{Path: "/me"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot fetch token: 400 Bad Request")
	assert.Contains(t, err.Error(), "invalid_grant")
	assert.NotContains(t, err.Error(), "from-file")
}
