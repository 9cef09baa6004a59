package adapter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/connkit/connkit/synclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecretsNeverLeak sends many requests carrying one secret through every path — auth
// header, API key query parameter, JSON body fields, plain query values, error responses
// and headers echoing it — and checks that the secret appears in no audit entry, no log
// line and no error text.
func TestSecretsNeverLeak(t *testing.T) {
	const secret = "S3cr3tValue-42xyz"
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// Echo everything back, the way careless APIs do in their error messages.
		w.Header().Set("X-Echo", r.Header.Get("Authorization")+" "+r.URL.RawQuery)
		w.Header().Set("Location", "https://elsewhere.example/cb?token="+secret)
		w.Header().Set("Content-Type", "application/json")
		status := 200
		switch r.URL.Path {
		case "/bad":
			status = 400
		case "/down":
			status = 503
		case "/denied":
			status = 401
		case "/text":
			w.Header().Set("Content-Type", "text/plain")
			status = 422
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"echo":%q,"query":%q,"auth":%q,"msg":"invalid key %s"}`, body, r.URL.RawQuery, r.Header.Get("Authorization"), secret)
	}))

	auths := map[string]Auth{
		"bearer":       BearerAuth(secret),
		"basic":        BasicAuth("user", secret),
		"header key":   APIKeyHeader("X-Custom-Auth", secret),
		"query key":    APIKeyQuery("key", secret),
		"query other":  APIKeyQuery("shop_credential_value", secret),
		"hmac":         HMACAuth([]byte(secret), HMACFormat{}),
		"custom+extra": authFunc(func(r *http.Request) error { r.Header.Set("X-Weird", secret); return nil }),
	}
	paths := []string{"ok", "bad", "down", "denied", "text"}
	forbidden := []string{
		secret,
		url.QueryEscape(secret),
		base64.StdEncoding.EncodeToString([]byte("user:" + secret)),
	}

	var logBuf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ring := synclog.NewRing(10000)
	var errTexts []string
	for name, auth := range auths {
		opts := []Option{WithAuth(auth), WithRecorder(ring), WithLogger(logger), WithBackendName("shop"), WithRetries(1)}
		if name == "custom+extra" {
			opts = append(opts, WithRedactor(synclog.NewRedactor(synclog.WithSecrets(secret)))) // a custom Auth declares its secret
		}
		c, _ := newClient(t, srv.URL, opts...)
		for _, p := range paths {
			for _, method := range []string{"GET", "POST"} {
				req := &Request{Method: method, Path: p, Query: url.Values{"q": {secret}, "page": {"2"}}, Operation: "sync"}
				if method == "POST" {
					req.Body = map[string]any{"note": secret, "password": secret, "nested": map[string]string{"api_token": secret}}
					req.IdempotencyKey = "idem-1"
				}
				_, err := c.Do(context.Background(), req)
				if err != nil {
					errTexts = append(errTexts, err.Error(), fmt.Sprintf("%v | %+v | %s", err, err, err))
				}
			}
		}
		// A transport failure carrying the secret in the URL.
		dead, _ := newClient(t, "http://"+closedAddr(t), append(opts, WithRetries(1))...)
		_, err := dead.Do(context.Background(), &Request{Path: "x", Query: url.Values{"q": {secret}}})
		require.Error(t, err)
		errTexts = append(errTexts, err.Error())
	}

	entries := ringEntries(ring, synclog.Filter{})
	require.Len(t, entries, len(auths)*(len(paths)*2+1), "one entry per call, not per attempt")
	var retried bool
	for _, e := range entries {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		for _, f := range forbidden {
			require.NotContains(t, string(b), f, "audit entry %s %s", e.Method, e.URL)
		}
		retried = retried || e.Attempts > 1
	}
	assert.True(t, retried, "some calls were retried, so retry logging ran")
	logs := logBuf.String()
	assert.Contains(t, logs, "retrying request")
	require.NotEmpty(t, errTexts)
	for _, f := range forbidden {
		assert.NotContains(t, logs, f)
		for _, e := range errTexts {
			require.NotContains(t, e, f)
		}
	}
	// The entries still say what happened.
	last := entries[len(entries)-1] // oldest first: the first call
	assert.Contains(t, last.URL, "page=2")
	assert.Contains(t, last.URL, "q=[REDACTED]")
	assert.Equal(t, "shop", last.Backend)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAuditEntryContents(t *testing.T) {
	s := &scripted{statuses: []int{503, 201}, header: http.Header{"X-Request-Id": {"r-1"}}, body: strings.Repeat("y", 100)}
	srv := serve(t, s)
	ring := synclog.NewRing(10, synclog.WithBodyLimit(10))
	c, ft := newClient(t, srv.URL, WithRecorder(ring), WithBackendName("crm"))
	_, err := c.Do(context.Background(), &Request{Method: http.MethodPut, Path: "contacts/9", Body: map[string]string{"name": "Ada Lovelace"}, Operation: "export contact", Model: "contact", Record: "9"})
	require.NoError(t, err)
	es := ringEntries(ring, synclog.Filter{})
	require.Len(t, es, 1)
	e := es[0]
	assert.Equal(t, "crm", e.Backend)
	assert.Equal(t, "export contact", e.Operation)
	assert.Equal(t, synclog.Outbound, e.Direction)
	assert.Equal(t, "PUT", e.Method)
	assert.Equal(t, srv.URL+"/contacts/9", e.URL)
	assert.Equal(t, 201, e.Status)
	assert.Equal(t, 2, e.Attempts)
	assert.Equal(t, ft.Waits()[0], e.Duration, "fake clock: the duration is the backoff wait")
	assert.Equal(t, "contact", e.Model)
	assert.Equal(t, "9", e.Record)
	assert.Equal(t, "", e.Error)
	assert.True(t, e.Truncated)
	assert.True(t, strings.HasPrefix(e.RequestBody, `{"name":"A`), e.RequestBody)
	assert.True(t, strings.HasPrefix(e.ResponseBody, "yyyyyyyyyy…"), e.ResponseBody)
	assert.Equal(t, "application/json", e.RequestHeader.Get("Content-Type"))
	assert.Equal(t, "r-1", e.ResponseHeader.Get("X-Request-Id"))

	// A failed call records its error.
	s2 := &scripted{statuses: []int{404}}
	srv2 := serve(t, s2)
	c2, _ := newClient(t, srv2.URL, WithRecorder(ring))
	_, err = c2.Do(context.Background(), &Request{Path: "missing"})
	require.ErrorIs(t, err, ErrNotFound)
	es = ringEntries(ring, synclog.Filter{FailedOnly: true})
	require.Len(t, es, 1)
	assert.Equal(t, err.Error(), es[0].Error)
	assert.Equal(t, 404, es[0].Status)

	// So does a request that could not be built.
	_, err = c2.Do(context.Background(), &Request{Method: http.MethodPost, Path: "x", Body: json.RawMessage("{")})
	require.ErrorIs(t, err, ErrInvalidRequest)
	es = ringEntries(ring, synclog.Filter{FailedOnly: true})
	require.Len(t, es, 2)
	assert.Equal(t, 0, es[0].Attempts)
}

func TestRecorderFailureIsLoggedNotReturned(t *testing.T) {
	s := &scripted{statuses: []int{200}}
	srv := serve(t, s)
	var msgs []string
	h := &captureHandler{fn: func(msg string, _ map[string]string) { msgs = append(msgs, msg) }}
	rec := recorderFunc(func(context.Context, synclog.Entry) error { return fmt.Errorf("db down") })
	c, _ := newClient(t, srv.URL, WithRecorder(rec), WithLogger(newSlog(h)))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	assert.Equal(t, []string{"adapter: audit recorder failed"}, msgs)
}

func TestCustomRedactorGetsClientSecrets(t *testing.T) {
	s := &scripted{statuses: []int{200}, body: `{"sku":"LAMP-1","page_token":"p-123","note":"key-abcdef"}`}
	srv := serve(t, s)
	red := synclog.NewRedactor(synclog.WithJSONFields("sku"), synclog.WithAllowed("page_token"))
	ring := synclog.NewRing(10)
	c, _ := newClient(t, srv.URL, WithRedactor(red), WithRecorder(ring), WithAuth(APIKeyHeader("X-Key", "key-abcdef")))
	assert.Same(t, red, c.red)
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.NoError(t, err)
	body := ringEntries(ring, synclog.Filter{})[0].ResponseBody
	assert.Equal(t, `{"sku":"[REDACTED]","page_token":"p-123","note":"[REDACTED]"}`, body)
}

func TestAuditRequestHeadersFollowEachCall(t *testing.T) {
	s := &scripted{statuses: []int{200}}
	srv := serve(t, s)
	ring := synclog.NewRing(10)
	c, _ := newClient(t, srv.URL, WithRecorder(ring))
	ctx := context.Background()
	for _, v := range []string{"one", "one", "two", "one"} {
		_, err := c.Do(ctx, &Request{Path: "x", Header: http.Header{"X-Trace": {v}}})
		require.NoError(t, err)
	}
	_, err := c.Do(ctx, &Request{Path: "x", Header: http.Header{"X-Trace": {"one"}, "X-Extra": {"e"}}})
	require.NoError(t, err)
	_, err = c.Do(ctx, &Request{Path: "x", Header: http.Header{"X-Other": {"one"}}})
	require.NoError(t, err)
	es := ringEntries(ring, synclog.Filter{})
	var got []string
	for i := len(es) - 1; i >= 0; i-- {
		h := es[i].RequestHeader
		got = append(got, h.Get("X-Trace")+"/"+h.Get("X-Extra")+"/"+h.Get("X-Other"))
	}
	assert.Equal(t, []string{"one//", "one//", "two//", "one//", "one/e/", "//one"}, got)
	same := func(a, b http.Header) bool { return newHeaderMemo(0, a, nil).same(b) }
	assert.False(t, same(http.Header{"A": {"1"}}, http.Header{"A": {"1", "2"}}))
	assert.False(t, same(http.Header{"A": {"1"}}, http.Header{"B": {"1"}}))
	assert.False(t, same(http.Header{"A": {"1"}}, http.Header{"A": {"2"}}))
	assert.False(t, same(http.Header{"A": {"1"}}, http.Header{"A": {"1"}, "B": nil}))
	assert.False(t, same(http.Header{"A": {"1"}, "B": {"2"}}, http.Header{"A": {"1"}}))
	assert.True(t, same(http.Header{"A": {"1"}, "B": {"2", "3"}}, http.Header{"B": {"2", "3"}, "A": {"1"}}))
	assert.True(t, same(http.Header{}, http.Header{}))
}

func TestSecretInAuthErrorIsRedacted(t *testing.T) {
	const secret = "vault-token-998877"
	boom := errors.New("vault refused token " + secret)
	s := &scripted{statuses: []int{200}}
	srv := serve(t, s)
	ring := synclog.NewRing(10)
	c, _ := newClient(t, srv.URL, WithRedactor(synclog.NewRedactor(synclog.WithSecrets(secret))), WithRecorder(ring), WithAuth(authFunc(func(*http.Request) error { return boom })))
	_, err := c.Do(context.Background(), &Request{Path: "x"})
	require.ErrorIs(t, err, boom, "the cause is still reachable")
	assert.NotContains(t, err.Error(), secret)
	assert.Contains(t, err.Error(), "vault refused token [REDACTED]")
	assert.NotContains(t, ringEntries(ring, synclog.Filter{})[0].Error, secret)
}

// TestSecretAddedToSharedRedactorLater: a secret registered on a shared redactor after
// New applies to the next call's audit entry, although its request headers are the same
// as before (the cached redacted headers must not be reused).
func TestSecretAddedToSharedRedactorLater(t *testing.T) {
	srv := serve(t, &scripted{statuses: []int{200}, header: http.Header{"X-Echo": {"late-secret-0042"}}})
	ring := synclog.NewRing(10)
	red := synclog.NewRedactor()
	c, _ := newClient(t, srv.URL, WithRecorder(ring), WithRedactor(red))
	ctx := context.Background()
	for i := range 2 {
		if i == 1 {
			red.AddSecrets("late-secret-0042")
		}
		_, err := c.Do(ctx, &Request{Path: "x", Header: http.Header{"X-Note": {"late-secret-0042"}}})
		require.NoError(t, err)
	}
	es := ringEntries(ring, synclog.Filter{})
	require.Len(t, es, 2)
	assert.Equal(t, "late-secret-0042", es[1].RequestHeader.Get("X-Note"), "not yet a secret")
	assert.Equal(t, synclog.Redacted, es[0].RequestHeader.Get("X-Note"))
	assert.Equal(t, synclog.Redacted, es[0].ResponseHeader.Get("X-Echo"))
}
