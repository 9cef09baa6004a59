package mapper

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/sjson"
)

func TestPayloadMatchesSjson(t *testing.T) {
	type set struct {
		path string
		v    any
	}
	cases := map[string][]set{
		"flat":           {{"a", "x"}, {"b", int64(2)}, {"c", 1.5}, {"d", true}, {"e", nil}},
		"nested":         {{"order.name", "n"}, {"order.total", 3.25}, {"meta.tags", []any{"a", 1.0}}, {"order.customer.id", "c"}},
		"overwrite":      {{"a", "x"}, {"b", "y"}, {"a", "z"}},
		"leaf to object": {{"a", "x"}, {"a.b", "y"}},
		"object to leaf": {{"a.b", "y"}, {"a", int64(1)}},
		"strings": {{"s1", "quote \" backslash \\ newline \n tab \t nul \x00 ctl \x1f"}, {"s2", "Café ☕ \u2028 \u2029"},
			{"s3", "bad \xff utf8"}, {"s4", "<html>&amp;"}},
		"other types": {{"t", time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)}, {"m", map[string]any{"z": 1, "a": []int{1}}},
			{"i", 42}, {"neg", -0.000001}, {"big", 1e21}},
	}
	for name, sets := range cases {
		t.Run(name, func(t *testing.T) {
			p := newPayload(len(sets))
			want := []byte("{}")
			for _, s := range sets {
				if err := p.set(s.path, s.v); err != nil {
					t.Fatal(err)
				}
				var err error
				if want, err = sjson.SetBytes(want, s.path, s.v); err != nil {
					t.Fatal(err)
				}
			}
			got := p.bytes()
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("builder output is not JSON: %v\n%s", err, got)
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatalf("sjson output is not JSON: %v\n%s", err, want)
			}
			if d := cmp.Diff(w, g); d != "" {
				t.Fatalf("(-sjson +builder):\n%s\nsjson:   %s\nbuilder: %s", d, want, got)
			}
		})
	}
}

func TestPayloadKeyOrderAndSimplePath(t *testing.T) {
	p := newPayload(3)
	_ = p.set("b", int64(1))
	_ = p.set("a.y", int64(2))
	_ = p.set("a.x", int64(3))
	if got := string(p.bytes()); got != `{"b":1,"a":{"y":2,"x":3}}` {
		t.Fatalf("order: %s", got)
	}
	for path, want := range map[string]bool{"a": true, "a.b": true, "a.0": false, "a.-1": false, `a\.b`: false, "0": false} {
		if simplePath(path) != want {
			t.Errorf("simplePath(%q) = %v", path, !want)
		}
	}
}

func TestExportRejectsNaN(t *testing.T) {
	for name, to := range map[string]string{"builder": "price", "sjson": "variants.0.price"} {
		t.Run(name, func(t *testing.T) {
			m := must(NewExport("p", []Rule{Direct("price", to)}))
			if m.simple != (name == "builder") {
				t.Fatalf("simple = %v", m.simple)
			}
			_, err := m.Map(context.Background(), Values{"price": math.NaN()}, Options{})
			var me *MappingError
			if !errors.Is(err, ErrConvert) || !errors.As(err, &me) || me.Field != to {
				t.Fatalf("err = %v", err)
			}
			_, err = m.Map(context.Background(), Values{"price": math.Inf(1)}, Options{})
			if !errors.Is(err, ErrConvert) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
