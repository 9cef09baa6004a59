package backend

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
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
	if _, err := New(testConfig(), WithOperation("import_product", noop), WithModel(Model[int]{Name: "product", Local: local.NewMemory[int](), Export: &Export{Create: "/p"}})); err == nil {
		t.Error("an operation with a model's built-in name was accepted")
	}
	m := Model[int]{Name: "product", Local: local.NewMemory[int](), Export: &Export{Create: "/p"}}
	if _, err := New(testConfig(), WithModel(m), WithModel(m)); err == nil {
		t.Error("duplicate model accepted")
	}
	if _, err := New(Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("invalid config accepted: %v", err)
	}
}

func TestTestConnection(t *testing.T) {
	b, _ := New(testConfig())
	if err := b.TestConnection(context.Background()); err == nil || !strings.Contains(err.Error(), "no connection test") {
		t.Errorf("missing tester: %v", err)
	}
	denied := errors.New("401")
	b, _ = New(testConfig(), WithConnectionTest(func(ctx context.Context, b *Backend) error {
		if b.Name() != "shop" {
			t.Errorf("tester got backend %q", b.Name())
		}
		return denied
	}))
	if err := b.TestConnection(context.Background()); !errors.Is(err, denied) || !strings.Contains(err.Error(), "connection test failed") {
		t.Errorf("err = %v", err)
	}
}

// Two Backend values sharing one state store stand for two processes: their counts must
// add up exactly, however the updates interleave.
func TestStatsSharedThroughStateStore(t *testing.T) {
	st := state.NewMemory()
	op := WithOperation("products", func(context.Context, *Backend) (report.Counts, error) {
		return report.Counts{Updated: 2}, nil
	})
	clock := func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }
	b1, _ := New(testConfig(), WithStores(nil, st), op, withClock(clock))
	b2, _ := New(testConfig(), WithStores(nil, st), op, withClock(clock))
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := b1
			if i%2 == 1 {
				b = b2
			}
			if _, err := b.Sync(context.Background(), "products"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, err := b1.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Syncs.Updated != 100 || s.Operations["products"].Runs != 50 || !s.LastSyncAt.Equal(clock()) {
		t.Errorf("stats = %+v; want 100 updates over 50 runs", s)
	}
}

func TestStatsCorruptValue(t *testing.T) {
	st := state.NewMemory()
	if err := st.Put(context.Background(), "shop", statsKey, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	b, _ := New(testConfig(), WithStores(nil, st))
	if _, err := b.Stats(context.Background()); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("err = %v", err)
	}
}
