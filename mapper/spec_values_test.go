package mapper

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A spec's values read the same from JSON and YAML, and always as a JSON record would
// hold them (found by FuzzParseSpec: a YAML map with integer keys could not be written
// back as JSON, and JSON numbers were float64 where YAML's were int64).
func TestSpecValuesReadAlikeInJSONAndYAML(t *testing.T) {
	ctx := context.Background()
	y := `rules: [{field: a, key: a, default: {1: [2, 2.5]}}, {field: b, key: b, default: 0},
  {field: c, key: c, converter: enum, enum: {x: 1}, enum_default: 2}]`
	j := `{"rules":[{"field":"a","key":"a","default":{"1":[2,2.5]}},{"field":"b","key":"b","default":0},
  {"field":"c","key":"c","converter":"enum","enum":{"x":1},"enum_default":2}]}`
	want := Values{"a": map[string]any{"1": []any{int64(2), 2.5}}, "b": int64(0), "c": int64(1)}
	for name, src := range map[string]string{"yaml": y, "json": j} {
		s, err := ParseSpec([]byte(src), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m, err := s.Import()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := m.Map(ctx, []byte(`{"c":"x"}`), Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}
	for _, bad := range []string{`rules: [{field: a, key: a, default: .nan}]`, `{"rules":[{"field":"a","key":"a","default":1e400}]}`} {
		if _, err := ParseSpec([]byte(bad), "bad"); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
