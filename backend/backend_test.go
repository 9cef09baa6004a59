package backend

import (
	"context"
	"errors"
	"github.com/connkit/connkit/report"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/state"
)

func testConfig() Config {
	return Config{Name: "shop", BaseURL: "https://shop.example.com"}
}

func TestSyncAllRunsEveryOperation(t *testing.T) {
	var ran []string
	op := func(name string, res report.Counts, err error) Option {
		return WithOperation(name, func(ctx context.Context, b *Backend) (report.Counts, error) {
			ran = append(ran, name)
			return res, err
		})
	}
	boom := errors.New("boom")
	b, err := New(testConfig(),
		op("customers", report.Counts{Created: 2}, nil),
		op("orders", report.Counts{Created: 1, Failed: 3}, boom),
		WithOperation("panics", func(context.Context, *Backend) (report.Counts, error) { ran = append(ran, "panics"); panic("bug") }),
		op("products", report.Counts{Updated: 5, Skipped: 1}, nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := b.SyncAll(context.Background())
	if got := strings.Join(ran, ","); got != "customers,orders,panics,products" {
		t.Fatalf("ran %s; one failing operation must not stop the others", got)
	}
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `sync "orders"`) || !strings.Contains(err.Error(), "panicked: bug") {
		t.Errorf("SyncAll error = %v; want both failures named", err)
	}
	if want := (report.Counts{Created: 3, Updated: 5, Skipped: 1, Failed: 3}); rep.Total != want {
		t.Errorf("total = %+v, want %+v", rep.Total, want)
	}
	if f := rep.Failed(); len(f) != 2 || f[0].Name != "orders" || f[1].Name != "panics" {
		t.Errorf("failed = %+v", f)
	}
	st, _ := b.Stats(context.Background())
	if st.Operations["orders"].Errors != 1 || st.Operations["orders"].LastError == "" || st.Operations["customers"].Runs != 1 {
		t.Errorf("stats = %+v", st.Operations)
	}
	if st.Syncs.Created != 3 || st.LastSyncAt.IsZero() {
		t.Errorf("stats totals = %+v", st)
	}
}

func TestSyncAllStopsOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := 0
	b, _ := New(testConfig(),
		WithOperation("first", func(context.Context, *Backend) (report.Counts, error) { ran++; cancel(); return report.Counts{}, nil }),
		WithOperation("second", func(context.Context, *Backend) (report.Counts, error) { ran++; return report.Counts{}, nil }),
	)
	_, err := b.SyncAll(ctx)
	if ran != 1 || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `before "second"`) {
		t.Errorf("ran %d, err %v", ran, err)
	}
}

func TestSyncUnknownOperation(t *testing.T) {
	b, _ := New(testConfig(), WithOperation("orders", func(context.Context, *Backend) (report.Counts, error) { return report.Counts{}, nil }))
	_, err := b.Sync(context.Background(), "ordres")
	if !errors.Is(err, ErrUnknownOperation) || !strings.Contains(err.Error(), "[orders]") {
		t.Errorf("err = %v", err)
	}
}

func TestOptionsRejectDuplicates(t *testing.T) {
	noop := func(context.Context, *Backend) (report.Counts, error) { return report.Counts{}, nil }
	if _, err := New(testConfig(), WithOperation("a", noop), WithOperation("a", noop)); err == nil {
		t.Error("duplicate operation accepted")
	}
	e := ExporterFunc(func(context.Context, []string) (report.Counts, error) { return report.Counts{}, nil })
	if _, err := New(testConfig(), WithExporter("product", e), WithExporter("product", e)); err == nil {
		t.Error("duplicate exporter accepted")
	}
	if _, err := New(Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid config accepted: %v", err)
	}
}

func TestExportRouting(t *testing.T) {
	var got []string
	b, _ := New(testConfig(), WithExporter("product", ExporterFunc(func(_ context.Context, ids []string) (report.Counts, error) {
		got = ids
		return report.Counts{Created: len(ids)}, nil
	})))
	res, err := b.ExportRecords(context.Background(), "product", []string{"1", "2"})
	if err != nil || res.Created != 2 || len(got) != 2 {
		t.Fatalf("res %+v err %v got %v", res, err, got)
	}
	_, err = b.ExportRecords(context.Background(), "sale.order", []string{"9"})
	if !errors.Is(err, ErrExportNotImplemented) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{`model "sale.order"`, `backend "shop"`, "[product]"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
	st, _ := b.Stats(context.Background())
	if st.Exports.Created != 2 || st.Models["product"].Runs != 1 || st.LastExportAt.IsZero() {
		t.Errorf("stats = %+v", st)
	}
}

func TestTestConnection(t *testing.T) {
	b, _ := New(testConfig())
	if err := b.TestConnection(context.Background()); err == nil || !strings.Contains(err.Error(), "no connection test") {
		t.Errorf("missing tester: %v", err)
	}
	denied := errors.New("401")
	b, _ = New(testConfig(), WithConnectionTester(ConnectionTesterFunc(func(ctx context.Context, b *Backend) error {
		if b.Name() != "shop" {
			t.Errorf("tester got backend %q", b.Name())
		}
		return denied
	})))
	if err := b.TestConnection(context.Background()); !errors.Is(err, denied) || !strings.Contains(err.Error(), "connection test failed") {
		t.Errorf("err = %v", err)
	}
}

// Two Backend values sharing one state store stand for two processes: their counts must
// add up exactly, however the updates interleave.
func TestStatsSharedThroughStateStore(t *testing.T) {
	st := state.NewMemory()
	export := ExporterFunc(func(_ context.Context, ids []string) (report.Counts, error) {
		return report.Counts{Updated: len(ids)}, nil
	})
	clock := func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }
	b1, _ := New(testConfig(), WithStateStore(st), WithExporter("product", export), WithClock(clock))
	b2, _ := New(testConfig(), WithStateStore(st), WithExporter("product", export), WithClock(clock))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := b1
			if i%2 == 1 {
				b = b2
			}
			if _, err := b.ExportRecords(context.Background(), "product", []string{"a", "b"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, err := b1.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Exports.Updated != 100 || s.Models["product"].Runs != 50 || !s.LastExportAt.Equal(clock()) {
		t.Errorf("stats = %+v; want 100 updates over 50 runs", s)
	}
}

func TestStatsCorruptValue(t *testing.T) {
	st := state.NewMemory()
	if err := st.Put(context.Background(), "shop", statsKey, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	b, _ := New(testConfig(), WithStateStore(st))
	if _, err := b.Stats(context.Background()); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("err = %v", err)
	}
}
