//go:build unix

package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/webhook"
)

// The crash test's child process runs TestWebhookChild with these variables set.
const (
	webhookChildEnv = "CONNKIT_BACKEND_WEBHOOK_CHILD" // the queue: pool or river
	webhookDSNEnv   = "CONNKIT_BACKEND_WEBHOOK_DSN"
	webhookAPIEnv   = "CONNKIT_BACKEND_WEBHOOK_API"
	webhookBodyEnv  = "CONNKIT_BACKEND_WEBHOOK_BODY"
	webhookSpoolEnv = "CONNKIT_BACKEND_WEBHOOK_SPOOL" // the spool directory, if any
)

// sqlShop builds the webhook connector every process of the crash test builds the same
// way: the product model kept in db, deliveries in db (through a spool in the directory
// spool, when given), and the in-process pool or a River queue on db (whose tables only
// the first process creates).
func sqlShop(t *testing.T, db *sqlstore.DB, apiURL, queueKind, spool string, migrate bool) (*backend.Backend, *sqlstore.RecordStore[product]) {
	t.Helper()
	ctx := context.Background()
	products, err := sqlstore.Records[product](ctx, db, "product")
	require.NoError(t, err)
	opts := []backend.Option{backend.WithDB(db), backend.WithModel(productModel(products)),
		backend.WithClientOptions(adapter.WithRetries(0))}
	if queueKind == "river" {
		opts = append(opts, backend.WithQueue(func(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
			qopts := []queue.Option{queue.WithBackoff(50*time.Millisecond, 200*time.Millisecond),
				riverqueue.WithRiverConfig(func(c *river.Config) {
					c.TestOnly = true
					c.FetchPollInterval = 50 * time.Millisecond
					c.FetchCooldown = 10 * time.Millisecond
				})}
			if !migrate {
				qopts = append(qopts, riverqueue.WithoutMigrate())
			}
			return riverqueue.New(ctx, db, w, qopts...)
		}))
	}
	hook := shopifyWebhook()
	hook.Spool = spool
	b, err := backend.New(backend.Config{Name: "shop", BaseURL: apiURL, Webhooks: []backend.WebhookConfig{hook}}, opts...)
	require.NoError(t, err)
	return b, products
}

