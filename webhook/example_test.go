package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/webhook"
)

// processArgs is the queue job that processes one delivery.
type processArgs struct {
	ID string `json:"id"`
}

func (processArgs) Kind() string { return "process_shopify_webhook" }

// A Shopify-style receiver: HMAC-SHA256 of the body in base64, the delivery ID and the
// topic in headers, one handler per topic, processing through a queue.
func Example() {
	ctx := context.Background()
	verifier, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64,
		[]string{"new-app-secret", "old-app-secret"}) // both pass during a rotation
	if err != nil {
		panic(err)
	}
	store := webhook.NewMemory() // sqlstore's DB.Webhooks() to keep them

	var receiver *webhook.Receiver
	workers := &queue.Workers{}
	queue.AddWorker(workers, func(ctx context.Context, job *queue.Job[processArgs]) error {
		return receiver.Process(ctx, job.Args.ID) // the handler's error retries the job
	})
	pool := queue.NewPool(workers)
	if err := pool.Start(ctx); err != nil {
		panic(err)
	}

	orders := make(chan string, 1)
	receiver, err = webhook.NewReceiver("shopify", verifier, store,
		webhook.WithIDHeader("X-Shopify-Webhook-Id"),
		webhook.WithEventHeader("X-Shopify-Topic"),
		webhook.WithHandler("orders/create", func(ctx context.Context, d webhook.Delivery) error {
			orders <- gjson.GetBytes(d.Body, "name").String() // import the order here
			return nil
		}),
		webhook.WithNotify(func(ctx context.Context, d webhook.Delivery) error {
			_, err := pool.Enqueue(ctx, processArgs{ID: d.ID},
				queue.WithIdentityKey("webhook:"+d.Endpoint+":"+d.ID))
			return err
		}),
	)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/shopify", receiver)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// What Shopify sends (tests sign deliveries with the verifier's Sign).
	body := `{"id":820982911946154508,"name":"#1001"}`
	post := func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/shopify", strings.NewReader(body))
		req.Header.Set("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
		req.Header.Set("X-Shopify-Topic", "orders/create")
		if err := verifier.Sign(req.Header, []byte(body), time.Now()); err != nil {
			panic(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, string(answer))
	}
	post()
	fmt.Println("imported order", <-orders)
	post() // Shopify delivers again: answered, not processed twice

	if err := pool.Stop(ctx); err != nil {
		panic(err)
	}
	d, _ := store.Get(ctx, "shopify", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
	fmt.Println(d.Event, d.Status, d.Attempts, d.Header.Get("X-Shopify-Hmac-Sha256"))
	// Output:
	// 200 {"status":"accepted","id":"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
	// imported order #1001
	// 200 {"status":"duplicate","id":"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
	// orders/create processed 1 [REDACTED]
}

// A Standard Webhooks sender signs the delivery ID, the timestamp and the body; the
// receiver's verifier checks all three and the timestamp's age.
func ExampleStandardWebhooks_Sign() {
	v, err := webhook.NewStandardWebhooks([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	if err != nil {
		panic(err)
	}
	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	sent := time.Unix(1614265330, 0)
	if err := v.Sign(h, body, sent); err != nil {
		panic(err)
	}
	fmt.Println(h.Get("webhook-signature"))
	fmt.Println(v.Verify(h, body, sent.Add(time.Minute)))
	fmt.Println(v.Verify(h, body, sent.Add(time.Hour)) != nil)
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// <nil>
	// true
}

// With a spool, a delivery is written to a file before the answer and moved into the
// store right after, in batches: no request waits for a database commit. Resume at
// start-up stores what a crashed process left in its spool; Close (at shutdown) flushes.
func ExampleWithSpool() {
	ctx := context.Background()
	verifier, err := webhook.NewHMAC("X-Shopify-Hmac-Sha256", webhook.Base64, []string{"app-secret"})
	if err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "spool")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store := webhook.NewMemory() // sqlstore's DB.Webhooks() to keep them
	receiver, err := webhook.NewReceiver("shopify", verifier, store,
		webhook.WithIDHeader("X-Shopify-Webhook-Id"),
		webhook.WithSpool(dir),
		webhook.WithNotify(func(ctx context.Context, d webhook.Delivery) error {
			fmt.Println("queue", d.ID) // enqueue its job here
			return nil
		}))
	if err != nil {
		panic(err)
	}
	if _, err := receiver.Resume(ctx); err != nil { // at start-up
		panic(err)
	}

	body := []byte(`{"id":1}`)
	req := httptest.NewRequest(http.MethodPost, "/webhooks/shopify", bytes.NewReader(body))
	req.Header.Set("X-Shopify-Webhook-Id", "d-1")
	if err := verifier.Sign(req.Header, body, time.Now()); err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	receiver.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body)

	if err := receiver.Close(ctx); err != nil { // at shutdown: flush, remove the file
		panic(err)
	}
	d, err := store.Get(ctx, "shopify", "d-1")
	fmt.Println(d.Status, err)
	// Output:
	// 200 {"status":"accepted","id":"d-1"}
	// queue d-1
	// pending <nil>
}
