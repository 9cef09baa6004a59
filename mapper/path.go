package mapper

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// checkReadPath does a structural check of a gjson path: no empty segments, balanced
// brackets and quotes. gjson itself never rejects a path, it just finds nothing, so this
// catches typos at load time.
func checkReadPath(p string) error {
	if strings.TrimSpace(p) != p {
		return fmt.Errorf("path %q has leading or trailing spaces", p)
	}
	var stack []byte
	inQuote := false
	segLen := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			i++
			segLen++
			continue
		case inQuote:
			if c == '"' {
				inQuote = false
			}
			continue
		case c == '"':
			inQuote = true
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case c == ')' || c == ']' || c == '}':
			open := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return fmt.Errorf("path %q has an unbalanced %q at %d", p, c, i)
			}
			stack = stack[:len(stack)-1]
		case (c == '.' || c == '|') && len(stack) == 0:
			if segLen == 0 {
				return fmt.Errorf("path %q has an empty segment at %d", p, i)
			}
			segLen = 0
			continue
		case c < 0x20:
			return fmt.Errorf("path %q has a control character", p)
		}
		segLen++
	}
	if inQuote || len(stack) > 0 {
		return fmt.Errorf("path %q is not closed", p)
	}
	if segLen == 0 {
		return fmt.Errorf("path %q ends with an empty segment", p)
	}
	return nil
}

// checkWritePath checks an sjson path: dotted keys and array indexes (-1 appends);
// sjson supports no wildcards, queries or modifiers.
func checkWritePath(p string) error {
	if p == "" {
		return errors.New("path is empty")
	}
	segLen := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			i++
			segLen++
		case c == '.':
			if segLen == 0 {
				return fmt.Errorf("path %q has an empty segment at %d", p, i)
			}
			segLen = 0
		case c == '*' || c == '?' || c == '#' || c == '|' || c == '@' || c == '(' || c == '[' || c == '{':
			return fmt.Errorf("path %q: %q is not allowed in a write path (sjson sets keys and indexes only)", p, c)
		case c <= ' ':
			return fmt.Errorf("path %q has a space or control character", p)
		default:
			segLen++
		}
	}
	if segLen == 0 {
		return fmt.Errorf("path %q ends with an empty segment", p)
	}
	return nil
}

// checkLocalPath checks a dotted local path ("partner_id.name", "lines.0.qty").
func checkLocalPath(p string) error {
	for i, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Errorf("local path %q has an empty segment %d", p, i)
		}
		if strings.ContainsAny(seg, " \t\r\n*?#|@()[]{}") {
			return fmt.Errorf("local path %q: segment %q must be a plain field name", p, seg)
		}
	}
	return nil
}

// checkLocalField checks an import target: a plain field name (local values are flat).
func checkLocalField(p string) error {
	if strings.ContainsAny(p, ". \t\r\n") {
		return fmt.Errorf("local field %q must be a plain name (local values are flat; no dots or spaces)", p)
	}
	return nil
}

// localGet reads a dotted path from local values. Nested maps are descended; a
// non-final segment holding an ID is followed with rel using models[hop]. An array
// segment takes a numeric index. exists is false when a segment is missing or null.
func localGet(ctx context.Context, v Values, path string, models []string, rel func(ctx context.Context, model, localID string) (map[string]any, error)) (any, bool, error) {
	if !strings.Contains(path, ".") {
		x, ok := v[path]
		return x, ok, nil
	}
	var cur any = v
	start, hop := 0, 0
	for start <= len(path) {
		end := strings.IndexByte(path[start:], '.')
		last := end < 0
		if last {
			end = len(path)
		} else {
			end += start
		}
		seg := path[start:end]
		next, ok := index(cur, seg)
		if !ok {
			return nil, false, nil
		}
		if last {
			return next, true, nil
		}
		if noRef(next) { // Odoo's False for an empty many2one, or an unset ID
			return nil, false, nil
		}
		switch next.(type) {
		case bool:
			return nil, false, nil
		case map[string]any, []any, []Values:
			cur = next
		default:
			id, err := idString(next)
			if err != nil {
				return nil, false, fmt.Errorf("path %q: %q is neither a record nor an ID: %w", path, seg, err)
			}
			if hop >= len(models) || models[hop] == "" {
				return nil, false, fmt.Errorf("path %q: %q holds ID %q but no model is given for it; add Through(models...)", path, seg, id)
			}
			if rel == nil {
				return nil, false, fmt.Errorf("path %q crosses related record %s %q but the mapper has no related-record lookup; build it WithRelated(...)", path, models[hop], id)
			}
			m, err := rel(ctx, models[hop], id)
			if err != nil {
				return nil, false, fmt.Errorf("path %q: reading %s %q: %w", path, models[hop], id, err)
			}
			cur = m
		}
		hop++
		start = end + 1
	}
	return nil, false, nil
}

func index(cur any, seg string) (any, bool) {
	switch c := cur.(type) {
	case map[string]any:
		x, ok := c[seg]
		return x, ok
	case []any:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(c) {
			return nil, false
		}
		return c[i], true
	case []Values:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(c) {
			return nil, false
		}
		return c[i], true
	}
	return nil, false
}
