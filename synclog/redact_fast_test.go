package synclog

import (
	"encoding/json"
	"fmt"
	"github.com/connkit/connkit/internal/audit"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// slowTwin returns a Redactor with r's rules that never takes the fast path.
func slowTwin(opts ...RedactOption) *Redactor {
	r := NewRedactor(opts...)
	r.slowOnly = true
	return r
}

// TestFastPathNeverTakenWithSecret: whenever a text holds a secret name (in any letter
// case, %-escaped, JSON-escaped, with the non-ASCII letters that lower-case to ASCII),
// "bearer", a password in a URL or a registered literal secret (raw or encoded), clean
// reports false and the full passes run.
func TestFastPathNeverTakenWithSecret(t *testing.T) {
	const lit = "Zq9-literal/secret+value"
	r := NewRedactor(WithSecrets(lit), WithJSONFields("pw"), WithQueryParams("x.sess id"))
	rng := rand.New(rand.NewPCG(1, 2))
	names := append([]string{"pw", "x.sess id"}, r.nameList...)
	for _, name := range names {
		for range 20 {
			variants := []string{
				randCase(rng, name),
				escapeSome(rng, randCase(rng, name), "%%%02X"),    // URL escapes
				escapeSome(rng, randCase(rng, name), `\u%04x`),    // JSON escapes
				strings.ReplaceAll(randCase(rng, name), " ", "+"), // form-encoded space
			}
			for _, v := range variants {
				for _, text := range []string{
					`{"a":1,"` + v + `":"x"}`,
					"a=1&" + v + "=x",
					"before " + v + " after",
					"<" + v + ">x</" + v + ">",
				} {
					if r.clean(text) {
						t.Errorf("clean(%q) = true: the name %q is in it", text, name)
					}
				}
			}
		}
	}
	for _, text := range []string{
		"\u212aEY=abc",             // Kelvin sign: "KEY" lower-cases to "key"
		"%E2%84%AAey=abc",          // the same, URL-escaped
		"\u0130D_TOKEN=abc",        // dotted capital I: lower-cases to "id_token"
		"%C4%B0d_token=abc",        // the same, URL-escaped
		"\xc4%B0d_token=abc",       // half escaped
		"sent BeArEr abcdefghijk",  // a bearer token in prose
		"dial https://u:pw@h.test", // a password in a URL
		`{"u":"ftp://bob:hunter2@files.test/x"}`,
	} {
		if r.clean(text) {
			t.Errorf("clean(%q) = true", text)
		}
	}
	for _, enc := range encodedVariants(lit) {
		for _, text := range []string{enc, "x" + enc + "y", `{"note":"` + enc + `"}`} {
			if r.clean(text) {
				t.Errorf("clean(%q) = true: it holds the literal secret (as %q)", text, enc)
			}
		}
	}
	// A secret registered after construction is seen too.
	r.AddSecrets("late-secret-4711")
	if r.clean("a late-secret-4711 b") {
		t.Error("clean ignores a secret added with AddSecrets")
	}
}

// escapeSome escapes random bytes of s with format (applied to the byte's value).
func escapeSome(rng *rand.Rand, s, format string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, format, s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// TestFastPathTakenForOrdinaryTraffic: the fast path is real — the usual bodies, headers
// and URLs without secrets are recognised as clean.
func TestFastPathTakenForOrdinaryTraffic(t *testing.T) {
	r := NewRedactor(WithSecrets("shpat_0123456789abcdef"))
	for _, text := range []string{
		string(body2K(false)),
		`{"product":{"id":42,"title":"Desk lamp","vendor":"Acme","price":"19.90","image":"https://cdn.test/a.png"}}`,
		"application/json; charset=utf-8",
		"Mon, 02 Jan 2026 15:04:05 GMT",
		"https://api.test/v1/products?page=2&limit=50",
		"name=Desk+lamp&price=19.90",
		`{"note":"50% off, \"today\"\nonly"}`,
	} {
		if !r.clean(text) {
			t.Errorf("clean(%q) = false; want the fast path", text)
		}
	}
}

// TestFastPathMatchesSlowPath: on every entry of the property generator and on
// ordinary bodies, the fast path gives byte for byte what the full passes give.
func TestFastPathMatchesSlowPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(99, 3))
	check := func(i int, what string, opts []RedactOption, secrets []string, e Entry) {
		fast, slow := NewRedactor(opts...), slowTwin(opts...)
		fast.AddSecrets(secrets...)
		slow.AddSecrets(secrets...)
		fe, se := e, e
		fast.Entry(&fe)
		slow.Entry(&se)
		if diff := cmp.Diff(se, fe); diff != "" {
			t.Fatalf("case %d (%s): fast path differs from the full passes (-slow +fast):\n%s", i, what, diff)
		}
	}
	for i := range 3000 {
		c := genCase(rng)
		var secrets []string
		if c.literal {
			secrets = []string{c.secret}
		}
		check(i, c.where, nil, secrets, c.e)
	}
	bodies := []string{
		string(body2K(false)), string(body2K(true)),
		`{"u":"https://bob:pw@h.test/x","k":"v"}`,
		`{"q":"a=1&b=2","r":"x: y"}`,
		"<r><name>x</name><note a=\"1\">y</note></r>",
		"plain text with https://cdn.test/x.png and a@b.test",
	}
	for i, b := range bodies {
		for _, ct := range []string{"application/json", "text/plain", "application/x-www-form-urlencoded", "application/xml", ""} {
			e := Entry{
				URL:            "https://api.test/x?page=" + strconv.Itoa(i),
				RequestHeader:  http.Header{"Content-Type": {ct}, "X-Note": {b}},
				ResponseHeader: http.Header{"Content-Type": {ct}},
				RequestBody:    b, ResponseBody: b, Error: b,
			}
			check(i, "body "+ct, []RedactOption{WithJSONFields("name")}, []string{"cdn.test"}, e)
		}
	}
	// Queries whose keys only decode to secret names.
	for i, q := range []string{"%74oken=abc", "pass%77ord=x&a=b", "a=1#acc%65ss_token=z", "x=" + url.QueryEscape("token=abc")} {
		e := Entry{URL: "https://api.test/x?" + q}
		check(i, "query "+q, nil, nil, e)
	}
	// JSON keys that only decode to secret names.
	for i, k := range []string{`\u0074oken`, `pass\u0077ord`, `\u0130D_TOKEN`} {
		b, _ := json.Marshal(map[string]string{"a": "b"})
		e := Entry{ResponseBody: `{"` + k + `":"v",` + string(b[1:])}
		check(i, "json key "+k, nil, nil, e)
	}
}

