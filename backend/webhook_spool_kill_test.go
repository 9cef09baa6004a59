//go:build unix

package backend_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/webhook"
)

// The stream crash test's child serves webhooks with these variables set.
const (
	spoolChildDBEnv  = "CONNKIT_BACKEND_SPOOL_CHILD_DB"
	spoolChildDirEnv = "CONNKIT_BACKEND_SPOOL_CHILD_DIR"
)

// spoolStreamShop is the backend both processes of the stream crash test build: deliveries
// in db through a spool in dir, orders/paid handled by h.
func spoolStreamShop(t *testing.T, db *sqlstore.DB, dir string, h webhook.Handler) *backend.Backend {
	t.Helper()
	hook := shopifyWebhook()
	hook.Spool = dir
	b, err := backend.New(backend.Config{Name: "shop", BaseURL: "https://shop.example.com", Webhooks: []backend.WebhookConfig{hook}},
		backend.WithDB(db), backend.WithModel(productModel(local.NewMemory[product]())),
		backend.WithWebhookHandler("shopify", "orders/paid", h))
	require.NoError(t, err)
	return b
}

// TestWebhookSpoolChild is the child of TestWebhookSpoolCrashMidStream: it serves the
// webhooks of an unstarted backend (nothing is processed) on a loopback port it prints,
// until it is killed.
func TestWebhookSpoolChild(t *testing.T) {
	path := os.Getenv(spoolChildDBEnv)
	if path == "" {
		t.Skip("child process of TestWebhookSpoolCrashMidStream")
	}
	db, err := sqlstore.Open(context.Background(), "sqlite:"+path)
	require.NoError(t, err)
	b := spoolStreamShop(t, db, os.Getenv(spoolChildDirEnv), func(context.Context, webhook.Delivery) error { return nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fmt.Printf("listening http://%s\n", ln.Addr())
	_ = os.Stdout.Sync()
	_ = http.Serve(ln, b.Webhooks())
}

// A process takes deliveries from 8 concurrent senders through a spool and is killed
// (SIGKILL) in the middle of the stream, with deliveries answered 200 still only in its
// spool, some in the store, and requests in flight. The next process on the same SQLite
// file and spool directory starts: every delivery answered 200 is stored and processed
// exactly once, and no spool file of the dead process is left.
func TestWebhookSpoolCrashMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process; skipped with -short")
	}
	dir, dbPath := t.TempDir(), filepath.Join(t.TempDir(), "shop.db")
	db, err := sqlstore.Open(context.Background(), "sqlite:"+dbPath) // migrates before the child opens it
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	cmd := exec.Command(os.Args[0], "-test.run=^TestWebhookSpoolChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), spoolChildDBEnv+"="+dbPath, spoolChildDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	var url string
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			url = u
			break
		}
	}
	require.NotEmpty(t, url, "the child printed no address")
	go func() { // drain the child's output so it never blocks on a full pipe
		for lines.Scan() {
		}
	}()

	signer, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{shopifySecret})
	require.NoError(t, err)
	const total, senders, killAfter = 3000, 8, 1200
	var answered sync.Map // ID → true, for deliveries answered 200
	var ok atomic.Int32
	killed := make(chan struct{})
	var killOnce sync.Once
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	t.Cleanup(client.CloseIdleConnections)
	work := make(chan int)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range work {
				id := fmt.Sprintf("o-%d", i)
				body := fmt.Appendf(nil, `{"id":%d}`, i)
				if code, err := postSigned(client, signer, url+"/shopify", id, "orders/paid", body); err == nil && code == http.StatusOK {
					answered.Store(id, true)
					if ok.Add(1) == killAfter {
						killOnce.Do(func() {
							_ = cmd.Process.Signal(syscall.SIGKILL)
							close(killed)
						})
					}
				}
			}
		})
	}
feed:
	for i := range total {
		select {
		case work <- i:
		case <-killed:
			break feed
		}
	}
	close(work)
	wg.Wait()
	err = cmd.Wait()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "child: %v", err)
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal())
	n := 0
	answered.Range(func(any, any) bool { n++; return true })
	require.GreaterOrEqual(t, n, killAfter)
	inStore := 0
	for _, err := range db.Webhooks().List(context.Background(), webhook.Filter{Endpoint: "shop/shopify"}) {
		require.NoError(t, err)
		inStore++
	}
	t.Logf("%d deliveries answered 200 before the kill; the store held %d deliveries (the rest were only in the spool)", n, inStore)

	// The next process.
	var runs sync.Map // ID → *atomic.Int32
	b := spoolStreamShop(t, db, dir, func(_ context.Context, d webhook.Delivery) error {
		c, _ := runs.LoadOrStore(d.ID, new(atomic.Int32))
		c.(*atomic.Int32).Add(1)
		return nil
	})
	require.NoError(t, b.Start(context.Background()))
	answered.Range(func(id, _ any) bool {
		waitDelivery(t, b.Deliveries(), "shop/shopify", id.(string), status(webhook.StatusProcessed))
		return true
	})
	stopHub(t, b)
	answered.Range(func(id, _ any) bool {
		c, found := runs.Load(id)
		require.True(t, found, "delivery %s answered 200 was never processed", id)
		require.EqualValues(t, 1, c.(*atomic.Int32).Load(), "delivery %s processed more than once", id)
		return true
	})
	runs.Range(func(id, c any) bool {
		require.EqualValues(t, 1, c.(*atomic.Int32).Load(), "delivery %s processed more than once", id)
		return true
	})
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	require.Empty(t, files, "the dead process's spool files are replayed and removed; Stop removed the new one's")
}

// postSigned POSTs a signed delivery and returns the status code, or the error of a
// request that got no answer (the server was killed).
func postSigned(client *http.Client, signer *webhook.HMAC, url, id, topic string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Shopify-Webhook-Id", id)
	req.Header.Set("X-Shopify-Topic", topic)
	if err := signer.Sign(req.Header, body, time.Now()); err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}
