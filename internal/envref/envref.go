// Package envref expands ${VAR} references in configuration values, the one way both
// backend configs and apisync configs take secrets from the environment.
package envref

import (
	"fmt"
	"strings"
)

// Expand expands ${VAR} and ${VAR:-default} in s with lookup; "$$" stands for a literal
// "$", and a bare $ not followed by { or $ is kept as it is, so passwords with $ survive.
// A variable that is not set (or set empty, when a default is given) without a default is
// an error naming it. used, when not nil, is called with each variable and the non-empty
// value taken from the environment, so callers can keep those values out of error texts.
func Expand(s string, lookup func(string) (string, bool), used func(name, value string)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return s, fmt.Errorf("unterminated ${ in %q", s)
			}
			ref := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !validName(name) {
				return s, fmt.Errorf("${%s} is not a valid environment variable reference", ref)
			}
			val, ok := lookup(name)
			if ok && val != "" && used != nil {
				used(name, val)
			}
			if !ok || val == "" && hasDef {
				if !hasDef {
					return s, fmt.Errorf("environment variable %s is not set (write ${%s:-default} for a fallback)", name, name)
				}
				val = def
			}
			b.WriteString(val)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// validName reports whether name is a shell-style variable name.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		if r != '_' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
