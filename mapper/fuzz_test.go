package mapper

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func fuzzMappers() (*ImportMapper, *ExportMapper) {
	f := newFakeResolver()
	f.bind("res.partner", "1", "p1")
	line := must(NewImport("line", []Rule{
		Direct("qty", "qty", Int()),
		Direct("price", "price", Float(), Default(0.0)),
	}))
	imp := must(NewImport("fuzz", []Rule{
		Direct("name", "name", String(), Trim(), Lower()),
		Direct("price", "price", Float()),
		Direct("qty", "qty", Int()),
		Direct("active", "active", Bool()),
		Direct("created", "created", Time()),
		Direct("state", "state", EnumDefault(map[string]any{"a": "A"}, "other")),
		Direct("variants.0.price", "v0", Float()),
		Direct("tags", "tags"),
		Relation("customer", "partner_id", "res.partner", SkipMissing()),
		Expr("name", "label", `string(value) + "-" + string(field("qty"))`),
		Exec(`{"n": len(string(record.name ?? ""))}`),
		Children("lines", "lines", line),
	}, WithResolver(f), WithIDPath("id"), CollectErrors()))
	lineOut := must(NewExport("line", []Rule{Direct("qty", "qty"), Direct("price", "price")}))
	exp := must(NewExport("fuzz", []Rule{
		Direct("name", "name"), Direct("price", "price"), Direct("qty", "qty"), Direct("active", "active"),
		Direct("created", "created", FormatTime("2006-01-02", nil)), Direct("tags", "tags"),
		Direct("v0", "variants.0.price"), Children("lines", "lines", lineOut),
	}))
	return imp, exp
}

// fuzzSimpleExport uses only plain key paths, so it runs on the payload builder.
func fuzzSimpleExport() *ExportMapper {
	lineOut := must(NewExport("line", []Rule{Direct("qty", "qty"), Direct("price", "p.price")}))
	return must(NewExport("fuzz", []Rule{
		Direct("name", "name"), Direct("label", "meta.label"), Direct("price", "meta.price"), Direct("qty", "qty"),
		Direct("active", "active"), Direct("created", "created"), Direct("tags", "tags"), Direct("state", "meta"),
		Direct("n", "meta.n"), Children("lines", "lines", lineOut),
	}))
}

func FuzzImport(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, ``, `null`, `{"name":"X"}`, productJSON,
		`{"name":" A ","price":"19.99","qty":"3","active":"yes","created":"2024-01-02","state":"a",
		  "variants":[{"price":1}],"tags":["x"],"customer":1,"lines":[{"qty":1,"price":2}]}`,
		`{"price":"NaN","qty":1e400,"created":-1e300,"lines":{"a":1},"customer":[1,[2]]}`,
		`{"name":{"deep":[[[[]]]]},"lines":[null,1,"x",{"qty":"1.5"}]}`,
		`{"a":"\ud800","name":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	imp, exp := fuzzMappers()
	// The same mapper reading each path with its own gjson.Get, to check the
	// single-pass reader against gjson's semantics.
	slow := *imp
	slow.fast = false
	simple := fuzzSimpleExport()
	simpleViaSjson := *simple
	simpleViaSjson.simple = false
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := imp.Map(ctx, data, Options{Create: true})
		slowVals, slowErr := slow.Map(ctx, data, Options{Create: true})
		if (err == nil) != (slowErr == nil) {
			t.Fatalf("single pass err %v, per-path err %v", err, slowErr)
		}
		if d := cmp.Diff(slowVals, vals, cmpopts.EquateNaNs()); d != "" {
			t.Fatalf("single pass differs from per-path reading (-slow +fast):\n%s", d)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if _, err := exp.Map(ctx, vals, Options{Create: true}); err != nil && err.Error() == "" {
			t.Fatal("empty error message")
		}
		// The payload builder and sjson must write the same document.
		a, errA := simple.Map(ctx, vals, Options{})
		b, errB := simpleViaSjson.Map(ctx, vals, Options{})
		if (errA == nil) != (errB == nil) {
			t.Fatalf("builder err %v, sjson err %v", errA, errB)
		}
		if errA == nil {
			var av, bv any
			if err := json.Unmarshal(a, &av); err != nil {
				t.Fatalf("builder wrote invalid JSON: %v\n%s", err, a)
			}
			if err := json.Unmarshal(b, &bv); err != nil {
				t.Fatalf("sjson wrote invalid JSON: %v\n%s", err, b)
			}
			if d := cmp.Diff(bv, av); d != "" {
				t.Fatalf("builder differs from sjson (-sjson +builder):\n%s", d)
			}
		}
	})
}
