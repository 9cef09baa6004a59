package mapper

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
)

type glueProduct struct {
	Name   string `mapper:"name"`
	Qty    int    `mapper:"qty"`
	Vendor string `mapper:"vendor"`
}

func glueImport(t *testing.T, opts ...Option) *ImportMapper {
	t.Helper()
	m, err := NewImport("product.import", []Rule{
		Direct("title", "name", Required()),
		Direct("stock", "qty"),
		Direct("vendor", "vendor", OnlyCreate()),
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestImportFuncCreateAndDecode(t *testing.T) {
	ctx := context.Background()
	fn := ImportFunc[glueProduct](glueImport(t))
	rec := gjson.Parse(`{"id":7,"title":"Mug","stock":3,"vendor":"ACME"}`)
	got, err := fn(ctx, rec, true)
	if err != nil || got != (glueProduct{"Mug", 3, "ACME"}) {
		t.Fatalf("create: %+v %v", got, err)
	}
	got, err = fn(ctx, rec, false) // OnlyCreate rule must not run on update
	if err != nil || got != (glueProduct{"Mug", 3, ""}) {
		t.Fatalf("update: %+v %v", got, err)
	}
}

func TestImportFuncValuesAsMapped(t *testing.T) {
	fn := ImportFunc[Values](glueImport(t))
	got, err := fn(context.Background(), gjson.Parse(`{"title":"Mug","stock":3}`), false)
	if err != nil || got["name"] != "Mug" || got["qty"] != int64(3) || len(got) != 2 {
		t.Fatalf("%#v %v", got, err)
	}
}

// The record is copied once: mapped strings must not point into rec.Raw, which may be a
// slice of a whole page that T would keep alive.
func TestImportFuncDoesNotRetainRecordText(t *testing.T) {
	page := gjson.Parse(`{"items":[{"title":"Mug","stock":1},{"title":"Cup","stock":2}]}`)
	rec := page.Get("items.1")
	got, err := ImportFunc[glueProduct](glueImport(t))(context.Background(), rec, false)
	if err != nil || got.Name != "Cup" {
		t.Fatalf("%+v %v", got, err)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(page.Raw)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(got.Name)))
	if p >= lo && p < lo+uintptr(len(page.Raw)) {
		t.Fatal("mapped string points into the caller's record text")
	}
}

func TestImportFuncErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		fn     func(context.Context, gjson.Result, bool) (glueProduct, error)
		rec    string
		is     error
		record string
	}{
		{"required, default id path", ImportFunc[glueProduct](glueImport(t)), `{"id":7,"stock":1}`, ErrRequired, "7"},
		{"mapper's id path", ImportFunc[glueProduct](glueImport(t, WithIDPath("code"))), `{"id":7,"code":"P-7"}`, ErrRequired, "P-7"},
		{"mapper's nested id path", ImportFunc[glueProduct](glueImport(t, WithIDPath("data.ref"))),
			`{"code":"P-7","data":{"ref":"R7"}}`, ErrRequired, "R7"},
		{"decode into T", ImportFunc[glueProduct](glueImport(t)), `{"id":8,"title":"Mug","stock":"many"}`, ErrConvert, "8"},
		{"not an object", ImportFunc[glueProduct](glueImport(t)), `[1,2]`, errInvalidRecord, ""},
		{"invalid JSON", ImportFunc[glueProduct](glueImport(t)), `{"title":`, errInvalidRecord, ""},
		{"nil mapper", ImportFunc[glueProduct](nil), `{"title":"Mug"}`, ErrInvalidRule, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fn(ctx, gjson.Parse(tt.rec), true)
			var me *MappingError
			if !errors.Is(err, tt.is) || !errors.As(err, &me) {
				t.Fatalf("got %+v, %v; want a *MappingError matching %v", got, err, tt.is)
			}
			if me.RecordID != tt.record {
				t.Fatalf("RecordID %q, want %q (%v)", me.RecordID, tt.record, err)
			}
			if got != (glueProduct{}) {
				t.Fatalf("partial result %+v returned with an error", got)
			}
		})
	}
	if _, err := ImportFunc[glueProduct](glueImport(t))(ctx, gjson.Result{}, true); !errors.Is(err, errInvalidRecord) {
		t.Fatalf("empty result: %v", err)
	}
}

