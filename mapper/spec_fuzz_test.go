package mapper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// specModels lists the models of a spec's relational rules, children included.
func specModels(s *Spec, out *[]string) {
	for _, r := range s.Rules {
		switch strings.ToLower(r.Kind) {
		case "relational", "relation":
			*out = append(*out, r.Model)
		case "children":
			if r.Children != nil {
				specModels(r.Children, out)
			}
		}
	}
}

// FuzzParseSpec: any input either fails to parse with a *SpecError or yields a spec
// that (1) survives a JSON round trip unchanged, (2) builds into import and export
// mappers or fails with *SpecErrors matching ErrInvalidRule, (3) whose built mappers
// list exactly the spec's relational models, and (4) map records without panicking,
// failing only with *MappingError.
func FuzzParseSpec(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.*")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `rules: []`, `{"rules":null}`,
		`rules: [{field: a, key: a, converter: "int|string", default: 3, required: true}]`,
		`rules: [{field: a, key: b.c, kind: relational, model: m, on_missing: import}]`,
		`rules: [{field: a, key: b, kind: relational, model: m, on_missing: fail, through: [x]}]`,
		`{"direction":"export","rules":[{"field":"p.name","key":"a.b","through":["res.partner"]}]}`,
		`rules: [{field: t, key: t, converter: time, layouts: ["2006"], zone: Europe/Paris}]`,
		`rules: [{field: t, key: t, converter: format_time, layout: "2006-01-02"}]`,
		`rules: [{field: s, key: s, converter: enum, enum: {a: 1, "2": [x]}, enum_default: {k: v}}]`,
		`rules: [{kind: expression, mode: execute, expression: '{"a": len(record)}'}]`,
		`rules: [{field: x, kind: expression, expression: 'repeat("a", 1e9)'}]`,
		`rules: [{field: l, key: l, kind: children, children: {rules: [{field: q, key: q, converter: cents}]}}]`,
		`rules: [{kind: function, func: fn}, {field: a, key: a, converter: money}]`,
		`rules: [{field: a, key: "items.#(sku==\"A\").qty"}, {field: b, key: "a..b"}]`,
		"rules:\n  - &r {field: a, key: a}\n  - *r\n",
		`{"rules":[{"field":"a","key":"a","default":1e400}]}`,
		`rules: [{field: a, key: a, default: {1: 2}}]`,
	} {
		f.Add([]byte(s))
	}
	res := newFakeResolver()
	res.bind("m", "1", "L1")
	opts := []Option{
		WithResolver(res),
		WithImportMissing(func(context.Context, string, string) error { return nil }),
		WithRelated(func(_ context.Context, model, id string) (map[string]any, error) {
			return map[string]any{"name": model + id}, nil
		}),
		WithConverter(Convert("cents", func(v any) (any, error) { return toFloat(v) })),
		WithFunc("fn", func(context.Context, *Record) (Values, error) { return Values{"f": 1}, nil }),
		withExprLimits(exprLimits{Timeout: time.Second}),
	}
	records := [][]byte{
		[]byte(`{"id":1,"a":"1","b":{"c":"1"},"t":"2024-01-02","s":"a","l":[{"q":1}],"items":[{"sku":"A","qty":2}]}`),
		[]byte(`{"a":null,"l":{},"s":[1]}`),
	}
	local := Values{"a": "x", "p": "1", "t": time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), "l": []Values{{"q": 1}}}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data, "fuzz.yaml")
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidRule) || err.Error() == "" {
				t.Fatalf("parse error is not a *SpecError: %T %v", err, err)
			}
			return
		}
		// (1) JSON round trip: what a spec says survives being written out and read back.
		js, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("a parsed spec cannot be written as JSON: %v", err)
		}
		again, err := ParseSpec(js, "fuzz.json")
		if err != nil {
			t.Fatalf("the spec written as JSON does not parse: %v\n%s", err, js)
		}
		if js2, _ := json.Marshal(again); !bytes.Equal(js, js2) {
			t.Fatalf("JSON round trip changed the spec:\n%s\n%s", js, js2)
		}
		var models []string
		specModels(s, &models)
		slices.Sort(models)
		models = slices.Compact(models)
		for _, export := range []bool{false, true} {
			var m interface{ Relations() []string }
			var err, err2 error
			var imp *ImportMapper
			var exp *ExportMapper
			if export {
				exp, err = s.Export(opts...)
				_, err2 = again.Export(opts...)
				m = exp
			} else {
				imp, err = s.Import(opts...)
				_, err2 = again.Import(opts...)
				m = imp
			}
			if (err == nil) != (err2 == nil) {
				t.Fatalf("export=%v: the round-tripped spec builds differently: %v / %v", export, err, err2)
			}
			// (2) Build errors are spec errors.
			if err != nil {
				var se *SpecError
				if !errors.As(err, &se) || !errors.Is(err, ErrInvalidRule) || err.Error() == "" {
					t.Fatalf("export=%v: build error is not a *SpecError: %T %v", export, err, err)
				}
				continue
			}
			// (3) Relations are the spec's relational models.
			if got := m.Relations(); !slices.Equal(got, models) && !(len(got) == 0 && len(models) == 0) {
				t.Fatalf("export=%v: Relations() = %q, spec's relational models %q", export, got, models)
			}
			// (4) Mapping fails only with *MappingError.
			check := func(err error) {
				if err == nil {
					return
				}
				var me *MappingError
				if !errors.As(err, &me) || err.Error() == "" {
					t.Fatalf("export=%v: mapping error is not a *MappingError: %T %v", export, err, err)
				}
			}
			if export {
				_, err := exp.Map(ctx, local, Options{Create: true})
				check(err)
				_, err = exp.Map(ctx, local, Options{Changed: []string{"a"}})
				check(err)
			} else {
				for _, rec := range records {
					_, err := imp.Map(ctx, rec, Options{Create: true})
					check(err)
				}
			}
		}
	})
}
