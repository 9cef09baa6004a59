package apisync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/report"
)

// mappings are a config's lines built into mapper rules, once.
type mappings struct {
	// exportRules map a local record to the API payload (out configs: every line, after
	// the filter; in configs: the plain and relational lines, for responses).
	exportRules   []mapper.Rule
	exportOptions []mapper.Option
	exp           *mapper.ExportMapper
	// imp maps an API object to local values (plain and expression lines); relational
	// lines are resolved by resolveRelations.
	imp       *mapper.ImportMapper
	impUpdate *mapper.ImportMapper // imp without Required: an update may send some fields
	relations []Line               // one-hop relational lines, resolved inbound
	id        *Line                // the identifier line
}

type requestKey struct{}

// withRequest puts the request data expression lines see as `request` in ctx.
func withRequest(ctx context.Context, req map[string]any) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

func requestFrom(ctx context.Context) map[string]any {
	r, _ := ctx.Value(requestKey{}).(map[string]any)
	return r
}

// buildMappings compiles a config's lines. Expression errors name the line.
// related reads related records for relational lines; Validate builds the mappings
// with a nil s, to check them.
func (s *Sync) buildMappings(cfg *Config, f *filter) (*mappings, error) {
	m := &mappings{}
	related := func(ctx context.Context, model, id string) (map[string]any, error) {
		if s == nil {
			return nil, fmt.Errorf("%w %q", ErrUnknownModel, model)
		}
		st, ok := s.stores[model]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownModel, model)
		}
		r, err := st.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		return withID(r, id), nil
	}
	m.exportOptions = []mapper.Option{
		mapper.WithRelated(related),
		mapper.RequestFrom(func(ctx context.Context) map[string]any {
			if r := requestFrom(ctx); r != nil {
				return r
			}
			return map[string]any{"config": cfg.Name, "model": cfg.Model}
		}),
		mapper.WithIDPath("id"),
	}
	if cfg.Direction == Out {
		// The filter is the first rule: a record it rejects is skipped (its binding is
		// marked skipped), also when a trigger or the hub's export job sends it.
		m.exportRules = append(m.exportRules, mapper.Func("filter", func(ctx context.Context, r *mapper.Record) (mapper.Values, error) {
			ok, err := f.match(ctx, r.Local())
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("the config's filter excludes the record: %w", report.ErrSkip)
			}
			return nil, nil
		}))
	}
	var impRules, updRules []mapper.Rule
	var problems []*FieldError
	// the line index of each rule, for errors
	expLine := []int{-1}
	if cfg.Direction != Out {
		expLine = nil
	}
	var impLine []int
	for i, l := range cfg.Lines {
		name := mapper.Name(fmt.Sprintf("lines[%d]", i))
		var opts []mapper.RuleOption
		opts = append(opts, name)
		if l.Required {
			opts = append(opts, mapper.Required())
		}
		if l.Identifier {
			m.id = &cfg.Lines[i]
		}
		switch l.Kind {
		case "", KindPlain:
			m.exportRules = append(m.exportRules, mapper.Direct(l.Field, l.Key, opts...))
			impRules = append(impRules, mapper.Direct(l.Key, l.Field, opts...))
			updRules = append(updRules, mapper.Direct(l.Key, l.Field, name))
			expLine, impLine = append(expLine, i), append(impLine, i)
		case KindRelational:
			m.exportRules = append(m.exportRules, mapper.Direct(l.Field, l.Key, append(opts, mapper.Through(l.Through...))...))
			expLine = append(expLine, i)
			if len(l.Through) == 1 {
				m.relations = append(m.relations, l)
			}
		case KindExpression:
			if len(l.Through) > 0 {
				opts = append(opts, mapper.Through(l.Through...))
			}
			var r mapper.Rule
			if l.Mode == ModeExecute {
				r = mapper.Exec(l.Expression, opts...)
			} else if cfg.Direction == Out {
				r = mapper.Expr(l.Field, l.Key, l.Expression, opts...)
			} else {
				r = mapper.Expr("", l.Field, l.Expression, opts...)
			}
			if cfg.Direction == Out {
				m.exportRules = append(m.exportRules, r)
				expLine = append(expLine, i)
			} else {
				impRules = append(impRules, r)
				updRules = append(updRules, r)
				impLine = append(impLine, i)
			}
		}
	}
	var err error
	if m.exp, err = mapper.NewExport(cfg.Name, m.exportRules, m.exportOptions...); err != nil {
		problems = append(problems, specProblems(cfg, err, expLine)...)
	}
	if m.imp, err = mapper.NewImport(cfg.Name, impRules, mapper.WithIDPath(idKey(m.id))); err != nil {
		problems = append(problems, specProblems(cfg, err, impLine)...)
	} else if m.impUpdate, err = mapper.NewImport(cfg.Name, updRules, mapper.WithIDPath(idKey(m.id))); err != nil {
		problems = append(problems, specProblems(cfg, err, impLine)...)
	}
	if len(problems) > 0 {
		return nil, &ConfigError{File: cfg.Source, Config: cfg.Name, Fields: problems}
	}
	return m, nil
}

