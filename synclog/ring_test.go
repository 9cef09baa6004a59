package synclog

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func ids(es []Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRingCapacityAndDrop(t *testing.T) {
	ctx := context.Background()
	r := NewRing(3)
	if len(r.buf) != 3 || r.size() != 0 || dropped(r) != 0 {
		t.Fatalf("new ring: cap %d len %d dropped %d", len(r.buf), r.size(), dropped(r))
	}
	for i := range 5 {
		if err := r.Record(ctx, Entry{Operation: "op" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if r.size() != 3 || dropped(r) != 2 {
		t.Fatalf("len %d dropped %d, want 3 and 2", r.size(), dropped(r))
	}
	got := r.entries(Filter{})
	if want := []int64{5, 4, 3}; !equalIDs(ids(got), want) {
		t.Fatalf("ids %v, want %v (newest first, oldest dropped)", ids(got), want)
	}
	if got[0].Operation != "op4" || got[2].Operation != "op2" {
		t.Fatalf("wrong entries kept: %q … %q", got[0].Operation, got[2].Operation)
	}
}

func TestRingDefaultCapacity(t *testing.T) {
	if got := len(NewRing(0).buf); got != 1000 {
		t.Fatalf("NewRing(0) holds %d, want 1000", got)
	}
	if got := len(NewRing(-5).buf); got != 1000 {
		t.Fatalf("NewRing(-5) holds %d, want 1000", got)
	}
}

func TestRingBodyLimit(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("a", 100)
	tests := []struct {
		name      string
		opts      []Option
		req, resp string
		wantReq   string
		wantTrunc bool
	}{
		{"default keeps short bodies", nil, "short", "short", "short", false},
		{"limit cuts request", []Option{WithBodyLimit(10)}, long, "ok", "aaaaaaaaaa…[truncated 90 bytes]", true},
		{"limit cuts response", []Option{WithBodyLimit(10)}, "ok", long, "ok", true},
		{"negative means whole", []Option{WithBodyLimit(-1)}, long, long, long, false},
		{"zero keeps no body", []Option{WithBodyLimit(0)}, long, "ok", "", true},
		{"zero on empty bodies cuts nothing", []Option{WithBodyLimit(0)}, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRing(2, tt.opts...)
			_ = r.Record(ctx, Entry{RequestBody: tt.req, ResponseBody: tt.resp})
			e := r.entries(Filter{})[0]
			if e.RequestBody != tt.wantReq || e.Truncated != tt.wantTrunc {
				t.Fatalf("got body %q truncated %v; want %q %v", e.RequestBody, e.Truncated, tt.wantReq, tt.wantTrunc)
			}
		})
	}
	r := NewRing(1)
	_ = r.Record(ctx, Entry{RequestBody: strings.Repeat("x", 64<<10+1)})
	if !r.entries(Filter{})[0].Truncated {
		t.Fatal("default 64 KiB limit not applied")
	}
	_ = r.Record(ctx, Entry{Truncated: true})
	if !r.entries(Filter{})[0].Truncated {
		t.Fatal("Truncated set by the caller was lost")
	}
}

func TestRingRedactorOption(t *testing.T) {
	r := NewRing(1, WithRedactor(NewRedactor()))
	_ = r.Record(context.Background(), Entry{URL: "/x?token=abc", RequestHeader: http.Header{"Authorization": {"Bearer abc"}}})
	e := r.entries(Filter{})[0]
	if e.URL != "/x?token=[REDACTED]" || e.RequestHeader.Get("Authorization") != "Bearer [REDACTED]" {
		t.Fatalf("ring did not redact: %q %q", e.URL, e.RequestHeader.Get("Authorization"))
	}
}

func TestRingFilterMatrix(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRing(100)
	seed := []Entry{
		{Backend: "shop", Operation: "import", Direction: Outbound, Status: 200, Model: "product", Record: "1"},
		{Backend: "shop", Operation: "import", Direction: Outbound, Status: 404, Model: "product", Record: "2"},
		{Backend: "shop", Operation: "export", Direction: Outbound, Status: 500, Model: "order", Record: "1"},
		{Backend: "crm", Operation: "webhook", Direction: Inbound, Status: 204, Model: "contact", Record: "9"},
		{Backend: "crm", Operation: "import", Direction: Outbound, Status: 0, Error: "dial tcp: refused", Model: "contact"},
		{Backend: "crm", Operation: "import", Direction: Outbound, Status: 429, Model: "contact", Record: "9"},
	}
	for i, e := range seed {
		e.Time = t0.Add(time.Duration(i) * time.Hour)
		_ = r.Record(ctx, e)
	}
	tests := []struct {
		name string
		f    Filter
		want []int64
	}{
		{"all", Filter{}, []int64{6, 5, 4, 3, 2, 1}},
		{"id", Filter{ID: 4}, []int64{4}},
		{"id and a field it lacks", Filter{ID: 4, Backend: "shop"}, []int64{}},
		{"backend", Filter{Backend: "shop"}, []int64{3, 2, 1}},
		{"operation", Filter{Operation: "import"}, []int64{6, 5, 2, 1}},
		{"direction in", Filter{Direction: Inbound}, []int64{4}},
		{"status exact", Filter{Status: 404}, []int64{2}},
		{"status range", Filter{StatusMin: 400, StatusMax: 499}, []int64{6, 2}},
		{"status min only", Filter{StatusMin: 500}, []int64{3}},
		{"failed only", Filter{FailedOnly: true}, []int64{6, 5, 3, 2}},
		{"since inclusive", Filter{Since: t0.Add(4 * time.Hour)}, []int64{6, 5}},
		{"until exclusive", Filter{Until: t0.Add(1 * time.Hour)}, []int64{1}},
		{"window", Filter{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)}, []int64{3, 2}},
		{"model", Filter{Model: "contact"}, []int64{6, 5, 4}},
		{"model+record", Filter{Model: "contact", Record: "9"}, []int64{6, 4}},
		{"combined", Filter{Backend: "crm", Operation: "import", FailedOnly: true}, []int64{6, 5}},
		{"limit", Filter{Limit: 2}, []int64{6, 5}},
		{"limit with filter", Filter{Backend: "shop", Limit: 1}, []int64{3}},
		{"limit larger than matches", Filter{Backend: "shop", Limit: 10}, []int64{3, 2, 1}},
		{"nothing", Filter{Backend: "nope"}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(r.entries(tt.f)); !equalIDs(got, tt.want) {
				t.Errorf("Entries(%+v) = %v, want %v", tt.f, got, tt.want)
			}
			var viaQuery []int64
			for e, err := range r.Query(ctx, tt.f) {
				if err != nil {
					t.Fatal(err)
				}
				viaQuery = append(viaQuery, e.ID)
			}
			if !equalIDs(viaQuery, tt.want) && len(tt.want)+len(viaQuery) > 0 {
				t.Errorf("Query(%+v) = %v, want %v", tt.f, viaQuery, tt.want)
			}
		})
	}
}

func TestRingQueryStopsAndCancels(t *testing.T) {
	r := NewRing(10)
	for range 5 {
		_ = r.Record(context.Background(), Entry{})
	}
	n := 0
	for range r.Query(context.Background(), Filter{}) {
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("early break: got %d", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var gotErr error
	for _, err := range r.Query(ctx, Filter{}) {
		gotErr = err
	}
	if !errors.Is(gotErr, context.Canceled) {
		t.Fatalf("cancelled query error = %v, want context.Canceled", gotErr)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	seen, gotErr := 0, nil
	for e, err := range r.Query(ctx2, Filter{}) {
		if err != nil {
			gotErr = err
			break
		}
		seen++
		if e.ID == 4 {
			cancel2()
		}
	}
	if seen != 2 || !errors.Is(gotErr, context.Canceled) {
		t.Fatalf("cancel mid-iteration: seen %d err %v", seen, gotErr)
	}
}

func TestRingReturnsCopies(t *testing.T) {
	r := NewRing(1)
	_ = r.Record(context.Background(), Entry{RequestHeader: http.Header{"A": {"1"}}})
	got := r.entries(Filter{})[0]
	got.RequestHeader.Set("A", "changed")
	if v := r.entries(Filter{})[0].RequestHeader.Get("A"); v != "1" {
		t.Fatalf("modifying a returned entry changed the ring: %q", v)
	}
}

func TestRingConcurrent(t *testing.T) {
	ctx := context.Background()
	const writers, perWriter, capacity = 8, 500, 256
	r := NewRing(capacity)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				_ = r.Record(ctx, Entry{Backend: "b" + strconv.Itoa(w), Status: 200 + i%3})
			}
		})
	}
	// Readers run at the same time; every snapshot must be strictly newest first.
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	for range 2 {
		rwg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				es := r.entries(Filter{StatusMin: 200})
				for i := 1; i < len(es); i++ {
					if es[i-1].ID <= es[i].ID {
						t.Errorf("snapshot not newest first: %d then %d", es[i-1].ID, es[i].ID)
						return
					}
				}
				_ = r.size()
				_ = dropped(r)
			}
		})
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	total := writers * perWriter
	if r.size() != capacity || dropped(r) != uint64(total-capacity) {
		t.Fatalf("len %d dropped %d, want %d and %d", r.size(), dropped(r), capacity, total-capacity)
	}
	es := r.entries(Filter{})
	if es[0].ID != int64(total) || es[len(es)-1].ID != int64(total-capacity+1) {
		t.Fatalf("kept ids %d..%d, want %d..%d", es[len(es)-1].ID, es[0].ID, total-capacity+1, total)
	}
	for i := 1; i < len(es); i++ {
		if es[i-1].ID != es[i].ID+1 {
			t.Fatalf("ids not consecutive: %d then %d", es[i-1].ID, es[i].ID)
		}
	}
}

// Recording into a Ring without a redactor copies the entry into the buffer and allocates
// nothing: the adapter records every call.
func TestRingRecordDoesNotAllocate(t *testing.T) {
	r := NewRing(8)
	e := Entry{URL: "https://a.test/x", ResponseBody: `{"a":1}`, ResponseHeader: http.Header{"A": {"b"}}}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _ = r.Record(ctx, e) }); n != 0 {
		t.Fatalf("Ring.Record allocates %v times per entry, want 0", n)
	}
}

// dropped returns how many entries r dropped to make room for newer ones.
func dropped(r *Ring) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return uint64(r.nextID) - uint64(r.n)
}
