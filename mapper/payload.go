package mapper

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// payload builds an export payload when every target path is a plain dotted key path
// (no array indexes): values are encoded once into one buffer and the object tree is
// written at the end, instead of sjson re-reading and copying the document per field.
// Nodes live in one slice; children are linked lists in insertion order.
type payload struct {
	nodes []pnode
	vals  []byte
}

type pnode struct {
	key         string
	first, last int32 // children
	next        int32 // sibling
	start, end  int32 // leaf value in vals
	leaf        bool
}

func newPayload(n int) *payload {
	p := &payload{nodes: make([]pnode, 1, 2*n+1), vals: make([]byte, 0, 32*n)}
	p.nodes[0] = pnode{first: -1, last: -1, next: -1}
	return p
}

// simplePath reports whether path is a dotted key path the builder handles exactly as
// sjson would: no escapes and no segment that sjson reads as an array index.
func simplePath(path string) bool {
	if strings.IndexByte(path, '\\') >= 0 {
		return false
	}
	for seg := range strings.SplitSeq(path, ".") {
		if seg == "" || seg == "-1" {
			return false
		}
		if _, err := strconv.Atoi(seg); err == nil {
			return false
		}
	}
	return true
}

func (p *payload) child(parent int32, key string) int32 {
	for c := p.nodes[parent].first; c >= 0; c = p.nodes[c].next {
		if p.nodes[c].key == key {
			return c
		}
	}
	idx := int32(len(p.nodes))
	p.nodes = append(p.nodes, pnode{key: key, first: -1, last: -1, next: -1})
	if par := &p.nodes[parent]; par.first < 0 {
		par.first, par.last = idx, idx
	} else {
		p.nodes[par.last].next = idx
		par.last = idx
	}
	return idx
}

// node returns the node at path, turning leaves on the way into objects (as sjson does).
func (p *payload) node(path string) int32 {
	n := int32(0)
	for {
		i := strings.IndexByte(path, '.')
		seg := path
		if i >= 0 {
			seg = path[:i]
		}
		if p.nodes[n].leaf {
			p.nodes[n].leaf = false
		}
		n = p.child(n, seg)
		if i < 0 {
			return n
		}
		path = path[i+1:]
	}
}

func (p *payload) set(path string, v any) error {
	start := len(p.vals)
	vals, err := appendJSON(p.vals, v)
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	p.vals = vals
	p.setSpan(path, start)
	return nil
}

func (p *payload) setRaw(path string, raw []byte) {
	start := len(p.vals)
	p.vals = append(p.vals, raw...)
	p.setSpan(path, start)
}

func (p *payload) setSpan(path string, start int) {
	n := p.node(path)
	p.nodes[n].leaf = true
	p.nodes[n].first, p.nodes[n].last = -1, -1
	p.nodes[n].start, p.nodes[n].end = int32(start), int32(len(p.vals))
}

func (p *payload) bytes() []byte {
	return p.appendNode(make([]byte, 0, len(p.vals)+16*len(p.nodes)+2), 0)
}

func (p *payload) appendNode(buf []byte, n int32) []byte {
	nd := &p.nodes[n]
	if nd.leaf {
		return append(buf, p.vals[nd.start:nd.end]...)
	}
	buf = append(buf, '{')
	for c := nd.first; c >= 0; c = p.nodes[c].next {
		if c != nd.first {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, p.nodes[c].key)
		buf = append(buf, ':')
		buf = p.appendNode(buf, c)
	}
	return append(buf, '}')
}

// appendJSON encodes v like encoding/json, with fast paths for the common types.
// NaN and infinities are an error (JSON has no such numbers).
func appendJSON(buf []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case string:
		return appendJSONString(buf, x), nil
	case bool:
		return strconv.AppendBool(buf, x), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return buf, fmt.Errorf("%w: %v is not a JSON number", ErrConvert, x)
		}
		return strconv.AppendFloat(buf, x, 'f', -1, 64), nil
	case time.Time:
		return x.AppendFormat(append(buf, '"'), `2006-01-02T15:04:05.999999999Z07:00"`), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return buf, fmt.Errorf("%w: %w", ErrConvert, err)
	}
	return append(buf, b...), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does (without HTML escaping); invalid
// UTF-8 becomes U+FFFD.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
