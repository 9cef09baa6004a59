package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// spoolTestNow is the clock of the spool tests' receivers and signatures.
var spoolTestNow = time.Date(2026, 5, 4, 10, 0, 0, 123456789, time.UTC)

const spoolTestSecret = "spool-test-secret"

// flakyStore wraps a Store so tests can make it fail: while fail is set, Insert and Get
// return an error. It counts the calls. It does not implement BatchInserter (the Store
// interface it embeds hides the wrapped store's InsertBatch), so a spool falls back to
// concurrent Inserts.
type flakyStore struct {
	Store
	fail     atomic.Bool
	failures atomic.Int64 // calls that returned the injected error
	inserts  atomic.Int64 // Insert calls, failed or not
}

var errFlaky = errors.New("database is locked")

func (s *flakyStore) Insert(ctx context.Context, d Delivery) (Delivery, bool, error) {
	s.inserts.Add(1)
	if s.fail.Load() {
		s.failures.Add(1)
		return Delivery{}, false, errFlaky
	}
	return s.Store.Insert(ctx, d)
}

func (s *flakyStore) Get(ctx context.Context, endpoint, id string) (Delivery, error) {
	if s.fail.Load() {
		s.failures.Add(1)
		return Delivery{}, errFlaky
	}
	return s.Store.Get(ctx, endpoint, id)
}

// flakyBatchStore is a flakyStore that implements BatchInserter too: InsertBatch fails
// while fail or failBatch is set (failBatch alone leaves Insert, the direct path, working).
type flakyBatchStore struct {
	*flakyStore
	failBatch atomic.Bool
	batches   atomic.Int64 // InsertBatch calls, failed or not
}

var _ BatchInserter = (*flakyBatchStore)(nil)

func (s *flakyBatchStore) InsertBatch(ctx context.Context, ds []Delivery) ([]bool, error) {
	s.batches.Add(1)
	if s.fail.Load() || s.failBatch.Load() {
		s.failures.Add(1)
		return nil, errFlaky
	}
	return s.Store.(BatchInserter).InsertBatch(ctx, ds)
}

// newFlaky returns a flakyStore over a new memory store.
func newFlaky() *flakyStore { return &flakyStore{Store: NewMemory()} }

// newFlakyBatch returns a flakyBatchStore over a new memory store.
func newFlakyBatch() *flakyBatchStore { return &flakyBatchStore{flakyStore: newFlaky()} }

// storeKinds are the two ways a spool moves deliveries into a store: InsertBatch, and
// concurrent Inserts for a store that has no InsertBatch. Each returns the receiver's
// store and the flakyStore that controls its failures.
var storeKinds = []struct {
	name string
	make func() (Store, *flakyStore)
}{
	{"BatchInserter", func() (Store, *flakyStore) { s := newFlakyBatch(); return s, s.flakyStore }},
	{"Insert", func() (Store, *flakyStore) { s := newFlaky(); return s, s }},
}

// spoolRig is a receiver made WithSpool (HMAC-signed deliveries, the default ID header,
// a fixed clock) with a notify hook that counts notifications per delivery ID.
type spoolRig struct {
	t     *testing.T
	v     *HMAC
	store Store
	r     *Receiver
	dir   string

	mu          sync.Mutex
	notified    map[string]int // successful notifications per ID
	notifyCalls int
	notifyFails int // the next notifyFails calls of the hook fail
}

// newSpoolRig makes a receiver of endpoint spooling to dir and storing in store.
func newSpoolRig(t *testing.T, endpoint, dir string, store Store, opts ...Option) *spoolRig {
	t.Helper()
	v, err := NewHMAC("X-Sig", Hex, []string{spoolTestSecret})
	if err != nil {
		t.Fatal(err)
	}
	g := &spoolRig{t: t, v: v, store: store, dir: dir, notified: map[string]int{}}
	base := []Option{
		WithSpool(dir),
		WithClock(func() time.Time { return spoolTestNow }),
		WithNotify(func(_ context.Context, d Delivery) error {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.notifyCalls++
			if g.notifyFails > 0 {
				g.notifyFails--
				return errors.New("queue unavailable")
			}
			g.notified[d.ID]++
			return nil
		}),
	}
	g.r, err = NewReceiver(endpoint, v, store, append(base, opts...)...)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no flock on this system:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// request returns a signed delivery with ID id.
func (g *spoolRig) request(id, body string) *http.Request {
	g.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/"+g.r.endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(DefaultIDHeader, id)
	if err := g.v.Sign(req.Header, []byte(body), spoolTestNow); err != nil {
		g.t.Fatal(err)
	}
	return req
}

// serveReq serves req and returns the answer's code and status field. Safe to call from
// any goroutine.
func (g *spoolRig) serveReq(req *http.Request) (int, string) {
	rec := httptest.NewRecorder()
	g.r.ServeHTTP(rec, req)
	var a struct{ Status, ID string }
	_ = json.Unmarshal(rec.Body.Bytes(), &a)
	return rec.Code, a.Status
}

// post delivers body with ID id and fails the test unless it is answered 200 with
// status want.
func (g *spoolRig) post(id, body, want string) {
	g.t.Helper()
	if code, status := g.serveReq(g.request(id, body)); code != http.StatusOK || status != want {
		g.t.Fatalf("delivery %s: answer %d %q, want 200 %q", id, code, status, want)
	}
}

// notifiedCount returns how many times the delivery id was notified successfully.
func (g *spoolRig) notifiedCount(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.notified[id]
}

// notifiedAll returns a copy of the notification counts.
func (g *spoolRig) notifiedAll() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.notified)
}

