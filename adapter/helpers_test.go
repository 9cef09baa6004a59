package adapter

import (
	"context"
	"github.com/connkit/connkit/synclog"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTime is an injected clock and sleeper: Sleep records the wait and, when advance is
// set, moves the clock forward instead of blocking.
type fakeTime struct {
	mu      sync.Mutex
	now     time.Time
	waits   []time.Duration
	advance bool
}

func newFakeTime() *fakeTime {
	return &fakeTime{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), advance: true}
}

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	if f.advance {
		f.now = f.now.Add(d)
	}
	return nil
}

func (f *fakeTime) Waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.waits)
}

func (f *fakeTime) opts() []Option { return []Option{WithClock(f.Now, f.Sleep)} }

// newClient builds a client with an instant fake sleeper.
func newClient(t testing.TB, base string, opts ...Option) (*Client, *fakeTime) {
	t.Helper()
	ft := newFakeTime()
	c, err := New(base, append(ft.opts(), opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, ft
}

// scripted serves the given statuses in order (the last repeats) and counts hits.
type scripted struct {
	hits     atomic.Int32
	statuses []int
	header   http.Header
	body     string
	seen     chan *http.Request
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.hits.Add(1)) - 1
	st := s.statuses[min(n, len(s.statuses)-1)]
	for k, vs := range s.header {
		w.Header()[k] = vs
	}
	if s.seen != nil {
		s.seen <- r.Clone(context.Background())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st)
	body := s.body
	if body == "" {
		body = `{"ok":true}`
	}
	w.Write([]byte(body))
}

func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// captureHandler is a slog.Handler that hands each record's message and attributes to fn.
type captureHandler struct {
	fn func(msg string, attrs map[string]string)
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	h.fn(r.Message, attrs)
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func newSlog(h slog.Handler) *slog.Logger { return slog.New(h) }

// timeouts overrides the client's timeouts for one request (zero keeps the client's).
// ringEntries collects the entries of ring matching f, newest first.
func ringEntries(ring *synclog.Ring, f synclog.Filter) []synclog.Entry {
	var out []synclog.Entry
	for e, err := range ring.Query(context.Background(), f) {
		if err != nil {
			panic(err)
		}
		out = append(out, e)
	}
	return out
}

// authFunc is a custom Auth scheme written as a function.
type authFunc func(req *http.Request) error

func (f authFunc) Apply(req *http.Request) error { return f(req) }

// recorderFunc is an audit recorder written as a function.
type recorderFunc func(ctx context.Context, e synclog.Entry) error

func (f recorderFunc) Record(ctx context.Context, e synclog.Entry) error { return f(ctx, e) }
