package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/connkittest/fakeshop"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/webhook"
)

// webhookEndpoint is the name of the config's webhook endpoint, and its path segment.
const webhookEndpoint = "shopify"

// webhookServer serves the backend's webhook endpoints at /webhooks/{name}.
type webhookServer struct {
	srv      *http.Server
	url      string            // …/webhooks/shopify
	receiver *webhook.Receiver // the endpoint's receiver: its counters and its deliveries
	done     chan error
}

func serveWebhooks(b *backend.Backend, addr string) (*webhookServer, error) {
	receiver, err := b.Webhook(webhookEndpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for webhooks on %s: %w", addr, err)
	}
	ws := &webhookServer{receiver: receiver, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", b.Webhooks()))
	ws.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ws.url = "http://" + ln.Addr().String() + "/webhooks/" + webhookEndpoint
	go func() { ws.done <- ws.srv.Serve(ln) }()
	return ws, nil
}

func (ws *webhookServer) close(ctx context.Context) error {
	err := ws.srv.Shutdown(ctx)
	if serr := <-ws.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// deliverSamples plays the shop's part against the embedded fake: a merchant edits two
// products, a customer and an order, and the shop sends the four webhooks; then it
// redelivers one (a duplicate, imported once) and sends one whose body was altered on
// the way (rejected: its signature no longer matches).
func deliverSamples(ctx context.Context, shop *fakeshop.Shop, to string) error {
	type edit struct {
		resource, topic string
		index           int
		fields          map[string]any
	}
	edits := []edit{
		{fakeshop.Products, "products/update", 0, map[string]any{"tags": "webhook-demo"}},
		{fakeshop.Products, "products/update", 1, map[string]any{"status": "draft"}},
		{fakeshop.Customers, "customers/update", 0, map[string]any{"note": "called about an order"}},
		{fakeshop.Orders, "orders/updated", 0, map[string]any{"tags": "gift"}},
	}
	var first *fakeshop.Webhook
	for _, e := range edits {
		ids := shop.IDs(e.resource)
		if len(ids) <= e.index {
			continue
		}
		id := ids[e.index]
		if _, err := shop.Update(e.resource, id, e.fields); err != nil {
			return err
		}
		w, err := shop.Webhook(e.topic, id)
		if err != nil {
			return err
		}
		if first == nil {
			first = w
		}
		if _, err := send(ctx, w, to); err != nil {
			return err
		}
	}
	if first == nil {
		return nil
	}
	if _, err := send(ctx, first, to); err != nil { // a redelivery: same X-Shopify-Webhook-Id
		return err
	}
	forged := *first
	forged.ID += "-forged"
	forged.Body = bytes.Replace(first.Body, []byte(`"tags":"`), []byte(`"tags":"free, `), 1) // altered on the way
	status, err := send(ctx, &forged, to)
	if err != nil {
		return err
	}
	if status != http.StatusUnauthorized {
		return fmt.Errorf("a delivery with a wrong signature was answered %d, not 401", status)
	}
	return nil
}

func send(ctx context.Context, w *fakeshop.Webhook, to string) (int, error) {
	req, err := w.NewRequest(ctx, to)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("delivering webhook %s: %w", w.Topic, err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitDeliveries waits until no delivery of the endpoint is left pending: the queue jobs
// have processed them.
func waitDeliveries(ctx context.Context, store webhook.Store, endpoint string) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		pending := 0
		for _, err := range store.List(ctx, webhook.Filter{Endpoint: endpoint, Status: webhook.StatusPending, Limit: 1}) {
			if err != nil {
				return err
			}
			pending++
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// countDeliveries counts the endpoint's deliveries by status.
func countDeliveries(ctx context.Context, store webhook.Store, endpoint string) (map[webhook.Status]int, error) {
	n := map[webhook.Status]int{}
	for d, err := range store.List(ctx, webhook.Filter{Endpoint: endpoint}) {
		if err != nil {
			return nil, err
		}
		n[d.Status]++
	}
	return n, nil
}

// webhookImports are the single-record imports the webhooks ran, per model, from the
// backend's statistics.
func webhookImports(before, after backend.Stats) map[string]report.Counts {
	out := map[string]report.Counts{}
	for _, m := range models {
		name := "fetch_" + m // the statistics of Backend.Import, which webhooks run
		out[m] = diff(after.Operations[name].Total, before.Operations[name].Total)
	}
	return out
}

// answered is how many requests the receiver answered.
func (ws *webhookServer) answered() int64 { return ws.receiver.Stats().Requests }

// rejected is how many requests the receiver refused: bad signature or bad request.
func (ws *webhookServer) rejected() int64 {
	st := ws.receiver.Stats()
	return st.Unauthorized + st.Invalid
}

func deliveries(n int64) string {
	if n == 1 {
		return "1 delivery"
	}
	return strconv.FormatInt(n, 10) + " deliveries"
}
