package synclog

import (
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Literal secrets: registered values scrubbed wherever they appear.

// secretSet is an immutable snapshot of the registered literal secrets.
type secretSet struct {
	values   []string            // registered values, oldest first
	seen     map[string]struct{} // membership of values
	patterns []string            // every value and its encoded variants, longest first
	rep      *strings.Replacer   // strong patterns → Redacted; nil when there are none
	weak     []weakPattern       // patterns matched only as whole values, longest first
	scan     *scanner            // the fast path's detector: the Redactor's names and patterns
}

// weakPattern is a short secret, or one made of words, and one of its encoded forms.
// Matched anywhere, it would scrub ordinary words ("wrong password" for the secret
// "wrong"), so it is matched only as a whole token: the bytes on either side of it must
// not be letters, digits, '-' or '_'. A single word ("wrong") must moreover not stand
// next to white space or '+': prose keeps its words, while "token=wrong", "\"wrong\""
// or a header whose value is "wrong" lose it. A phrase ("open-sesame", "Open Sesame") is
// a whole token in prose too.
type weakPattern struct {
	p    string
	word bool // a single word
}

// strongSecretLen is the length from which a secret that is not made of words is
// matched anywhere, even inside other text.
const strongSecretLen = 8

// wordLike reports whether v looks like words rather than a random credential: ASCII
// letters only, each word in one case or capitalised ("wrong", "Open Sesame",
// "correct-horse"), separated by spaces, '+', '-' or '_'.
func wordLike(v string) bool {
	letters := false
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '-' || r == '_' || r == '+' }) {
		lower, upper := 0, 0
		for i := 0; i < len(w); i++ {
			switch c := w[i]; {
			case 'a' <= c && c <= 'z':
				lower++
			case 'A' <= c && c <= 'Z':
				if i > 0 {
					upper++
				}
			default:
				return false
			}
		}
		if lower > 0 && upper > 0 {
			return false // mixed case inside a word: a random token
		}
		letters = true
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == ' ', c == '-', c == '_', c == '+':
		default:
			return false
		}
	}
	return letters
}

// fewPatterns is how many patterns scrubLiteral checks one by one with strings.Contains
// (vectorised) before running the replacer, which walks the text byte by byte.
const fewPatterns = 16

// AddSecrets registers literal secret values at runtime, for example an OAuth access token
// that was just fetched. Values shorter than 4 bytes, and values already known, are
// ignored. The secret is also scrubbed in its URL-escaped and JSON-escaped forms.
//
// A secret of 8 bytes or more that is not made of words is scrubbed wherever it appears.
// A shorter one, or one made of words ("wrong", "Open Sesame", "my-literal-secret"), is
// scrubbed only as a whole token — never inside a longer word — and a single word only
// where it stands as a value rather than in prose: "token=wrong", "\"wrong\"" and a
// header whose value is "wrong" lose it, "wrong password" keeps its words.
func (r *Redactor) AddSecrets(values ...string) {
	if len(values) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.secrets.Load()
	var fresh []string
	for _, v := range values {
		if len(v) < minSecretLen {
			continue
		}
		if old != nil {
			if _, ok := old.seen[v]; ok {
				continue
			}
		}
		if slices.Contains(fresh, v) {
			continue
		}
		fresh = append(fresh, v)
	}
	if len(fresh) == 0 {
		return
	}
	var all []string
	if old != nil {
		all = append(all, old.values...)
	}
	all = append(all, fresh...)
	if len(all) > maxSecrets {
		all = all[len(all)-maxSecrets:]
	}
	r.secrets.Store(newSecretSet(all, r.nameList))
	r.gen.Add(1)
}

