package adapter

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// OAuth2ClientCredentials returns an Auth that obtains access tokens with the OAuth2
// client-credentials grant (RFC 6749 §4.4) and sends them as bearer tokens. Tokens are
// cached until they expire, fetched once for all goroutines however many need one at the
// same time, and refreshed once when the API answers 401. Token requests use the client's
// transport and timeouts; they are not retried. Each one is audited as an entry with
// Operation "oauth2 token". The client secret in every form x/oauth2 sends it (form
// field, or the base64 Basic credentials of cfg.AuthStyle's header style) and every
// fetched token are registered as secrets with the client's redactor.
func OAuth2ClientCredentials(cfg *clientcredentials.Config) Auth {
	a := newOAuth(clientSecrets(cfg.ClientID, cfg.ClientSecret)...)
	a.fetch = func(ctx context.Context) (*oauth2.Token, error) { return cfg.Token(ctx) }
	return a
}

// OAuth2RefreshToken returns an Auth that obtains access tokens with the refresh-token
// grant (RFC 6749 §6), starting from tok (its access token is used first while valid;
// its refresh token must be set). When the server rotates the refresh token, onRotate is
// called with the new token so the caller can persist it; until it returns, no other
// token request starts. If onRotate fails the error is logged and the new token is still
// used (the old refresh token is no longer valid on the server). Caching, single flight
// and the 401 refresh-and-retry work as in OAuth2ClientCredentials.
func OAuth2RefreshToken(cfg *oauth2.Config, tok *oauth2.Token, onRotate func(ctx context.Context, tok *oauth2.Token) error) Auth {
	if tok == nil {
		tok = &oauth2.Token{}
	}
	a := newOAuth(append(clientSecrets(cfg.ClientID, cfg.ClientSecret), tok.RefreshToken, tok.AccessToken)...)
	if tok.AccessToken != "" {
		t := *tok
		a.tok = &t
	}
	a.refresh = tok.RefreshToken
	a.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		a.mu.Lock()
		rt := a.refresh
		a.mu.Unlock()
		if rt == "" {
			return nil, errors.New("OAuth2 refresh flow has no refresh token to start from; obtain one with the authorization-code flow first")
		}
		nt, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			return nil, err
		}
		if nt.RefreshToken != "" && nt.RefreshToken != rt {
			a.mu.Lock()
			a.refresh = nt.RefreshToken
			a.mu.Unlock()
			// Both are secrets before onRotate runs: its error may quote them.
			a.addSecrets(nt.RefreshToken, nt.AccessToken)
			if onRotate != nil {
				if err := onRotate(ctx, nt); err != nil {
					a.logError(ctx, "adapter: persisting the rotated OAuth2 refresh token failed; it is kept in memory only", err)
				}
			}
		}
		return nt, nil
	}
	return a
}

// clientSecrets returns every form in which golang.org/x/oauth2 sends a client's
// credentials: the secret itself (a form field in AuthStyleInParams), and the base64
// credentials of the Basic header in AuthStyleInHeader, which x/oauth2 builds from the
// URL-query-escaped ID and secret (internal/token.go: SetBasicAuth(url.QueryEscape(id),
// url.QueryEscape(secret))), plus the unescaped form other servers echo. AuthStyleAutoDetect
// tries the header first, then the form. The redactor adds the URL- and JSON-escaped
// variants of each.
func clientSecrets(id, secret string) []string {
	if secret == "" {
		return nil
	}
	return []string{secret,
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret))),
		base64.StdEncoding.EncodeToString([]byte(id + ":" + secret)),
	}
}

type oauthAuth struct {
	fetch   func(ctx context.Context) (*oauth2.Token, error)
	secrets []string

	mu       sync.Mutex
	tok      *oauth2.Token
	refresh  string
	flight   *tokenFlight
	hc       *http.Client
	timeout  time.Duration
	log      *slog.Logger
	addFuncs []func(...string)
	redacts  []func(string) string // the bound clients' redactors, for logged errors
}

// tokenFlight is one token request that every waiting goroutine shares.
type tokenFlight struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

func newOAuth(secrets ...string) *oauthAuth {
	return &oauthAuth{secrets: secrets, timeout: defaultConnectTimeout + defaultReadTimeout}
}

func (a *oauthAuth) bindClient(c *Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hc = c.tokenC
	a.timeout = c.cfg.connectTimeout + c.cfg.readTimeout
	a.log = c.log
	a.addFuncs = append(a.addFuncs, c.addSecrets)
	a.redacts = append(a.redacts, c.red.String)
}

func (a *oauthAuth) Secrets() []string { return a.secrets }

func (a *oauthAuth) addSecrets(v ...string) {
	a.mu.Lock()
	fs := a.addFuncs
	a.mu.Unlock()
	for _, f := range fs {
		f(v...)
	}
}

// logError logs err, redacted: it may come from the caller's code and quote a token.
func (a *oauthAuth) logError(ctx context.Context, msg string, err error) {
	a.mu.Lock()
	l, redacts := a.log, a.redacts
	a.mu.Unlock()
	if l == nil {
		return
	}
	text := err.Error()
	for _, r := range redacts {
		text = r(text)
	}
	l.LogAttrs(ctx, slog.LevelError, msg, slog.String("error", text))
}

// Apply sets the bearer token, fetching one first when needed.
func (a *oauthAuth) Apply(req *http.Request) error {
	tok, err := a.token(req.Context())
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", tok.Type()+" "+tok.AccessToken)
	return nil
}

// Refresh drops the token the rejected request carried (unless another goroutine has
// already replaced it) and gets a new one.
func (a *oauthAuth) Refresh(ctx context.Context, rejected *http.Request) (bool, error) {
	a.mu.Lock()
	if a.tok != nil && rejected.Header.Get("Authorization") == a.tok.Type()+" "+a.tok.AccessToken {
		a.tok = nil
	}
	a.mu.Unlock()
	if _, err := a.token(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// token returns a valid token, joining (or starting) the one token request in flight.
// The request itself is detached from ctx, so a caller that gives up does not waste a
// token (or a rotated refresh token) that other goroutines are waiting for.
func (a *oauthAuth) token(ctx context.Context) (*oauth2.Token, error) {
	a.mu.Lock()
	if a.tok != nil && a.tok.Valid() {
		t := a.tok
		a.mu.Unlock()
		return t, nil
	}
	f := a.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		a.flight = f
		hc, timeout := a.hc, a.timeout
		go a.run(context.WithoutCancel(ctx), f, hc, timeout)
	}
	a.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (a *oauthAuth) run(ctx context.Context, f *tokenFlight, hc *http.Client, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if hc != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	}
	tok, err := a.fetch(ctx)
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = errors.New("the token endpoint returned no access token")
	}
	if err != nil {
		err = fmt.Errorf("OAuth2 token request failed (%w)", err)
		tok = nil
	} else {
		a.addSecrets(tok.AccessToken, tok.RefreshToken)
	}
	a.mu.Lock()
	if err == nil {
		a.tok = tok
	}
	a.flight = nil
	a.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}
