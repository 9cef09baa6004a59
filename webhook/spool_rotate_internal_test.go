package webhook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rotStore is a memory store whose writes fail while down is set.
type rotStore struct {
	Store
	down atomic.Bool
}

var errRotDown = errors.New("store down")

func (s *rotStore) Insert(ctx context.Context, d Delivery) (Delivery, bool, error) {
	if s.down.Load() {
		return Delivery{}, false, errRotDown
	}
	return s.Store.Insert(ctx, d)
}

func (s *rotStore) InsertBatch(ctx context.Context, ds []Delivery) ([]bool, error) {
	if s.down.Load() {
		return nil, errRotDown
	}
	return s.Store.(BatchInserter).InsertBatch(ctx, ds)
}

// A stream that never lets the backlog empty (here: a store that is down) must not grow
// one spool file forever: past the rotation size a new file is started, and each old one
// is removed once its deliveries are stored; the last one is emptied. Killed at any point,
// the files hold every delivery not yet stored.
func TestSpoolRotates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := &rotStore{Store: NewMemory()}
	store.down.Store(true)
	v, err := NewHMAC("X-Sig", Base64, []string{"rotation-secret"})
	if err != nil {
		t.Fatal(err)
	}
	var notified atomic.Int32
	r, err := NewReceiver("rot", v, store, WithSpool(dir), WithIDHeader("X-Id"),
		WithNotify(func(context.Context, Delivery) error { notified.Add(1); return nil }))
	if err != nil {
		t.Fatal(err)
	}
	r.spool.rotate = 2 << 10 // a new file every two deliveries or so
	const n = 20
	for i := range n {
		body := fmt.Sprintf(`{"id":%d,"pad":%q}`, i, strings.Repeat("x", 900))
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("X-Id", fmt.Sprint("d-", i))
		if err := v.Sign(req.Header, []byte(body), time.Now()); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("delivery %d answered %d: %s", i, rec.Code, rec.Body)
		}
	}
	files := func() []string {
		t.Helper()
		paths, err := filepath.Glob(filepath.Join(dir, "*"+spoolExt))
		if err != nil {
			t.Fatal(err)
		}
		return paths
	}
	if got := len(files()); got < 5 {
		t.Fatalf("%d spool files after %d deliveries of ~1 KB with a 2 KB rotation; want several", got, n)
	}
	// What a replay would read now: every delivery, none lost to a rotation.
	ids := map[string]bool{}
	for _, path := range files() {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := f.Stat()
		rd := &recordReader{r: bufio.NewReader(f), left: info.Size()}
		for {
			d, err := rd.next()
			if err != nil {
				break
			}
			ids[d.ID] = true
		}
		f.Close()
	}
	if len(ids) != n {
		t.Fatalf("the spool files hold %d distinct deliveries, want %d", len(ids), n)
	}

	store.down.Store(false)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	left := files()
	if len(left) != 1 {
		t.Fatalf("after the flush %d spool files are left, want the current one: %v", len(left), left)
	}
	if info, err := os.Stat(left[0]); err != nil || info.Size() != 0 {
		t.Fatalf("the current spool file after the flush: %v, %v; want it empty", info, err)
	}
	if got := notified.Load(); got != n {
		t.Fatalf("%d deliveries handed on, want %d", got, n)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left := files(); len(left) != 0 {
		t.Fatalf("after Close: %v", left)
	}
}

// A receiver with a spool and no Notify hook (the app lists pending deliveries itself)
// still recovers what a crashed process left in its spool: Resume stores it.
func TestSpoolResumeWithoutNotify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mem := NewMemory()
	v, err := NewHMAC("X-Sig", Hex, []string{"no-notify-secret"})
	if err != nil {
		t.Fatal(err)
	}
	down := &rotStore{Store: mem}
	down.down.Store(true)
	r1, err := NewReceiver("ep", v, down, WithSpool(dir))
	if err != nil {
		t.Fatal(err)
	}
	if code := rotPost(t, r1, v, "x1", `{"a":1}`); code != http.StatusOK {
		t.Fatalf("answered %d", code)
	}
	// The crash: the flusher stops, the file is closed (unlocked) unflushed.
	r1.spool.cancel()
	r1.spool.mu.Lock()
	for r1.spool.flushing {
		p := r1.spool.progress
		r1.spool.mu.Unlock()
		<-p
		r1.spool.mu.Lock()
	}
	r1.spool.cur.f.Close()
	r1.spool.mu.Unlock()

	r2, err := NewReceiver("ep", v, mem, WithSpool(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(ctx)
	if n, err := r2.Resume(ctx); err != nil || n != 0 {
		t.Fatalf("Resume without a hook: %d, %v; want 0, nil", n, err)
	}
	if d, err := mem.Get(ctx, "ep", "x1"); err != nil || d.Status != StatusPending {
		t.Fatalf("the delivery answered 200: %+v, %v; want it stored pending", d, err)
	}
	if _, err := (&Receiver{endpoint: "plain"}).Resume(ctx); err == nil {
		t.Fatal("Resume with neither a hook nor a spool: no error")
	}
}

// A Close while another is flushing waits for it and reports what it came to: nil only
// when everything was stored.
func TestSpoolSecondCloseReportsTheFirst(t *testing.T) {
	dir := t.TempDir()
	store := &rotStore{Store: NewMemory()}
	store.down.Store(true)
	v, err := NewHMAC("X-Sig", Hex, []string{"close-secret"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReceiver("ep", v, store, WithSpool(dir), WithNotify(func(context.Context, Delivery) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	rotPost(t, r, v, "c1", `{"a":1}`)

	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		first <- r.Close(ctx)
	}()
	// The second Close starts while the first flushes in vain (the store is down).
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.spool.mu.Lock()
		closed := r.spool.closed
		r.spool.mu.Unlock()
		if closed || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	second := r.Close(context.Background())
	if err := <-first; err == nil || !errors.Is(second, context.DeadlineExceeded) {
		t.Fatalf("first Close: %v; second Close: %v; want both to report the deadline", err, second)
	}
}

// rotPost serves one delivery signed by v, with its ID in the default header, and returns
// the answer's status code.
func rotPost(t *testing.T, r *Receiver, v *HMAC, id, body string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set(DefaultIDHeader, id)
	if err := v.Sign(req.Header, []byte(body), time.Now()); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec.Code
}