func newSecretSet(values, names []string) *secretSet {
	set := &secretSet{values: values, seen: make(map[string]struct{}, len(values))}
	var variants []string
	for _, v := range values {
		set.seen[v] = struct{}{}
		variants = append(variants, encodedVariants(v)...)
	}
	// strings.Replacer tries patterns in argument order at each position, so the longest
	// go first: a secret that contains a shorter one is replaced as a whole.
	slices.SortFunc(variants, func(a, b string) int { return len(b) - len(a) })
	variants = slices.Compact(variants)
	set.patterns = variants
	pairs := make([]string, 0, 2*len(variants))
	for _, v := range variants {
		if w := wordLike(v); w || len(v) < strongSecretLen {
			set.weak = append(set.weak, weakPattern{p: v, word: w && !strings.ContainsAny(v, " +-_")})
			continue
		}
		pairs = append(pairs, v, Redacted)
	}
	if len(pairs) > 0 {
		set.rep = strings.NewReplacer(pairs...)
	}
	set.scan = newScanner(names, variants)
	return set
}

// weakBoundary reports whether c may stand next to a weak pattern's match.
func weakBoundary(c byte, word bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80, c == '-', c == '_':
		return false
	case word && (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '+'):
		return false
	}
	return true
}

// scrubWeak replaces the whole-token occurrences of the weak patterns in s. Text already
// replaced by Redacted is left alone.
func scrubWeak(s string, weak []weakPattern) string {
	for _, wp := range weak {
		p := wp.p
		var b []byte
		last := 0
		for i := 0; i+len(p) <= len(s); {
			k := strings.Index(s[i:], p)
			if k < 0 {
				break
			}
			at, end := i+k, i+k+len(p)
			i = at + 1
			if (at > 0 && !weakBoundary(s[at-1], wp.word)) || (end < len(s) && !weakBoundary(s[end], wp.word)) ||
				at < last || insideRedacted(s, at, end) {
				continue
			}
			b = append(b, s[last:at]...)
			b = append(b, Redacted...)
			last, i = end, end
		}
		if b != nil {
			s = string(append(b, s[last:]...))
		}
	}
	return s
}

// insideRedacted reports whether s[at:end] lies within a Redacted marker.
func insideRedacted(s string, at, end int) bool {
	lo := max(0, end-len(Redacted))
	for j := lo; j <= at && j+len(Redacted) <= len(s); j++ {
		if s[j:j+len(Redacted)] == Redacted {
			return true
		}
	}
	return false
}

// encodedVariants returns v and the forms it takes inside a URL or a JSON string.
func encodedVariants(v string) []string {
	out := []string{v}
	add := func(s string) {
		if len(s) >= minSecretLen && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(url.QueryEscape(v))
	add(url.PathEscape(v))
	if b, err := json.Marshal(v); err == nil { // HTML-escaping form (\u003c)
		add(string(b[1 : len(b)-1]))
	}
	q := strconv.Quote(v) // Go %q form, used in error texts
	add(q[1 : len(q)-1])
	return out
}

// scrubLiteral replaces registered literal secrets. It returns s itself, without
// allocating a copy, when nothing matched.
func (r *Redactor) scrubLiteral(s string) string {
	set := r.secrets.Load()
	if set == nil || len(s) < minSecretLen {
		return s
	}
	if len(set.patterns) <= fewPatterns && !slices.ContainsFunc(set.patterns, func(p string) bool { return strings.Contains(s, p) }) {
		return s
	}
	if set.rep != nil {
		w := lazyWriter{}
		_, _ = set.rep.WriteString(&w, s)
		s = w.result()
	}
	if len(set.weak) > 0 {
		s = scrubWeak(s, set.weak)
	}
	return s
}

// lazyWriter collects strings.Replacer output but copies only when a replacement
// happened: an unchanged input arrives as one single write of the whole string.
type lazyWriter struct {
	first string
	buf   []byte
	n     int
}

func (w *lazyWriter) WriteString(s string) (int, error) {
	w.n++
	switch w.n {
	case 1:
		w.first = s
	case 2:
		w.buf = append(append(make([]byte, 0, len(w.first)+len(s)+16), w.first...), s...)
	default:
		w.buf = append(w.buf, s...)
	}
	return len(s), nil
}

func (w *lazyWriter) Write(p []byte) (int, error) { return w.WriteString(string(p)) }

func (w *lazyWriter) result() string {
	if w.n <= 1 {
		return w.first
	}
	return string(w.buf)
}

var _ io.StringWriter = (*lazyWriter)(nil)
