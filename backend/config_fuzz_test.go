package backend_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connkit/connkit/backend"
)

// fuzzSecretMark is in every value the fuzz environment hands out, so a leak is found
// whatever field the ${VAR} was written in.
const fuzzSecretMark = "zq7Kx9Secret"

func fuzzEnv(name string) (string, bool) {
	switch {
	case name == "UNSET" || strings.HasPrefix(name, "NO_"):
		return "", false
	case name == "EMPTY":
		return "", true
	}
	// Shapes that fit many fields, each carrying the mark.
	switch len(name) % 4 {
	case 0:
		return "s3-" + fuzzSecretMark + "-" + name, true
	case 1:
		return "https://user:" + fuzzSecretMark + "@api.example.com/" + name, true
	case 2:
		return fuzzSecretMark + ": with colon\nand {braces} and ${NESTED}", true
	}
	return "1" + fuzzSecretMark, true
}

// FuzzParseConfig: ParseConfig never panics; an error is a *ConfigError matching
// ErrInvalidConfig that names at least one field and never contains a value taken
// from the environment (${VAR}: the loader cannot know which values are secrets); a
// config that parses passes Validate, and writing it back as JSON and parsing that
// again gives the same config.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		// The fixtures of config_test.go.
		`
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
`,
		`{"name":"crm","base_url":"http://127.0.0.1:8080","auth":{"type":"basic","username":"u","password":"p"},"connect_timeout":"0.5"}`,
		`{name: a, base_url: "https://x", auth: {type: bearer, token: "${NOPE}"}}`,
		`{name: a, base_url: "https://x", headers: {X: "${1BAD}"}}`,
		`{name: a, base_url: "https://x", headers: {X: "${OPEN"}}`,
		`{name: a, base_url: "https://x", base_ur: "typo"}`,
		`{name: a, base_url: "https://x", rate_limit: {burst: "lots"}}`,
		`{name: a, base_url: "https://x", read_timeout: "soon"}`,
		"name: [unclosed", "", `{kind: x}`, `{name: a, base_url: "/api"}`,
		`{name: a, base_url: "https://x", auth: {type: kerberos}}`,
		`{name: a, base_url: "https://x", auth: {type: basic, username: u}}`,
		`{name: a, base_url: "https://x", auth: {type: api_key, api_key: k, in: body}}`,
		`{name: a, base_url: "https://x", auth: {type: oauth2_refresh_token, client_id: c, token_url: "nope"}}`,
		`{name: a, base_url: "https://x", auth: {type: hmac}}`,
		`{name: a, base_url: "https://x", connect_timeout: -1, rate_limit: {per_second: -2}}`,
		`{name: a, base_url: "https://x", retry: {min_wait: 10s, max_wait: 1s}}`,
		`{name: a, base_url: "https://x", headers: {"Bad Header": v}}`,
		// Values from the environment in fields whose errors quote the value.
		`{name: a, base_url: "${BASE}", auth: {type: basic, username: u, password: "${PASSWORD}"}}`,
		`{name: a, base_url: "https://x", auth: {type: "${TYPE}", token: "${TOKEN}"}}`,
		`{name: a, base_url: "https://x", auth: {type: api_key, api_key: "${KEY}", in: "${WHERE}"}}`,
		`{name: a, base_url: "https://x", auth: {type: oauth2_client_credentials, client_id: c, client_secret: "${SECRET}", token_url: "${TOKEN_URL1}"}}`,
		`{name: a, base_url: "https://x", read_timeout: "${TIMEOUT}"}`,
		`{name: "${NAME}", base_url: "https://x", settings: {a: "$${LITERAL}", b: "${EMPTY}", c: "${UNSET:-dflt}"}}`,
		`{name: a, base_url: "https://x", headers: {"${HDR}": "${VAL}"}}`,
		`[1, 2]`, `"just a string"`, `null`, `{name: a, base_url: "https://x", settings: {n: 1e400}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := backend.ParseConfig(data, fuzzEnv)
		if err != nil {
			var ce *backend.ConfigError
			if !errors.Is(err, backend.ErrInvalidConfig) || !errors.As(err, &ce) || len(ce.Fields) == 0 {
				t.Fatalf("error is not a *ConfigError naming a field: %T %v", err, err)
			}
			if !bytes.Contains(data, []byte(fuzzSecretMark)) && strings.Contains(err.Error(), fuzzSecretMark) {
				t.Fatalf("a value from the environment is in the error text: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that Validate rejects: %v", err)
		}
		js, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("a parsed config cannot be written as JSON: %v", err)
		}
		if bytes.Contains(js, []byte("$")) {
			return // "$" in values would be read as references again
		}
		again, err := backend.ParseConfig(js, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("the config written as JSON does not parse: %v\n%s", err, js)
		}
		if d := cmp.Diff(cfg, again, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("JSON round trip changed the config (-parsed +again):\n%s", d)
		}
	})
}

// Values from the environment are hidden from config errors as the reference that was
// written, and a short one only as a whole word: the rest of the message stays readable.
func TestParseConfigErrorsHideEnvValues(t *testing.T) {
	env := func(vals map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	}
	_, err := backend.ParseConfig([]byte(`{name: shop, base_url: "${URL}", auth: {type: "${T}"}}`),
		env(map[string]string{"URL": "https://u:hunter2-long@/x", "T": "a"}))
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, leak := range []string{"hunter2-long", `"a"`} {
		if strings.Contains(msg, leak) {
			t.Errorf("error leaks %q: %s", leak, msg)
		}
	}
	for _, want := range []string{`invalid backend config "shop"`, `base_url: "${URL}" is not an absolute http(s) URL`, `auth.type: unknown type "${T}": use one of`, "oauth2_client_credentials"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
}
