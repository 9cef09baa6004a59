package mapper

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
)

// ImportMapper turns an external JSON record into local [Values]. Build it once with
// [NewImport] (or from a spec with [Spec.Import]) and call [ImportMapper.Map] per record;
// it is safe for concurrent use.
type ImportMapper struct {
	base
	// Single-pass reading: when every rule's path starts with a plain key, Map walks
	// the record's top-level object once instead of scanning it once per rule.
	heads map[string][]int // top-level key → rule indexes
	rests []string         // per rule: the rest of its path after the head ("" = whole value)
	fast  bool
}

// NewImport builds an import mapper from rules, checking every rule and compiling every
// expression now. Problems are reported together, each as a [*SpecError].
func NewImport(name string, rules []Rule, opts ...Option) (*ImportMapper, error) {
	// A copy: the caller may reuse its slice, and the mapper is shared by goroutines.
	m := &ImportMapper{base: base{name: name, cfg: newConfig(opts), rules: slices.Clone(rules)}}
	if err := m.build(false); err != nil {
		return nil, fmt.Errorf("building import mapper %q: %w", name, err)
	}
	m.planSinglePass()
	return m, nil
}

func (m *ImportMapper) planSinglePass() {
	m.heads = make(map[string][]int, len(m.rules))
	m.rests = make([]string, len(m.rules))
	for i := range m.rules {
		from := m.rules[i].from
		if from == "" {
			continue
		}
		head, rest, _ := strings.Cut(from, ".")
		if head == "" || strings.ContainsAny(head, `\*?#@|()[]{}!=<>%"`) || (rest == "" && strings.Contains(from, ".")) {
			m.heads, m.rests = nil, nil
			return
		}
		m.heads[head] = append(m.heads[head], i)
		m.rests[i] = rest
	}
	m.fast = len(m.heads) > 1
}

// readAll fills res[i] for every rule i that reads a path, in one pass over the record.
func (m *ImportMapper) readAll(raw string, res []gjson.Result) {
	gjson.Parse(raw).ForEach(func(k, v gjson.Result) bool {
		for _, i := range m.heads[k.Str] {
			if res[i].Index != 0 || res[i].Type != gjson.Null || res[i].Raw != "" {
				continue // duplicate key: the first one wins, as with gjson.Get
			}
			if m.rests[i] == "" {
				res[i] = v
			} else {
				res[i] = v.Get(m.rests[i])
			}
		}
		return true
	})
}

// resultPool recycles the per-record slices of pre-read values.
var resultPool = sync.Pool{New: func() any { return new([]gjson.Result) }}

// errInvalidRecord is the cause when the record given to an import mapper is not a
// JSON object; it matches ErrConvert.
var errInvalidRecord = fmt.Errorf("%w: record is not a valid JSON object", ErrConvert)

// Map maps one external record (a JSON object) to local values. This is the import
// entry point:
//
//	values, err := importMapper.Map(ctx, recordJSON, mapper.Options{Create: true})
//
// Errors are *MappingError (or errors.Join of them with [CollectErrors]); a record that
// is not a JSON object fails with [ErrConvert]. Nothing is partially returned on error.
func (m *ImportMapper) Map(ctx context.Context, record []byte, opts Options) (Values, error) {
	return m.mapString(ctx, string(record), &opts, m.name, m.cfg.idPath)
}

