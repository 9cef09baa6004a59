package synclog

import "strings"

// The fast path. Most of what connkit records holds no secret at all: a product listing,
// a Content-Type header, a URL with a page number. Every redaction pass looks for
// something it can name — a secret field or header name, "bearer", a password in a URL's
// userinfo, a registered literal secret — so one pass over the bytes that finds none of
// them proves that every pass would return the text unchanged, and the text is kept as it
// is without being parsed or copied.
//
// The pass must never miss what the full passes would see, so it is deliberately coarse:
//
//   - names are matched in any ASCII letter case, and the two non-ASCII letters that
//     lower-case to ASCII (U+0130 İ → i, U+212A Kelvin sign → k) make the text a candidate;
//   - escapes that could spell a name byte — JSON \u…, \X escapes, URL %XX and '+' —
//     make the text a candidate when the byte they stand for occurs in some name;
//   - every registered literal secret and its encoded variants is looked for as well.
//
// Candidates are found with a rolling hash of three case-folded bytes against a bitset
// of the names' and secrets' first three bytes, then confirmed byte by byte.

// byteClass folds a byte for the trigram hash: letters case-insensitively to 1..26, the
// other bytes common in names to 27..30, everything else to 31. Never 0, so a hash that
// still holds the zero of its start cannot match a trigram.
var byteClass = func() (t [256]uint8) {
	for i := range t {
		c := byte(i)
		switch {
		case 'a' <= c && c <= 'z':
			t[i] = c - 'a' + 1
		case 'A' <= c && c <= 'Z':
			t[i] = c - 'A' + 1
		case '0' <= c && c <= '9':
			t[i] = 27
		case c == '-':
			t[i] = 28
		case c == '_':
			t[i] = 29
		case c == '.':
			t[i] = 30
		default:
			t[i] = 31
		}
	}
	return t
}()

const triMask = 1<<15 - 1

func foldByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// scanner is the fast-path detector for one set of names and literal secrets. It is
// immutable once built.
type scanner struct {
	tri [(triMask + 1) / 64]uint64 // trigram hashes of every needle's first three bytes
	// names (lower case, matched ASCII-case-insensitively) and literals (matched exactly)
	// of three bytes or more, by the folded first byte.
	names    [256][]string
	literals [256][]string
	// short holds names of one or two bytes (only ever given through options), by folded
	// first byte; hasShort says whether there are any.
	short    [256][]string
	hasShort bool
	// special marks the bytes the main loop must look at more closely: '\\', '%', '+' and
	// the first bytes of İ and the Kelvin sign.
	special [256]bool
	// nameByte marks the (folded) bytes that occur in some name: an escape standing for
	// one of them could hide a name.
	nameByte [256]bool
}

// newScanner builds the detector for names (lower case) and literal secrets.
func newScanner(names, literals []string) *scanner {
	s := &scanner{}
	for _, n := range names {
		if n == "" {
			continue
		}
		for i := 0; i < len(n); i++ {
			s.nameByte[n[i]] = true
		}
		if len(n) < 3 {
			s.short[n[0]] = append(s.short[n[0]], n)
			s.hasShort = true
			continue
		}
		s.addTrigram(n)
		s.names[n[0]] = append(s.names[n[0]], n)
	}
	for _, l := range literals {
		if len(l) < 3 { // cannot happen: secrets are at least minSecretLen bytes
			continue
		}
		s.addTrigram(l)
		s.literals[foldByte(l[0])] = append(s.literals[foldByte(l[0])], l)
	}
	s.special['\\'], s.special['%'], s.special['+'] = true, true, true
	s.special[0xC4], s.special[0xE2] = true, true
	return s
}

func (s *scanner) addTrigram(n string) {
	h := uint32(byteClass[n[0]])<<10 | uint32(byteClass[n[1]])<<5 | uint32(byteClass[n[2]])
	s.tri[h>>6] |= 1 << (h & 63)
}

// candidate reports whether text may hold a name or literal secret; false proves it
// holds none.
func (s *scanner) candidate(text string) bool {
	if s.hasShort && s.shortIn(text) {
		return true
	}
	var h uint32
	for i := 0; i < len(text); i++ {
		c := text[i]
		cl := byteClass[c]
		if cl == 31 && s.special[c] && s.hiddenAt(text, i) {
			return true
		}
		h = (h<<5 | uint32(cl)) & triMask
		if s.tri[(h>>6)&(triMask>>6)]&(1<<(h&63)) != 0 && i >= 2 && s.needleAt(text, i-2) {
			return true
		}
	}
	return false
}

