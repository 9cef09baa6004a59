package mapper

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/tidwall/sjson"

	"github.com/connkit/connkit/binding"
)

// ExportMapper turns local [Values] into an external JSON payload. Build it once with
// [NewExport] (or from a spec with [Spec.Export]) and call [ExportMapper.Map] per record;
// it is safe for concurrent use.
type ExportMapper struct {
	base
	simple bool // every target is a plain key path: build with payload, not sjson
}

// NewExport builds an export mapper from rules, checking every rule and compiling every
// expression now. Problems are reported together, each as a [*SpecError].
func NewExport(name string, rules []Rule, opts ...Option) (*ExportMapper, error) {
	// A copy: the caller may reuse its slice, and the mapper is shared by goroutines.
	m := &ExportMapper{base: base{name: name, cfg: newConfig(opts), rules: slices.Clone(rules)}}
	if err := m.build(true); err != nil {
		return nil, fmt.Errorf("building export mapper %q: %w", name, err)
	}
	m.simple = true
	for i := range m.rules {
		r := &m.rules[i]
		if r.kind == kindFunc || r.kind == kindExec || !simplePath(r.to) {
			m.simple = false // dynamic or indexed paths: sjson
		}
	}
	return m, nil
}

// Map maps one record's local values to a JSON payload (an object). This is the export
// entry point:
//
//	payload, err := exportMapper.Map(ctx, localValues, mapper.Options{Changed: changed})
//
// Rules whose source is missing write nothing; a nil value writes null. Errors are
// *MappingError (or errors.Join of them with [CollectErrors]).
func (m *ExportMapper) Map(ctx context.Context, local Values, opts Options) ([]byte, error) {
	return m.mapValues(ctx, local, &opts, m.name)
}

func (m *ExportMapper) mapValues(ctx context.Context, local Values, opts *Options, label string) ([]byte, error) {
	recordID := func() string {
		if opts.RecordID != "" || m.cfg.idPath == "" {
			return opts.RecordID
		}
		if v, ok, _ := localGet(ctx, local, m.cfg.idPath, nil, nil); ok {
			if s, err := idString(v); err == nil {
				return s
			}
		}
		return ""
	}
	if err := ctx.Err(); err != nil {
		return nil, &MappingError{Mapper: label, RecordID: opts.RecordID, Cause: err}
	}
	if local == nil {
		local = Values{}
	}
	out := &sink{}
	if m.simple {
		out.p = newPayload(len(m.rules))
	} else {
		out.raw = make([]byte, 0, 64*len(m.rules)+2)
		out.raw = append(out.raw, '{', '}')
	}
	if m.hasExpr || m.hasFunc { // only they read what earlier rules wrote
		out.written = make(Values, len(m.rules))
	}
	rec := Record{local: local, opts: opts, mapped: out.written, ctx: ctx, rel: m.cfg.related}
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
	return out.bytes(), nil
}

// sink is where an export mapper writes: the payload builder for plain key paths,
// sjson otherwise; written keeps the values for expressions (`values`).
type sink struct {
	p       *payload
	raw     []byte
	written Values
}

func (s *sink) set(path string, v any) error {
	if s.p != nil {
		if err := s.p.set(path, v); err != nil {
			return err
		}
	} else {
		// sjson writes NaN/Inf as bare words; encode first so the payload stays JSON.
		raw, err := appendJSON(nil, v)
		if err != nil {
			return fmt.Errorf("writing %q: %w", path, err)
		}
		if s.raw, err = sjson.SetRawBytes(s.raw, path, raw); err != nil {
			return fmt.Errorf("writing %q: %w", path, err)
		}
	}
	if s.written != nil {
		s.written[path] = v
	}
	return nil
}

func (s *sink) setRaw(path string, raw []byte, v any) error {
	if s.p != nil {
		s.p.setRaw(path, raw)
	} else {
		var err error
		if s.raw, err = sjson.SetRawBytes(s.raw, path, raw); err != nil {
			return fmt.Errorf("writing %q: %w", path, err)
		}
	}
	if s.written != nil {
		s.written[path] = v
	}
	return nil
}

func (s *sink) bytes() []byte {
	if s.p != nil {
		return s.p.bytes()
	}
	return s.raw
}

// setAll writes vals in key order, so a payload is byte-for-byte stable (content
// hashes of exported payloads depend on it).
func setAll(out *sink, vals map[string]any) error {
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		if err := out.set(k, vals[k]); err != nil {
			return err
		}
	}
	return nil
}

