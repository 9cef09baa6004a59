package backend

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseConfigYAMLWithEnv(t *testing.T) {
	yml := `
name: shop-eu
kind: shopify
base_url: https://shop.example.com/admin/api/2024-04
auth:
  type: bearer
  token: ${SHOP_TOKEN}
connect_timeout: 2s
read_timeout: 30
rate_limit: {per_second: 2, burst: 40}
retry: {max_attempts: 5, min_wait: 500ms, max_wait: 10s}
headers:
  X-Api-Version: "2.0"
  X-Client: ${CLIENT:-connkit}
settings:
  warehouse: WH1
  page_size: 100
`
	cfg, err := ParseConfig([]byte(yml), env(map[string]string{"SHOP_TOKEN": "shpat_$ecret: with colon\nand newline"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.Token != "shpat_$ecret: with colon\nand newline" {
		t.Errorf("token expanded to %q: an env value must land verbatim, never reshape the file", cfg.Auth.Token)
	}
	if cfg.ConnectTimeout.Std() != 2*time.Second || cfg.ReadTimeout.Std() != 30*time.Second {
		t.Errorf("timeouts = %s, %s", cfg.ConnectTimeout.Std(), cfg.ReadTimeout.Std())
	}
	if cfg.Retry.MinWait.Std() != 500*time.Millisecond || cfg.Retry.MaxAttempts != 5 {
		t.Errorf("retry = %+v", cfg.Retry)
	}
	if cfg.Headers["X-Client"] != "connkit" || cfg.Headers["X-Api-Version"] != "2.0" {
		t.Errorf("headers = %v", cfg.Headers)
	}
	if cfg.RateLimit.PerSecond != 2 || cfg.RateLimit.Burst != 40 {
		t.Errorf("rate limit = %+v", cfg.RateLimit)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if wh, ok := Setting[string](b, "warehouse"); !ok || wh != "WH1" {
		t.Errorf("Setting warehouse = %q, %v", wh, ok)
	}
	if n, ok := Setting[float64](b, "page_size"); !ok || n != 100 {
		t.Errorf("Setting page_size = %v, %v", n, ok)
	}
	if _, ok := Setting[string](b, "page_size"); ok {
		t.Error("Setting with the wrong type must report !ok")
	}
}

func TestParseConfigJSON(t *testing.T) {
	js := `{"name":"crm","base_url":"http://127.0.0.1:8080","auth":{"type":"basic","username":"u","password":"p"},"connect_timeout":"0.5"}`
	cfg, err := ParseConfig([]byte(js), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnectTimeout.Std() != 500*time.Millisecond || cfg.Auth.Username != "u" {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name, doc string
		env       map[string]string
		want      []string
	}{
		{"missing env", `{name: a, base_url: "https://x", auth: {type: bearer, token: "${NOPE}"}}`, nil,
			[]string{"auth.token", "NOPE is not set"}},
		{"bad env ref", `{name: a, base_url: "https://x", headers: {X: "${1BAD}"}}`, nil, []string{"headers.X", "${1BAD}"}},
		{"unterminated", `{name: a, base_url: "https://x", headers: {X: "${OPEN"}}`, nil, []string{"headers.X", "unterminated"}},
		{"unknown field", `{name: a, base_url: "https://x", base_ur: "typo"}`, nil, []string{"base_ur", "not a known setting"}},
		{"wrong type", `{name: a, base_url: "https://x", rate_limit: {burst: "lots"}}`, nil, []string{"rate_limit.burst", "wrong type"}},
		{"bad duration", `{name: a, base_url: "https://x", read_timeout: "soon"}`, nil, []string{"read_timeout", "invalid duration"}},
		{"not yaml", "name: [unclosed", nil, []string{"not valid JSON or YAML"}},
		{"empty", "", nil, []string{"is empty"}},
		{"missing name and url", `{kind: x}`, nil, []string{"name: is required", "base_url: is required"}},
		{"relative url", `{name: a, base_url: "/api"}`, nil, []string{`base_url: "/api" is not an absolute http(s) URL`}},
		{"unknown auth", `{name: a, base_url: "https://x", auth: {type: kerberos}}`, nil, []string{"auth.type", "unknown type", "oauth2_client_credentials"}},
		{"basic needs password", `{name: a, base_url: "https://x", auth: {type: basic, username: u}}`, nil, []string{"auth.password: is required for auth type basic"}},
		{"api key in", `{name: a, base_url: "https://x", auth: {type: api_key, api_key: k, in: body}}`, nil, []string{"auth.in", "header or query"}},
		{"oauth", `{name: a, base_url: "https://x", auth: {type: oauth2_refresh_token, client_id: c, token_url: "nope"}}`, nil,
			[]string{"auth.refresh_token: is required", `auth.token_url: "nope" is not an absolute URL`}},
		{"hmac", `{name: a, base_url: "https://x", auth: {type: hmac}}`, nil, []string{"auth.secret: is required"}},
		{"negative", `{name: a, base_url: "https://x", connect_timeout: -1, rate_limit: {per_second: -2}}`, nil,
			[]string{"connect_timeout: must not be negative", "rate_limit.per_second: must not be negative"}},
		{"retry order", `{name: a, base_url: "https://x", retry: {min_wait: 10s, max_wait: 1s}}`, nil, []string{"retry.min_wait", "longer than retry.max_wait"}},
		{"bad header", `{name: a, base_url: "https://x", headers: {"Bad Header": v}}`, nil, []string{`"Bad Header" is not a valid header name`}},
		{"limit headers", `{name: a, base_url: "https://x", rate_limit: {headers: github}}`, nil, []string{"rate_limit.headers", "x-ratelimit, ietf, shopify or hubspot"}},
		{"schedule", `{name: a, base_url: "https://x", schedules: [{name: n, spec: "@every 1m"}]}`, nil, []string{"schedules[0]", "operation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.doc), env(tt.env))
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not match ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Fields) == 0 {
				t.Errorf("error %v is not a *ConfigError with fields", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestExpandString(t *testing.T) {
	lookup := env(map[string]string{"A": "1", "EMPTY": ""})
	tests := map[string]string{
		"plain":             "plain",
		"${A}":              "1",
		"x${A}y${A}":        "x1y1",
		"$$":                "$",
		"pa$$word":          "pa$word",
		"pa$word":           "pa$word",
		"${EMPTY:-def}":     "def",
		"${MISSING:-d e f}": "d e f",
		"${EMPTY}":          "",
		"trailing$":         "trailing$",
	}
	for in, want := range tests {
		got, err := expandString(in, lookup)
		if err != nil || got != want {
			t.Errorf("expandString(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shop.yaml")
	if err := os.WriteFile(path, []byte("name: s\nbase_url: https://x\nauth: {type: bearer}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), "in shop.yaml") || !strings.Contains(err.Error(), "auth.token") {
		t.Fatalf("LoadConfig error = %v; want it to name the file and the field", err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
