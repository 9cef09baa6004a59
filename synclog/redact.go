package synclog

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/connkit/connkit/internal/audit"
	"github.com/tidwall/gjson"
)

// Redacted replaces every secret value the [Redactor] removes.
const Redacted = "[REDACTED]"

// maxSecrets bounds how many literal secrets a Redactor remembers. A process that refreshes
// an OAuth token every hour and registers each one would otherwise grow without limit; when
// the bound is reached the oldest secret is forgotten (by then it has long expired).
const maxSecrets = 1024

// minSecretLen is the shortest literal secret accepted: shorter values would scrub
// ordinary words and numbers out of every log line.
const minSecretLen = 4

// Default secret names. Header names are matched case-insensitively against the exact list
// and then against the substrings; query, form and JSON field names likewise.
var (
	defaultHeaderNames = []string{
		"authorization", "proxy-authorization", "cookie", "set-cookie",
		"x-api-key", "api-key", "x-auth-token", "x-access-token", "x-shopify-access-token",
	}
	defaultHeaderSubstrings = []string{
		"token", "secret", "signature", "api-key", "apikey", "api_key",
		"password", "passwd", "hmac", "credential",
	}
	defaultFieldNames = []string{
		"access_token", "refresh_token", "id_token", "api_key", "apikey", "key", "token",
		"secret", "client_secret", "password", "passwd", "signature", "sig", "auth", "authorization",
	}
	// "signature" and "credential" catch presigned-URL parameters such as X-Amz-Signature
	// and X-Amz-Credential.
	defaultFieldSubstrings = []string{
		"password", "passwd", "secret", "token", "apikey", "api_key", "api-key",
		"signature", "credential",
	}
)

// Redactor removes secrets from what connkit records: header values, URL query parameters
// and userinfo, JSON and form bodies, error texts, and literal secret values (tokens,
// passwords) wherever they appear. The zero configuration ([NewRedactor] with no options)
// already covers the usual authentication headers and parameter names; options only add.
//
// Default secret headers (case-insensitive): Authorization and Proxy-Authorization (the
// scheme is kept: "Bearer [REDACTED]"), Cookie, Set-Cookie, X-Api-Key, Api-Key,
// X-Auth-Token, X-Access-Token, X-Shopify-Access-Token, and every header whose name
// contains token, secret, signature, api-key/apikey/api_key, password/passwd, hmac or
// credential (X-Hub-Signature-256, X-Shopify-Hmac-Sha256, …).
//
// Default secret query parameters and JSON/form fields (case-insensitive; for
// "user[password]" the innermost name counts too): access_token, refresh_token, id_token,
// api_key, apikey, key, token, secret, client_secret, password, passwd, signature, sig,
// auth, authorization, and every name containing password, passwd, secret, token,
// apikey/api_key/api-key, signature or credential (X-Amz-Signature in presigned URLs).
// Names that merely contain a secret word can be exempted with [WithAllowed].
//
// A Redactor is safe for concurrent use. Its name lists are fixed at construction; literal
// secrets can be added at any time with [Redactor.AddSecrets].
type Redactor struct {
	headerExact map[string]bool
	queryExact  map[string]bool
	jsonExact   map[string]bool
	formExact   map[string]bool // query ∪ JSON names: a form body is both a query and a record
	textExact   map[string]bool // every name: free text may quote a header, a parameter or a field
	headerSub   *substrings
	fieldSub    *substrings
	textSub     *substrings // headerSub ∪ fieldSub
	allowed     map[string]bool
	nameList    []string // every name and word the passes look for, lower case
	names       *scanner // the fast path's detector while no literal secret is registered
	slowOnly    bool     // tests: never take the fast path

	pendingSecrets []string // collected by options, registered by NewRedactor

	mu      sync.Mutex                // serialises writers of secrets and of headerNames
	secrets atomic.Pointer[secretSet] // copy-on-write; nil until the first secret
	gen     atomic.Uint64             // bumped by every change to secrets

	// headerNames caches the verdict on header names (copy-on-write, bounded): the same
	// few names come with every exchange, and names are fixed at construction.
	headerNames atomic.Pointer[map[string]headerVerdict]
}

// headerVerdict is what Header does with a header's values.
type headerVerdict uint8

