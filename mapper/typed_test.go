package mapper

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type address struct {
	City string `json:"city"`
	Zip  string
}

type typedAll struct {
	S    string            `mapper:"s"`
	I    int8              `mapper:"i"`
	U    uint16            `mapper:"u"`
	F32  float32           `mapper:"f32"`
	B    bool              `mapper:"b"`
	T    time.Time         `mapper:"t"`
	P    *int              `mapper:"p"`
	Any  any               `mapper:"any"`
	Tags []string          `mapper:"tags"`
	M    map[string]int    `mapper:"m"`
	Addr address           `mapper:"addr"`
	Opt  *address          `mapper:"opt"`
	Raw  map[string]string `mapper:"raw"`
}

func TestDecode(t *testing.T) {
	got, err := decodeValues[typedAll](Values{
		"s": int64(12), "i": 3.0, "u": "7", "f32": 1.5, "b": "yes", "t": "2024-01-02", "p": int64(5),
		"any": []any{1}, "tags": []any{"a", "b"}, "m": map[string]any{"x": 1.0},
		"addr": Values{"city": "Lyon", "Zip": "69000"}, "opt": nil, "raw": map[string]any{"k": "v"},
		"unknown": "ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	five := 5
	want := typedAll{S: "12", I: 3, U: 7, F32: 1.5, B: true, T: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), P: &five,
		Any: []any{1}, Tags: []string{"a", "b"}, M: map[string]int{"x": 1}, Addr: address{"Lyon", "69000"},
		Raw: map[string]string{"k": "v"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	bad := []Values{
		{"i": int64(300)},              // overflow
		{"i": 1.5},                     // fraction
		{"u": int64(-1)},               // negative
		{"b": "maybe"},                 // not a bool
		{"t": "soon"},                  // not a time
		{"addr": "Lyon"},               // not a map
		{"tags": "a"},                  // not a slice
		{"tags": []any{"a", Values{}}}, // element
		{"m": []any{}},                 // not a map
	}
	for _, v := range bad {
		if _, err := decodeValues[typedAll](v); !errors.Is(err, ErrConvert) {
			t.Errorf("Decode(%v) err = %v, want ErrConvert", v, err)
		}
	}
	if m, err := decodeValues[map[string]any](Values{"a": 1}); err != nil || m["a"] != 1 {
		t.Fatalf("decode into map: %v %v", m, err)
	}
}

func TestEncode(t *testing.T) {
	ts := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	v, err := encodeValues(struct {
		Name  string `json:"name,omitempty"`
		When  time.Time
		Lines []address
		Ptr   *address
		Tags  []string
		Skip  int `json:"-"`
		priv  int
	}{Name: "n", When: ts, Lines: []address{{City: "A"}}, Tags: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	want := Values{"name": "n", "When": ts, "Lines": []Values{{"city": "A", "Zip": ""}}, "Ptr": nil, "Tags": []any{"x"}}
	if d := cmp.Diff(want, v); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if _, err := encodeValues(42); !errors.Is(err, ErrConvert) {
		t.Fatalf("encodeValues(42): %v", err)
	}
	var nilPtr *address
	if _, err := encodeValues(nilPtr); !errors.Is(err, ErrConvert) {
		t.Fatalf("encodeValues(nil): %v", err)
	}
	if _, err := encodeValues(map[int]int{1: 1}); !errors.Is(err, ErrConvert) {
		t.Fatalf("encodeValues(map[int]int): %v", err)
	}
	m := must(NewImport("p", []Rule{Direct("x", "i", Float())}))
	if _, err := mapTo[typedAll](context.Background(), m, []byte(`{"x":"1.5"}`), Options{}); !errors.Is(err, ErrConvert) {
		t.Fatalf("MapTo fraction into int8: %v", err)
	}
	if _, err := mapTo[typedAll](context.Background(), m, []byte(`{"x":"abc"}`), Options{}); !errors.Is(err, ErrConvert) {
		t.Fatalf("MapTo conversion: %v", err)
	}
}
