package mapper

import (
	"context"
	"testing"
)

// TestOmitEmpty: an OmitEmpty rule writes nothing for a missing, null, blank or empty
// value, on export and import, for direct, relational and children rules; a non-empty
// value and a Default still write.
func TestOmitEmpty(t *testing.T) {
	ctx := context.Background()
	res := newFakeResolver()
	res.bind("company", "77", "c1")
	line, err := NewExport("line", []Rule{Direct("sku", "sku")})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := NewExport("contact", []Rule{
		Direct("email", "properties.email", OmitEmpty()),
		Direct("phone", "properties.phone", OmitEmpty(), Default("n/a")),
		Relation("company_id", "associations.company", "company", OmitEmpty()),
		Relation("tag_ids", "tags", "company", OmitEmpty(), SkipMissing()),
		Children("lines", "lines", line, OmitEmpty()),
	}, WithResolver(res))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   Values
		want string
	}{
		{Values{"email": "", "company_id": nil, "tag_ids": []any{}, "lines": []any{}}, `{"properties":{"phone":"n/a"}}`},
		{Values{"tag_ids": []any{"unbound"}}, `{"properties":{"phone":"n/a"}}`},
		{Values{"email": "a@b.c", "phone": "1", "company_id": "c1", "tag_ids": []any{"c1"}, "lines": []any{map[string]any{"sku": "X"}}},
			`{"properties":{"email":"a@b.c","phone":"1"},"associations":{"company":"77"},"tags":["77"],"lines":[{"sku":"X"}]}`},
	} {
		got, err := exp.Map(ctx, tc.in, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("Map(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}

	imp, err := NewImport("contact", []Rule{Direct("properties.email", "email", OmitEmpty(), Trim())}, WithResolver(res))
	if err != nil {
		t.Fatal(err)
	}
	v, err := imp.Map(ctx, []byte(`{"properties":{"email":"  "}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v["email"]; ok {
		t.Errorf("import wrote %v for a blank value", v)
	}
}