func TestGeneration(t *testing.T) {
	r := NewRedactor()
	g0 := r.generation()
	r.AddSecrets("abc")       // too short: ignored
	r.AddSecrets()            // nothing
	if r.generation() != g0 { // nothing changed
		t.Fatalf("generation moved without a new secret")
	}
	r.AddSecrets("secret-one")
	g1 := r.generation()
	if g1 == g0 {
		t.Fatal("generation did not move when a secret was added")
	}
	r.AddSecrets("secret-one")
	if r.generation() != g1 {
		t.Fatal("generation moved for a secret already known")
	}
	if audit.RedactorGeneration(r) != g1 {
		t.Fatal("audit.RedactorGeneration does not read the generation")
	}
}

// TestHeaderVerdictCacheBounded: past the cache's bound, header names are still judged
// (and secret ones redacted); the cache itself stops growing.
func TestHeaderVerdictCacheBounded(t *testing.T) {
	r := NewRedactor()
	for i := range maxCachedHeaderNames + 50 {
		h := http.Header{fmt.Sprintf("X-Plain-%d", i): {"v"}, fmt.Sprintf("X-Token-%d", i): {"t"}}
		out := r.Header(h)
		if got := out.Get(fmt.Sprintf("X-Token-%d", i)); got != Redacted {
			t.Fatalf("header %d: secret header kept %q", i, got)
		}
		if got := out.Get(fmt.Sprintf("X-Plain-%d", i)); got != "v" {
			t.Fatalf("header %d: plain header became %q", i, got)
		}
	}
	if n := len(*r.headerNames.Load()); n > maxCachedHeaderNames {
		t.Fatalf("header name cache grew to %d entries", n)
	}
	// Cached verdicts are the verdicts: the same names again give the same result.
	out := r.Header(http.Header{"X-Token-1": {"t"}, "Authorization": {"Bearer abc"}, "Authorization2": {"x"}})
	if out.Get("X-Token-1") != Redacted || out.Get("Authorization") != "Bearer "+Redacted || out.Get("Authorization2") != "x" {
		t.Fatalf("cached verdicts wrong: %v", out)
	}
}