func (m *ExportMapper) apply(ctx context.Context, i int, r *Rule, rec *Record, out *sink, label string, collect bool) error {
	switch r.kind {
	case kindDirect:
		v, exists, err := localGet(ctx, rec.local, r.from, r.through, m.cfg.related)
		if err != nil {
			return err
		}
		v, ok, err := finish(r, v, exists)
		if err != nil || !ok {
			return err
		}
		return out.set(r.to, v)
	case kindFunc:
		vals, err := r.fn(ctx, rec)
		if err != nil {
			return err
		}
		return setAll(out, vals)
	case kindRelation:
		v, exists, err := localGet(ctx, rec.local, r.from, r.through, m.cfg.related)
		if err != nil {
			return err
		}
		if !exists || noRef(v) {
			v, ok, err := finish(r, nil, exists)
			if err != nil || !ok {
				return err
			}
			return out.set(r.to, v)
		}
		v, ok, err := m.relate(ctx, r, v)
		if err != nil || !ok {
			return err
		}
		if v, ok, err = finish(r, v, true); err != nil || !ok {
			return err
		}
		return out.set(r.to, v)
	case kindExpr, kindExec:
		p := m.progs[i]
		env := exprEnv{Values: out.written, Request: rec.opts.Request, Create: rec.opts.Create, Record: rec.local}
		if r.from != "" {
			v, _, err := localGet(ctx, rec.local, r.from, r.through, m.cfg.related)
			if err != nil {
				return err
			}
			env.Value = v
		}
		if p.usesField {
			env.Field = func(path string) (any, error) {
				v, _, err := localGet(ctx, rec.local, path, r.through, m.cfg.related)
				return v, err
			}
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
			return setAll(out, patch)
		}
		v, ok, err := finish(r, v, true)
		if err != nil || !ok {
			return err
		}
		return out.set(r.to, v)
	case kindChildren:
		v, exists, err := localGet(ctx, rec.local, r.from, r.through, m.cfg.related)
		if err != nil {
			return err
		}
		if !exists || v == nil {
			v, ok, err := finish(r, nil, exists)
			if err != nil || !ok {
				return err
			}
			return out.set(r.to, v)
		}
		lines, err := asLines(v)
		if err != nil {
			return err
		}
		if r.omitEmpty && len(lines) == 0 {
			return nil
		}
		child := r.child.(*ExportMapper)
		childOpts := *rec.opts
		childOpts.collect = collect
		arr := make([]byte, 0, 64*len(lines)+2)
		arr = append(arr, '[')
		var errs []error
		for n, line := range lines {
			b, err := child.mapValues(ctx, line, &childOpts, label+"/"+child.name+"["+strconv.Itoa(n)+"]")
			if err != nil {
				if !collect {
					return err
				}
				errs = append(errs, err)
				continue
			}
			if len(arr) > 1 {
				arr = append(arr, ',')
			}
			arr = append(arr, b...)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		arr = append(arr, ']')
		return out.setRaw(r.to, arr, lines)
	}
	return nil
}

func asLines(v any) ([]Values, error) {
	switch x := v.(type) {
	case []Values:
		return x, nil
	case []any:
		out := make([]Values, len(x))
		for i, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: line %d is %T, want a map of values", ErrConvert, i, e)
			}
			out[i] = m
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: children must be []Values or []any of maps, got %T", ErrConvert, v)
}

// relate resolves local IDs (one or a list) to external IDs.
func (m *ExportMapper) relate(ctx context.Context, r *Rule, v any) (any, bool, error) {
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case []string:
		list = make([]any, len(x))
		for i, s := range x {
			list[i] = s
		}
	case []int64:
		list = make([]any, len(x))
		for i, s := range x {
			list[i] = s
		}
	case []int:
		list = make([]any, len(x))
		for i, s := range x {
			list[i] = s
		}
	default:
		id, ok, err := m.resolveOne(ctx, r, v)
		return id, ok, err
	}
	ids := make([]any, 0, len(list))
	for _, x := range list {
		if noRef(x) {
			continue
		}
		id, ok, err := m.resolveOne(ctx, r, x)
		if err != nil {
			return nil, false, err
		}
		if ok {
			ids = append(ids, id)
		}
	}
	if r.omitEmpty && len(ids) == 0 {
		return nil, false, nil
	}
	return ids, true, nil
}

func (m *ExportMapper) resolveOne(ctx context.Context, r *Rule, v any) (string, bool, error) {
	local, err := idString(v)
	if err != nil {
		return "", false, err
	}
	if m.cfg.resolver == nil {
		return "", false, errNoResolver
	}
	ext, err := m.cfg.resolver.ToExternal(ctx, r.model, local)
	if err == nil && ext != "" {
		return ext, true, nil
	}
	if err != nil && !errors.Is(err, binding.ErrNotFound) {
		return "", false, fmt.Errorf("resolving %s local ID %q: %w", r.model, local, err)
	}
	if r.onMissing == missingSkip {
		return "", false, nil
	}
	if err == nil {
		err = binding.ErrNotFound
	}
	return "", false, &missingDependencyError{model: r.model, id: local, export: true, err: err}
}