const (
	headerPlain  headerVerdict = iota + 1 // scrubbed like free text
	headerSecret                          // replaced by Redacted
	headerAuth                            // the scheme is kept: "Bearer [REDACTED]"
)

// maxCachedHeaderNames bounds headerNames: header names come from the other side too.
const maxCachedHeaderNames = 256

// headerVerdict returns the verdict on header name k, from the cache when it can.
func (r *Redactor) headerVerdict(k string) headerVerdict {
	if m := r.headerNames.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	v := headerPlain
	switch {
	case isAuthName(k):
		v = headerAuth
	case r.isHeaderSecret(k):
		v = headerSecret
	}
	r.mu.Lock()
	old := r.headerNames.Load()
	if old == nil || len(*old) < maxCachedHeaderNames {
		m := make(map[string]headerVerdict, 8)
		if old != nil {
			m = make(map[string]headerVerdict, len(*old)+1)
			for name, ov := range *old {
				m[name] = ov
			}
		}
		m[k] = v
		r.headerNames.Store(&m)
	}
	r.mu.Unlock()
	return v
}

// generation returns a number that changes whenever literal secrets are added. A cache of
// redacted output is valid as long as the generation it was made under is current.
// connkit's own packages read it through audit.RedactorGeneration.
func (r *Redactor) generation() uint64 { return r.gen.Load() }

func init() {
	audit.RedactorGeneration = func(r any) uint64 { return r.(*Redactor).generation() }
}

// RedactOption configures a [Redactor].
type RedactOption func(*Redactor)

// WithHeaders adds header names (case-insensitive) whose values are always redacted.
func WithHeaders(names ...string) RedactOption {
	return func(r *Redactor) { addNames(r.headerExact, names) }
}

// WithQueryParams adds URL query parameter names (case-insensitive) whose values are
// redacted. They also apply to form-urlencoded bodies and to key=value pairs in free text.
func WithQueryParams(names ...string) RedactOption {
	return func(r *Redactor) { addNames(r.queryExact, names) }
}

// WithJSONFields adds JSON field names (case-insensitive) whose values are redacted at any
// depth. They also apply to form bodies and to "key":"value" pairs in free text.
func WithJSONFields(names ...string) RedactOption {
	return func(r *Redactor) { addNames(r.jsonExact, names) }
}

// WithSecrets registers literal secret values (API keys, passwords, client secrets) that
// are scrubbed wherever they appear — short or word-like ones as whole tokens only (see
// [Redactor.AddSecrets]). Values shorter than 4 bytes are ignored.
func WithSecrets(values ...string) RedactOption {
	return func(r *Redactor) { r.pendingSecrets = append(r.pendingSecrets, values...) }
}

// WithAllowed names query parameters, JSON/form fields or headers that are NOT secret even
// though their name contains a secret word — for example "page_token" or "next_page_token"
// pagination cursors that are more useful in a log than redacted. Exact default names
// (such as "token" or "authorization") cannot be allowed.
func WithAllowed(names ...string) RedactOption {
	return func(r *Redactor) { addNames(r.allowed, names) }
}

func addNames(m map[string]bool, names []string) {
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			m[strings.ToLower(n)] = true
		}
	}
}

// NewRedactor returns a Redactor with the default rules (listed on [Redactor]) plus
// whatever the options add.
func NewRedactor(opts ...RedactOption) *Redactor {
	r := &Redactor{
		headerExact: map[string]bool{},
		queryExact:  map[string]bool{},
		jsonExact:   map[string]bool{},
		allowed:     map[string]bool{},
		headerSub:   newSubstrings(defaultHeaderSubstrings),
		fieldSub:    newSubstrings(defaultFieldSubstrings),
		textSub:     newSubstrings(defaultHeaderSubstrings, defaultFieldSubstrings),
	}
	addNames(r.headerExact, defaultHeaderNames)
	addNames(r.queryExact, defaultFieldNames)
	addNames(r.jsonExact, defaultFieldNames)
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
	// The allow list never weakens an exact name: it only overrides the substring rules.
	for n := range r.allowed {
		if r.headerExact[n] || r.queryExact[n] || r.jsonExact[n] {
			delete(r.allowed, n)
		}
	}
	r.formExact = union(r.queryExact, r.jsonExact)
	r.textExact = union(r.formExact, r.headerExact)
	for n := range r.textExact {
		r.nameList = append(r.nameList, n)
	}
	r.nameList = append(append(r.nameList, r.textSub.words...), "bearer")
	r.names = newScanner(r.nameList, nil)
	r.AddSecrets(r.pendingSecrets...)
	r.pendingSecrets = nil
	return r
}

