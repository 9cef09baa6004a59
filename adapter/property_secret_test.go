package adapter_test

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
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

// The secret-hunting property test (issue 9): every auth kind × {success, an API error
// echoing the request, a token-endpoint error echoing the request} × {audit ring, SQL
// recorder, slog output, returned error text} holds zero occurrences of every credential
// and of every form derived from it.

// Credentials. Several carry characters that URL and form encoding change, so that the
// encoded forms differ from the raw ones.
const (
	basicUser     = "svc-user"
	basicPass     = "P4ss/w0rd+basic=77"
	bearerToken   = "tok-BEARER-x8Yz91"
	headerKey     = "hdr-KEY-5521abcd"
	queryKey      = "qry-KEY/99+zz=ab&c"
	clientID      = "client-ID:1/x"
	clientSecret  = "cl1ent-S3CRET/+=&x"
	refreshToken  = "rfr-TOKEN-abc123/+"
	rotatedToken  = "rfr2-ROTATED-zz77"
	accessToken   = "acc-TOKEN-zz9+/Q"
	hmacSecret    = "hmac-S3CRET-key/+"
	customSecret  = "cust-S3CRET-hdr"
	customSecret2 = "cust-EXTRA-query"
)

// forms returns a credential and the forms it takes on the wire and in texts.
func forms(v string) []string {
	out := []string{v, url.QueryEscape(v), url.PathEscape(v),
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))}
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	q := strconv.Quote(v)
	return append(out, q[1:len(q)-1])
}

// basicForms are the base64 credentials of HTTP Basic: user:pass as is, and the form
// golang.org/x/oauth2 sends in AuthStyleInHeader (both URL-query-escaped first).
func basicForms(user, pass string) []string {
	var out []string
	for _, s := range []string{user + ":" + pass, url.QueryEscape(user) + ":" + url.QueryEscape(pass)} {
		b := base64.StdEncoding.EncodeToString([]byte(s))
		out = append(out, b, url.QueryEscape(b))
	}
	return out
}

// echoServer answers like a careless API: on failure its body (and a header) repeats
// every request header value, the query and the body, under names that are not secret.
type echoServer struct {
	mu     sync.Mutex
	issued int
}

func echo(w http.ResponseWriter, r *http.Request, status int) {
	body, _ := io.ReadAll(r.Body)
	var seen []string
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var text strings.Builder
	for _, k := range keys {
		for _, v := range r.Header[k] {
			seen = append(seen, v)
			fmt.Fprintf(&text, "got %s; ", v)
		}
	}
	seen = append(seen, r.URL.RawQuery, string(body))
	fmt.Fprintf(&text, "query %s; body %s", r.URL.RawQuery, body)
	if err := r.ParseForm(); err == nil {
		for _, vs := range r.PostForm {
			seen = append(seen, vs...)
		}
	}
	w.Header().Set("X-Debug-Seen", strings.Join(seen[:len(seen)-1], " "))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": "invalid_client", "error_description": text.String(), "seen": seen})
}

func (s *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/token/fail":
		echo(w, r, http.StatusUnauthorized)
	case "/token/ok":
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600,"refresh_token":%q}`, accessToken, rotatedToken)
	case "/api/fail":
		echo(w, r, http.StatusBadRequest)
	default:
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[{"id":1,"name":"lamp"}]}`)
	}
}

type authKind struct {
	name    string
	oauth   bool
	auth    func(tokenURL string) adapter.Auth
	opts    []adapter.Option
	secrets []string
}

func authKinds() []authKind {
	cc := func(style oauth2.AuthStyle) func(string) adapter.Auth {
		return func(tokenURL string) adapter.Auth {
			return adapter.OAuth2ClientCredentials(&clientcredentials.Config{
				ClientID: clientID, ClientSecret: clientSecret, TokenURL: tokenURL, AuthStyle: style})
		}
	}
	rt := func(style oauth2.AuthStyle) func(string) adapter.Auth {
		return func(tokenURL string) adapter.Auth {
			return adapter.OAuth2RefreshToken(&oauth2.Config{ClientID: clientID, ClientSecret: clientSecret,
				Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: style}},
				&oauth2.Token{RefreshToken: refreshToken}, nil)
		}
	}
	oauthSecrets := append(append(forms(clientSecret), basicForms(clientID, clientSecret)...), forms(accessToken)...)
	return []authKind{
		{name: "basic", auth: func(string) adapter.Auth { return adapter.BasicAuth(basicUser, basicPass) },
			secrets: append(forms(basicPass), basicForms(basicUser, basicPass)...)},
		{name: "bearer", auth: func(string) adapter.Auth { return adapter.BearerAuth(bearerToken) }, secrets: forms(bearerToken)},
		{name: "api key header", auth: func(string) adapter.Auth { return adapter.APIKeyHeader("X-Shop-Key", headerKey) }, secrets: forms(headerKey)},
		{name: "api key query", auth: func(string) adapter.Auth { return adapter.APIKeyQuery("shop", queryKey) }, secrets: forms(queryKey)},
		{name: "oauth2 client credentials, header", oauth: true, auth: cc(oauth2.AuthStyleInHeader), secrets: oauthSecrets},
		{name: "oauth2 client credentials, params", oauth: true, auth: cc(oauth2.AuthStyleInParams), secrets: oauthSecrets},
		{name: "oauth2 client credentials, auto", oauth: true, auth: cc(oauth2.AuthStyleAutoDetect), secrets: oauthSecrets},
		{name: "oauth2 refresh token, header", oauth: true, auth: rt(oauth2.AuthStyleInHeader),
			secrets: append(append(oauthSecrets, forms(refreshToken)...), forms(rotatedToken)...)},
		{name: "oauth2 refresh token, params", oauth: true, auth: rt(oauth2.AuthStyleInParams),
			secrets: append(append(oauthSecrets, forms(refreshToken)...), forms(rotatedToken)...)},
		{name: "hmac", auth: func(string) adapter.Auth { return adapter.HMACAuth([]byte(hmacSecret), adapter.HMACFormat{}) }, secrets: forms(hmacSecret)},
		{name: "custom", auth: func(string) adapter.Auth {
			return authFunc(func(r *http.Request) error {
				r.Header.Set("X-Partner", customSecret)
				u := *r.URL
				q := u.Query()
				q.Set("partner", customSecret2)
				u.RawQuery = q.Encode()
				r.URL = &u
				return nil
			})
		}, opts: []adapter.Option{adapter.WithRedactor(synclog.NewRedactor(synclog.WithSecrets(customSecret, customSecret2)))},
			secrets: append(forms(customSecret), forms(customSecret2)...)},
	}
}

