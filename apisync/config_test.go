package apisync_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/apisync"
)

// Bad config files: each error names the file, the config, the line and the field.
func TestBadConfigs(t *testing.T) {
	cases := []struct {
		name, file string
		field      string
		line       int
		problem    string
	}{
		{"unknown field", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines: [{field: a, key: a}]\npage_sise: 3\n",
			"page_sise", 7, "not a known field (did you mean page_size?)"},
		{"unknown field in a line", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines:\n  - {field: a, key: a}\n  - {field: b, key: b, knd: plain}\n",
			"lines[1].knd", 8, "not a known field (did you mean kind?)"},
		{"two outbound methods", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST, PUT]\nlines: [{field: a, key: a}]\n",
			"methods", 5, "exactly one HTTP method"},
		{"update method of a PUT config", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a/{id}\nmethods: [PUT]\nupdate_method: PATCH\nlines: [{field: a, key: a}]\n",
			"update_method", 6, "is for out configs sending POST"},
		{"unknown update method", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nupdate_method: patch\nlines: [{field: a, key: a}]\n",
			"update_method", 6, `unknown update method "patch"`},
		{"update method of an in config", "name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [GET]\nupdate_method: PATCH\nlines: [{field: a, key: a}]\n",
			"update_method", 6, "is for out configs"},
		{"unknown method", "name: a\ndirection: in\nmodel: m\npath: /a\nmethods:\n  - GET\n  - FETCH\nlines: [{field: a, key: a}]\n",
			"methods[1]", 7, `unknown method "FETCH"`},
		{"bad kind", "name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [GET]\nlines:\n  - {field: a, key: a}\n  - {field: b, key: b, kind: magic}\n",
			"lines[1].kind", 8, `unknown kind "magic"`},
		{"relational without through", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines:\n  - {field: partner_id.name, key: c, kind: relational}\n",
			"lines[0].through", 7, "want 1 model(s), got 0"},
		{"expression that does not compile", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines:\n  - {field: a, key: a}\n  - {key: b, kind: expression, expression: 'record.a +* 2'}\n",
			"lines[1].expression", 8, ""},
		{"two identifiers", "name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [PUT]\nlines:\n  - {field: a, key: a, identifier: true}\n  - {field: b, key: b, identifier: true}\n",
			"lines[1].identifier", 8, "only one line"},
		{"bad operator", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines: [{field: a, key: a}]\nfilter:\n  - [active, '=', true]\n  - [rank, '=>', 0]\n",
			"filter[1]", 9, `unknown operator "=>"`},
		{"bad condition shape", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines: [{field: a, key: a}]\nfilter: [[active, true]]\n",
			"filter[0]", 7, "list of three"},
		{"bad timeout", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines: [{field: a, key: a}]\nread_timeout: soon\n",
			"read_timeout", 7, "invalid duration"},
		{"wrong type", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines: [{field: a, key: a}]\npaginated: yes please\n",
			"paginated", 7, "true or false"},
		{"missing secret", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nauth: {type: bearer, token: '${NOPE_TOKEN}'}\nlines: [{field: a, key: a}]\n",
			"auth.token", 6, "NOPE_TOKEN is not set"},
		{"relative url", "name: a\ndirection: out\nmodel: m\nurl: /a\nmethods: [POST]\nlines: [{field: a, key: a}]\n",
			"url", 4, "absolute http or https URL"},
		{"bad schedule", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a\nmethods: [POST]\nlines: [{field: a, key: a}]\ntriggers:\n  schedule: every tuesday\n",
			"triggers.schedule", 8, "invalid spec"},
		{"{id} in a POST url", "name: a\ndirection: out\nmodel: m\nurl: https://x.io/a/{id}\nmethods: [POST]\nlines: [{field: a, key: a}]\n",
			"url", 4, "{id} names one remote record"},
		{"setting of the other direction", "name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [GET]\nread_timeout: 5s\nlines: [{field: a, key: a}]\n",
			"read_timeout", 6, "is for out configs"},
		{"path with a trailing slash", "name: a\ndirection: in\nmodel: m\npath: /a/\nmethods: [GET]\nlines: [{field: a, key: a}]\n",
			"path", 4, "must not end with '/'"},
		{"unknown auth", "name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [GET]\nauth: {type: oauth}\nlines: [{field: a, key: a}]\n",
			"auth.type", 6, `unknown type "oauth"`},
		{"not YAML", "name: [a\n", "(file)", 0, "not valid JSON or YAML"},
		{"JSON file", `{"name": "a", "direction": "sideways", "model": "m", "lines": [{"field": "a", "key": "a"}]}`,
			"direction", 1, `unknown direction "sideways"`},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml", tc.file)
			_, err := apisync.Load(path)
			require.Error(t, err)
			assert.ErrorIs(t, err, apisync.ErrInvalidConfig)
			var ce *apisync.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, path, ce.File)
			var fe *apisync.FieldError
			for _, f := range ce.Fields {
				if f.Field == tc.field {
					fe = f
				}
			}
			require.NotNil(t, fe, "no error for field %s in %v", tc.field, err)
			assert.Equal(t, tc.line, fe.Line, "line of %s", tc.field)
			assert.Contains(t, fe.Problem, tc.problem)
			msg := err.Error()
			assert.Contains(t, msg, filepath.Base(path), "the message names the file")
			assert.Contains(t, msg, tc.field, "the message names the field")
			if tc.field != "(file)" {
				assert.Contains(t, msg, `config "a"`, "the message names the config")
			}
		})
	}
}