// flush calls Flush with a generous deadline and fails the test on an error.
func (g *spoolRig) flush() {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(g.t.Context(), 5*time.Second)
	defer cancel()
	if err := g.r.Flush(ctx); err != nil {
		g.t.Fatalf("Flush: %v", err)
	}
}

// appended returns how many deliveries went through the spool file.
func (g *spoolRig) appended() int64 {
	g.r.spool.mu.Lock()
	defer g.r.spool.mu.Unlock()
	return g.r.spool.appended
}

// stored returns the IDs of the deliveries of endpoint in s, and fails the test if one ID
// is there twice.
func stored(t *testing.T, s Store, endpoint string) map[string]Delivery {
	t.Helper()
	out := map[string]Delivery{}
	for d, err := range s.List(t.Context(), Filter{Endpoint: endpoint}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[d.ID]; dup {
			t.Fatalf("delivery %s stored twice", d.ID)
		}
		out[d.ID] = d
	}
	return out
}

// waitFor polls cond until it holds, failing the test after a few seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// flusherStopped reports whether the spool's flusher goroutine is not running.
func flusherStopped(s *spool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.flushing
}

// crash leaves r's spool as a killed process would: the flusher stopped without handing
// its backlog on, and the files closed (which releases their locks) with the backlog in
// them. It returns the paths of the files.
func crash(t *testing.T, r *Receiver) []string {
	t.Helper()
	r.spool.cancel()
	waitFor(t, "the flusher to stop", func() bool { return flusherStopped(r.spool) })
	r.spool.mu.Lock()
	defer r.spool.mu.Unlock()
	r.spool.closed = true // nothing of the test writes to it any more
	var paths []string
	for _, seg := range append(slices.Clone(r.spool.old), r.spool.cur) {
		if err := seg.f.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, seg.path)
	}
	return paths
}

// spoolPath returns the path of the spool file r appends to.
func spoolPath(r *Receiver) string {
	r.spool.mu.Lock()
	defer r.spool.mu.Unlock()
	return r.spool.cur.path
}

// fileSize returns the size of path, or -1 when it does not exist.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// spoolFiles returns the names of the files in dir, sorted.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// testDelivery is a delivery of endpoint as ServeHTTP would spool it.
func testDelivery(endpoint, id string) Delivery {
	return Delivery{
		Endpoint: endpoint, ID: id, Event: "orders/create",
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       []byte(`{"id":"` + id + `"}`),
		ReceivedAt: spoolTestNow, Status: StatusPending,
	}
}

// writeSpoolFile writes the records of ds to a file of dir named like a spool file of
// endpoint, left by a dead process, and returns its path.
func writeSpoolFile(t *testing.T, dir, endpoint, name string, ds ...Delivery) string {
	t.Helper()
	var buf []byte
	for i := range ds {
		buf = appendRecord(buf, &ds[i])
	}
	path := filepath.Join(dir, spoolPrefix(endpoint)+name+spoolExt)
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// 1. Deliveries go through the spool, are answered at once, and reach the store and the
// hook once each; the file is truncated when all is handed on, removed by Close, and
// after Close deliveries are stored before they are answered.
func TestSpoolDeliveries(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			store, _ := kind.make()
			g := newSpoolRig(t, "shopify", t.TempDir(), store)
			const n = 20
			for i := range n {
				g.post(fmt.Sprintf("d%02d", i), fmt.Sprintf(`{"n":%d}`, i), "accepted")
			}
			if got := g.appended(); got != n {
				t.Fatalf("%d deliveries went through the spool, want %d", got, n)
			}
			g.flush()
			got := stored(t, store, "shopify")
			if len(got) != n {
				t.Fatalf("%d deliveries stored after Flush, want %d", len(got), n)
			}
			for i := range n {
				id := fmt.Sprintf("d%02d", i)
				d, ok := got[id]
				if !ok || d.Status != StatusPending || string(d.Body) != fmt.Sprintf(`{"n":%d}`, i) || !d.ReceivedAt.Equal(spoolTestNow.Truncate(time.Microsecond)) {
					t.Errorf("%s stored as %+v", id, d)
				}
				if c := g.notifiedCount(id); c != 1 {
					t.Errorf("%s notified %d times, want 1", id, c)
				}
			}
			if st := g.r.Stats(); st != (Stats{Requests: n, Accepted: n}) {
				t.Errorf("Stats = %+v, want %d requests, all accepted", st, n)
			}
			// The file stays, emptied: everything in it is handed on.
			path := spoolPath(g.r)
			if size := fileSize(t, path); size != 0 {
				t.Fatalf("spool file size %d after Flush, want 0", size)
			}

			if err := g.r.Close(t.Context()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if fileSize(t, path) != -1 {
				t.Fatalf("Close left %s", path)
			}
			if err := g.r.Close(t.Context()); err != nil {
				t.Fatalf("Close again: %v", err)
			}
			// After Close: stored (and notified) before the answer, as without a spool.
			g.post("late", `{}`, "accepted")
			if _, err := store.Get(t.Context(), "shopify", "late"); err != nil {
				t.Fatalf("a delivery answered after Close is not in the store: %v", err)
			}
			if c := g.notifiedCount("late"); c != 1 {
				t.Fatalf("late notified %d times before its answer, want 1", c)
			}
			if got := g.appended(); got != n {
				t.Fatalf("a delivery after Close was spooled (%d appended)", got)
			}
			if st := g.r.Stats(); st != (Stats{Requests: n + 1, Accepted: n + 1}) {
				t.Errorf("Stats after Close = %+v", st)
			}
			if err := g.r.Flush(t.Context()); err != nil {
				t.Errorf("Flush after Close: %v", err)
			}
		})
	}
}

