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
	rep      *strings.Replacer   // patterns → Redacted
	scan     *scanner            // the fast path's detector: the Redactor's names and patterns
}

// fewPatterns is how many patterns scrubLiteral checks one by one with strings.Contains
// (vectorised) before running the replacer, which walks the text byte by byte.
const fewPatterns = 16

// AddSecrets registers literal secret values at runtime, for example an OAuth access token
// that was just fetched. Values shorter than 4 bytes, and values already known, are
// ignored. The secret is also scrubbed in its URL-escaped and JSON-escaped forms.
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
		pairs = append(pairs, v, Redacted)
	}
	set.rep = strings.NewReplacer(pairs...)
	set.scan = newScanner(names, variants)
	return set
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
	w := lazyWriter{}
	_, _ = set.rep.WriteString(&w, s)
	return w.result()
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