func TestImportFuncRequestAndAllErrors(t *testing.T) {
	type ctxKey struct{}
	rules := []Rule{
		Expr("", "channel", `request.channel`),
		Direct("a", "a", Required()),
		Direct("b", "b", Int()),
	}
	request := RequestFrom(func(ctx context.Context) map[string]any {
		v, _ := ctx.Value(ctxKey{}).(map[string]any)
		return v
	})
	m := must(NewImport("p", rules, request))
	ctx := context.WithValue(context.Background(), ctxKey{}, map[string]any{"channel": "webhook"})
	got, err := ImportFunc[Values](m)(ctx, gjson.Parse(`{"a":1,"b":2}`), true)
	if err != nil || got["channel"] != "webhook" {
		t.Fatalf("%v %v", got, err)
	}

	bad := gjson.Parse(`{"b":"x"}`)
	_, err = ImportFunc[Values](m)(ctx, bad, true)
	if n := countMappingErrors(err); n != 1 {
		t.Fatalf("first error only: %d errors in %v", n, err)
	}
	_, err = ImportFunc[Values](must(NewImport("p", rules, request, CollectErrors())))(ctx, bad, true)
	if n := countMappingErrors(err); n != 2 || !errors.Is(err, ErrRequired) || !errors.Is(err, ErrConvert) {
		t.Fatalf("all errors: %d errors in %v", n, err)
	}
}

func countMappingErrors(err error) int {
	switch e := err.(type) {
	case *MappingError:
		return 1
	case interface{ Unwrap() []error }:
		n := 0
		for _, x := range e.Unwrap() {
			n += countMappingErrors(x)
		}
		return n
	}
	return 0
}

// A Func rule's own sentinel (report.ErrSkip in real use) stays matchable.
func TestImportFuncSentinelFromFuncRule(t *testing.T) {
	errSkip := errors.New("skip")
	m := must(NewImport("p", []Rule{Func("skipDrafts", func(_ context.Context, r *Record) (Values, error) {
		if v, _, _ := r.Get("status"); v == "draft" {
			return nil, errSkip
		}
		return nil, nil
	})}))
	_, err := ImportFunc[Values](m)(context.Background(), gjson.Parse(`{"id":1,"status":"draft"}`), true)
	if !errors.Is(err, errSkip) {
		t.Fatalf("%v", err)
	}
}

type glueCustomer struct {
	Name    string `mapper:"name"`
	Email   string `mapper:"email"`
	Partner string `mapper:"partner_id"`
}