func union(ms ...map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			out[k] = true
		}
	}
	return out
}

// defaultRedactor is the Redactor with the default rules that the slog recorder uses
// unless given one.
var defaultRedactor = sync.OnceValue(func() *Redactor { return NewRedactor() })

// ---- name rules ----

// lowerASCII lowercases s, returning s itself when it has no upper-case ASCII letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// lastBracket returns the innermost name of a Rails/PHP-style key: "user[password]" →
// "password".
func lastBracket(k string) string {
	if strings.HasSuffix(k, "]") {
		if i := strings.LastIndexByte(k, '['); i >= 0 {
			return k[i+1 : len(k)-1]
		}
	}
	return k
}

// matchName reports whether name is secret under exact and subs. It runs for every JSON
// key of every recorded body, so it avoids allocation and scans the name once for the
// substrings instead of calling strings.Contains per substring.
func (r *Redactor) matchName(name string, exact map[string]bool, subs *substrings) bool {
	if name == "" {
		return false
	}
	if name[0] == ' ' || name[len(name)-1] == ' ' {
		name = strings.TrimSpace(name)
	}
	var buf [64]byte
	n := name
	if len(name) <= len(buf) {
		k := copy(buf[:], name)
		changed := false
		for i := range k {
			if c := buf[i]; 'A' <= c && c <= 'Z' {
				buf[i] = c + 'a' - 'A'
				changed = true
			}
		}
		if changed {
			if exact[string(buf[:k])] { // no allocation: map index by converted bytes
				return true
			}
			n = strings.ToLower(name)
		}
	} else {
		n = strings.ToLower(name)
	}
	if exact[n] {
		return true
	}
	if inner := lastBracket(n); inner != n && exact[inner] {
		return true
	}
	if len(r.allowed) > 0 && r.allowed[n] {
		return false
	}
	return subs.in(n)
}

// substrings is a set of lower-case words searched for inside names.
type substrings struct {
	words []string
	first [256]bool // first bytes of words
}

func newSubstrings(words ...[]string) *substrings {
	s := &substrings{}
	for _, ws := range words {
		for _, w := range ws {
			if w != "" && !slices.Contains(s.words, w) {
				s.words = append(s.words, w)
				s.first[w[0]] = true
			}
		}
	}
	return s
}

// in reports whether lower-case n contains one of the words.
func (s *substrings) in(n string) bool {
	if s == nil {
		return false
	}
	for i := 0; i < len(n); i++ {
		if !s.first[n[i]] {
			continue
		}
		for _, w := range s.words {
			if w[0] == n[i] && strings.HasPrefix(n[i:], w) {
				return true
			}
		}
	}
	return false
}

func (r *Redactor) isHeaderSecret(name string) bool {
	return r.matchName(name, r.headerExact, r.headerSub)
}

func (r *Redactor) isQuerySecret(name string) bool {
	return r.matchName(name, r.queryExact, r.fieldSub)
}

func (r *Redactor) isFormSecret(name string) bool {
	return r.matchName(name, r.formExact, r.fieldSub)
}

func (r *Redactor) isJSONSecret(name string) bool {
	return r.matchName(name, r.jsonExact, r.fieldSub)
}

func (r *Redactor) isTextSecret(name string) bool {
	return r.matchName(name, r.textExact, r.textSub)
}

func isAuthName(name string) bool {
	n := lowerASCII(name)
	return n == "authorization" || n == "proxy-authorization"
}

// ---- headers ----