// mapString maps raw; idPath is where the record ID is read for errors when
// opts.RecordID is empty (read only when an error is reported).
func (m *ImportMapper) mapString(ctx context.Context, raw string, opts *Options, label, idPath string) (Values, error) {
	recordID := func() string {
		if opts.RecordID != "" || idPath == "" {
			return opts.RecordID
		}
		return gjson.Get(raw, idPath).String()
	}
	if err := ctx.Err(); err != nil {
		return nil, &MappingError{Mapper: label, RecordID: opts.RecordID, Cause: err}
	}
	if !isObject(raw) || tooDeep(raw) || !gjson.Valid(raw) {
		return nil, &MappingError{Mapper: label, RecordID: opts.RecordID, Cause: errInvalidRecord}
	}
	out := make(Values, len(m.rules))
	rec := Record{raw: raw, opts: opts, mapped: out}
	if m.fast {
		bp := resultPool.Get().(*[]gjson.Result)
		res := slices.Grow((*bp)[:0], len(m.rules))[:len(m.rules)]
		clear(res)
		m.readAll(raw, res)
		rec.pre = res
		defer func() {
			clear(res) // drop references to this record
			*bp = res
			resultPool.Put(bp)
		}()
	}
	collect := opts.collect || m.cfg.collect
	var errs []error
	for i := range m.rules {
		r := &m.rules[i]
		if !r.applies(opts) {
			continue
		}
		if err := m.apply(ctx, i, r, &rec, out, label, collect); err != nil {
			err = m.mapErr(label, i, r, recordID(), err)
			if !collect {
				return nil, err
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// maxDepth bounds the nesting of a record, as encoding/json does: parsing and decoding
// recurse once per level.
const maxDepth = 10000

// tooDeep reports whether s nests objects/arrays deeper than maxDepth. Only records long
// enough to do so are scanned.
func tooDeep(s string) bool {
	if len(s) <= maxDepth {
		return false
	}
	depth, inStr := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > maxDepth {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

func isObject(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

func (m *ImportMapper) apply(ctx context.Context, i int, r *Rule, rec *Record, out Values, label string, collect bool) error {
	switch r.kind {
	case kindDirect:
		res := rec.source(i, r.from)
		var v any
		if res.Type != gjson.Null {
			v = jsonValue(res)
		}
		v, ok, err := finish(r, v, res.Exists())
		if err != nil {
			return err
		}
		if ok {
			out[r.to] = v
		}
	case kindFunc:
		vals, err := r.fn(ctx, rec)
		if err != nil {
			return err
		}
		merge(out, vals)
	case kindRelation:
		res := rec.source(i, r.from)
		var v any
		if res.Type != gjson.Null {
			v = jsonValue(res)
		}
		v, ok, err := m.relate(ctx, r, v, res.Exists())
		if err != nil {
			return err
		}
		if ok {
			out[r.to] = v
		}
	case kindExpr, kindExec:
		p := m.progs[i]
		env := exprEnv{Values: out, Request: opts(rec).Request, Create: opts(rec).Create}
		if r.from != "" {
			if res := rec.source(i, r.from); res.Type != gjson.Null {
				env.Value = jsonValue(res)
			}
		}
		if p.usesRecord {
			env.Record = rec.decoded()
		}
		if p.usesField {
			env.Field = func(path string) (any, error) { return jsonValue(gjson.Get(rec.raw, path)), nil }
		}
		v, err := p.run(ctx, &env)
		if err != nil {
			return err
		}
		if r.kind == kindExec {
			patch, err := execResult(v)
			if err != nil {
				return err
			}
			merge(out, patch)
			return nil
		}
		v, ok, err := finish(r, v, true)
		if err != nil {
			return err
		}
		if ok {
			out[r.to] = v
		}
	case kindChildren:
		res := rec.source(i, r.from)
		if !res.Exists() || res.Type == gjson.Null {
			_, ok, err := finish(r, nil, res.Exists())
			if err != nil {
				return err
			}
			if ok {
				out[r.to] = []Values{}
			}
			return nil
		}
		if !res.IsArray() {
			return fmt.Errorf("%w: children at %q must be an array, got %s", ErrConvert, r.from, res.Type)
		}
		child := r.child.(*ImportMapper)
		childOpts := Options{Create: rec.opts.Create, Changed: rec.opts.Changed, Request: rec.opts.Request,
			collect: collect, RecordID: rec.opts.RecordID}
		lines := make([]Values, 0, 4)
		var errs []error
		n := 0
		for _, el := range res.Array() {
			l, err := child.mapString(ctx, el.Raw, &childOpts, label+"/"+child.name+"["+strconv.Itoa(n)+"]", child.cfg.idPath)
			n++
			if err != nil {
				if !collect {
					return err
				}
				errs = append(errs, err)
				continue
			}
			lines = append(lines, l)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		if r.omitEmpty && len(lines) == 0 {
			return nil
		}
		out[r.to] = lines
	}
	return nil
}

func opts(rec *Record) *Options { return rec.opts }

// relate resolves external IDs (one or an array) to local IDs.
func (m *ImportMapper) relate(ctx context.Context, r *Rule, v any, exists bool) (any, bool, error) {
	if noRef(v) {
		v = nil // "" and false are no reference, not an ID to resolve
	}
	v, ok, err := finish(r, v, exists)
	if err != nil || !ok || v == nil {
		return v, ok, err
	}
	if arr, isArr := v.([]any); isArr {
		ids := make([]string, 0, len(arr))
		for _, x := range arr {
			if noRef(x) {
				continue
			}
			id, found, err := m.resolveOne(ctx, r, x)
			if err != nil {
				return nil, false, err
			}
			if found {
				ids = append(ids, id)
			}
		}
		if r.omitEmpty && len(ids) == 0 {
			return nil, false, nil
		}
		return ids, true, nil
	}
	id, found, err := m.resolveOne(ctx, r, v)
	return id, found, err
}

func (m *ImportMapper) resolveOne(ctx context.Context, r *Rule, v any) (string, bool, error) {
	ext, err := idString(v)
	if err != nil {
		return "", false, err
	}
	if m.cfg.resolver == nil {
		return "", false, errNoResolver
	}
	local, err := m.cfg.resolver.ToLocal(ctx, r.model, ext)
	if err == nil && local != "" {
		return local, true, nil
	}
	if err != nil && !errors.Is(err, binding.ErrNotFound) {
		return "", false, fmt.Errorf("resolving %s external ID %q: %w", r.model, ext, err)
	}
	switch {
	case r.onMissing == missingSkip:
		return "", false, nil
	case r.onMissing != missingFail && m.cfg.importMissing != nil:
		// Not bound, or bound to a local record that is gone (the resolver says
		// ErrNotFound for both): importing it creates or recreates it and binds it.
		if ierr := m.cfg.importMissing(ctx, r.model, ext); ierr != nil {
			return "", false, fmt.Errorf("importing missing dependency %s %q: %w", r.model, ext, ierr)
		}
		local, err = m.cfg.resolver.ToLocal(ctx, r.model, ext)
		if err == nil && local != "" {
			return local, true, nil
		}
		if err != nil && !errors.Is(err, binding.ErrNotFound) {
			return "", false, fmt.Errorf("resolving %s external ID %q after importing it: %w", r.model, ext, err)
		}
	}
	if err == nil {
		err = binding.ErrNotFound // an empty local ID is no ID
	}
	return "", false, &missingDependencyError{model: r.model, id: ext, err: err}
}

// Record gives [Func] rules access to the record being mapped. It is valid only during
// the call.
type Record struct {
	raw    string // import: the external JSON
	local  Values // export: the local values
	opts   *Options
	mapped Values
	dec    map[string]any
	ctx    context.Context
	rel    func(ctx context.Context, model, localID string) (map[string]any, error)
	pre    []gjson.Result // import: values read in one pass, per rule index
}

// source returns the value at rule i's path.
func (r *Record) source(i int, path string) gjson.Result {
	if r.pre != nil {
		return r.pre[i]
	}
	return gjson.Get(r.raw, path)
}

// Get reads a value of the source record: a gjson path on import (the JSON-decoded
// value: string, float64/int64, bool, map[string]any, []any), a dotted local path on
// export (related records are followed through the mapper's [WithRelated] lookup with
// the models given, if any). ok is false when the path is missing or null; err reports a
// related record that could not be read (export), so a [Func] rule can fail the record
// instead of mapping a missing value.
func (r *Record) Get(path string, models ...string) (v any, ok bool, err error) {
	if r.local != nil {
		ctx := r.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		v, ok, err := localGet(ctx, r.local, path, models, r.rel)
		if err != nil || v == nil {
			return nil, false, err
		}
		return v, ok, nil
	}
	res := gjson.Get(r.raw, path)
	if !res.Exists() || res.Type == gjson.Null {
		return nil, false, nil
	}
	return jsonValue(res), true, nil
}

// JSON returns the external record's raw JSON (import only; empty on export).
func (r *Record) JSON() string { return r.raw }

// Local returns the local values (export only; nil on import).
func (r *Record) Local() Values { return r.local }

// Mapped returns the values mapped so far by earlier rules (local fields on import,
// payload paths on export). Do not modify it; return new values instead.
func (r *Record) Mapped() Values { return r.mapped }

// Options returns the Map call's options.
func (r *Record) Options() Options { return *r.opts }

func (r *Record) decoded() map[string]any {
	if r.dec == nil {
		if r.local != nil {
			r.dec = r.local
		} else if m, ok := decodeJSON(gjson.Parse(r.raw)).(map[string]any); ok {
			r.dec = m
		} else {
			r.dec = map[string]any{}
		}
	}
	return r.dec
}
