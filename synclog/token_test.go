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
