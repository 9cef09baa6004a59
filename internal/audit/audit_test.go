package audit

import (
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
		cut   bool
	}{
		{"hello", 0, "hello", false},
		{"hello", -1, "hello", false},
		{"hello", 5, "hello", false},
		{"hello", 10, "hello", false},
		{"hello", 3, "hel…[truncated 2 bytes]", true},
		{"héllo", 2, "h…[truncated 5 bytes]", true}, // é is 2 bytes: not split
		{"日本", 4, "日…[truncated 3 bytes]", true},
		{"日本", 1, "…[truncated 6 bytes]", true},
		{"", 3, "", false},
	}
	for _, tt := range tests {
		got, cut := Truncate(tt.in, tt.limit)
		if got != tt.want || cut != tt.cut {
			t.Errorf("Truncate(%q, %d) = %q, %v; want %q, %v", tt.in, tt.limit, got, cut, tt.want, tt.cut)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) produced invalid UTF-8", tt.in, tt.limit)
		}
	}
}

func TestBody(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
		cut   bool
	}{
		{"hello", -1, "hello", false},
		{"hello", 0, "", true},
		{"", 0, "", false},
		{"hello", 3, "hel…[truncated 2 bytes]", true},
		{"hello", 5, "hello", false},
	}
	for _, tt := range tests {
		if got, cut := Body(tt.in, tt.limit); got != tt.want || cut != tt.cut {
			t.Errorf("Body(%q, %d) = %q, %v; want %q, %v", tt.in, tt.limit, got, cut, tt.want, tt.cut)
		}
	}
}
