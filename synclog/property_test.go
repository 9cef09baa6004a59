package synclog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// The property: whatever shape an entry has, a secret placed in a secret position (or
// registered as a literal secret and placed anywhere) appears nowhere after Entry
// redaction — not in any field, not in any header, not in the slog output.

var (
	benignWords   = []string{"page", "limit", "sort", "fields", "name", "sku", "status", "lang", "q", "order", "since_id", "cursor_x", "id", "title"}
	benignHeaders = []string{"Accept", "Content-Type", "User-Agent", "X-Request-Id", "X-Shop-Domain", "Link", "Retry-After", "Etag"}
	secretHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "Api-Key",
		"X-Auth-Token", "X-Access-Token", "X-Shopify-Access-Token", "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256",
		"X-Client-Secret", "X-My-Password", "X-Apikey", "X-Refresh-Token"}
	secretFields = []string{"access_token", "refresh_token", "id_token", "api_key", "apikey", "key", "token", "secret",
		"client_secret", "password", "passwd", "signature", "sig", "auth", "authorization", "db_password",
		"webhookSecret", "csrf_token", "user[password]"}
)

func randCase(rng *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if rng.IntN(2) == 0 {
			b[i] = byte(strings.ToUpper(string(c))[0])
		} else {
			b[i] = byte(strings.ToLower(string(c))[0])
		}
	}
	return string(b)
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// randSecret returns a secret that cannot occur by chance. With special, it may hold
// characters that need escaping in URLs and JSON.
func randSecret(rng *rand.Rand, special bool) string {
	const plain = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789-_."
	alphabet := plain
	if special {
		alphabet += `/+=&<>"?% `
	}
	n := 12 + rng.IntN(20)
	b := []byte{"QZXW"[rng.IntN(4)]}
	for len(b) < n {
		b = append(b, alphabet[rng.IntN(len(alphabet))])
	}
	return string(b)
}

// randJSON builds a random nested document with the secret under key at a random depth,
// sometimes inside arrays, sometimes wrapped in an object or array value.
func randJSON(rng *rand.Rand, key, secret string) any {
	var value any = secret
	switch rng.IntN(4) {
	case 0:
		value = map[string]any{"value": secret, "n": 1}
	case 1:
		value = []any{secret, 2}
	}
	var node any = map[string]any{key: value, pick(rng, benignWords): rng.IntN(100)}
	for range rng.IntN(5) {
		if rng.IntN(2) == 0 {
			node = []any{rng.IntN(9), node, map[string]any{"x": "y"}}[rng.IntN(2):]
		} else {
			node = map[string]any{pick(rng, benignWords): node, "other": []any{true, nil, 1.5}}
		}
	}
	return node
}

type propCase struct {
	e       Entry
	secret  string
	where   string
	literal bool
}

