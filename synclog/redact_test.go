package synclog

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"
)

func TestHeaderRedaction(t *testing.T) {
	r := NewRedactor(WithHeaders("X-Custom-Private"), WithSecrets("literal-secret-1"))
	tests := []struct {
		name, header, in, want string
	}{
		{"bearer keeps scheme", "Authorization", "Bearer abc.def.ghi", "Bearer [REDACTED]"},
		{"basic keeps scheme", "Authorization", "Basic dXNlcjpwYXNz", "Basic [REDACTED]"},
		{"lowercase scheme kept", "authorization", "bearer abc", "bearer [REDACTED]"},
		{"aws scheme kept", "Authorization", "AWS4-HMAC-SHA256 Credential=x, Signature=y", "AWS4-HMAC-SHA256 [REDACTED]"},
		{"bare credential", "Authorization", "abcdef", "[REDACTED]"},
		{"scheme-like credential with symbols", "Authorization", "ab/c+= def", "[REDACTED]"},
		{"unknown first word is credential", "Authorization", "Xyz123abc rest", "[REDACTED]"},
		{"proxy authorization", "Proxy-Authorization", "Basic Zm9v", "Basic [REDACTED]"},
		{"cookie", "Cookie", "sid=123; theme=dark", "[REDACTED]"},
		{"set-cookie", "Set-Cookie", "sid=123; Path=/; HttpOnly", "[REDACTED]"},
		{"x-api-key", "X-Api-Key", "k-123", "[REDACTED]"},
		{"api-key", "Api-Key", "k-123", "[REDACTED]"},
		{"x-auth-token", "X-Auth-Token", "t", "[REDACTED]"},
		{"x-access-token", "X-Access-Token", "t", "[REDACTED]"},
		{"shopify token", "X-Shopify-Access-Token", "shpat_123", "[REDACTED]"},
		{"github signature", "X-Hub-Signature-256", "sha256=abc", "[REDACTED]"},
		{"shopify hmac", "X-Shopify-Hmac-Sha256", "abc=", "[REDACTED]"},
		{"contains secret", "X-Client-Secret", "abc", "[REDACTED]"},
		{"contains password", "X-Db-Password", "abc", "[REDACTED]"},
		{"contains apikey", "X-ApiKey", "abc", "[REDACTED]"},
		{"contains token, odd case", "x-CSRF-TOKEN", "abc", "[REDACTED]"},
		{"option header", "x-custom-private", "abc", "[REDACTED]"},
		{"plain header kept", "Content-Type", "application/json", "application/json"},
		{"empty secret kept empty", "Authorization", "", ""},
		{"literal secret in plain header", "X-Note", "value literal-secret-1 end", "value [REDACTED] end"},
		{"token in Link URL", "Link", `<https://api.test/x?page=2&access_token=abc>; rel="next"`, `<https://api.test/x?page=2&access_token=[REDACTED]>; rel="next"`},
		{"userinfo in Location", "Location", "https://bob:pw@h.test/x", "https://bob:[REDACTED]@h.test/x"},
		{"literal secret after scheme", "Authorization", "Bearer literal-secret-1", "Bearer [REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h[tt.header] = []string{tt.in}
			got := r.Header(h)
			if got[tt.header][0] != tt.want {
				t.Errorf("Header(%s: %q) = %q, want %q", tt.header, tt.in, got[tt.header][0], tt.want)
			}
			if h[tt.header][0] != tt.in {
				t.Errorf("input header modified: %q", h[tt.header][0])
			}
		})
	}
}

func TestHeaderNilAndMultiValue(t *testing.T) {
	r := NewRedactor()
	if got := r.Header(nil); got != nil {
		t.Fatalf("Header(nil) = %v, want nil", got)
	}
	h := http.Header{"Set-Cookie": {"a=1", "b=2"}, "Accept": {"a", "b"}, "Empty": {}}
	got := r.Header(h)
	want := http.Header{"Set-Cookie": {Redacted, Redacted}, "Accept": {"a", "b"}, "Empty": {}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Header mismatch (-want +got):\n%s", d)
	}
	got["Accept"][0] = "changed" // the copy must not share arrays with the input
	if h["Accept"][0] != "a" {
		t.Fatal("Header returned values sharing memory with the input")
	}
}

