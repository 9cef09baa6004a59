package mapper

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestPathChecks(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) error
		path  string
		ok    bool
	}{
		{"read simple", checkReadPath, "a.b.0.c", true},
		{"read query", checkReadPath, `items.#(sku=="A").qty`, true},
		{"read modifier", checkReadPath, "tags|@reverse", true},
		{"read escaped dot", checkReadPath, `a\.b`, true},
		{"read empty segment", checkReadPath, "a..b", false},
		{"read leading dot", checkReadPath, ".a", false},
		{"read trailing dot", checkReadPath, "a.", false},
		{"read unbalanced", checkReadPath, "a.#(b==1", false},
		{"read wrong close", checkReadPath, "a.#(b==1]", false},
		{"read open quote", checkReadPath, `a.#(b=="x)`, false},
		{"read spaces", checkReadPath, " a", false},
		{"read control", checkReadPath, "a\x01", false},
		{"write simple", checkWritePath, "order.lines.0.sku", true},
		{"write append", checkWritePath, "tags.-1", true},
		{"write escaped", checkWritePath, `a\.b`, true},
		{"write empty", checkWritePath, "", false},
		{"write empty segment", checkWritePath, "a..b", false},
		{"write trailing dot", checkWritePath, "a.", false},
		{"write wildcard", checkWritePath, "a.*", false},
		{"write query", checkWritePath, "a.#(b==1)", false},
		{"write modifier", checkWritePath, "@this", false},
		{"write space", checkWritePath, "a b", false},
		{"local simple", checkLocalPath, "partner_id.country_id.code", true},
		{"local index", checkLocalPath, "lines.0.qty", true},
		{"local empty segment", checkLocalPath, "a..b", false},
		{"local wildcard", checkLocalPath, "a.*", false},
		{"field plain", checkLocalField, "list_price", true},
		{"field dotted", checkLocalField, "a.b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(tt.path)
			if (err == nil) != tt.ok {
				t.Fatalf("check(%q) = %v, want ok=%v", tt.path, err, tt.ok)
			}
		})
	}
}

func TestExportBuildErrors(t *testing.T) {
	imp := must(NewImport("line", nil))
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{Direct("a", "x.*"), "not allowed in a write path"},
		{Direct("a..b", "x"), "empty segment"},
		{Direct("a", ""), "target is empty"},
		{Children("a", "b", imp), "*ExportMapper"},
		{Exec(""), "expression is empty"},
		{Expr("a", "b", ""), "expression is empty"},
	} {
		_, err := NewExport("e", []Rule{tc.rule})
		var se *SpecError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.rule.kind, err, tc.want)
		}
	}
	// Relations on export: integer IDs and many2many in several slice types.
	f := newFakeResolver()
	f.bind("tag", "T1", "1")
	f.bind("tag", "T2", "2")
	m := must(NewExport("e", []Rule{Relation("ids", "ids", "tag"), Relation("one", "one", "tag")}, WithResolver(f)))
	for _, ids := range []any{[]int{1, 2}, []int64{1, 2}, []any{"1", int64(2)}, []string{"1", "2"}} {
		p, err := m.Map(context.Background(), Values{"ids": ids, "one": 1}, Options{})
		if err != nil || string(p) != `{"ids":["T1","T2"],"one":"T1"}` {
			t.Errorf("%T: %s %v", ids, p, err)
		}
	}
	if _, err := m.Map(context.Background(), Values{"one": map[string]any{}}, Options{}); !errors.Is(err, ErrConvert) {
		t.Errorf("bad ID type: %v", err)
	}
	f.fail = errBoom
	if _, err := m.Map(context.Background(), Values{"one": "1"}, Options{}); !errors.Is(err, errBoom) || errors.Is(err, ErrMissingDependency) {
		t.Errorf("resolver failure: %v", err)
	}
}
