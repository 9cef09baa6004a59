package mapper

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
)

// measure times fn outside the testing.B machinery (testing.Benchmark cannot be nested
// in a running benchmark): it runs fn in growing batches until they take 100ms and
// returns ns and allocations per call.
func measure(b *testing.B, fn func() error) (nsPerOp, allocsPerOp float64) {
	b.Helper()
	if err := fn(); err != nil {
		b.Fatal(err)
	}
	var ms0, ms1 runtime.MemStats
	for n := 100; ; n *= 4 {
		runtime.ReadMemStats(&ms0)
		start := time.Now()
		for i := 0; i < n; i++ {
			if err := fn(); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(start)
		runtime.ReadMemStats(&ms1)
		if d >= 30*time.Millisecond || n > 1<<24 {
			return float64(d.Nanoseconds()) / float64(n), float64(ms1.Mallocs-ms0.Mallocs) / float64(n)
		}
	}
}

// measureAll measures each fn in 7 interleaved rounds and keeps each one's fastest
// round, so a busy machine skews the ratios less.
func measureAll(b *testing.B, fns ...func() error) (ns, allocs []float64) {
	ns, allocs = make([]float64, len(fns)), make([]float64, len(fns))
	for round := 0; round < 7; round++ {
		for i, fn := range fns {
			n, a := measure(b, fn)
			if round == 0 || n < ns[i] {
				ns[i] = n
			}
			allocs[i] = a
		}
	}
	return ns, allocs
}

// benchRecord is a typical shop product: 20 mapped fields, nested objects and arrays.
var benchRecord = []byte(`{"id":1234567,"title":"  Classic Blue Shirt ","handle":"classic-blue-shirt","body_html":"<p>Soft cotton shirt</p>",
"vendor":"ACME","product_type":"Shirts","status":"active","tags":"summer, cotton","price":"19.99","compare_at_price":"24.99",
"inventory_quantity":42,"weight":0.35,"taxable":true,"requires_shipping":"yes","created_at":"2024-03-01T10:00:00Z",
"updated_at":"2024-03-05T08:30:00Z","published_at":"2024-03-02T00:00:00Z","sku":"CBS-001","barcode":"0123456789012",
"options":[{"name":"Size","values":["S","M","L"]}],"variants":[{"id":1,"price":"19.99","sku":"CBS-001-S"},{"id":2,"price":"21.99","sku":"CBS-001-M"}],
"image":{"src":"https://cdn.example.com/cbs.jpg","alt":"Blue shirt"},"seo":{"title":"Blue shirt","description":"Classic"}}`)

var benchStatus = map[string]any{"active": "published", "draft": "draft", "archived": "archived"}

func benchRules() []Rule {
	return []Rule{
		Direct("id", "external_id", String()),
		Direct("title", "name", Trim()),
		Direct("handle", "slug"),
		Direct("body_html", "description"),
		Direct("vendor", "vendor"),
		Direct("product_type", "category"),
		Direct("status", "state", Enum(benchStatus)),
		Direct("tags", "tags"),
		Direct("price", "list_price", Float()),
		Direct("compare_at_price", "compare_price", Float()),
		Direct("inventory_quantity", "qty_available", Int()),
		Direct("weight", "weight", Float()),
		Direct("taxable", "taxable", Bool()),
		Direct("requires_shipping", "shippable", Bool()),
		Direct("created_at", "create_date", Time()),
		Direct("updated_at", "write_date", Time()),
		Direct("sku", "default_code", Required()),
		Direct("barcode", "barcode"),
		Direct("variants.1.price", "variant_price", Float()),
		Direct("image.src", "image_url"),
	}
}

// handGjson is what one would write by hand with gjson for the same 20 fields.
func handGjson(rec []byte) (map[string]any, error) {
	out := make(map[string]any, 20)
	out["external_id"] = strconv.FormatInt(gjson.GetBytes(rec, "id").Int(), 10)
	out["name"] = strings.TrimSpace(gjson.GetBytes(rec, "title").String())
	out["slug"] = gjson.GetBytes(rec, "handle").String()
	out["description"] = gjson.GetBytes(rec, "body_html").String()
	out["vendor"] = gjson.GetBytes(rec, "vendor").String()
	out["category"] = gjson.GetBytes(rec, "product_type").String()
	out["state"] = benchStatus[gjson.GetBytes(rec, "status").String()]
	out["tags"] = gjson.GetBytes(rec, "tags").String()
	p, err := strconv.ParseFloat(gjson.GetBytes(rec, "price").String(), 64)
	if err != nil {
		return nil, err
	}
	out["list_price"] = p
	cp, err := strconv.ParseFloat(gjson.GetBytes(rec, "compare_at_price").String(), 64)
	if err != nil {
		return nil, err
	}
	out["compare_price"] = cp
	out["qty_available"] = gjson.GetBytes(rec, "inventory_quantity").Int()
	out["weight"] = gjson.GetBytes(rec, "weight").Float()
	out["taxable"] = gjson.GetBytes(rec, "taxable").Bool()
	out["shippable"] = gjson.GetBytes(rec, "requires_shipping").String() == "yes"
	c, err := time.Parse(time.RFC3339, gjson.GetBytes(rec, "created_at").String())
	if err != nil {
		return nil, err
	}
	out["create_date"] = c
	u, err := time.Parse(time.RFC3339, gjson.GetBytes(rec, "updated_at").String())
	if err != nil {
		return nil, err
	}
	out["write_date"] = u
	out["default_code"] = gjson.GetBytes(rec, "sku").String()
	out["barcode"] = gjson.GetBytes(rec, "barcode").String()
	vp, err := strconv.ParseFloat(gjson.GetBytes(rec, "variants.1.price").String(), 64)
	if err != nil {
		return nil, err
	}
	out["variant_price"] = vp
	out["image_url"] = gjson.GetBytes(rec, "image.src").String()
	return out, nil
}

type benchProduct struct {
	ID               int64     `json:"id"`
	Title            string    `json:"title"`
	Handle           string    `json:"handle"`
	BodyHTML         string    `json:"body_html"`
	Vendor           string    `json:"vendor"`
	ProductType      string    `json:"product_type"`
	Status           string    `json:"status"`
	Tags             string    `json:"tags"`
	Price            string    `json:"price"`
	CompareAtPrice   string    `json:"compare_at_price"`
	Inventory        int64     `json:"inventory_quantity"`
	Weight           float64   `json:"weight"`
	Taxable          bool      `json:"taxable"`
	RequiresShipping string    `json:"requires_shipping"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	SKU              string    `json:"sku"`
	Barcode          string    `json:"barcode"`
	Variants         []struct {
		Price string `json:"price"`
	} `json:"variants"`
	Image struct {
		Src string `json:"src"`
	} `json:"image"`
}

// BenchmarkImport compares a 20-field declarative import mapper with hand-written gjson
// code and with encoding/json into a struct, in one run. It reports ns/record and
// allocs/record for each and the mapper/gjson ratio (goal ≤ 1.5).
func BenchmarkImport(b *testing.B) {
	ctx := context.Background()
	m := must(NewImport("product", benchRules()))
	if got, err := m.Map(ctx, benchRecord, Options{}); err != nil || len(got) != 20 {
		b.Fatalf("mapper: %v %v", got, err)
	}
	if got, err := handGjson(benchRecord); err != nil || len(got) != 20 {
		b.Fatalf("hand: %v %v", got, err)
	}
	ns, allocs := measureAll(b,
		func() error { _, err := m.Map(ctx, benchRecord, Options{}); return err },
		func() error { _, err := handGjson(benchRecord); return err },
		func() error { var p benchProduct; return json.Unmarshal(benchRecord, &p) })
	mapperNs, handNs, jsonNs := ns[0], ns[1], ns[2]
	mapperAllocs, handAllocs, jsonAllocs := allocs[0], allocs[1], allocs[2]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() { // ns/op of the benchmark itself is the mapper's
		if _, err := m.Map(ctx, benchRecord, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(mapperNs, "mapper-ns/rec")
	b.ReportMetric(mapperAllocs, "mapper-allocs/rec")
	b.ReportMetric(handNs, "gjson_hand-ns/rec")
	b.ReportMetric(handAllocs, "gjson_hand-allocs/rec")
	b.ReportMetric(jsonNs, "encjson-ns/rec")
	b.ReportMetric(jsonAllocs, "encjson-allocs/rec")
	b.ReportMetric(mapperNs/handNs, "x-gjson_hand")
	b.ReportMetric(mapperNs/jsonNs, "x-encjson")
}

// BenchmarkExpression measures one expression rule per record (compiled once when the
// mapper is built) against the same mapper with a direct rule doing the same job
// through a Go converter; the difference is the cost of the expression.
func BenchmarkExpression(b *testing.B) {
	ctx := context.Background()
	rec := []byte(`{"price":"19.99","name":"Blue shirt","qty":3}`)
	withExpr := must(NewImport("e", []Rule{Expr("price", "with_tax", `float(value) * 1.2`)}))
	withField := must(NewImport("e", []Rule{Expr("", "label", `upper(field("name")) + "-" + string(field("qty"))`)}))
	withGo := must(NewImport("e", []Rule{Direct("price", "with_tax", Float(), Convert("tax", func(v any) (any, error) {
		return v.(float64) * 1.2, nil
	}))}))
	run := func(m *ImportMapper) func() error {
		return func() error { _, err := m.Map(ctx, rec, Options{}); return err }
	}
	ns, allocs := measureAll(b, run(withExpr), run(withField), run(withGo))
	eNs, fNs, gNs := ns[0], ns[1], ns[2]
	eAllocs, gAllocs := allocs[0], allocs[2]
	cNsAll, _ := measureAll(b, func() error { _, err := compileExpr(`float(value) * 1.2`, newConfig(nil).limits); return err })
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := withExpr.Map(ctx, rec, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(eNs-gNs, "expr-rule-ns")
	b.ReportMetric(fNs-gNs, "expr-field-rule-ns")
	b.ReportMetric(eAllocs-gAllocs, "expr-rule-allocs")
	b.ReportMetric(cNsAll[0], "compile-ns")
	b.ReportMetric(eNs/gNs, "x-go-converter")
}

// BenchmarkExport measures a 20-field export mapper (plain key paths: payload builder) against
// encoding/json of the same map.
func BenchmarkExport(b *testing.B) {
	ctx := context.Background()
	imp := must(NewImport("product", benchRules()))
	vals := must(imp.Map(ctx, benchRecord, Options{}))
	var rules []Rule
	for _, r := range benchRules() {
		rules = append(rules, Direct(r.to, strings.ReplaceAll(r.from, ".1.", ".")))
	}
	exp := must(NewExport("product", rules))
	ns, allocs := measureAll(b,
		func() error { _, err := exp.Map(ctx, vals, Options{}); return err },
		func() error { _, err := json.Marshal(vals); return err })
	mNs, jNs, mAllocs := ns[0], ns[1], allocs[0]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := exp.Map(ctx, vals, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(mNs, "mapper-ns/rec")
	b.ReportMetric(mAllocs, "mapper-allocs/rec")
	b.ReportMetric(jNs, "json_marshal-ns/rec")
	b.ReportMetric(mNs/jNs, "x-json_marshal")
}

// benchLocal is the app's type for benchRules' 20 local fields.
type benchLocal struct {
	ExternalID   string    `mapper:"external_id"`
	Name         string    `mapper:"name"`
	Slug         string    `mapper:"slug"`
	Description  string    `mapper:"description"`
	Vendor       string    `mapper:"vendor"`
	Category     string    `mapper:"category"`
	State        string    `mapper:"state"`
	Tags         string    `mapper:"tags"`
	ListPrice    float64   `mapper:"list_price"`
	ComparePrice float64   `mapper:"compare_price"`
	Qty          int       `mapper:"qty_available"`
	Weight       float64   `mapper:"weight"`
	Taxable      bool      `mapper:"taxable"`
	Shippable    bool      `mapper:"shippable"`
	CreateDate   time.Time `mapper:"create_date"`
	WriteDate    time.Time `mapper:"write_date"`
	DefaultCode  string    `mapper:"default_code"`
	Barcode      string    `mapper:"barcode"`
	VariantPrice float64   `mapper:"variant_price"`
	ImageURL     string    `mapper:"image_url"`
}

// BenchmarkGlue measures what ImportFunc and ExportFunc add to the mapping itself: the
// importer's MapFunc against MapTo on the same record bytes, the exporter's MapFunc
// against MapFrom, in one run (goal: ratios ≈ 1).
func BenchmarkGlue(b *testing.B) {
	ctx := context.Background()
	imp := must(NewImport("product", benchRules()))
	var rules []Rule
	for _, r := range benchRules() {
		rules = append(rules, Direct(r.to, strings.ReplaceAll(r.from, ".1.", ".")))
	}
	exp := must(NewExport("product", rules))
	importFn := ImportFunc[benchLocal](imp)
	exportFn := ExportFunc[benchLocal](exp)
	rec := gjson.ParseBytes(benchRecord) // what the importer hands over
	p := must(mapTo[benchLocal](ctx, imp, benchRecord, Options{Create: true}))
	bnd := binding.Binding{LocalID: "1", ExternalID: "1234567"}
	if got := must(importFn(ctx, rec, true)); got != p {
		b.Fatalf("ImportFunc %+v != MapTo %+v", got, p)
	}
	viaFn := must(exportFn(ctx, p, bnd, false)).(json.RawMessage)
	if direct := must(mapFrom(ctx, exp, p, Options{})); string(viaFn) != string(direct) {
		b.Fatalf("ExportFunc %s != MapFrom %s", viaFn, direct)
	}
	ns, allocs := measureAll(b,
		func() error { _, err := importFn(ctx, rec, true); return err },
		func() error { _, err := mapTo[benchLocal](ctx, imp, benchRecord, Options{Create: true}); return err },
		func() error { _, err := exportFn(ctx, p, bnd, false); return err },
		func() error {
			body, err := mapFrom(ctx, exp, p, Options{RecordID: bnd.LocalID})
			_ = json.RawMessage(body)
			return err
		})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := importFn(ctx, rec, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(ns[0], "importfunc-ns/rec")
	b.ReportMetric(ns[1], "mapto-ns/rec")
	b.ReportMetric(allocs[0]-allocs[1], "importfunc-extra-allocs")
	b.ReportMetric(ns[0]/ns[1], "x-baseline-import")
	b.ReportMetric(ns[2], "exportfunc-ns/rec")
	b.ReportMetric(ns[3], "mapfrom-ns/rec")
	b.ReportMetric(allocs[2]-allocs[3], "exportfunc-extra-allocs")
	b.ReportMetric(ns[2]/ns[3], "x-baseline-export")
}