// 2. Redeliveries through the spool are stored once; one of a processed delivery is not
// handed on again; Stats counts them as the flusher stores them.
func TestSpoolRedeliveries(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			store, _ := kind.make()
			var handled atomic.Int32
			g := newSpoolRig(t, "shopify", t.TempDir(), store, WithHandler("", func(context.Context, Delivery) error {
				handled.Add(1)
				return nil
			}))
			// Spooled, both answered "accepted": the store that dedups is reached later.
			g.post("dup", `{"v":1}`, "accepted")
			g.post("dup", `{"v":1}`, "accepted")
			g.flush()
			if got := stored(t, store, "shopify"); len(got) != 1 {
				t.Fatalf("%d deliveries stored, want 1", len(got))
			}
			// Both found it pending, so both hand it on, as a redelivery without a spool does.
			if c := g.notifiedCount("dup"); c != 2 {
				t.Fatalf("dup notified %d times, want 2 (new, then still pending)", c)
			}
			if st := g.r.Stats(); st != (Stats{Requests: 2, Accepted: 1, Duplicates: 1}) {
				t.Fatalf("Stats = %+v, want 1 accepted and 1 duplicate", st)
			}

			if err := g.r.Process(t.Context(), "dup"); err != nil {
				t.Fatal(err)
			}
			g.post("dup", `{"v":2}`, "accepted")
			g.flush()
			if c := g.notifiedCount("dup"); c != 2 {
				t.Fatalf("the redelivery of a processed delivery was notified (%d times in all)", c)
			}
			d, err := store.Get(t.Context(), "shopify", "dup")
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != StatusProcessed || string(d.Body) != `{"v":1}` || handled.Load() != 1 {
				t.Fatalf("after the redelivery: %s, body %s, handled %d times", d.Status, d.Body, handled.Load())
			}
			if st := g.r.Stats(); st != (Stats{Requests: 3, Accepted: 1, Duplicates: 2}) {
				t.Fatalf("Stats = %+v, want 1 accepted and 2 duplicates", st)
			}
		})
	}
}

// 3. While the store fails, deliveries are answered 200 and kept in the spool; once it
// is back, Flush stores each once and hands each on once.
func TestSpoolStoreFailure(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			store, fs := kind.make()
			fs.fail.Store(true)
			g := newSpoolRig(t, "shopify", t.TempDir(), store)
			const n = 5
			for i := range n {
				g.post(fmt.Sprintf("f%d", i), `{}`, "accepted")
			}
			waitFor(t, "the flusher to try the store", func() bool { return fs.failures.Load() > 0 })
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			err := g.r.Flush(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Flush while the store fails: %v, want the deadline", err)
			}
			if got := stored(t, fs.Store, "shopify"); len(got) != 0 {
				t.Fatalf("%d deliveries stored while the store fails", len(got))
			}
			if len(g.notifiedAll()) != 0 || g.r.Stats().Accepted != 0 {
				t.Fatalf("handed on before being stored: %v, %+v", g.notifiedAll(), g.r.Stats())
			}
			if fileSize(t, spoolPath(g.r)) <= 0 {
				t.Fatal("the backlog is not in the spool file")
			}

			fs.fail.Store(false)
			g.flush()
			got := stored(t, fs.Store, "shopify")
			for i := range n {
				id := fmt.Sprintf("f%d", i)
				if _, ok := got[id]; !ok {
					t.Errorf("%s not stored", id)
				}
				if c := g.notifiedCount(id); c != 1 {
					t.Errorf("%s notified %d times, want 1", id, c)
				}
			}
			if len(got) != n {
				t.Fatalf("%d stored, want %d", len(got), n)
			}
			if st := g.r.Stats(); st != (Stats{Requests: n, Accepted: n}) {
				t.Fatalf("Stats = %+v", st)
			}
			// The path the store calls for: one InsertBatch, or Inserts.
			if bs, ok := store.(*flakyBatchStore); ok {
				if bs.batches.Load() == 0 || fs.inserts.Load() != 0 {
					t.Fatalf("%d InsertBatch and %d Insert calls, want batches only", bs.batches.Load(), fs.inserts.Load())
				}
			} else if fs.inserts.Load() < n {
				t.Fatalf("%d Insert calls for %d deliveries", fs.inserts.Load(), n)
			}
		})
	}
}

// 3b. A Notify hook that fails is retried until it succeeds; the delivery is stored once
// (not inserted again on each retry).
func TestSpoolNotifyRetried(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			store, fs := kind.make()
			g := newSpoolRig(t, "shopify", t.TempDir(), store)
			g.mu.Lock()
			g.notifyFails = 3
			g.mu.Unlock()
			g.post("n1", `{}`, "accepted")
			g.flush()
			g.mu.Lock()
			calls := g.notifyCalls
			g.mu.Unlock()
			if calls != 4 || g.notifiedCount("n1") != 1 {
				t.Fatalf("hook called %d times, succeeded %d times; want 4 and 1", calls, g.notifiedCount("n1"))
			}
			if st := g.r.Stats(); st != (Stats{Requests: 1, Accepted: 1}) {
				t.Fatalf("Stats = %+v: stored again on a notify retry?", st)
			}
			if _, ok := store.(*flakyBatchStore); !ok && fs.inserts.Load() != 1 {
				t.Fatalf("%d Inserts, want 1: a notify retry stores again", fs.inserts.Load())
			}
			if got := stored(t, store, "shopify"); len(got) != 1 {
				t.Fatalf("%d stored", len(got))
			}
		})
	}
}

