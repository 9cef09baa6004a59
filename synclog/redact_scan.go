package synclog

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Scanners behind Body and String: they find secret values in JSON and free text
// without decoding or regular expressions, in one pass, copying only on a change.

func looksJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		default:
			return false
		}
	}
	return false
}

// redactJSON replaces the value of every secret field in valid JSON s with "[REDACTED]",
// without decoding: one pass over the bytes, copying only when a secret field exists.
func (r *Redactor) redactJSON(s string) string {
	var seen keyCache
	var b strings.Builder // its String does not copy
	last := 0
	for i := 0; i < len(s); {
		q := strings.IndexByte(s[i:], '"')
		if q < 0 {
			break
		}
		start := i + q
		end := stringEnd(s, start)
		if end < 0 {
			break
		}
		j := skipSpace(s, end)
		if j >= len(s) || s[j] != ':' {
			// A string value: it may itself carry "password=…", an embedded JSON
			// document ("{\"token\":…}") or a URL with credentials.
			raw := s[start+1 : end-1]
			if strings.IndexByte(raw, '=') >= 0 || strings.IndexByte(raw, ':') >= 0 || strings.Contains(raw, "</") {
				if red := r.freeText(raw); red != raw {
					if b.Cap() == 0 {
						b.Grow(len(s))
					}
					b.WriteString(s[last : start+1])
					b.WriteString(red)
					last = end - 1
				}
			}
			i = end
			continue
		}
		if !seen.secret(r, s[start+1:end-1]) {
			i = j + 1
			continue
		}
		vs := skipSpace(s, j+1)
		ve := valueEnd(s, vs)
		if b.Cap() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:vs])
		b.WriteString(`"` + Redacted + `"`)
		last, i = ve, ve
	}
	if b.Cap() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// keyCache remembers the verdict for the last few distinct raw JSON keys of one document:
// listings repeat the same handful of field names in every element.
type keyCache struct {
	keys    [16]string
	verdict [16]bool
	n       int
}

func (c *keyCache) secret(r *Redactor, raw string) bool {
	for i := range min(c.n, len(c.keys)) {
		if c.keys[i] == raw {
			return c.verdict[i]
		}
	}
	v := r.isJSONSecret(jsonKey(raw))
	c.keys[c.n%len(c.keys)], c.verdict[c.n%len(c.keys)] = raw, v
	c.n++
	return v
}

// jsonKey decodes a raw JSON string body (without quotes) when it holds escapes.
func jsonKey(raw string) string {
	if strings.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var k string
	if err := json.Unmarshal([]byte(`"`+raw+`"`), &k); err != nil {
		return raw
	}
	return k
}

// stringEnd returns the index just past the closing quote of the JSON string whose
// opening quote is at s[start], or -1 when it is unterminated.
func stringEnd(s string, start int) int {
	for i := start + 1; i < len(s); {
		k := strings.IndexByte(s[i:], '"')
		if k < 0 {
			return -1
		}
		i += k
		// The quote is escaped when an odd number of backslashes precede it.
		bs := 0
		for j := i - 1; j > start && s[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return i + 1
		}
		i++
	}
	return -1
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at s[i] (string, object,
// array or literal); for unterminated values it returns len(s).
func valueEnd(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '"':
		if e := stringEnd(s, i); e >= 0 {
			return e
		}
		return len(s)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e := stringEnd(s, j)
				if e < 0 {
					return len(s)
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(s)
	default:
		j := i
		for j < len(s) && !strings.ContainsRune(",}] \t\r\n", rune(s[j])) {
			j++
		}
		return j
	}
}

// freeText is String without the literal-secret pass.
func (r *Redactor) freeText(s string) string {
	if strings.ContainsAny(s, "=:") {
		s = r.scrubPairs(s)
	}
	if strings.Contains(s, "://") {
		s = scrubUserinfo(s)
	}
	if strings.Contains(s, "</") {
		s = r.scrubXML(s)
	}
	if strings.IndexByte(s, '<') >= 0 && strings.IndexByte(s, '=') >= 0 {
		s = r.scrubXMLAttrs(s)
	}
	if strings.Contains(s, "earer ") || strings.Contains(s, "EARER ") {
		s = scrubBearer(s)
	}
	return s
}

// scrubXML replaces the text of XML elements with a secret name:
// <password>x</password>, <wsse:Password Type="…">x</wsse:Password>.
func (r *Redactor) scrubXML(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '>' {
			continue
		}
		lt := strings.LastIndexByte(s[max(0, i-256):i], '<')
		if lt < 0 {
			continue
		}
		lt += max(0, i-256)
		tag := s[lt+1 : i]
		if tag == "" || tag[0] == '/' || tag[0] == '?' || tag[0] == '!' || tag[len(tag)-1] == '/' {
			continue
		}
		name, _, _ := strings.Cut(tag, " ")
		if c := strings.LastIndexByte(name, ':'); c >= 0 {
			name = name[c+1:]
		}
		if !isQuotedKey(name) || !r.isTextSecret(name) {
			continue
		}
		end := strings.IndexByte(s[i+1:], '<')
		if end < 0 {
			end = len(s)
		} else {
			end += i + 1
		}
		if end == i+1 || i+1 < last {
			continue
		}
		if b.Cap() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last : i+1])
		b.WriteString(Redacted)
		last = end
		i = end - 1
	}
	if b.Cap() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// scrubXMLAttrs replaces the values of XML (and HTML) attributes with a secret name:
// <auth password="x">, <cred token = 'x'/>, <a ns:api_key=x>. scrubPairs already sees
// most of them as key=value pairs; this pass is the one that knows the XML grammar, with
// white space (new lines included) on either side of the '='.
func (r *Redactor) scrubXMLAttrs(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '<' || i+1 >= len(s) || !isXMLNameStart(s[i+1]) {
			continue
		}
		// Inside a start tag: name, then attributes until '>' or '/>'.
		j := i + 1
		for j < len(s) && !isXMLSpace(s[j]) && s[j] != '>' && s[j] != '/' {
			j++
		}
		for j < len(s) && s[j] != '>' && s[j] != '<' {
			if isXMLSpace(s[j]) || s[j] == '/' {
				j++
				continue
			}
			ns := j
			for j < len(s) && !isXMLSpace(s[j]) && !strings.ContainsRune("=>/<\"'", rune(s[j])) {
				j++
			}
			name := s[ns:j]
			if j == ns { // a stray quote or '=': not a tag after all
				break
			}
			k := j
			for k < len(s) && isXMLSpace(s[k]) {
				k++
			}
			if k >= len(s) || s[k] != '=' {
				continue // a valueless attribute
			}
			k++
			for k < len(s) && isXMLSpace(s[k]) {
				k++
			}
			var vs, ve int
			if k < len(s) && (s[k] == '"' || s[k] == '\'') {
				vs = k + 1
				ve = strings.IndexByte(s[vs:], s[k])
				if ve < 0 {
					ve = len(s) // unterminated: hide the rest
				} else {
					ve += vs
				}
				j = min(ve+1, len(s))
			} else {
				vs, ve = k, k
				for ve < len(s) && !isXMLSpace(s[ve]) && s[ve] != '>' {
					ve++
				}
				j = ve
			}
			if c := strings.LastIndexByte(name, ':'); c >= 0 {
				name = name[c+1:]
			}
			if ve <= vs || vs < last || !isQuotedKey(name) || !r.isTextSecret(name) ||
				s[vs:ve] == Redacted {
				continue
			}
			if b.Cap() == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[last:vs])
			b.WriteString(Redacted)
			last = ve
		}
		i = j - 1 // j > i: the loop goes on after the tag
	}
	if b.Cap() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isXMLNameStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == ':' || c >= 0x80
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scrubBearer replaces the credential after a free-standing "Bearer " in text that
// does not name the header ("sent Bearer abc…").
func scrubBearer(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i+7 <= len(s); i++ {
		if !strings.EqualFold(s[i:i+7], "bearer ") || (i > 0 && isKeyChar(s[i-1])) {
			continue
		}
		vs := i + 7
		ve := vs
		for ve < len(s) && !isValueStop(s[ve]) {
			ve++
		}
		if ve-vs < 8 || strings.HasPrefix(s[vs:], Redacted) { // short words are prose, not tokens
			continue
		}
		if b.Cap() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:vs])
		b.WriteString(Redacted)
		last, i = ve, ve-1
	}
	if b.Cap() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '[' || c == ']'
}

// isQuotedKey rejects quoted text that cannot be a field name, such as a quoted URL
// followed by ": EOF".
func isQuotedKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; !isKeyChar(c) && c != ' ' {
			return false
		}
	}
	return true
}

func isValueStop(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '&', ',', ';', '}', ']', ')', '"', '\'', '<', '>':
		return true
	}
	return false
}

