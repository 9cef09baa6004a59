package synclog

import (
	"net/http"
	"testing"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// FuzzRedactorBody checks that redaction never panics, keeps valid JSON valid and valid
// UTF-8 valid, and scrubs a registered literal secret from any input.
func FuzzRedactorBody(f *testing.F) {
	for _, s := range []string{
		`{"password":"x","a":[{"token":{"b":1}}]}`,
		`{"payload":"{\"password\":\"hunter2\"}"}`,
		`{"e":"client_secret=abc\"","u":"https://u:p@h/?token=t"}`,
		`user=bob&password=x`, `<a><password>x</password></a>`, `Authorization: Bearer abcdefgh`,
		`{"x":"password='abc"}`, `{"x":"token={abc"}`, `{"k":"a\\"}`, "",
	} {
		f.Add(s, "application/json")
		f.Add(s, "text/plain")
	}
	r := NewRedactor(WithSecrets("Zz9-literal-zz"))
	f.Fuzz(func(t *testing.T, in, ct string) {
		out := r.Body([]byte(in+"Zz9-literal-zz"), ct)
		if containsLiteral(out) {
			t.Fatalf("literal secret survived: %q", out)
		}
		got := r.Body([]byte(in), ct)
		if gjson.Valid(in) && !gjson.Valid(got) {
			t.Fatalf("valid JSON became invalid:\n in %q\nout %q", in, got)
		}
		if utf8.ValidString(in) && !utf8.ValidString(got) {
			t.Fatalf("valid UTF-8 became invalid:\n in %q\nout %q", in, got)
		}
		_ = r.String(in)
		_ = r.URL(in)
	})
}

func containsLiteral(s string) bool {
	for i := 0; i+len("Zz9-literal-zz") <= len(s); i++ {
		if s[i:i+len("Zz9-literal-zz")] == "Zz9-literal-zz" {
			return true
		}
	}
	return false
}

// FuzzFastPathMatchesSlowPath is the differential test of the fast path: on any text,
// under any content type and with any literal secret registered, a Redactor that may
// skip the full passes (clean) redacts exactly what one that always runs them does, in
// every method.
func FuzzFastPathMatchesSlowPath(f *testing.F) {
	for _, s := range []string{
		`{"password":"x","a":[{"token":{"b":1}}]}`, `{"items":[{"id":1,"title":"lamp"}]}`,
		"limit=250&status=any", "a=1;token=abc;b=2", "%74oken=abc", `{"\u0074oken":"v"}`,
		"https://bob:pw@h.test/x?k=1", "sent Bearer abcdefghijk", "wrong password", "token=wrong",
		"<a><password>x</password></a>", "\u212aEY=abc", "plain text",
	} {
		f.Add(s, "application/json", "wrong")
		f.Add(s, "text/plain", "Zq9xLongSecret77")
		f.Add(s, "application/x-www-form-urlencoded", "ab1d")
	}
	f.Fuzz(func(t *testing.T, in, ct, secret string) {
		fast, slow := NewRedactor(), slowTwin()
		if secret != "" {
			fast.AddSecrets(secret)
			slow.AddSecrets(secret)
		}
		for _, m := range []struct {
			name string
			fn   func(r *Redactor) string
		}{
			{"Body", func(r *Redactor) string { return r.Body([]byte(in), ct) }},
			{"String", func(r *Redactor) string { return r.String(in) }},
			{"URL", func(r *Redactor) string { return r.URL(in) }},
			{"Header", func(r *Redactor) string { return r.Header(http.Header{"X-A": {in}, ct: {in}}).Get("X-A") }},
		} {
			if a, b := m.fn(fast), m.fn(slow); a != b {
				t.Fatalf("%s(%q, %q) with secret %q: fast path %q, full passes %q", m.name, in, ct, secret, a, b)
			}
		}
	})
}