// 4. A crashed process's spool is replayed by the next Resume, torn last record ignored;
// also when its backlog spans several rotated files.
func TestSpoolCrashReplay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rotate int64
		n      int
	}{{"one file", spoolRotate, 3}, {"rotated files", 300, 12}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fa := newFlakyBatch()
			fa.fail.Store(true)
			a := newSpoolRig(t, "shopify", dir, fa)
			a.r.spool.mu.Lock()
			a.r.spool.rotate = tc.rotate
			a.r.spool.mu.Unlock()
			var ids []string
			for i := range tc.n {
				id := fmt.Sprintf("c%d", i)
				ids = append(ids, id)
				a.post(id, `{"id":"`+id+`"}`, "accepted")
			}
			paths := crash(t, a.r)
			if tc.rotate < spoolRotate && len(paths) < 3 {
				t.Fatalf("%d spool files, want the backlog rotated over several", len(paths))
			}
			// A write a machine crash cut short, at the end of the last file: its sender was
			// never answered. The file is replayed up to it and kept as .corrupt.
			torn := testDelivery("shopify", "torn")
			rec := appendRecord(nil, &torn)
			f, err := os.OpenFile(paths[len(paths)-1], os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(rec[:len(rec)-3]); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			bs := NewMemory()
			b := newSpoolRig(t, "shopify", dir, bs)
			t.Cleanup(func() { b.r.Close(context.Background()) })
			n, err := b.r.Resume(t.Context())
			if err != nil {
				t.Fatalf("Resume: %v", err)
			}
			got := stored(t, bs, "shopify")
			if n != tc.n || len(got) != tc.n {
				t.Fatalf("Resume notified %d, stored %v; want the %d", n, slices.Sorted(maps.Keys(got)), tc.n)
			}
			for _, id := range ids {
				d, ok := got[id]
				if !ok || string(d.Body) != `{"id":"`+id+`"}` || d.Status != StatusPending {
					t.Errorf("%s: stored %+v", id, d)
				}
				if c := b.notifiedCount(id); c != 1 {
					t.Errorf("%s notified %d times", id, c)
				}
			}
			for i, path := range paths {
				if fileSize(t, path) != -1 {
					t.Fatalf("the replayed file %s is still there", path)
				}
				if last := i == len(paths)-1; last != (fileSize(t, path+".corrupt") != -1) {
					t.Fatalf("%s.corrupt exists: %v; want it for the file with the torn record only", path, !last)
				}
			}
			if names := spoolFiles(t, dir); len(names) != 2 || !slices.Contains(names, filepath.Base(spoolPath(b.r))) {
				t.Fatalf("files left: %v, want B's own and the .corrupt one", names)
			}
		})
	}
}

// 5. A corrupt record in the middle: replayed up to it, the file renamed .corrupt.
func TestSpoolCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	ds := []Delivery{testDelivery("shopify", "g1"), testDelivery("shopify", "g2"), testDelivery("shopify", "bad"), testDelivery("shopify", "g4")}
	var buf []byte
	var offs []int
	for i := range ds {
		offs = append(offs, len(buf))
		buf = appendRecord(buf, &ds[i])
	}
	buf[offs[2]+8+5] ^= 0x40 // a byte of the third record's payload
	path := filepath.Join(dir, spoolPrefix("shopify")+"12345-dead"+spoolExt)
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}

	store := NewMemory()
	g := newSpoolRig(t, "shopify", dir, store)
	t.Cleanup(func() { g.r.Close(context.Background()) })
	n, err := g.r.Resume(t.Context())
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got := stored(t, store, "shopify")
	if n != 2 || len(got) != 2 || got["g1"].ID == "" || got["g2"].ID == "" {
		t.Fatalf("Resume notified %d, stored %v; want g1 and g2 only", n, slices.Collect(maps.Keys(got)))
	}
	if fileSize(t, path) != -1 {
		t.Fatal("the corrupt file kept its spool name")
	}
	if size := fileSize(t, path+".corrupt"); size != int64(len(buf)) {
		t.Fatalf("%s.corrupt: size %d, want the whole file (%d)", path, size, len(buf))
	}
	// Renamed out of the spool names: a later Resume leaves it alone.
	if _, err := g.r.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fileSize(t, path+".corrupt") != int64(len(buf)) || len(stored(t, store, "shopify")) != 2 {
		t.Fatal("a second Resume touched the .corrupt file")
	}
}