func genCase(rng *rand.Rand) propCase {
	e := Entry{
		Backend: "shop", Operation: "import product", Direction: Outbound, Method: "GET",
		URL:            "https://api.test/v1/products",
		RequestHeader:  http.Header{},
		ResponseHeader: http.Header{"Content-Type": {"application/json"}},
		ResponseBody:   `{"products":[]}`,
		Status:         200, Attempts: 1, Model: "product", Record: "42",
	}
	for range rng.IntN(4) {
		e.RequestHeader.Add(randCase(rng, pick(rng, benignHeaders)), pick(rng, benignWords))
	}
	q := url.Values{}
	for range rng.IntN(4) {
		q.Add(pick(rng, benignWords), strconv.Itoa(rng.IntN(1000)))
	}
	pairs := strings.Split(q.Encode(), "&")
	if q.Encode() == "" {
		pairs = nil
	}
	insert := func(p string) []string {
		i := rng.IntN(len(pairs) + 1)
		return append(pairs[:i:i], append([]string{p}, pairs[i:]...)...)
	}
	c := propCase{}
	special := rng.IntN(3) == 0
	c.secret = randSecret(rng, special)
	s := c.secret
	field := randCase(rng, pick(rng, secretFields))
	switch kind := rng.IntN(10); kind {
	case 0:
		h := randCase(rng, pick(rng, secretHeaders))
		v := s
		if strings.EqualFold(h, "authorization") && rng.IntN(2) == 0 {
			v = pick(rng, []string{"Bearer ", "Basic ", "Token "}) + s
		}
		if rng.IntN(2) == 0 {
			e.RequestHeader.Add(h, v)
		} else {
			e.ResponseHeader.Add(h, v)
		}
		c.where = "header " + h
	case 1:
		pairs = insert(url.QueryEscape(field) + "=" + url.QueryEscape(s))
		c.where = "query " + field
	case 2:
		e.URL = "https://api.test/cb#" + strings.Join(insert(url.QueryEscape(field)+"="+url.QueryEscape(s)), "&")
		pairs = nil
		c.where = "fragment " + field
	case 3:
		u, _ := url.Parse(e.URL)
		u.User = url.UserPassword(pick(rng, benignWords), s)
		e.URL = u.String()
		c.where = "userinfo"
	case 4:
		doc := randJSON(rng, field, s)
		if rng.IntN(4) == 0 { // the document travels as a string inside another one
			inner, _ := json.Marshal(doc)
			doc = map[string]any{"event": "x", "payload": string(inner)}
		}
		var b []byte
		if rng.IntN(2) == 0 {
			b, _ = json.MarshalIndent(doc, "", "  ")
		} else {
			b, _ = json.Marshal(doc)
		}
		if rng.IntN(2) == 0 {
			e.RequestHeader.Set("Content-Type", "application/json; charset=utf-8")
			e.RequestBody = string(b)
		} else {
			e.ResponseBody = string(b)
		}
		c.where = "json " + field
	case 5:
		fq := url.Values{}
		fq.Set(pick(rng, benignWords), "v")
		body := fq.Encode() + "&" + url.QueryEscape(field) + "=" + url.QueryEscape(s)
		e.RequestHeader.Set("Content-Type", "application/x-www-form-urlencoded")
		e.RequestBody = body
		c.where = "form " + field
	case 6:
		if special { // free-text patterns are for token-like values
			s = randSecret(rng, false)
			c.secret = s
		}
		js, _ := json.Marshal(map[string]string{field: s, "a": "b"})
		e.Error = pick(rng, []string{
			"request failed: " + field + "=" + s + " rejected",
			"request failed: " + field + ": " + s,
			fmt.Sprintf("unexpected response %q", js),
			"upstream said " + string(js),
			"sent Authorization: Bearer " + s + " and got 401",
			"dial https://bob:" + s + "@api.test/x: refused",
			`Get "https://api.test/x?` + field + "=" + s + `&a=1": EOF`,
			"sent header bearer " + s + "; got 401",
			"fault: <" + strings.Trim(field, "[]") + ">" + s + "</x>",
		})
		c.where = "error text"
	case 7:
		s = randSecret(rng, false) // XML would escape the special characters
		c.secret = s
		name := strings.Trim(field, "[]")
		if strings.Contains(name, "[") {
			name = "password"
		}
		e.ResponseHeader.Set("Content-Type", pick(rng, []string{"application/xml", "text/xml; charset=utf-8", "application/soap+xml"}))
		e.ResponseBody = "<?xml version=\"1.0\"?><r><" + pick(rng, benignWords) + ">1</" + "x><ns:" + name + ` a="b">` + s + "</ns:" + name + "></r>"
		c.where = "xml " + name
		if rng.IntN(2) == 0 { // as an attribute, with any white space around '='
			ws := func() string { return pick(rng, []string{"", " ", "\n", "\t ", "  "}) }
			q := pick(rng, []string{`"`, `'`})
			e.ResponseBody = "<r><el id=\"1\" " + name + ws() + "=" + ws() + q + s + q + ws() + "/></r>"
			c.where = "xml attribute " + name
		}
	default: // a literal secret, registered at runtime, anywhere
		c.literal = true
		c.where = "literal"
		switch rng.IntN(9) {
		case 0:
			e.URL = "https://api.test/bot" + url.PathEscape(s) + "/send"
		case 1:
			pairs = insert(pick(rng, benignWords) + "=" + url.QueryEscape(s))
		case 2:
			e.RequestHeader.Add(pick(rng, benignHeaders), "x "+s+" y")
		case 3:
			b, _ := json.Marshal(map[string]any{"note": s, "list": []string{s}})
			e.ResponseBody = string(b)
		case 4:
			e.ResponseHeader.Set("Content-Type", "text/plain")
			e.ResponseBody = "hello " + s
		case 5:
			e.Error = fmt.Sprintf("bad value %q", s)
		case 6:
			e.Operation = "op " + s
		case 7:
			e.Record = s
		default:
			e.Model, e.Backend = s, s
		}
	}
	if len(pairs) > 0 {
		e.URL += "?" + strings.Join(pairs, "&")
	}
	c.e = e
	return c
}

