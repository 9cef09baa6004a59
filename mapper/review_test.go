package mapper

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// "" and false are "no related record" on both sides, never an ID sent to the
// resolver (which would report a missing dependency for a record that has none).
func TestRelationEmptyReference(t *testing.T) {
	ctx := context.Background()
	f := newFakeResolver()
	f.bind("res.partner", "E1", "p1")
	imp := must(NewImport("order", []Rule{
		Relation("customer", "partner_id", "res.partner"),
		Relation("tags", "tag_ids", "res.partner"),
	}, WithResolver(f)))
	for _, rec := range []string{`{"customer":"","tags":["", "E1", false, null]}`, `{"customer":false,"tags":["E1"]}`} {
		got, err := imp.Map(ctx, []byte(rec), Options{})
		if err != nil {
			t.Fatalf("%s: %v", rec, err)
		}
		if d := cmp.Diff(Values{"partner_id": nil, "tag_ids": []string{"p1"}}, got); d != "" {
			t.Fatalf("%s (-want +got):\n%s", rec, d)
		}
	}
	req := must(NewImport("order", []Rule{Relation("customer", "partner_id", "res.partner", Required())}, WithResolver(f)))
	if _, err := req.Map(ctx, []byte(`{"customer":""}`), Options{}); !errors.Is(err, ErrRequired) {
		t.Fatalf("required empty reference: %v", err)
	}

	exp := must(NewExport("order", []Rule{
		Relation("partner_id", "customer", "res.partner"),
		Relation("tag_ids", "tags", "res.partner"),
		Direct("partner_id.name", "customer_name", Through("res.partner")),
	}, WithResolver(f), WithRelated(RelatedFunc(func(_ context.Context, model, id string) (map[string]any, error) {
		t.Errorf("Related called for %s %q", model, id)
		return nil, errBoom
	}))))
	got, err := exp.Map(ctx, Values{"partner_id": "", "tag_ids": []string{"", "p1"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, `{"customer":null,"tags":["E1"]}`, got)
}

// A custom converter's error is a conversion error like a built-in one's.
func TestCustomConverterErrorIsErrConvert(t *testing.T) {
	errBad := errors.New("not an e-mail address")
	m := must(NewImport("c", []Rule{Direct("email", "email", Convert("email", func(v any) (any, error) {
		return nil, errBad
	}))}))
	_, err := m.Map(context.Background(), []byte(`{"email":"x"}`), Options{})
	if !errors.Is(err, ErrConvert) || !errors.Is(err, errBad) || !strings.Contains(err.Error(), "with email") {
		t.Fatalf("%v", err)
	}
}