// Header returns a redacted copy of h: secret headers become [Redacted] (Authorization
// and Proxy-Authorization keep their scheme, as in "Bearer [REDACTED]"); every other value
// is scrubbed like [Redactor.String], which catches tokens inside Link or Location URLs.
// h itself is not modified. A nil h gives nil.
func (r *Redactor) Header(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	// One backing array for the values, as http.Header.Clone does, sized for the usual
	// one value per header. When it has to grow, the slices already handed out keep the
	// old array: it is never written again.
	all := make([]string, 0, len(h))
	out := make(http.Header, len(h))
	for k, vs := range h {
		start := len(all)
		verdict := r.headerVerdict(k)
		for _, v := range vs {
			switch {
			case v == "":
			case verdict == headerAuth:
				v = r.scrubLiteral(redactAuth(v))
			case verdict == headerSecret:
				v = Redacted
			default:
				v = r.String(v)
			}
			all = append(all, v)
		}
		out[k] = all[start:len(all):len(all)]
	}
	return out
}

// redactAuth keeps the scheme of an Authorization value: "Bearer abc" → "Bearer [REDACTED]".
func redactAuth(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ' '); i > 0 && isSchemeWord(v[:i]) {
		return v[:i] + " " + Redacted
	}
	return Redacted
}

// authSchemes are the Authorization schemes whose name is kept in front of [Redacted].
// An unknown first word is treated as part of the credential: telling a scheme from a
// token by its shape alone would leak tokens that happen to look like words.
var authSchemes = map[string]bool{
	"basic": true, "bearer": true, "digest": true, "token": true, "bot": true, "oauth": true,
	"negotiate": true, "ntlm": true, "hoba": true, "mutual": true, "hawk": true, "dpop": true,
	"apikey": true, "api-key": true, "key": true, "sso-key": true, "ssws": true, "mac": true,
	"aws4-hmac-sha256": true, "gnap": true, "privacytoken": true, "scram-sha-1": true,
	"scram-sha-256": true, "vapid": true, "concealed": true, "klaviyo-api-key": true,
}

// isSchemeWord reports whether s is a known HTTP auth scheme ("Bearer", "Basic", …).
func isSchemeWord(s string) bool {
	return len(s) <= 24 && authSchemes[lowerASCII(s)]
}

// ---- URLs and form-style pairs ----

// URL returns raw with the values of secret query parameters (and fragment parameters, as
// in OAuth implicit-flow redirects) replaced by [Redacted], the userinfo password removed,
// and literal secrets scrubbed. Input that does not parse as a URL is scrubbed like
// [Redactor.String].
func (r *Redactor) URL(raw string) string {
	if raw == "" {
		return ""
	}
	if !strings.ContainsAny(raw, "?#@") {
		return r.scrubLiteral(raw)
	}
	if strings.IndexByte(raw, '@') < 0 && r.clean(raw) {
		return raw // no userinfo, no secret parameter name, no literal secret
	}
	base, frag, hasFrag := strings.Cut(raw, "#")
	u, err := url.Parse(base)
	if err != nil {
		return r.String(raw)
	}
	out := base
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
			changed = true
		}
	}
	if u.RawQuery != "" {
		if q, ch := r.redactPairs(u.RawQuery, r.isQuerySecret); ch {
			u.RawQuery = q
			changed = true
		}
	}
	if changed {
		out = u.String()
	}
	if hasFrag {
		f, _ := r.redactPairs(frag, r.isQuerySecret)
		out += "#" + f
	}
	return r.scrubLiteral(out)
}

// redactPairs redacts the values of secret keys in an &- or ;-separated key=value list (a
// query string or a form body), keeping order and every other byte. A ';' ends a value
// only when a key=value pair follows it, so a secret value holding a ';' is hidden whole.
// It reports whether anything changed.
func (r *Redactor) redactPairs(s string, isSecret func(string) bool) (string, bool) {
	if strings.IndexByte(s, '=') < 0 {
		return s, false
	}
	var b []byte
	last := 0
	for start := 0; start <= len(s); {
		end := pairEnd(s, start)
		part := s[start:end]
		if eq := strings.IndexByte(part, '='); eq >= 0 && eq+1 < len(part) {
			key := part[:eq]
			if k, err := url.QueryUnescape(key); err == nil {
				key = k
			}
			if isSecret(key) {
				// The value runs to the next '&', or to a ';' that starts another pair.
				vs := start + eq + 1
				ve := end
				for ve < len(s) && s[ve] == ';' && !pairFollows(s, ve+1) {
					ve = pairEnd(s, ve+1)
				}
				if b == nil {
					b = make([]byte, 0, len(s)+len(Redacted))
				}
				b = append(b, s[last:vs]...)
				b = append(b, Redacted...)
				last, end = ve, ve
			}
		}
		start = end + 1
	}
	if b == nil {
		return s, false
	}
	b = append(b, s[last:]...)
	return string(b), true
}