// A secret taken from the environment never appears in an error.
func TestConfigErrorsHideSecrets(t *testing.T) {
	_, err := apisync.Parse([]byte("name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [GET]\nauth: {type: none, token: '${TOK}'}\nlines: [{field: a, key: a}]\n"), "a.yaml",
		func(string) (string, bool) { return "super-secret-token-value", true })
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "super-secret-token-value")
}

// Load reads a directory; names and inbound routes must be unique across files.
func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [GET]\nlines: [{field: x, key: x}]\n")
	writeFile(t, dir, "b.json", `{"name":"b","direction":"out","model":"m","url":"https://x.io/b","methods":["POST"],"lines":[{"field":"x","key":"x"}]}`)
	writeFile(t, dir, "notes.txt", "ignored")
	cfgs, err := apisync.Load(dir)
	require.NoError(t, err)
	require.Len(t, cfgs, 2)
	assert.Equal(t, "a", cfgs[0].Name)
	assert.Equal(t, "b", cfgs[1].Name)
	assert.Equal(t, filepath.Join(dir, "b.json"), cfgs[1].Source)

	writeFile(t, dir, "c.yaml", "name: a\ndirection: in\nmodel: m\npath: /a\nmethods: [GET]\nlines: [{field: x, key: x}]\n")
	_, err = apisync.Load(dir)
	require.ErrorIs(t, err, apisync.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "c.yaml")
	assert.Contains(t, err.Error(), "a.yaml")

	_, err = apisync.Load(filepath.Join(dir, "missing"))
	assert.True(t, errors.Is(err, os.ErrNotExist))
}

// The examples shipped with the repository load.
func TestExamplesLoad(t *testing.T) {
	t.Setenv("CRM_TOKEN", "example-token")
	t.Setenv("PARTNER_API_KEY", "example-key")
	cfgs, err := apisync.Load("../examples/apisync")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(cfgs), 2)
}

// rewrite sends every request to the test server instead of its host.
type rewrite struct{ target *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = rw.target.Scheme, rw.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

// The shipped examples work end to end: a partner posted to the inbound endpoint is
// pushed to the CRM by the on_create trigger, mapped as the config says.
func TestExamplesEndToEnd(t *testing.T) {
	t.Setenv("CRM_TOKEN", "example-crm-token")
	t.Setenv("PARTNER_API_KEY", "example-partner-key")
	cfgs, err := apisync.Load("../examples/apisync")
	require.NoError(t, err)
	rc := newReceiver(t, func(int, received) (int, string) { return 201, `{"id":"crm-42"}` })
	u, _ := url.Parse(rc.URL)
	s := openSync(t, nil, cfgs, apisync.WithClientOptions(adapter.WithBaseTransport(rewrite{u})))
	h := s.Handler()
	key := map[string]string{"X-API-Key": "example-partner-key"}
	code, out, _ := call(t, h, "POST", "/api/partners", `{"full_name":"Acme Corp","rank":0}`, key)
	require.Equal(t, 201, code, out)
	code, out, _ = call(t, h, "POST", "/api/partners", `{"full_name":"Ada","email_address":"ada@x.io","rank":2,"country":"UA","company_name":"Acme Corp"}`, key)
	require.Equal(t, 201, code, out)
	assert.Equal(t, "Acme Corp", out["data"].(map[string]any)["company_name"])
	code, out, _ = call(t, h, "GET", "/api/partners?min_rank=1&country=UA,PL", "", key)
	require.Equal(t, 200, code, out)
	require.Len(t, out["data"], 1)

	require.NoError(t, s.Start(t.Context()))
	waitFor(t, 15*time.Second, "the on_create push of Ada", func() bool { return len(rc.requests()) == 1 })
	r := rc.requests()[0]
	assert.Equal(t, "POST", r.Method)
	assert.Equal(t, "/api/customers", r.Path)
	assert.Equal(t, "Bearer example-crm-token", r.Header.Get("Authorization"))
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Body), &body))
	assert.Equal(t, "Ada", body["full_name"])
	assert.Equal(t, "Acme Corp", body["company_name"])
	assert.Equal(t, "connkit", body["meta"].(map[string]any)["source"])
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, rc.requests(), 1, "Acme (rank 0) is outside the push's filter")
}