func idKey(l *Line) string {
	if l == nil {
		return "id"
	}
	return l.Key
}

// specProblems turns the mapper's build errors into field errors naming the line.
// lineOf gives the line index of each rule (-1: not a line).
func specProblems(cfg *Config, err error, lineOf []int) []*FieldError {
	var out []*FieldError
	var visit func(error)
	visit = func(e error) {
		var se *mapper.SpecError
		if errors.As(e, &se) && se.Index >= 0 && se.Index < len(lineOf) && lineOf[se.Index] >= 0 {
			field := fmt.Sprintf("lines[%d]", lineOf[se.Index])
			if se.Err != nil && strings.Contains(se.Err.Error(), "expression") {
				field += ".expression"
			}
			out = append(out, &FieldError{Field: field, Line: cfg.line(field), Problem: se.Err.Error()})
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				visit(x)
			}
			return
		}
		out = append(out, &FieldError{Field: "lines", Line: cfg.line("lines"), Problem: e.Error()})
	}
	visit(err)
	return out
}

// mapOut maps a local record (with its "id") to the API payload.
func (m *mappings) mapOut(ctx context.Context, r Record) (json.RawMessage, error) {
	return m.exp.Map(ctx, r, mapper.Options{RecordID: fmt.Sprint(r["id"])})
}

// mapIn maps one API object to local values: plain and expression lines through the
// import mapper, then the one-hop relational lines, which look the related record up by
// the received value (the first record whose field equals it; none is an error).
//
// With create false (an update), required lines may be absent: only the fields sent
// are written.
func (s *Sync) mapIn(ctx context.Context, m *mappings, obj []byte, req map[string]any, create bool) (Record, error) {
	imp := m.imp
	if !create {
		imp = m.impUpdate
	}
	vals, err := imp.Map(ctx, obj, mapper.Options{Create: create, Request: req})
	if err != nil {
		return nil, err
	}
	for _, l := range m.relations {
		r := gjson.GetBytes(obj, l.Key)
		link, _, _ := strings.Cut(l.Field, ".")
		target := strings.TrimPrefix(l.Field, link+".")
		if !r.Exists() || r.Type == gjson.Null {
			if l.Required && create {
				return nil, &badInput{fmt.Sprintf("%s: %v", l.Key, mapper.ErrRequired)}
			}
			continue
		}
		want := jsonScalar(r)
		id, found, err := s.findBy(ctx, s.stores[l.Through[0]], target, want)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, &badInput{fmt.Sprintf("%s: no %s record has %s = %s", l.Key, l.Through[0], target, r.Raw)}
		}
		vals[link] = id
	}
	return vals, nil
}

// jsonScalar reads a gjson value with exact numbers.
func jsonScalar(r gjson.Result) any {
	switch r.Type {
	case gjson.Number:
		return json.Number(r.Raw)
	case gjson.String:
		return r.Str
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.JSON:
		return r.Value()
	}
	return nil
}
