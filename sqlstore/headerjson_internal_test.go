package sqlstore

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

// headerJSON must decode to what json.Marshal of the header decodes to: the rows written
// before it replaced json.Marshal are read by the same parser.
func TestHeaderJSONMatchesEncodingJSON(t *testing.T) {
	for _, h := range []http.Header{
		{},
		{"Content-Type": {"application/json"}, "X-Shopify-Topic": {"products/update"}},
		{"A": {"x", "y", ""}, "B": {}, "C": nil},
		{"Q": {`"quoted" \back\slash`, "tab\tnl\ncr\r\x00\x1f\x7f", "<&>", "é ü 日本", "\u2028\u2029"}},
		{"Bad-Utf8": {"a\xffb", "\xc3", "\xed\xa0\x80"}, "\xfekey": {"v"}},
	} {
		checkHeaderJSON(t, h)
	}
	if headerJSON(nil) != nil {
		t.Fatal("headerJSON(nil) is not nil (NULL)")
	}
}

func FuzzHeaderJSON(f *testing.F) {
	f.Add("X-A", "v", "w")
	f.Add("\xff", "\x00\"\\", "\u2028")
	f.Fuzz(func(t *testing.T, k, v1, v2 string) {
		checkHeaderJSON(t, http.Header{k: {v1, v2}, "Z": {v2}})
	})
}

func checkHeaderJSON(t *testing.T, h http.Header) {
	t.Helper()
	std, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string][]string
	if err := json.Unmarshal(std, &want); err != nil {
		t.Fatal(err)
	}
	ours := headerJSON(h).(string)
	if !json.Valid([]byte(ours)) {
		t.Fatalf("headerJSON(%q) = %s: not JSON", h, ours)
	}
	if err := json.Unmarshal([]byte(ours), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("headerJSON(%q) decodes to %q, json.Marshal's to %q", h, got, want)
	}
}