// pairEnd returns the index of the '&' or ';' that ends the pair starting at s[start], or
// len(s).
func pairEnd(s string, start int) int {
	if e := strings.IndexAny(s[start:], "&;"); e >= 0 {
		return start + e
	}
	return len(s)
}

// pairFollows reports whether s[i:] starts with a key and '=' (a new pair).
func pairFollows(s string, i int) bool {
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '=':
			return j > i
		case '&', ';', ' ', '"', '\'', '<', '>':
			return false
		}
	}
	return false
}

// ---- bodies ----

// Body returns body as a redacted string. JSON (any media type containing "json", or an
// untyped body that starts like JSON) has the values of secret fields replaced by
// "[REDACTED]" at any depth, inside arrays too, keeping the rest byte for byte; invalid
// JSON falls back to [Redactor.String]; valid JSON under another media type is treated as
// JSON. Form-urlencoded bodies are redacted like a query
// string. Anything else is scrubbed like [Redactor.String]. Literal secrets are scrubbed
// in every case. Redact before truncating: a cut secret can no longer be recognised.
func (r *Redactor) Body(body []byte, contentType string) string {
	return r.body(string(body), contentType)
}

func (r *Redactor) body(s, contentType string) string {
	if s == "" || r.clean(s) {
		return s
	}
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = lowerASCII(strings.TrimSpace(mt))
	switch {
	case strings.Contains(mt, "json") || (mt == "" && looksJSON(s)):
		if !gjson.Valid(s) {
			return r.String(s)
		}
		return r.scrubLiteral(r.redactJSON(s))
	case mt == "application/x-www-form-urlencoded":
		out, _ := r.redactPairs(s, r.isFormSecret)
		return r.scrubLiteral(out)
	case looksJSON(s) && gjson.Valid(s):
		// JSON served as text/plain or text/html: keep it valid JSON.
		return r.scrubLiteral(r.redactJSON(s))
	default:
		return r.String(s)
	}
}

// ---- free text ----

// String scrubs free text such as an error message or an unknown body: literal secrets,
// the values in key=value, key: value and "key":"value" pairs whose key is a secret name
// (including Go-quoted \"key\":\"value\" and "Authorization: Bearer x", which keeps the
// scheme), passwords in scheme://user:password@host URLs, the text of XML elements and
// the values of XML attributes with a secret name, and the token after a free-standing
// "Bearer ". A value that is an HTTP status code followed by its reason phrase ("token:
// 400 Bad Request", as x/oauth2 words a failed token request) is prose and is kept,
// except after Authorization and other names containing "auth".
func (r *Redactor) String(s string) string {
	if s == "" || r.clean(s) {
		return s
	}
	return r.freeText(r.scrubLiteral(s))
}

// ---- entries ----

// Entry redacts every field of e in place: URL, both headers (replaced by redacted
// copies, so maps shared with the caller are not modified), both bodies (by their
// Content-Type), Error, and literal secrets in the remaining text fields.
func (r *Redactor) Entry(e *Entry) {
	if e == nil {
		return
	}
	e.URL = r.URL(e.URL)
	e.RequestBody = r.body(e.RequestBody, e.RequestHeader.Get("Content-Type"))
	e.ResponseBody = r.body(e.ResponseBody, e.ResponseHeader.Get("Content-Type"))
	e.RequestHeader = r.Header(e.RequestHeader)
	e.ResponseHeader = r.Header(e.ResponseHeader)
	e.Error = r.String(e.Error)
	e.Backend = r.scrubLiteral(e.Backend)
	e.Operation = r.scrubLiteral(e.Operation)
	e.Method = r.scrubLiteral(e.Method)
	e.Model = r.scrubLiteral(e.Model)
	e.Record = r.scrubLiteral(e.Record)
}
