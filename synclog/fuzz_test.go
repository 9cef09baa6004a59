package synclog

import (
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
	r := NewRedactor(WithSecrets("zz-literal-zz"))
	f.Fuzz(func(t *testing.T, in, ct string) {
		out := r.Body([]byte(in+"zz-literal-zz"), ct)
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
	for i := 0; i+len("zz-literal-zz") <= len(s); i++ {
		if s[i:i+len("zz-literal-zz")] == "zz-literal-zz" {
			return true
		}
	}
	return false
}