// TestWebhookChild is the child process of TestWebhookCrashBeforeProcessing: it receives
// one delivery (stored, its job queued; or, with a spool, written to the spool file) and
// SIGKILLs itself before any worker runs (with a spool, the flusher is most likely still
// waiting for a batch to fill).
func TestWebhookChild(t *testing.T) {
	kind := os.Getenv(webhookChildEnv)
	if kind == "" {
		t.Skip("child process of TestWebhookCrashBeforeProcessing")
	}
	db, err := sqlstore.Open(context.Background(), os.Getenv(webhookDSNEnv), sqlstore.WithoutMigrate())
	require.NoError(t, err)
	b, _ := sqlShop(t, db, os.Getenv(webhookAPIEnv), kind, os.Getenv(webhookSpoolEnv), false) // never started
	body := []byte(os.Getenv(webhookBodyEnv))
	signer, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{shopifySecret})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/shopify", bytes.NewReader(body))
	req.Header.Set("X-Shopify-Webhook-Id", "crash-1")
	req.Header.Set("X-Shopify-Topic", "products/create")
	require.NoError(t, signer.Sign(req.Header, body, time.Now()))
	rec := httptest.NewRecorder()
	b.Webhooks().ServeHTTP(rec, req)
	fmt.Println("answered", rec.Code)
	_ = os.Stdout.Sync()
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// A process stores a delivery, answers the sender 200 and is killed before processing it
// (its in-process job dies with it; a River job stays in the database). Another process
// starts the backend on the same database (a SQLite file; Postgres when
// CONNKIT_TEST_POSTGRES_URL is set): Start queues the pending delivery again (River: the
// identity key finds the job already there), and it is processed exactly once.
//
// With a spool, the delivery answered 200 may exist only in the dead process's spool
// file: Start stores it from there (and removes the file), then processes it once.
func TestWebhookCrashBeforeProcessing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process; skipped with -short")
	}
	for _, tc := range []struct {
		dialect, kind string
		spool         bool
	}{{"sqlite", "pool", false}, {"sqlite", "river", false}, {"postgres", "pool", false}, {"postgres", "river", false},
		{"sqlite", "pool", true}, {"sqlite", "river", true}, {"postgres", "pool", true}} {
		kind := tc.kind
		name := tc.dialect + "/" + kind
		if tc.spool {
			name += "/spool"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "shop.db")
			if tc.dialect == "postgres" {
				dsn = pgSchemaDSN(t)
			}
			api := fakeapi.New()
			t.Cleanup(api.Close)
			id := api.Add("products", map[string]any{"title": "Kettle", "price": "30"})
			db, err := sqlstore.Open(ctx, dsn)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			var spool string
			if tc.spool {
				spool = t.TempDir()
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestWebhookChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), webhookChildEnv+"="+kind, webhookDSNEnv+"="+dsn, webhookAPIEnv+"="+api.URL,
				webhookBodyEnv+"="+fmt.Sprintf(`{"id":%d}`, id), webhookSpoolEnv+"="+spool)
			if kind == "river" { // River's tables, made before the child opens the database
				sqlShop(t, db, api.URL, kind, "", true)
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(t, cmd.Start())
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("child still running; output:\n%s", out.String())
			}
			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "child: %v; output:\n%s", err, out.String())
			require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "output:\n%s", out.String())
			require.Contains(t, out.String(), "answered 200")

			// The restarted process: built after the crash, as a new process would be (its
			// spool, in the same directory, is a new file).
			b, products := sqlShop(t, db, api.URL, kind, spool, false)
			d, err := b.Deliveries().Get(ctx, "shop/shopify", "crash-1")
			if tc.spool && errors.Is(err, webhook.ErrNotFound) {
				files, _ := filepath.Glob(filepath.Join(spool, "*.spool"))
				require.Len(t, files, 2, "the delivery is in the dead process's spool file (and the new process has its own)")
				t.Log("the delivery was only in the spool when the process died")
			} else {
				require.NoError(t, err, "the delivery answered 200 survived the crash")
				assert.Equal(t, webhook.StatusPending, d.Status)
				assert.Zero(t, d.Attempts)
			}
			assert.Zero(t, api.Stats().Gets, "nothing was processed before the crash")
			var jobs []queue.JobInfo
			for j, err := range b.Queue().ListJobs(ctx, queue.ListFilter{}) {
				require.NoError(t, err)
				jobs = append(jobs, j)
			}
			if kind == "river" && !tc.spool { // with a spool, the child may die before its flusher queues the job
				require.Len(t, jobs, 1, "the River job survived")
				assert.Equal(t, "connkit.webhook", jobs[0].Kind)
			} else if kind == "pool" {
				assert.Empty(t, jobs, "a new process's pool starts empty")
			}

			require.NoError(t, b.Start(ctx))
			d = waitDelivery(t, b.Deliveries(), "shop/shopify", "crash-1", status(webhook.StatusProcessed))
			if tc.spool {
				files, _ := filepath.Glob(filepath.Join(spool, "*.spool"))
				assert.Len(t, files, 1, "the dead process's spool file is removed once stored; the running one's is left")
			}
			stopHub(t, b)
			assert.Equal(t, 1, d.Attempts, "processed once")
			assert.Equal(t, 1, api.Stats().Gets, "fetched once")
			bd, err := db.Bindings().GetByExternal(ctx, "shop", "product", strconv.FormatInt(id, 10))
			require.NoError(t, err)
			assert.Equal(t, binding.StatusSuccess, bd.Status)
			p, err := products.Get(ctx, bd.LocalID)
			require.NoError(t, err)
			assert.Equal(t, product{Title: "Kettle", Price: "30"}, p)
			if kind == "river" {
				n := 0
				for j, err := range b.Queue().ListJobs(ctx, queue.ListFilter{}) {
					require.NoError(t, err)
					assert.Equal(t, queue.StateCompleted, j.State, "Stop let the running job finish")
					n++
				}
				assert.Equal(t, 1, n, "Start's resume found the job already queued")
			}
		})
	}
}

// On River (durable, SQLite), deliveries go through the whole path: received over HTTP,
// queued in the database, processed by a River worker, retried after a failure.
func TestWebhookOnRiver(t *testing.T) {
	ctx := context.Background()
	db := openSQLiteFile(t)
	api := fakeapi.New()
	t.Cleanup(api.Close)
	b, products := sqlShop(t, db, api.URL, "river", "", true)
	id := api.Add("products", map[string]any{"title": "Mug", "price": "8"})
	api.Inject(fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: http.StatusServiceUnavailable, Times: 1, Resource: "products"})
	require.NoError(t, b.Start(ctx))
	t.Cleanup(func() { stopHub(t, b) })
	srv := httptest.NewServer(http.StripPrefix("/webhooks", b.Webhooks()))
	t.Cleanup(srv.Close)
	s := &shop{srv: srv, b: b}
	var err error
	s.signer, err = webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{shopifySecret})
	require.NoError(t, err)

	body := fmt.Appendf(nil, `{"id":%d}`, id)
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "river-1", "products/create", body))
	require.Equal(t, http.StatusOK, s.deliver(t, nil, "river-1", "products/create", body), "a redelivery")
	d := waitDelivery(t, b.Deliveries(), "shop/shopify", "river-1", status(webhook.StatusProcessed))
	assert.Equal(t, 2, d.Attempts, "a 5xx on the fetch, then success")
	bd, err := db.Bindings().GetByExternal(ctx, "shop", "product", strconv.FormatInt(id, 10))
	require.NoError(t, err)
	p, err := products.Get(ctx, bd.LocalID)
	require.NoError(t, err)
	assert.Equal(t, "Mug", p.Title)
	var jobs int
	for j, err := range b.Queue().ListJobs(ctx, queue.ListFilter{Kinds: []string{"connkit.webhook"}}) {
		require.NoError(t, err)
		waitJob(t, b.Queue(), j.ID) // completed
		jobs++
	}
	assert.Equal(t, 1, jobs, "the redelivery queued nothing more")
}