func (s *scanner) shortIn(text string) bool {
	for i := 0; i < len(text); i++ {
		if s.shortAt(text, i) {
			return true
		}
	}
	return false
}

// needleAt confirms a trigram hit: does a name or literal start at text[p]?
func (s *scanner) needleAt(text string, p int) bool {
	rest := text[p:]
	for _, n := range s.names[foldByte(text[p])] {
		if len(rest) >= len(n) && equalFoldASCII(rest[:len(n)], n) {
			return true
		}
	}
	for _, l := range s.literals[foldByte(text[p])] {
		if strings.HasPrefix(rest, l) {
			return true
		}
	}
	return false
}

func (s *scanner) shortAt(text string, p int) bool {
	for _, n := range s.short[foldByte(text[p])] {
		if len(text)-p >= len(n) && equalFoldASCII(text[p:p+len(n)], n) {
			return true
		}
	}
	return false
}

// hiddenAt reports whether the special byte at text[i] may stand for, or turn into, a
// byte of a name once decoded or lower-cased.
func (s *scanner) hiddenAt(text string, i int) bool {
	switch text[i] {
	case '\\': // a JSON or Go escape; names are JSON-decoded before matching
		if i+1 >= len(text) {
			return false
		}
		switch text[i+1] {
		case 'u':
			return true // \uXXXX may spell any character
		case 'b':
			return s.nameByte['\b']
		case 'f':
			return s.nameByte['\f']
		case 'n':
			return s.nameByte['\n']
		case 'r':
			return s.nameByte['\r']
		case 't':
			return s.nameByte['\t']
		default:
			return s.nameByte[foldByte(text[i+1])]
		}
	case '%': // URL escapes are decoded in query strings and form bodies
		b, ok := unescapeAt(text, i)
		if !ok {
			return false
		}
		if b == 0xC4 || b == 0xE2 {
			return s.foldsToASCII(text, i)
		}
		return s.nameByte[foldByte(b)]
	case '+':
		return s.nameByte[' ']
	case 0xC4, 0xE2:
		return s.foldsToASCII(text, i)
	}
	return false
}

// foldsToASCII reports whether text[i:] starts, raw or %-escaped byte by byte, with one
// of the two letters that lower-case to ASCII: U+0130 İ ('i') and U+212A Kelvin sign ('k').
func (s *scanner) foldsToASCII(text string, i int) bool {
	for _, f := range [...]struct {
		seq   string
		lower byte
	}{{"\u0130", 'i'}, {"\u212a", 'k'}} {
		if !s.nameByte[f.lower] {
			continue
		}
		j, k := i, 0
		for ; k < len(f.seq) && j < len(text); k++ {
			b := text[j]
			j++
			if b == '%' {
				if d, ok := unescapeAt(text, j-1); ok {
					b, j = d, j+2
				}
			}
			if b != f.seq[k] {
				break
			}
		}
		if k == len(f.seq) {
			return true
		}
	}
	return false
}

// unescapeAt decodes the %XX escape at text[i].
func unescapeAt(text string, i int) (byte, bool) {
	if i+2 >= len(text) {
		return 0, false
	}
	hi, ok1 := unhex(text[i+1])
	lo, ok2 := unhex(text[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// equalFoldASCII reports whether s equals the lower-case lower, ignoring ASCII case.
func equalFoldASCII(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		if foldByte(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// hasUserinfo reports whether s holds "scheme://user:password@host": the one redaction
// that needs no name.
func hasUserinfo(s string) bool {
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			return false
		}
		start := i + k + 3
		end := start
		for end < len(s) && !isAuthorityStop(s[end]) {
			end++
		}
		if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
			if c := strings.IndexByte(s[start:start+at], ':'); c >= 0 && c+1 < at {
				return true
			}
		}
		if end >= len(s) {
			return false
		}
		i = end
	}
}

func isAuthorityStop(c byte) bool {
	switch c {
	case '/', '?', '#', ' ', '\t', '\r', '\n', '"', '\'', '<', '>':
		return true
	}
	return false
}

// clean reports whether s provably holds nothing any redaction pass would change. The
// full passes then need not run: s is recorded as it is.
func (r *Redactor) clean(s string) bool {
	if r.slowOnly {
		return false
	}
	sc := r.names
	if set := r.secrets.Load(); set != nil {
		sc = set.scan
	}
	return !sc.candidate(s) && !hasUserinfo(s)
}
