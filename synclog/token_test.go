package synclog

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Issue 9, defect 9: a short secret, or one made of words, is matched as a whole value,
// never inside other words or prose.
func TestShortAndWordSecretsMatchWholeValues(t *testing.T) {
	r := NewRedactor(WithSecrets("wrong", "ab12", "Open Sesame"))
	for in, want := range map[string]string{
		"wrong password":                      "wrong password",
		"the password is wrong.":              "the password is wrong.",
		"wrongly":                             "wrongly",
		"token=wrong":                         "token=[REDACTED]",
		"note=wrong&x=1":                      "note=[REDACTED]&x=1",
		`{"a":"wrong"}`:                       `{"a":"[REDACTED]"}`,
		"wrong":                               "[REDACTED]",
		"id ab12 rejected":                    "id [REDACTED] rejected",
		"xab12 ab123 ab12x":                   "xab12 ab123 ab12x",
		"key=ab12;next":                       "key=[REDACTED];next",
		"say Open Sesame to enter":            "say [REDACTED] to enter", // a phrase is a token even in prose
		"xOpen Sesame":                        "xOpen Sesame",
		`{"phrase":"Open Sesame"}`:            `{"phrase":"[REDACTED]"}`,
		"pass=Open+Sesame":                    "pass=[REDACTED]",
		"[REDACTED] stays as it is, ab12 not": "[REDACTED] stays as it is, [REDACTED] not",
	} {
		assert.Equal(t, want, r.String(in), "String(%q)", in)
	}
	assert.Equal(t, http.Header{"X-Note": {"[REDACTED]"}}, r.Header(http.Header{"X-Note": {"wrong"}}))
	assert.Equal(t, `{"error":"wrong password"}`, r.Body([]byte(`{"error":"wrong password"}`), "application/json"))

	// A long random secret is still found anywhere, even inside other text.
	r.AddSecrets("Zq9xLongSecret77")
	assert.Equal(t, "x[REDACTED]y", r.String("xZq9xLongSecret77y"))
}

func TestSemicolonSeparatedQueries(t *testing.T) {
	r := NewRedactor()
	assert.Equal(t, "https://h.example/p?limit=250;token=[REDACTED];status=any",
		r.URL("https://h.example/p?limit=250;token=abc123456;status=any"))
	assert.Equal(t, "a=1;password=[REDACTED];b=2", r.Body([]byte("a=1;password=xyz;b=2"), "application/x-www-form-urlencoded"))
	// A ';' inside a secret value that is not followed by another pair is part of the value.
	assert.Equal(t, "https://h.example/p?token=[REDACTED]&x=1", r.URL("https://h.example/p?token=abc;def&x=1"))
}

// Issue 9, defect 9: "cannot fetch token: 400 Bad Request" (x/oauth2) is a status line in
// prose, not a token. A pair's value that is an HTTP status code followed by its reason
// phrase is kept; every other value after a secret name is still hidden.
func TestStatusLineAfterSecretNameIsNotASecret(t *testing.T) {
	r := NewRedactor()
	for in, want := range map[string]string{
		// kept: a status code and its reason phrase
		"oauth2: cannot fetch token: 400 Bad Request":                "oauth2: cannot fetch token: 400 Bad Request",
		"oauth2: cannot fetch token: 401 Unauthorized\nResponse: {}": "oauth2: cannot fetch token: 401 Unauthorized\nResponse: {}",
		"refresh token: 503 Service Unavailable, retrying":           "refresh token: 503 Service Unavailable, retrying",
		"token: 429 too many requests":                               "token: 429 too many requests",
		"token=500 Internal Server Error":                            "token=500 Internal Server Error",
		// hidden: anything that is not exactly a status code and its phrase
		"token: abc123secret":             "token: [REDACTED]",
		"token: 400":                      "token: [REDACTED]",
		"token: 400Bad Request":           "token: [REDACTED] Request",
		"token: 400 Bad":                  "token: [REDACTED] Bad",
		"token: 400 Bad Requests":         "token: [REDACTED] Bad Requests",
		"token: 4000 Bad Request":         "token: [REDACTED] Bad Request",
		"token: 999 Bad Request":          "token: [REDACTED] Bad Request",
		"token: 400 Not Found":            "token: [REDACTED] Not Found",
		"token=x":                         "token=[REDACTED]",
		`"token": "400 Bad Request"`:      `"token": "[REDACTED]"`,
		`"token": "x"`:                    `"token": "[REDACTED]"`,
		"Authorization: Bearer x":         "Authorization: Bearer [REDACTED]",
		"Authorization: 401 Unauthorized": "Authorization: [REDACTED] Unauthorized",
		"password: 404 Not Found":         "password: 404 Not Found",
		"password: 404 Not Found-ish":     "password: [REDACTED] Not Found-ish",
	} {
		assert.Equal(t, want, r.String(in), "String(%q)", in)
	}
}
