package schedule

import (
	"testing"
	"unicode/utf8"
)

func TestTruncateKeepsUTF8(t *testing.T) {
	s := "ab✓✓"
	for n := 0; n <= len(s); n++ {
		got := truncate(s, n)
		if len(got) > n+len("…") {
			t.Errorf("truncate(%q, %d) = %q: too long", s, n, got)
		}
		if !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q: invalid UTF-8", s, n, got)
		}
	}
}