func glueExport(t *testing.T, opts ...Option) *ExportMapper {
	t.Helper()
	r := newFakeResolver()
	r.bind("partner", "P-9", "9")
	m, err := NewExport("customer.export", []Rule{
		Direct("name", "full_name", Required()),
		Direct("email", "contact.email", ChangedBy("email")),
		Relation("partner_id", "partner", "partner"),
		Expr("", "source", `create ? "new" : "update"`, OnlyCreate()),
	}, append([]Option{WithResolver(r)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExportFuncPayload(t *testing.T) {
	ctx := context.Background()
	fn := ExportFunc[glueCustomer](glueExport(t))
	c := glueCustomer{"Ann", "ann@example.com", "9"}
	got, err := fn(ctx, c, binding.Binding{LocalID: "1"}, true)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := got.(json.RawMessage) // sent as is by the exporter, not encoded again
	if !ok {
		t.Fatalf("payload is %T, want json.RawMessage", got)
	}
	want := `{"full_name":"Ann","contact":{"email":"ann@example.com"},"partner":"P-9","source":"new"}`
	if string(raw) != want {
		t.Fatalf("create payload\n got %s\nwant %s", raw, want)
	}
	got, err = fn(ctx, c, binding.Binding{LocalID: "1", ExternalID: "E1"}, false)
	if err != nil || string(got.(json.RawMessage)) != `{"full_name":"Ann","contact":{"email":"ann@example.com"},"partner":"P-9"}` {
		t.Fatalf("update payload %s %v", got, err)
	}
	vals, err := ExportFunc[Values](glueExport(t))(ctx, Values{"name": "Bob"}, binding.Binding{LocalID: "2"}, false)
	if err != nil || string(vals.(json.RawMessage)) != `{"full_name":"Bob"}` {
		t.Fatalf("values payload %s %v", vals, err)
	}
}

func TestExportFuncChangedFrom(t *testing.T) {
	ctx := context.Background()
	var calls []binding.Binding
	var changed []string
	fn := ExportFunc[glueCustomer](glueExport(t, ChangedFrom(func(_ context.Context, b binding.Binding) ([]string, error) {
		calls = append(calls, b)
		return changed, nil
	})))
	c := glueCustomer{Name: "Ann", Email: "ann@example.com"}
	upd := binding.Binding{LocalID: "1", ExternalID: "E1"}

	changed = []string{"name"}
	got, err := fn(ctx, c, upd, false)
	if err != nil || string(got.(json.RawMessage)) != `{"full_name":"Ann","partner":null}` {
		t.Fatalf("email unchanged: %s %v", got, err)
	}
	changed = []string{"email"}
	got, err = fn(ctx, c, upd, false)
	if err != nil || !strings.Contains(string(got.(json.RawMessage)), "ann@example.com") {
		t.Fatalf("email changed: %s %v", got, err)
	}
	changed = nil // unknown: every rule runs
	got, err = fn(ctx, c, upd, false)
	if err != nil || !strings.Contains(string(got.(json.RawMessage)), "ann@example.com") {
		t.Fatalf("changes unknown: %s %v", got, err)
	}
	if len(calls) != 3 || calls[0].ExternalID != "E1" {
		t.Fatalf("ChangedFrom calls %+v", calls)
	}
	changed = []string{}
	if _, err := fn(ctx, c, binding.Binding{LocalID: "2"}, true); err != nil || len(calls) != 3 {
		t.Fatalf("create must not ask what changed: %d calls, %v", len(calls), err)
	}

	errDB := errors.New("db down")
	failing := ExportFunc[glueCustomer](glueExport(t, ChangedFrom(func(context.Context, binding.Binding) ([]string, error) {
		return nil, errDB
	})))
	_, err = failing(ctx, c, upd, false)
	var me *MappingError
	if !errors.Is(err, errDB) || !errors.As(err, &me) || me.RecordID != "1" {
		t.Fatalf("%v", err)
	}
}

func TestExportFuncErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		call func() (any, error)
		is   error
		id   string
	}{
		{"required", func() (any, error) {
			return ExportFunc[Values](glueExport(t))(ctx, Values{"email": "x@y"}, binding.Binding{LocalID: "4"}, true)
		}, ErrRequired, "4"},
		{"missing dependency", func() (any, error) {
			return ExportFunc[glueCustomer](glueExport(t))(ctx, glueCustomer{Name: "A", Partner: "77"}, binding.Binding{LocalID: "5"}, true)
		}, ErrMissingDependency, "5"},
		{"not encodable", func() (any, error) {
			return ExportFunc[int](glueExport(t))(ctx, 3, binding.Binding{LocalID: "6"}, true)
		}, ErrConvert, "6"},
		{"nil mapper", func() (any, error) {
			return ExportFunc[glueCustomer](nil)(ctx, glueCustomer{Name: "A"}, binding.Binding{LocalID: "7"}, true)
		}, ErrInvalidRule, ""},
		{"cancelled", func() (any, error) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			return ExportFunc[glueCustomer](glueExport(t))(cctx, glueCustomer{Name: "A"}, binding.Binding{LocalID: "8"}, true)
		}, context.Canceled, "8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			var me *MappingError
			if got != nil || !errors.Is(err, tt.is) || !errors.As(err, &me) || me.RecordID != tt.id {
				t.Fatalf("got %v, %v; want nil and a *MappingError matching %v for record %q", got, err, tt.is, tt.id)
			}
		})
	}
}

func TestExportFuncAllErrorsAndRequest(t *testing.T) {
	m := must(NewExport("e", []Rule{
		Direct("a", "a", Required()),
		Direct("b", "b", Int()),
		Expr("", "by", `request.user`),
	}, RequestFrom(func(context.Context) map[string]any { return map[string]any{"user": "sync-bot"} }), CollectErrors()))
	fn := ExportFunc[Values](m)
	_, err := fn(context.Background(), Values{"b": "x"}, binding.Binding{LocalID: "1"}, false)
	if n := countMappingErrors(err); n != 2 {
		t.Fatalf("%d errors: %v", n, err)
	}
	got, err := fn(context.Background(), Values{"a": 1, "b": 2}, binding.Binding{LocalID: "1"}, false)
	if err != nil || string(got.(json.RawMessage)) != `{"a":1,"b":2,"by":"sync-bot"}` {
		t.Fatalf("%s %v", got, err)
	}
}

// The glue functions are shared by the importer's and exporter's workers.
func TestGlueConcurrentUse(t *testing.T) {
	imp := ImportFunc[glueProduct](glueImport(t))
	exp := ExportFunc[glueCustomer](glueExport(t))
	ctx := context.Background()
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			var err error
			for i := 0; i < 200 && err == nil; i++ {
				var p glueProduct
				if p, err = imp(ctx, gjson.Parse(`{"title":"T","stock":`+string(rune('0'+w))+`}`), i%2 == 0); err == nil && p.Qty != w {
					err = errors.New("wrong record")
				}
				if err == nil {
					_, err = exp(ctx, glueCustomer{Name: "N"}, binding.Binding{LocalID: "1"}, i%2 == 0)
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