// scrubPairs is the pattern pass of String: for every '=' or ':' it looks back for a key
// and, when the key is secret, replaces the value that follows.
func (r *Redactor) scrubPairs(s string) string {
	var b []byte
	last := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '=' && c != ':' {
			continue
		}
		k := i
		for k > 0 && (s[k-1] == ' ' || s[k-1] == '\t') {
			k--
		}
		var key string
		if k > 0 && (s[k-1] == '"' || s[k-1] == '\'') {
			ke := k - 1
			ks := strings.LastIndexByte(s[:ke], s[ke])
			if ks < 0 {
				continue
			}
			key = strings.TrimSuffix(s[ks+1:ke], `\`)
			if !isQuotedKey(key) {
				continue
			}
		} else {
			ks := k
			for ks > 0 && isKeyChar(s[ks-1]) {
				ks--
			}
			key = s[ks:k]
		}
		if key == "" || len(key) > 64 || !r.isTextSecret(key) {
			continue
		}
		v := i + 1
		for s[i] == ':' && v < len(s) && (s[v] == ' ' || s[v] == '\t') {
			v++ // "key: value"; but "key= next" has an empty value
		}
		auth := isAuthName(key) || strings.Contains(lowerASCII(key), "auth")
		vs, ve := textValue(s, v, auth)
		if ve <= vs || vs < last || (!auth && isStatusLine(s, vs, ve)) {
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s)+len(Redacted))
		}
		b = append(b, s[last:vs]...)
		b = append(b, Redacted...)
		last = ve
		i = ve - 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

// isStatusLine reports whether the unquoted value s[vs:ve] is an HTTP status code followed
// by its standard reason phrase, as in x/oauth2's "cannot fetch token: 400 Bad Request":
// prose about a token, not a token. The rule is exact so that it cannot hide a credential:
// three digits naming a known status (100–599), one space, the phrase of that very status
// (any letter case), then the end of the text or a byte that cannot continue a word. A
// three-digit value is never a registered secret (those are at least 4 bytes), and a
// value after an Authorization-like name is always treated as a credential (the caller
// does not ask).
func isStatusLine(s string, vs, ve int) bool {
	if ve-vs != 3 || ve >= len(s) || s[ve] != ' ' {
		return false
	}
	code := 0
	for i := vs; i < ve; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		code = code*10 + int(s[i]-'0')
	}
	if code < 100 || code > 599 {
		return false
	}
	phrase := http.StatusText(code)
	p := ve + 1
	if phrase == "" || len(s)-p < len(phrase) || !strings.EqualFold(s[p:p+len(phrase)], phrase) {
		return false
	}
	return p+len(phrase) == len(s) || !isKeyChar(s[p+len(phrase)])
}

// textValue returns the span of the value starting at s[v] in free text. Quoted values
// lose their content but keep their quotes; an unterminated quote runs to the end.
func textValue(s string, v int, auth bool) (int, int) {
	if v >= len(s) {
		return v, v
	}
	switch s[v] {
	case '"', '\'':
		q := s[v]
		for j := v + 1; j < len(s); j++ {
			if s[j] == '\\' { // escaped character inside the quoted value
				j++
				continue
			}
			if s[j] == q {
				return v + 1, j
			}
		}
		return v + 1, len(s)
	case '\\':
		if v+1 < len(s) && s[v+1] == '"' {
			if e := strings.Index(s[v+2:], `\"`); e >= 0 {
				return v + 2, v + 2 + e
			}
			return v + 2, len(s)
		}
	case '{', '[':
		return v, valueEnd(s, v)
	}
	e := v
	for e < len(s) && !isValueStop(s[e]) && !(s[e] == '\\' && e+1 < len(s) && s[e+1] == '"') {
		e++ // a \" ends the value too: it closes a Go- or JSON-quoted string
	}
	// "Authorization: Bearer abc": keep the scheme, hide the credential after it.
	if auth && e < len(s) && s[e] == ' ' && isSchemeWord(s[v:e]) {
		e2 := e + 1
		for e2 < len(s) && !isValueStop(s[e2]) {
			e2++
		}
		if e2 > e+1 {
			return e + 1, e2
		}
	}
	return v, e
}

// scrubUserinfo replaces the password in every scheme://user:password@host of s.
func scrubUserinfo(s string) string {
	var b []byte
	last := 0
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			break
		}
		start := i + k + 3
		end := start
		for end < len(s) && !strings.ContainsRune("/?# \t\r\n\"'<>", rune(s[end])) {
			end++
		}
		auth := s[start:end]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			if c := strings.IndexByte(auth[:at], ':'); c >= 0 && c+1 < at {
				ps, pe := start+c+1, start+at
				if b == nil {
					b = make([]byte, 0, len(s))
				}
				b = append(b, s[last:ps]...)
				b = append(b, Redacted...)
				last = pe
			}
		}
		i = end
		if i >= len(s) {
			break
		}
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}