// entryText spells every field of an entry, raw.
func entryText(e synclog.Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s %s %s %d\n", e.Backend, e.Operation, e.Method, e.URL, e.Model, e.Record, e.Status)
	for _, h := range []http.Header{e.RequestHeader, e.ResponseHeader} {
		for k, vs := range h {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vs, ", "))
		}
	}
	b.WriteString(e.RequestBody + "\n" + e.ResponseBody + "\n" + e.Error + "\n")
	return b.String()
}

func TestNoCredentialLeaksAnywhere(t *testing.T) {
	srv := httptest.NewServer(&echoServer{})
	t.Cleanup(srv.Close)
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	for _, kind := range authKinds() {
		outcomes := []string{"success", "api error"}
		if kind.oauth {
			outcomes = append(outcomes, "token error")
		}
		for _, outcome := range outcomes {
			t.Run(kind.name+"/"+outcome, func(t *testing.T) {
				tokenURL, path := srv.URL+"/token/ok", "/api/ok"
				switch outcome {
				case "api error":
					path = "/api/fail"
				case "token error":
					tokenURL = srv.URL + "/token/fail"
				}
				backend := strings.NewReplacer(" ", "-", ",", "").Replace(kind.name + "-" + outcome)
				ring := synclog.NewRing(100)
				sqlRec := db.Log()
				var logs bytes.Buffer
				var logMu sync.Mutex
				h := slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug})
				logger := slog.New(h)
				opts := append([]adapter.Option{
					adapter.WithAuth(kind.auth(tokenURL)),
					adapter.WithBackendName(backend),
					adapter.WithRecorder(synclog.Multi(ring, sqlRec, synclog.NewSlogRecorder(logger, synclog.WithBodyLimit(4<<10)))),
					adapter.WithLogger(logger),
					adapter.WithRetries(1),
					adapter.WithRetryWait(time.Millisecond, time.Millisecond),
				}, kind.opts...)
				c, err := adapter.New(srv.URL, opts...)
				if err != nil {
					t.Fatal(err)
				}
				var errTexts []string
				_, err = c.Do(ctx, &adapter.Request{Path: path, Query: url.Values{"limit": {"250"}}})
				if err != nil {
					errTexts = append(errTexts, err.Error(), fmt.Sprintf("%+v", err))
				}
				_, err = c.Do(ctx, &adapter.Request{Method: http.MethodPost, Path: path, Body: map[string]any{"name": "lamp"}, IdempotencyKey: "k-1"})
				if err != nil {
					errTexts = append(errTexts, err.Error(), fmt.Sprintf("%+v", err))
					var ae *adapter.Error
					if errors.As(err, &ae) {
						errTexts = append(errTexts, ae.Body, ae.URL)
					}
				}
				if outcome == "success" && len(errTexts) > 0 {
					t.Fatalf("success scenario failed: %v", errTexts)
				}
				if outcome != "success" && len(errTexts) == 0 {
					t.Fatal("error scenario did not fail")
				}

				sinks := map[string]string{"returned error": strings.Join(errTexts, "\n")}
				var ringText strings.Builder
				for e := range ring.Query(ctx, synclog.Filter{}) {
					ringText.WriteString(entryText(e))
				}
				sinks["synclog ring"] = ringText.String()
				var sqlText strings.Builder
				for e, err := range sqlRec.Query(ctx, synclog.Filter{Backend: backend}) {
					if err != nil {
						t.Fatal(err)
					}
					sqlText.WriteString(entryText(e))
				}
				sinks["SQL recorder"] = sqlText.String()
				logMu.Lock()
				sinks["slog"] = logs.String()
				logMu.Unlock()
				if sinks["synclog ring"] == "" || sinks["SQL recorder"] == "" || sinks["slog"] == "" {
					t.Fatalf("a sink recorded nothing: %q", sinks)
				}
				for sink, text := range sinks {
					for _, s := range kind.secrets {
						if strings.Contains(text, s) {
							t.Errorf("%s holds credential form %q:\n%s", sink, s, text)
						}
					}
				}
			})
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// authFunc is a custom Auth scheme written as a function.
type authFunc func(req *http.Request) error

func (f authFunc) Apply(req *http.Request) error { return f(req) }
