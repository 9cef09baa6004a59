package envref

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cr$t", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${TOKEN}", "s3cr$t", ""},
		{"Bearer ${TOKEN}!", "Bearer s3cr$t!", ""},
		{"$$HOME and pa$s", "$HOME and pa$s", ""},
		{"${MISSING:-dflt}", "dflt", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${EMPTY}", "", ""},
		{"${MISSING}", "", "MISSING is not set"},
		{"${1BAD}", "", "not a valid"},
		{"${TOKEN", "", "unterminated"},
		{"trailing $", "trailing $", ""},
	} {
		var used []string
		got, err := Expand(tc.in, lookup, func(name, value string) { used = append(used, name+"="+value) })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Expand(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if strings.Contains(tc.in, "${TOKEN}") && (len(used) != 1 || used[0] != "TOKEN=s3cr$t") {
			t.Errorf("Expand(%q) reported %v as used", tc.in, used)
		}
	}
}