// 6. The spool of a live receiver (its lock held) is not replayed by another's Resume.
func TestSpoolLiveFileNotReplayed(t *testing.T) {
	dir := t.TempDir()
	fa := newFlakyBatch()
	fa.fail.Store(true)
	a := newSpoolRig(t, "shopify", dir, fa)
	a.post("live1", `{}`, "accepted")
	a.post("live2", `{}`, "accepted")
	path := spoolPath(a.r)
	size := fileSize(t, path)
	if size <= 0 {
		t.Fatalf("A's spool has size %d", size)
	}

	bs := NewMemory()
	b := newSpoolRig(t, "shopify", dir, bs)
	t.Cleanup(func() { b.r.Close(context.Background()) })
	n, err := b.r.Resume(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || len(stored(t, bs, "shopify")) != 0 {
		t.Fatalf("Resume replayed a live spool: %d notified, %d stored", n, len(stored(t, bs, "shopify")))
	}
	if got := fileSize(t, path); got != size {
		t.Fatalf("the live spool's size went from %d to %d", size, got)
	}

	// A still owns its backlog: once its store is back, it stores it and removes its file.
	fa.fail.Store(false)
	if err := a.r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(stored(t, fa.Store, "shopify")) != 2 || fileSize(t, path) != -1 {
		t.Fatal("A's backlog was not stored by A's Close")
	}
}

// 7. Past the backlog limit deliveries are stored directly, before the answer.
func TestSpoolBacklogLimit(t *testing.T) {
	t.Run("tiny", func(t *testing.T) {
		store := NewMemory()
		g := newSpoolRig(t, "shopify", t.TempDir(), store)
		t.Cleanup(func() { g.r.Close(context.Background()) })
		g.r.spool.mu.Lock()
		g.r.spool.limit = 1
		g.r.spool.mu.Unlock()
		for _, id := range []string{"x1", "x2"} {
			g.post(id, `{}`, "accepted")
			if _, err := store.Get(t.Context(), "shopify", id); err != nil {
				t.Fatalf("%s not in the store when answered: %v", id, err)
			}
			if g.notifiedCount(id) != 1 {
				t.Fatalf("%s not notified when answered", id)
			}
		}
		g.post("x1", `{}`, "duplicate") // the direct path answers as without a spool
		if g.appended() != 0 || fileSize(t, spoolPath(g.r)) != 0 {
			t.Fatal("a delivery over the limit was spooled")
		}
		if st := g.r.Stats(); st != (Stats{Requests: 3, Accepted: 2, Duplicates: 1}) {
			t.Fatalf("Stats = %+v", st)
		}
	})
	t.Run("backlog", func(t *testing.T) {
		// The flusher cannot store (InsertBatch fails) but Insert, the direct path, can.
		store := newFlakyBatch()
		store.failBatch.Store(true)
		g := newSpoolRig(t, "shopify", t.TempDir(), store)
		g.post("b1", `{}`, "accepted")
		s := g.r.spool
		s.mu.Lock()
		s.limit = s.pending + s.pending/2 // room for b1's record, not for another like it
		s.mu.Unlock()
		g.post("b2", `{}`, "accepted")
		if _, err := store.Store.Get(t.Context(), "shopify", "b2"); err != nil {
			t.Fatalf("b2, over the backlog limit, not in the store when answered: %v", err)
		}
		if _, err := store.Store.Get(t.Context(), "shopify", "b1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("b1 stored while the flusher's store fails: %v", err)
		}
		if g.appended() != 1 {
			t.Fatalf("%d appended, want b1 only", g.appended())
		}
		store.failBatch.Store(false)
		g.flush()
		if len(stored(t, store.Store, "shopify")) != 2 || g.notifiedCount("b1") != 1 || g.notifiedCount("b2") != 1 {
			t.Fatalf("after the flush: %v, notified %v", stored(t, store.Store, "shopify"), g.notifiedAll())
		}
		// Under the limit again: spooled.
		g.post("b3", `{}`, "accepted")
		if g.appended() != 2 {
			t.Fatal("spooling did not resume below the limit")
		}
		if err := g.r.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// 8. A write that fails and cannot be undone turns spooling off: that delivery and the
// later ones are stored directly and answered 200.
func TestSpoolWriteFailure(t *testing.T) {
	store := NewMemory()
	g := newSpoolRig(t, "shopify", t.TempDir(), store)
	g.post("w0", `{}`, "accepted")
	g.flush()
	s := g.r.spool
	waitFor(t, "the flusher to stop", func() bool { return flusherStopped(s) })
	s.mu.Lock()
	if err := s.cur.f.Close(); err != nil { // Write and Truncate fail from now on
		t.Fatal(err)
	}
	s.mu.Unlock()

	for _, id := range []string{"w1", "w2", "w3"} {
		g.post(id, `{}`, "accepted")
		if _, err := store.Get(t.Context(), "shopify", id); err != nil {
			t.Fatalf("%s not in the store when answered: %v", id, err)
		}
		if g.notifiedCount(id) != 1 {
			t.Fatalf("%s not notified when answered", id)
		}
		s.mu.Lock()
		broken := s.broken
		s.mu.Unlock()
		if broken == nil {
			t.Fatalf("after %s: spooling not turned off", id)
		}
	}
	if g.appended() != 1 {
		t.Fatalf("%d appended, want w0 only", g.appended())
	}
	if st := g.r.Stats(); st != (Stats{Requests: 4, Accepted: 4}) {
		t.Fatalf("Stats = %+v", st)
	}
	g.flush()
	// Close reports the file this test closed under it; that error is the test's doing.
	if err := g.r.Close(t.Context()); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
}

// 9. A Close that gives up keeps the file, unlocked, and the next Resume stores its
// deliveries.
func TestSpoolCloseTimeout(t *testing.T) {
	dir := t.TempDir()
	fa := newFlakyBatch()
	fa.fail.Store(true)
	a := newSpoolRig(t, "shopify", dir, fa)
	for _, id := range []string{"k1", "k2", "k3"} {
		a.post(id, `{}`, "accepted")
	}
	path := spoolPath(a.r)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := a.r.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close while the store fails: %v, want the deadline", err)
	}
	if fileSize(t, path) <= 0 {
		t.Fatal("Close that gave up did not keep the spool file")
	}
	if !flusherStopped(a.r.spool) {
		t.Fatal("the flusher still runs after Close returned")
	}

	bs := NewMemory()
	b := newSpoolRig(t, "shopify", dir, bs)
	t.Cleanup(func() { b.r.Close(context.Background()) })
	n, err := b.r.Resume(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := stored(t, bs, "shopify"); n != 3 || len(got) != 3 {
		t.Fatalf("Resume notified %d, stored %d; want 3", n, len(got))
	}
	for _, id := range []string{"k1", "k2", "k3"} {
		if b.notifiedCount(id) != 1 {
			t.Errorf("%s notified %d times", id, b.notifiedCount(id))
		}
	}
	if fileSize(t, path) != -1 {
		t.Fatal("the replayed file is still there")
	}
}

// 11. Resume leaves other endpoints' spool files alone, dead or not.
func TestSpoolOtherEndpointUntouched(t *testing.T) {
	dir := t.TempDir()
	fo := newFlakyBatch()
	fo.fail.Store(true)
	o := newSpoolRig(t, "github", dir, fo)
	o.post("o1", `{}`, "accepted")
	o.post("o2", `{}`, "accepted")
	crash(t, o.r)
	handMade := writeSpoolFile(t, dir, "github", "777-dead", testDelivery("github", "o3"))
	corrupt := filepath.Join(dir, spoolPrefix("shopify")+"1-old"+spoolExt+".corrupt")
	if err := os.WriteFile(corrupt, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, name := range spoolFiles(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		before[name] = b
	}

	store := NewMemory()
	g := newSpoolRig(t, "shopify", dir, store)
	if n, err := g.r.Resume(t.Context()); err != nil || n != 0 {
		t.Fatalf("Resume = %d, %v", n, err)
	}
	if err := g.r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for name, b := range before {
		now, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(now, b) {
			t.Errorf("%s changed or went (%v)", name, err)
		}
	}
	for d, err := range store.List(t.Context(), Filter{}) {
		t.Errorf("stored %s/%s (%v)", d.Endpoint, d.ID, err)
	}

	// Intact: the github receiver's own Resume recovers them.
	gs := NewMemory()
	gh := newSpoolRig(t, "github", dir, gs)
	t.Cleanup(func() { gh.r.Close(context.Background()) })
	if n, err := gh.r.Resume(t.Context()); err != nil || n != 3 {
		t.Fatalf("github Resume = %d, %v; want 3", n, err)
	}
	if fileSize(t, spoolPath(o.r)) != -1 || fileSize(t, handMade) != -1 {
		t.Fatal("github's dead spools not removed by github's Resume")
	}
	if fileSize(t, corrupt) != 4 {
		t.Fatal("a .corrupt file was touched")
	}
}

// Concurrent deliveries, some redelivered: every one answered, each stored once, none
// lost, each handed on once per delivery that found it new or pending.
func TestSpoolConcurrentDeliveries(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			const total, unique = 200, 150
			store, _ := kind.make()
			g := newSpoolRig(t, "shopify", t.TempDir(), store)
			reqs := make([]*http.Request, total)
			deliveries := map[string]int{}
			for i := range total {
				id := fmt.Sprintf("c%03d", i%unique) // the last 50 repeat the first 50
				reqs[i] = g.request(id, fmt.Sprintf(`{"n":%d}`, i%unique))
				deliveries[id]++
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for _, req := range reqs {
				wg.Go(func() {
					<-start
					if code, status := g.serveReq(req); code != http.StatusOK || status != "accepted" {
						t.Errorf("%s: answer %d %q", req.Header.Get(DefaultIDHeader), code, status)
					}
				})
			}
			close(start)
			wg.Wait()
			g.flush()
			got := stored(t, store, "shopify")
			if len(got) != unique {
				t.Fatalf("%d stored, want %d", len(got), unique)
			}
			notified := g.notifiedAll()
			for id, n := range deliveries {
				if _, ok := got[id]; !ok {
					t.Errorf("%s lost", id)
				}
				// Never processed, so a redelivery finds it pending and hands it on again.
				if notified[id] != n {
					t.Errorf("%s notified %d times, want %d", id, notified[id], n)
				}
			}
			if st := g.r.Stats(); st != (Stats{Requests: total, Accepted: unique, Duplicates: total - unique}) {
				t.Errorf("Stats = %+v", st)
			}
			if err := g.r.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := len(spoolFiles(t, g.dir)); n != 0 {
				t.Fatalf("%d files left after Close", n)
			}
		})
	}
}

// equalDelivery fails the test unless got is want as a spool record keeps it: the
// delivery's identity, request and receive time, pending.
func equalDelivery(t testing.TB, got, want Delivery) {
	t.Helper()
	if got.Endpoint != want.Endpoint || got.ID != want.ID || got.Event != want.Event {
		t.Fatalf("key: got %q/%q/%q, want %q/%q/%q", got.Endpoint, got.ID, got.Event, want.Endpoint, want.ID, want.Event)
	}
	if len(got.Header) != len(want.Header) {
		t.Fatalf("header: got %v, want %v", got.Header, want.Header)
	}
	for k, vs := range want.Header {
		gvs, ok := got.Header[k]
		if !ok || !slices.Equal(gvs, vs) || (vs != nil && gvs == nil) {
			t.Fatalf("header %q: got %q, want %q", k, gvs, vs)
		}
	}
	if !bytes.Equal(got.Body, want.Body) {
		t.Fatalf("body: got %d bytes, want %d", len(got.Body), len(want.Body))
	}
	if !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Fatalf("ReceivedAt: got %v, want %v", got.ReceivedAt, want.ReceivedAt)
	}
	if got.Status != StatusPending {
		t.Fatalf("status %q, want pending", got.Status)
	}
}

// 10. A record gives back what was written, through decodeRecord and a recordReader.
func TestSpoolRecordRoundTrip(t *testing.T) {
	binaryBody := make([]byte, 256)
	for i := range binaryBody {
		binaryBody[i] = byte(i)
	}
	large := bytes.Repeat([]byte(`{"k":"0123456789abcdef"}`), (1<<20)/24+1)
	ds := []Delivery{
		{
			Endpoint: "shopify", ID: "b54557e4-bdd9", Event: "orders/create",
			Header: http.Header{
				"X-Multi":     {"a", "b", "c"},
				"X-Empty":     {""},
				"X-Some-Void": {"", "x", ""},
				"X-None":      {},
				"":            {"empty key"},
			},
			Body:       []byte(`{"id":1}`),
			ReceivedAt: time.Unix(1777888999, 123456789),
		},
		{Endpoint: "e", ID: "i", Body: nil, ReceivedAt: time.Unix(0, 1)},
		{Endpoint: "e", ID: "bin", Event: "é/ü", Header: http.Header{}, Body: binaryBody, ReceivedAt: time.Unix(-1, -999)},
		{Endpoint: "e", ID: "large", Header: http.Header{"Big": {strings.Repeat("v", 70000)}}, Body: large, ReceivedAt: spoolTestNow},
		{Endpoint: strings.Repeat("p", 300), ID: strings.Repeat("q", 255), ReceivedAt: time.Unix(0, 0)},
		{Endpoint: "e", ID: "zero-time"}, // a zero ReceivedAt stays zero (its Unix nanoseconds are undefined)
	}
	var file []byte
	for i := range ds {
		rec := appendRecord(nil, &ds[i])
		if n := binary.LittleEndian.Uint32(rec); int(n) != len(rec)-8 {
			t.Fatalf("record %d: length field %d for a %d-byte payload", i, n, len(rec)-8)
		}
		if crc := binary.LittleEndian.Uint32(rec[4:]); crc != crc32.Checksum(rec[8:], castagnoli) {
			t.Fatalf("record %d: bad checksum field", i)
		}
		payload := rec[8:]
		d, err := decodeRecord(payload)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		equalDelivery(t, d, ds[i])
		// The decoded delivery owns its memory: reusing the buffer does not change it.
		before := bytes.Clone(d.Body)
		for j := range payload {
			payload[j] = 0xAA
		}
		if !bytes.Equal(d.Body, before) {
			t.Fatalf("record %d: the decoded body aliases the record buffer", i)
		}
		file = appendRecord(file, &ds[i])
	}

	path := filepath.Join(t.TempDir(), "records")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := &recordReader{r: bufio.NewReader(f), left: int64(len(file))}
	for i := range ds {
		d, err := rd.next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		equalDelivery(t, d, ds[i])
	}
	if _, err := rd.next(); err != io.EOF {
		t.Fatalf("after the last record: %v, want io.EOF", err)
	}
	if rd.off != int64(len(file)) {
		t.Fatalf("offset %d at the end, want %d", rd.off, len(file))
	}

	// A record cut short, or whose checksum is wrong, is corrupt; nothing left is the end.
	one := appendRecord(nil, &ds[0])
	for cut := range len(one) {
		rd := &recordReader{r: bufio.NewReader(bytes.NewReader(one[:cut])), left: int64(cut)}
		want := errSpoolCorrupt
		if cut == 0 {
			want = io.EOF
		}
		if _, err := rd.next(); !errors.Is(err, want) {
			t.Fatalf("record cut at %d of %d: %v, want %v", cut, len(one), err, want)
		}
	}
	bad := bytes.Clone(one)
	bad[len(bad)-1] ^= 1
	rd = &recordReader{r: bufio.NewReader(bytes.NewReader(bad)), left: int64(len(bad))}
	if _, err := rd.next(); !errors.Is(err, errSpoolCorrupt) {
		t.Fatalf("flipped byte: %v, want errSpoolCorrupt", err)
	}
}

// allocated returns the bytes fn allocates on the heap. The counter is the process's, so
// another goroutine (the fuzzing engine's) can add to it: fn is measured again when it
// seems to exceed bound, and the least of up to three runs is returned, which is fn's own
// (its allocations do not vary). runtime/metrics rather than ReadMemStats: it does not
// stop the world, which keeps the fuzzer fast.
func allocated(bound uint64, fn func()) uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	least := uint64(1<<64 - 1)
	for range 3 {
		metrics.Read(sample)
		before := sample[0].Value.Uint64()
		fn()
		metrics.Read(sample)
		least = min(least, sample[0].Value.Uint64()-before)
		if least <= bound {
			break
		}
	}
	return least
}

// allocBound is what decoding n bytes may allocate: proportional to n, whatever counts
// and lengths the bytes claim. The factor is generous: a payload of header keys each
// taking 2 bytes makes a map of n/2 entries at up to ~100 bytes each.
func allocBound(n int) uint64 { return 128*uint64(n) + 256<<10 }

// FuzzSpoolRecord feeds arbitrary bytes to decodeRecord and, as a spool file, to a
// recordReader: no panic, allocations bounded by the input's size, and what decodes
// encodes back to the same delivery.
func FuzzSpoolRecord(f *testing.F) {
	for _, d := range []Delivery{
		testDelivery("shopify", "a"),
		{Endpoint: "e", ID: "i", Header: http.Header{"K": {"", "v"}, "Z": {}}, Body: []byte{0, 1, 2}, ReceivedAt: time.Unix(-5, 7)},
	} {
		rec := appendRecord(nil, &d)
		f.Add(rec)
		f.Add(rec[8:])
		f.Add(rec[:len(rec)-2])
		f.Add(append(slices.Clone(rec), rec...))
	}
	f.Add([]byte{})
	f.Add([]byte{spoolVersion, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(binary.AppendUvarint([]byte{spoolVersion, 0, 0, 0, 1, 0}, 1<<62))
	// One file for all the inputs of a worker, rewritten for each: creating a file per
	// input would make the file system the fuzzer's bottleneck.
	file, err := os.OpenFile(filepath.Join(f.TempDir(), "fuzz"+spoolExt), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { file.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		// Longer inputs reach no other code (TestSpoolRecordRoundTrip has large records),
		// and Go's minimizer is quadratic in an interesting input's length: one of a few
		// KiB stalls the whole run while it is minimized.
		if len(data) > 320 {
			return
		}
		var d Delivery
		var err error
		if a := allocated(allocBound(len(data)), func() { d, err = decodeRecord(data) }); a > allocBound(len(data)) {
			t.Fatalf("decoding %d bytes allocated %d", len(data), a)
		}
		if err == nil {
			again, err := decodeRecord(appendRecord(nil, &d)[8:])
			if err != nil {
				t.Fatalf("a decoded delivery does not decode once encoded again: %v", err)
			}
			equalDelivery(t, again, d)
		}

		// As a spool file, raw and as one framed record (which reaches decodeRecord).
		framed := binary.LittleEndian.AppendUint32(nil, uint32(len(data)))
		framed = binary.LittleEndian.AppendUint32(framed, crc32.Checksum(data, castagnoli))
		framed = append(framed, data...)
		for _, content := range [][]byte{data, framed} {
			if err := file.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if _, err := file.WriteAt(content, 0); err != nil {
				t.Fatal(err)
			}
			var rd *recordReader
			records := 0
			var last error
			// bufio's 4 KiB buffer, then the payload copies and their decoding.
			bound := allocBound(len(content)) + 8<<10
			a := allocated(bound, func() {
				if _, err := file.Seek(0, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				rd = &recordReader{r: bufio.NewReader(file), left: int64(len(content))}
				records, last = 0, nil
				for range len(content) + 1 { // each record takes at least 8 bytes: ends
					if _, last = rd.next(); last != nil {
						break
					}
					records++
				}
			})
			if a > bound {
				t.Fatalf("reading a %d-byte file allocated %d", len(content), a)
			}
			if last == nil || rd.off > int64(len(content)) || records > len(content)/8 {
				t.Fatalf("%d records to offset %d of a %d-byte file, then %v", records, rd.off, len(content), last)
			}
			if last != io.EOF && !errors.Is(last, errSpoolCorrupt) {
				t.Fatalf("reading the file: %v, want io.EOF or errSpoolCorrupt", last)
			}
		}
	})
}

// BUG (see the t.Skip): Resume does not find the spool files of a dir whose name has glob
// metacharacters, since replay passes the dir to filepath.Glob as part of the pattern.
func TestSpoolReplayDirWithGlobCharacters(t *testing.T) {
	for _, name := range []string{"spool[1]", "spool["} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			fa := newFlakyBatch()
			fa.fail.Store(true)
			a := newSpoolRig(t, "shopify", dir, fa)
			a.post("g1", `{}`, "accepted")
			crash(t, a.r)
			bs := NewMemory()
			b := newSpoolRig(t, "shopify", dir, bs)
			t.Cleanup(func() { b.r.Close(context.Background()) })
			n, err := b.r.Resume(t.Context())
			if err != nil || n != 1 {
				t.Fatalf("Resume = %d, %v; want the crashed delivery", n, err)
			}
			if fileSize(t, spoolPath(a.r)) != -1 {
				t.Fatal("the crashed spool was not replayed")
			}
		})
	}
}

// BUG (see the t.Skip): a dead spool file named for this endpoint whose records are of
// another endpoint (replay's own comment: "another endpoint with the same name hash") is
// skipped record by record, then removed: the other endpoint loses those deliveries.
func TestSpoolReplayKeepsForeignRecords(t *testing.T) {
	dir := t.TempDir()
	path := writeSpoolFile(t, dir, "shopify", "1-collision", testDelivery("github", "x1"))
	store := NewMemory()
	g := newSpoolRig(t, "shopify", dir, store)
	t.Cleanup(func() { g.r.Close(context.Background()) })
	if _, err := g.r.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fileSize(t, path) <= 0 {
		t.Fatal("a spool holding another endpoint's deliveries was removed")
	}
}
