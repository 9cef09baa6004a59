package apisync_test

import (
	"context"
	"encoding/json"
	"github.com/connkit/connkit/internal/pgtest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

// openDB opens a SQLite file database in a temporary directory.
func openDB(t *testing.T) *sqlstore.DB { return openDBF(t) }

func openDBF(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "app.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// forEachDB runs fn on a SQLite file and, when CONNKIT_TEST_POSTGRES_URL is set, on a
// fresh Postgres schema dropped at cleanup.
func forEachDB(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openDB(t)) })
	t.Run("postgres", func(t *testing.T) {
		db, err := sqlstore.Open(context.Background(), pgDSN(t))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		fn(t, db)
	})
}

// pgDSN returns a DSN on a fresh schema of the test Postgres, or skips.
func pgDSN(t *testing.T) string { return pgtest.DSN(t, "apisync_test_") }

// parseAll parses YAML configs given as strings, with env as the environment.
func parseAll(t *testing.T, env map[string]string, docs ...string) []apisync.Config {
	return parseAllEnv(t, env, docs...)
}

func parseAllF(t testing.TB, docs ...string) []apisync.Config { return parseAllEnv(t, nil, docs...) }

func parseAllEnv(t testing.TB, env map[string]string, docs ...string) []apisync.Config {
	t.Helper()
	var cfgs []apisync.Config
	for i, d := range docs {
		c, err := apisync.Parse([]byte(d), "cfg"+string(rune('0'+i))+".yaml", func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		})
		require.NoError(t, err)
		cfgs = append(cfgs, c)
	}
	return cfgs
}

// fastQueue makes River poll often, for tests.
func fastQueue() apisync.Option {
	return apisync.WithQueueOptions(riverqueue.WithRiverConfig(func(c *river.Config) {
		c.FetchPollInterval = 50 * time.Millisecond
	}), queue.WithBackoff(50*time.Millisecond, 200*time.Millisecond))
}

// openSync opens configs on a fresh database.
func openSync(t *testing.T, db *sqlstore.DB, cfgs []apisync.Config, opts ...apisync.Option) *apisync.Sync {
	t.Helper()
	if db == nil {
		db = openDB(t)
	}
	s, err := apisync.Open(context.Background(), db, cfgs, append([]apisync.Option{fastQueue()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

// received is one request a fake receiver saw.
type received struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   string
}

// receiver is a fake external API recording what it is sent; reply decides the answer.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []received
	reply func(n int, r received) (int, string)
}

func newReceiver(t *testing.T, reply func(n int, r received) (int, string)) *receiver {
	rc := &receiver{reply: reply}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got := received{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, got)
		n := len(rc.reqs)
		rc.mu.Unlock()
		status, body := 200, `{"id":"ext-1"}`
		if rc.reply != nil {
			status, body = rc.reply(n, got)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// call sends a request to h and decodes the JSON answer.
func call(t *testing.T, h http.Handler, method, target, body string, hdr map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out), "every response is JSON: %q", w.Body.String())
	return w.Code, out, w.Header()
}

// auditEntries returns the audit entries of direction d, newest first.
func auditEntries(t *testing.T, db *sqlstore.DB, f synclog.Filter) []synclog.Entry {
	t.Helper()
	var out []synclog.Entry
	for e, err := range db.Log().Query(context.Background(), f) {
		require.NoError(t, err)
		out = append(out, e)
	}
	return out
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func apisyncInbound() synclog.Filter { return synclog.Filter{Direction: synclog.Inbound} }
