package backend

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/state"
	"github.com/connkit/connkit/synclog"
)

// Each configured auth type must reach the server as the API expects it, and the
// configured retry count and headers must be applied.
func TestConfigNewClient(t *testing.T) {
	var last atomic.Pointer[http.Request]
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last.Store(r)
		if calls.Add(1) == 1 && r.URL.Path == "/flaky" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()

	tests := []struct {
		auth  AuthConfig
		check func(r *http.Request) bool
	}{
		{AuthConfig{Type: authBasic, Username: "bot", Password: "pw"}, func(r *http.Request) bool {
			return r.Header.Get("Authorization") == "Basic "+base64.StdEncoding.EncodeToString([]byte("bot:pw"))
		}},
		{AuthConfig{Type: authBearer, Token: "tok123"}, func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer tok123" }},
		{AuthConfig{Type: authAPIKey, APIKey: "k1"}, func(r *http.Request) bool { return r.Header.Get("X-API-Key") == "k1" }},
		{AuthConfig{Type: authAPIKey, APIKey: "k2", In: "query", Name: "key"}, func(r *http.Request) bool { return r.URL.Query().Get("key") == "k2" }},
		{AuthConfig{Type: authHMAC, Secret: "s3cret", Header: "X-Sig"}, func(r *http.Request) bool { return r.Header.Get("X-Sig") != "" }},
	}
	for _, tt := range tests {
		t.Run(tt.auth.Type+tt.auth.In, func(t *testing.T) {
			cfg := Config{Name: "t", BaseURL: srv.URL, Auth: tt.auth, Headers: map[string]string{"X-Api-Version": "2.0"}}
			b, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := b.Client()
			if _, err := c.Do(context.Background(), &adapter.Request{Path: "/products"}); err != nil {
				t.Fatal(err)
			}
			r := last.Load()
			if !tt.check(r) {
				t.Errorf("request did not carry the %s credentials: %v %v", tt.auth.Type, r.Header, r.URL)
			}
			if r.Header.Get("X-Api-Version") != "2.0" {
				t.Error("configured header missing")
			}
		})
	}

	t.Run("retries and audit", func(t *testing.T) {
		calls.Store(0)
		ring := synclog.NewRing(10)
		cfg := Config{Name: "shop", BaseURL: srv.URL, Retry: RetryConfig{MaxAttempts: 2, MinWait: Duration(1), MaxWait: Duration(1)}}
		b, err := New(cfg, WithRecorder(ring))
		if err != nil {
			t.Fatal(err)
		}
		c := b.Client()
		resp, err := c.Do(context.Background(), &adapter.Request{Path: "/flaky"})
		if err != nil || resp.Attempts != 2 {
			t.Fatalf("resp %+v err %v; want success on the 2nd attempt", resp, err)
		}
		var es []synclog.Entry
		for e := range ring.Query(context.Background(), synclog.Filter{Backend: "shop"}) {
			es = append(es, e)
		}
		if len(es) != 1 || !strings.HasSuffix(es[0].URL, "/flaky") {
			t.Errorf("audit entries = %+v", es)
		}
	})

	t.Run("invalid config", func(t *testing.T) {
		cfg := Config{Name: "t", BaseURL: "nope"}
		if _, err := New(cfg); err == nil {
			t.Error("invalid config built a client")
		}
	})
}

// A refresh token the server rotated is kept in the state store and used after a restart:
// the one in the config file is no longer accepted by the server.
func TestRotatedRefreshTokenSurvivesRestart(t *testing.T) {
	var current atomic.Value
	current.Store("from-file")
	var api *httptest.Server
	api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			_ = r.ParseForm()
			if r.Form.Get("refresh_token") != current.Load().(string) {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":"invalid_grant"}`))
				return
			}
			next := r.Form.Get("refresh_token") + "+"
			current.Store(next)
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"` + next + `"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer at" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer api.Close()
	cfg := Config{Name: "crm", BaseURL: api.URL, Auth: AuthConfig{Type: authOAuth2RefreshToken, ClientID: "c",
		TokenURL: api.URL + "/token", RefreshToken: "from-file"}}
	st := state.NewMemory()
	for run := range 2 { // two process lifetimes sharing one state store
		b, err := New(cfg, WithStores(nil, st))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Client().Do(context.Background(), &adapter.Request{Path: "/me"}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
}