func TestURLRedaction(t *testing.T) {
	r := NewRedactor(WithQueryParams("shop_pin"), WithSecrets("s3cr3t-path"), WithAllowed("page_token"))
	tests := []struct{ name, in, want string }{
		{"access_token", "https://a.test/x?access_token=abc&page=2", "https://a.test/x?access_token=[REDACTED]&page=2"},
		{"order kept", "https://a.test/x?z=1&api_key=k&a=2", "https://a.test/x?z=1&api_key=[REDACTED]&a=2"},
		{"case-insensitive", "https://a.test/x?API_KEY=k&Token=t", "https://a.test/x?API_KEY=[REDACTED]&Token=[REDACTED]"},
		{"every default name", "/x?refresh_token=1&id_token=2&apikey=3&key=4&secret=5&client_secret=6&password=7&passwd=8&signature=9&sig=10&auth=11&authorization=12",
			"/x?refresh_token=[REDACTED]&id_token=[REDACTED]&apikey=[REDACTED]&key=[REDACTED]&secret=[REDACTED]&client_secret=[REDACTED]&password=[REDACTED]&passwd=[REDACTED]&signature=[REDACTED]&sig=[REDACTED]&auth=[REDACTED]&authorization=[REDACTED]"},
		{"substring names", "/x?db_password=1&my_secret_v=2&csrftoken=3&X-Amz-Signature=4&X-Amz-Credential=5",
			"/x?db_password=[REDACTED]&my_secret_v=[REDACTED]&csrftoken=[REDACTED]&X-Amz-Signature=[REDACTED]&X-Amz-Credential=[REDACTED]"},
		{"escaped key", "/x?access%5Ftoken=abc", "/x?access%5Ftoken=[REDACTED]"},
		{"bracket key", "/x?user%5Bpassword%5D=abc", "/x?user%5Bpassword%5D=[REDACTED]"},
		{"repeated", "/x?token=a&token=b", "/x?token=[REDACTED]&token=[REDACTED]"},
		{"empty value kept", "/x?token=&a=1", "/x?token=&a=1"},
		{"no value kept", "/x?token&a=1", "/x?token&a=1"},
		{"option param", "/x?SHOP_PIN=1234", "/x?SHOP_PIN=[REDACTED]"},
		{"allowed substring name", "/x?page_token=abc", "/x?page_token=abc"},
		{"userinfo password stripped", "https://bob:hunter2@a.test/x", "https://bob@a.test/x"},
		{"userinfo empty password", "https://sk_live_1:@a.test/x", "https://sk_live_1@a.test/x"},
		{"username only kept", "https://bob@a.test/x", "https://bob@a.test/x"},
		{"fragment params", "https://a.test/cb#access_token=abc&state=1", "https://a.test/cb#access_token=[REDACTED]&state=1"},
		{"literal secret in path", "https://a.test/bots3cr3t-path/send", "https://a.test/bot[REDACTED]/send"},
		{"no secrets unchanged", "https://a.test/x?a=1&b=2", "https://a.test/x?a=1&b=2"},
		{"unparsable scrubbed", "https://a.test/%zz?token=abc s3cr3t-path", "https://a.test/%zz?token=[REDACTED] [REDACTED]"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.URL(tt.in); got != tt.want {
				t.Errorf("URL(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestAllowedCannotWeakenExactNames(t *testing.T) {
	r := NewRedactor(WithAllowed("token", "Authorization"))
	if got := r.URL("/x?token=abc"); got != "/x?token=[REDACTED]" {
		t.Errorf("allow list weakened an exact name: %q", got)
	}
	if got := r.Header(http.Header{"Authorization": {"Bearer x"}}).Get("Authorization"); got != "Bearer [REDACTED]" {
		t.Errorf("allow list weakened Authorization: %q", got)
	}
}

func TestBodyRedaction(t *testing.T) {
	r := NewRedactor(WithJSONFields("pin"), WithSecrets("lit-secret-99"))
	const ct = "application/json"
	tests := []struct{ name, in, ct, want string }{
		{"top level", `{"user":"bob","password":"hunter2"}`, ct, `{"user":"bob","password":"[REDACTED]"}`},
		{"nested", `{"a":{"b":{"access_token":"x","n":1}}}`, ct, `{"a":{"b":{"access_token":"[REDACTED]","n":1}}}`},
		{"objects in arrays", `[{"token":"a"},{"x":[{"client_secret":"b"}]}]`, ct, `[{"token":"[REDACTED]"},{"x":[{"client_secret":"[REDACTED]"}]}]`},
		{"non-string values", `{"pin":1234,"secret":true,"key":null,"x":2}`, ct, `{"pin":"[REDACTED]","secret":"[REDACTED]","key":"[REDACTED]","x":2}`},
		{"object value", `{"auth":{"user":"u","pass":"p"},"x":1}`, ct, `{"auth":"[REDACTED]","x":1}`},
		{"array value", `{"tokens":["a","b"],"x":1}`, ct, `{"tokens":"[REDACTED]","x":1}`},
		{"case-insensitive + substring", `{"Refresh_Token":"a","dbPassword":"b"}`, ct, `{"Refresh_Token":"[REDACTED]","dbPassword":"[REDACTED]"}`},
		{"escaped key", `{"pass\u0077ord":"x"}`, ct, `{"pass\u0077ord":"[REDACTED]"}`},
		{"escaped quotes in value", `{"password":"a\"b\\","x":"y"}`, ct, `{"password":"[REDACTED]","x":"y"}`},
		{"whitespace kept", "{\n  \"token\" : \"abc\",\n  \"x\": 1\n}", ct, "{\n  \"token\" : \"[REDACTED]\",\n  \"x\": 1\n}"},
		{"secret name as value is not a key", `{"type":"password","value":"x"}`, ct, `{"type":"password","value":"x"}`},
		{"vendor json type", `{"token":"a"}`, "application/vnd.api+json; charset=utf-8", `{"token":"[REDACTED]"}`},
		{"untyped json sniffed", ` {"token":"a"}`, "", ` {"token":"[REDACTED]"}`},
		{"no secret unchanged", `{"a":[1,2,{"b":"c"}]}`, ct, `{"a":[1,2,{"b":"c"}]}`},
		{"json inside a json string", `{"payload":"{\"password\":\"hunter2\",\"a\":1}","n":1}`, ct, `{"payload":"{\"password\":\"[REDACTED]\",\"a\":1}","n":1}`},
		{"key=value inside a json string", `{"error":"bad request: client_secret=abc\"","url":"https://u:pw@h.test/?token=t&x=1"}`, ct,
			`{"error":"bad request: client_secret=[REDACTED]\"","url":"https://u:[REDACTED]@h.test/?token=[REDACTED]&x=1"}`},
		{"timestamps untouched", `{"at":"2025-01-01T10:00:00Z","link":"https://a.test/x?page=2"}`, ct, `{"at":"2025-01-01T10:00:00Z","link":"https://a.test/x?page=2"}`},
		{"literal secret in json value", `{"note":"lit-secret-99"}`, ct, `{"note":"[REDACTED]"}`},
		{"invalid json: truncated", `{"user":"bob","password":"hunt`, ct, `{"user":"bob","password":"[REDACTED]`},
		{"invalid json: js-style", `{password: 'abc', x: 1}`, ct, `{password: '[REDACTED]', x: 1}`},
		{"invalid json: literal", `{"x": lit-secret-99`, ct, `{"x": [REDACTED]`},
		{"form", `user=bob&password=hunter2&a=1`, "application/x-www-form-urlencoded", `user=bob&password=[REDACTED]&a=1`},
		{"form json-field name", `pin=1234&x=1`, "application/x-www-form-urlencoded; charset=utf-8", `pin=[REDACTED]&x=1`},
		{"form bracket", `user%5Bpassword%5D=abc&grant_type=client_credentials&client_secret=s`, "application/x-www-form-urlencoded",
			`user%5Bpassword%5D=[REDACTED]&grant_type=client_credentials&client_secret=[REDACTED]`},
		{"text key=value", "error: token=abc rejected", "text/plain", "error: token=[REDACTED] rejected"},
		{"text literal", "hello lit-secret-99", "text/plain", "hello [REDACTED]"},
		{"xml body", "<r><api_key>k1</api_key><n>1</n></r>", "application/xml", "<r><api_key>[REDACTED]</api_key><n>1</n></r>"},
		{"empty", "", ct, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Body([]byte(tt.in), tt.ct)
			if got != tt.want {
				t.Errorf("Body(%q, %q)\n got %q\nwant %q", tt.in, tt.ct, got, tt.want)
			}
			if gjson.Valid(tt.in) && !gjson.Valid(got) {
				t.Errorf("valid JSON became invalid: %s", got)
			}
		})
	}
}

func TestBodyJSONStaysValid(t *testing.T) {
	r := NewRedactor()
	in := `{"a":[{"token":{"x":[1,{"y":"}"}]},"b":"]"}],"password":"p","c":{"secret":[[]]}}`
	got := r.Body([]byte(in), "application/json")
	if !gjson.Valid(got) {
		t.Fatalf("redacted JSON is invalid: %s", got)
	}
	if want := `{"a":[{"token":"[REDACTED]","b":"]"}],"password":"[REDACTED]","c":{"secret":"[REDACTED]"}}`; got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func TestStringRedaction(t *testing.T) {
	r := NewRedactor(WithSecrets("my-literal-secret"))
	tests := []struct{ name, in, want string }{
		{"key=value", "login failed password=hunter2 for bob", "login failed password=[REDACTED] for bob"},
		{"key: value", "token: abc, next", "token: [REDACTED], next"},
		{"json pair", `body {"password":"x y z","a":1}`, `body {"password":"[REDACTED]","a":1}`},
		{"json pair spaced", `{"secret" : "abc"}`, `{"secret" : "[REDACTED]"}`},
		{"go-quoted json", `unexpected body "{\"access_token\":\"abc\",\"a\":1}"`, `unexpected body "{\"access_token\":\"[REDACTED]\",\"a\":1}"`},
		{"single quotes", `password='x y'`, `password='[REDACTED]'`},
		{"authorization header text", "sent Authorization: Bearer abc.def", "sent Authorization: Bearer [REDACTED]"},
		{"auth value then words", "auth=Abc123 rejected", "auth=[REDACTED] rejected"},
		{"unterminated quote", `password="abc`, `password="[REDACTED]`},
		{"url in text", `Get "https://a.test/x?api_key=k&b=1": EOF`, `Get "https://a.test/x?api_key=[REDACTED]&b=1": EOF`},
		{"userinfo in text", "dial https://bob:pw@a.test/x failed", "dial https://bob:[REDACTED]@a.test/x failed"},
		{"literal", "token my-literal-secret leaked", "token [REDACTED] leaked"},
		{"literal quoted by %q", `"my-literal-secret"`, `"[REDACTED]"`},
		{"harmless", "status 500: internal error at 12:30", "status 500: internal error at 12:30"},
		{"empty value", "password= next", "password= next"},
		{"object value", `"auth":{"u":"x"} rest`, `"auth":[REDACTED] rest`},
		{"xml element", "<login><user>bob</user><password>hunter2</password></login>", "<login><user>bob</user><password>[REDACTED]</password></login>"},
		{"xml namespaced with attrs", `<wsse:Password Type="PasswordText">pw</wsse:Password>`, `<wsse:Password Type="PasswordText">[REDACTED]</wsse:Password>`},
		{"xml unterminated", "<token>abc", "<token>abc"},
		{"xml closed unterminated", "</x><token>abc", "</x><token>[REDACTED]"},
		{"xml harmless", "<a><b>1</b></a>", "<a><b>1</b></a>"},
		{"free bearer", "server rejected bearer eyJhbGciOiJIUzI1.x.y today", "server rejected bearer [REDACTED] today"},
		{"bearer prose kept", "the Bearer token is missing", "the Bearer token is missing"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	r := NewRedactor()
	r.AddSecrets("abc", "", "ab1d", "ab1d") // short ones ignored, duplicates once
	if got := r.String("abc ab1d"); got != "abc [REDACTED]" {
		t.Errorf("String = %q", got)
	}
	// A secret containing another is replaced whole, whichever was added first.
	r.AddSecrets("xxab1dxx")
	if got := r.String("-xxab1dxx-"); got != "-[REDACTED]-" {
		t.Errorf("overlapping secrets: %q", got)
	}
	// Encoded forms.
	r.AddSecrets(`p&s/w<rd"`)
	for _, in := range []string{`p%26s%2Fw%3Crd%22`, `p&s%2Fw%3Crd%22`, `p\u0026s/w\u003crd\"`, `p&s/w<rd\"`} {
		if got := r.String("v=" + in); strings.Contains(got, "s/w") || strings.Contains(got, "s%2Fw") {
			t.Errorf("encoded secret %q survived: %q", in, got)
		}
	}
	if got := r.URL("https://a.test/x?q=" + `p%26s%2Fw%3Crd%22`); got != "https://a.test/x?q=[REDACTED]" {
		t.Errorf("query-escaped secret: %q", got)
	}
}

func TestSecretsBounded(t *testing.T) {
	r := NewRedactor()
	var all []string
	for i := range maxSecrets + 9 {
		all = append(all, "secret-number-xxx"+strconv.Itoa(i))
	}
	r.AddSecrets(all...)
	r.AddSecrets("secret-number-xxx" + strconv.Itoa(maxSecrets+9))
	if n := len(r.secrets.Load().values); n != maxSecrets {
		t.Fatalf("kept %d secrets, want %d", n, maxSecrets)
	}
	if got := r.String("secret-number-xxx0"); got != "secret-number-xxx0" {
		t.Errorf("oldest secret should have been forgotten: %q", got)
	}
	last := "secret-number-xxx" + strconv.Itoa(maxSecrets+9)
	if got := r.String(last); got != Redacted {
		t.Errorf("newest secret not scrubbed: %q", got)
	}
}

func TestAddSecretsConcurrent(t *testing.T) {
	r := NewRedactor()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				s := "tok-" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				r.AddSecrets(s)
				if got := r.String("x " + s); got != "x "+Redacted {
					t.Errorf("secret %q not scrubbed right after AddSecrets: %q", s, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDefaultRedactorShared(t *testing.T) {
	if defaultRedactor() != defaultRedactor() {
		t.Fatal("defaultRedactor returns different instances")
	}
	if got := defaultRedactor().URL("/x?token=a"); got != "/x?token=[REDACTED]" {
		t.Fatalf("default redactor URL = %q", got)
	}
}

func TestEntryRedaction(t *testing.T) {
	r := NewRedactor(WithSecrets("lit-secret-42"))
	reqH := http.Header{"Authorization": {"Bearer abc"}, "Content-Type": {"application/json"}}
	e := Entry{
		Backend:        "shop lit-secret-42",
		Operation:      "op lit-secret-42",
		Method:         "GET",
		URL:            "https://a.test/x?token=abc",
		RequestHeader:  reqH,
		ResponseHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Set-Cookie": {"s=1"}},
		RequestBody:    `{"password":"p"}`,
		ResponseBody:   `access_token=zz&x=1`,
		Error:          "failed: password=p lit-secret-42",
		Model:          "m lit-secret-42",
		Record:         "r lit-secret-42",
	}
	r.Entry(&e)
	want := Entry{
		Backend:        "shop [REDACTED]",
		Operation:      "op [REDACTED]",
		Method:         "GET",
		URL:            "https://a.test/x?token=[REDACTED]",
		RequestHeader:  http.Header{"Authorization": {"Bearer [REDACTED]"}, "Content-Type": {"application/json"}},
		ResponseHeader: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Set-Cookie": {Redacted}},
		RequestBody:    `{"password":"[REDACTED]"}`,
		ResponseBody:   `access_token=[REDACTED]&x=1`,
		Error:          "failed: password=[REDACTED] [REDACTED]",
		Model:          "m [REDACTED]",
		Record:         "r [REDACTED]",
	}
	if d := cmp.Diff(want, e); d != "" {
		t.Fatalf("Entry mismatch (-want +got):\n%s", d)
	}
	if reqH.Get("Authorization") != "Bearer abc" {
		t.Fatal("Entry modified the caller's header map")
	}
	r.Entry(nil) // must not panic
}

func TestInvalidInputsDoNotPanic(t *testing.T) {
	r := NewRedactor(WithSecrets("abcd"))
	inputs := []string{`{`, `"`, `\`, `{"password":`, `{"password"`, `"password":"\`, `=`, `:`, `password=`,
		`{"a":[`, "\xff\xfe", `://`, `://@`, `http://:@`, `"\"`, `{"token":{"a":`, `password:"\"`}
	for _, in := range inputs {
		for _, ct := range []string{"application/json", "application/x-www-form-urlencoded", "text/plain", ""} {
			_ = r.Body([]byte(in), ct)
		}
		_ = r.String(in)
		_ = r.URL(in)
	}
}

// TestXMLAttributeRedaction: XML (and HTML) attributes with a secret name lose their
// value whatever the quoting and the white space around '=', in XML bodies and free text.
func TestXMLAttributeRedaction(t *testing.T) {
	r := NewRedactor()
	tests := []struct{ name, in, want string }{
		{"double quotes", `<auth password="hunter2">x</auth>`, `<auth password="[REDACTED]">[REDACTED]</auth>`},
		{"single quotes, empty element", `<cred token='abc123'/>`, `<cred token='[REDACTED]'/>`},
		{"spaces around =", `<auth password = "hunter2">`, `<auth password = "[REDACTED]">`},
		{"new lines around =", "<a password\n=\n'hunter2'>", "<a password\n=\n'[REDACTED]'>"},
		{"space before self-closing", `<a token = 'abc123' />`, `<a token = '[REDACTED]' />`},
		{"upper case, among others", `<Auth User="bob" Token = "abc123" id="7">`, `<Auth User="bob" Token = "[REDACTED]" id="7">`},
		{"namespaced name", `<a ns:api_key = "k-1"/>`, `<a ns:api_key = "[REDACTED]"/>`},
		{"unquoted value", `<a secret = s3cr3t>`, `<a secret = [REDACTED]>`},
		{"'>' inside the value", `<a password = "x>y">`, `<a password = "[REDACTED]">`},
		{"unterminated value", `<a token = "abc`, `<a token = "[REDACTED]`},
		{"harmless attributes kept", `<a id = "1" href = "/x">t</a>`, `<a id = "1" href = "/x">t</a>`},
		{"empty value kept", `<a password = "">`, `<a password = "">`},
		{"comparison is not a tag", `if a < b and c = "d"`, `if a < b and c = "d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ct := range []string{"application/xml", "text/html", ""} {
				if got := r.Body([]byte(tt.in), ct); got != tt.want {
					t.Errorf("Body(%q, %q) = %q, want %q", tt.in, ct, got, tt.want)
				}
			}
			if got := r.String("fault: " + tt.in); got != "fault: "+tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, "fault: "+tt.want)
			}
		})
	}
	// Inside a JSON string the document stays valid JSON.
	in := `{"soap":"<auth password = \"hunter2\" user=\"bob\"/>"}`
	got := r.Body([]byte(in), "application/json")
	if strings.Contains(got, "hunter2") || !gjson.Valid(got) {
		t.Errorf("Body(%s) = %s", in, got)
	}
}