// encodings returns the forms in which s could leak.
func encodings(s string) []string {
	out := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	b, _ := json.Marshal(s)
	out = append(out, string(b[1:len(b)-1]))
	b2, _ := json.Marshal(string(b)) // JSON inside a JSON string
	out = append(out, string(b2[3:len(b2)-3]))
	q := strconv.Quote(s)
	out = append(out, q[1:len(q)-1])
	return append(out, strings.TrimPrefix(url.UserPassword("u", s).String(), "u:"))
}

func leaks(text, secret string) bool {
	for _, enc := range encodings(secret) {
		if strings.Contains(text, enc) {
			return true
		}
	}
	return false
}

func entryTexts(e *Entry) map[string]string {
	m := map[string]string{
		"Backend": e.Backend, "Operation": e.Operation, "Method": e.Method, "URL": e.URL,
		"RequestBody": e.RequestBody, "ResponseBody": e.ResponseBody, "Error": e.Error,
		"Model": e.Model, "Record": e.Record,
	}
	for name, h := range map[string]http.Header{"RequestHeader": e.RequestHeader, "ResponseHeader": e.ResponseHeader} {
		for k, vs := range h {
			m[name+"."+k] = k + ": " + strings.Join(vs, "\n")
		}
	}
	return m
}

func TestPropertySecretsNeverSurvive(t *testing.T) {
	// SYNCLOG_PROP_SEED and SYNCLOG_PROP_N explore beyond the fixed default run.
	seed, _ := strconv.ParseUint(os.Getenv("SYNCLOG_PROP_SEED"), 10, 64)
	iterations, _ := strconv.Atoi(os.Getenv("SYNCLOG_PROP_N"))
	if iterations <= 0 {
		iterations = 2000
		if testing.Short() {
			iterations = 300
		}
	}
	rng := rand.New(rand.NewPCG(20240601+seed, 7))
	for i := range iterations {
		c := genCase(rng)
		r := NewRedactor()
		if c.literal {
			r.AddSecrets(c.secret)
		}
		orig := c.e
		orig.RequestHeader = c.e.RequestHeader.Clone()
		orig.ResponseHeader = c.e.ResponseHeader.Clone()

		// Sanity: the generator really planted the secret.
		planted := false
		for _, v := range entryTexts(&orig) {
			planted = planted || leaks(v, c.secret)
		}
		if !planted {
			t.Fatalf("case %d (%s): generator did not plant the secret", i, c.where)
		}

		e := c.e
		r.Entry(&e)
		for _, pair := range [][2]string{{orig.RequestBody, e.RequestBody}, {orig.ResponseBody, e.ResponseBody}} {
			if gjson.Valid(pair[0]) && !gjson.Valid(pair[1]) {
				t.Fatalf("case %d (%s): valid JSON body became invalid:\n in %s\nout %s", i, c.where, pair[0], pair[1])
			}
		}
		for name, v := range entryTexts(&e) {
			if leaks(v, c.secret) {
				t.Fatalf("case %d (%s): secret %q survives in %s: %q\noriginal entry: %+v", i, c.where, c.secret, name, v, orig)
			}
		}

		// The slog line of the redacted entry, and of the raw entry logged through r.
		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		_ = NewSlogRecorder(log, WithBodyLimit(4<<10)).Record(context.Background(), e)
		_ = NewSlogRecorder(log, WithRedactor(r), WithBodyLimit(-1)).Record(context.Background(), orig)
		if leaks(buf.String(), c.secret) {
			t.Fatalf("case %d (%s): secret %q in slog output: %s", i, c.where, c.secret, buf.String())
		}
	}
}
