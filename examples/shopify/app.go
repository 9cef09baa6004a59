package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/connkittest/fakeshop"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/webhook"
)

// options are the command line's settings.
type options struct {
	baseURL, token, dbPath, webhookSecret, listen string
	faults                                        float64
	json                                          bool

	// shop, when set, is the fake shop to use instead of building the embedded one
	// (tests give a small one, and the same one to two runs); it is started if needed and
	// not closed.
	shop *fakeshop.Shop
}

// summary is what a run did, printed as a table or as JSON.
type summary struct {
	DB        string                    `json:"db"`
	Products  modelCounts               `json:"products"`
	Customers modelCounts               `json:"customers"`
	Orders    modelCounts               `json:"orders"`
	Webhooks  webhookCounts             `json:"webhooks"`
	Requests  uint64                    `json:"requests"`
	Retries   uint64                    `json:"retries"`
	Limited   uint64                    `json:"429s"`
	Seconds   float64                   `json:"seconds"`
	Errors    []string                  `json:"errors,omitempty"`
	steps     map[string]*report.Counts // "product/import" → counts, for the table
}

// modelCounts are one model's counts, every direction together.
type modelCounts struct {
	Created    int `json:"created"`
	Updated    int `json:"updated"`
	Skipped    int `json:"skipped"`
	Duplicates int `json:"duplicates"`
	Failed     int `json:"failed"`
}

type webhookCounts struct {
	Received  int `json:"received"`
	Processed int `json:"processed"`
	Rejected  int `json:"rejected"`
}

var models = []string{"product", "customer", "order"}

// add records counts of one model and step.
func (s *summary) add(model, step string, c report.Counts) {
	if s.steps == nil {
		s.steps = map[string]*report.Counts{}
	}
	k := model + "/" + step
	if s.steps[k] == nil {
		s.steps[k] = &report.Counts{}
	}
	*s.steps[k] = s.steps[k].Add(c)
	m := s.model(model)
	m.Created += c.Created
	m.Updated += c.Updated
	m.Skipped += c.Skipped
	m.Duplicates += c.Duplicates
	m.Failed += c.Failed
}

func (s *summary) model(name string) *modelCounts {
	switch name {
	case "product":
		return &s.Products
	case "customer":
		return &s.Customers
	default:
		return &s.Orders
	}
}

func (o *options) run(ctx context.Context, stdout, stderr io.Writer) (err error) {
	start := time.Now()
	prog := newProgress(stderr)
	sum := &summary{}

	// The shop: the embedded fake unless -base-url names a real one. The token and the
	// webhook secret come from the flags, else (for a real shop) from the environment; the
	// embedded shop has its own.
	shop, baseURL := o.shop, o.baseURL
	token, secret := o.token, o.webhookSecret
	if baseURL == "" {
		if secret == "" {
			secret = fakeshopSecret
		}
		if shop == nil {
			shop = fakeshop.New(fakeshop.WithFaults(o.faults), fakeshop.WithWebhookSecret(secret))
			defer shop.Close()
		}
		if token == "" {
			token = shop.Token()
		}
		baseURL = shop.Start()
		prog.note("using an embedded fake shop at %s (-base-url to use a real one)", baseURL)
	} else {
		shop = nil
		if token == "" {
			token = os.Getenv("SHOPIFY_TOKEN")
		}
		if secret == "" {
			secret = os.Getenv("SHOPIFY_WEBHOOK_SECRET")
		}
	}
	switch {
	case token == "":
		return errors.New("no access token: give -token or set SHOPIFY_TOKEN to the Admin API access token of the shop's custom app")
	case secret == "":
		return errors.New("no webhook secret: give -webhook-secret or set SHOPIFY_WEBHOOK_SECRET to the secret the shop signs webhooks with " +
			"(the custom app's client secret, or the one shown under Settings → Notifications → Webhooks)")
	}

	// The connector's database: bindings, watermarks, statistics, the audit log, the
	// durable job queue and the app's records, in one SQLite file.
	sum.DB = o.dbPath
	if sum.DB == "" {
		sum.DB = filepath.Join(os.TempDir(), "connkit-shopify.db")
	}
	if o.json {
		fmt.Fprintf(stderr, "database: %s\n", sum.DB)
	} else {
		fmt.Fprintf(stdout, "database: %s\n", sum.DB)
	}
	db, err := sqlstore.Open(ctx, sum.DB)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer db.Close()

	env := map[string]string{"SHOPIFY_BASE_URL": baseURL, "SHOPIFY_TOKEN": token, "SHOPIFY_WEBHOOK_SECRET": secret}
	lookup := func(key string) (string, bool) {
		if v, ok := env[key]; ok {
			return v, true
		}
		return os.LookupEnv(key)
	}
	conn, err := newConnector(ctx, db, lookup, backend.WithProgress(prog.imported))
	if err != nil {
		return err
	}
	b := conn.shop

	// One cheap request first: a wrong token or URL ends here, with what to check.
	if err := b.TestConnection(ctx); err != nil {
		return explain(err, baseURL)
	}
	// From here on the summary is printed however the run ends (an interrupt, a failed
	// import): it says what was done.
	defer func() {
		sum.finish(b.Client().Stats(), start)
		if perr := sum.print(stdout, o.json); perr != nil && err == nil {
			err = perr
		}
	}()
	// Work the deferred jobs until Stop below, which lets running ones finish: an interrupt
	// must not cut an export short.
	if err := b.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if serr := b.Stop(stopCtx); serr != nil && err == nil {
			err = serr
		}
	}()

	// 1. Import everything, dependencies first (customers and products before orders),
	// incrementally from the stored watermark.
	step := prog.start("importing products, customers and orders", b.Client().Stats)
	rep, err := b.SyncAll(ctx)
	for _, r := range rep.Results {
		model := strings.TrimPrefix(r.Name, "import_")
		sum.add(model, "import", r.Counts)
		if r.Err != nil {
			sum.Errors = append(sum.Errors, fmt.Sprintf("%s: %v", r.Name, r.Err))
		}
	}
	step.done(fmt.Sprintf("%d records", rep.Total.Total()))
	switch {
	case errors.Is(err, adapter.ErrUnauthorized): // the token was revoked meanwhile
		return explain(err, baseURL)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	// Records that failed are counted and listed in the summary; a model whose listing
	// failed as a whole skipped the models that depend on it, and ends the run.
	for _, r := range rep.Failed() {
		if !isPartial(r.Err) {
			return fmt.Errorf("importing: %w", err)
		}
	}

	// 2. Export local changes: a few edited products now, two new ones later, through
	// the durable queue.
	if err := exportEdits(ctx, conn, sum, prog); err != nil {
		return err
	}

	// 3. Webhooks: served at /webhooks/shopify, verified, stored, and imported by queue
	// jobs. Against the embedded shop, the shop sends a few; with -listen, the program
	// keeps serving until interrupted.
	if shop == nil && o.listen == "" {
		return nil
	}
	return receiveWebhooks(ctx, b, shop, o.listen, sum, prog)
}

func receiveWebhooks(ctx context.Context, b *backend.Backend, shop *fakeshop.Shop, listen string, sum *summary, prog *progress) error {
	addr := listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ws, err := serveWebhooks(b, addr)
	if err != nil {
		return err
	}
	// Counts and the shutdown run even after an interrupt, which is how -listen ends.
	bg := context.WithoutCancel(ctx)
	defer func() {
		sctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		_ = ws.close(sctx)
	}()
	before, err := b.Stats(ctx)
	if err != nil {
		return err
	}
	done, err := countDeliveries(ctx, b.Deliveries(), ws.receiver.Endpoint())
	if err != nil {
		return err
	}
	if shop != nil {
		step := prog.start("delivering webhooks from the shop", b.Client().Stats)
		if err := deliverSamples(ctx, shop, ws.url); err != nil {
			return err
		}
		if err := waitDeliveries(ctx, b.Deliveries(), ws.receiver.Endpoint()); err != nil {
			return err
		}
		step.done(deliveries(ws.answered()))
	}
	if listen != "" {
		prog.note("serving webhooks at %s until interrupted (Ctrl-C)", ws.url)
		<-ctx.Done()
		wctx, cancel := context.WithTimeout(bg, 30*time.Second)
		defer cancel()
		_ = waitDeliveries(wctx, b.Deliveries(), ws.receiver.Endpoint()) // let accepted deliveries finish
	}
	after, err := b.Stats(bg)
	if err != nil {
		return err
	}
	for m, c := range webhookImports(before, after) {
		if c.Total() > 0 {
			sum.add(m, "webhook", c)
		}
	}
	now, err := countDeliveries(bg, b.Deliveries(), ws.receiver.Endpoint())
	if err != nil {
		return err
	}
	sum.Webhooks = webhookCounts{
		Received:  int(ws.answered()),
		Processed: now[webhook.StatusProcessed] - done[webhook.StatusProcessed],
		Rejected:  int(ws.rejected()),
	}
	return nil
}

// exportEdits changes a few local products and exports them at once, and creates two
// new local products and defers their export to the queue (Later). Both are idempotent:
// a second run finds the edits made and the new products created, and exports nothing.
func exportEdits(ctx context.Context, c *connector, sum *summary, prog *progress) error {
	b := c.shop
	step := prog.start("exporting local changes", b.Client().Stats)
	var edited []string
	for e, err := range c.products.All(ctx) {
		if err != nil {
			return err
		}
		if len(edited) == 3 {
			break
		}
		if e.Value.Status != "active" || len(e.Value.Variants) == 0 {
			continue
		}
		p := e.Value
		if !strings.Contains(p.Tags, "connkit-edited") {
			p.Tags = strings.TrimPrefix(p.Tags+", connkit-edited", ", ")
			p.Variants[0].Price = "29.00"
			if err := c.products.Update(ctx, e.ID, p); err != nil {
				return fmt.Errorf("editing local product %s: %w", e.ID, err)
			}
		}
		edited = append(edited, e.ID)
	}
	before, err := b.Stats(ctx)
	if err != nil {
		return err
	}
	if len(edited) > 0 {
		if _, err := b.Export(ctx, "product", edited...); err != nil && !isPartial(err) {
			return fmt.Errorf("exporting edited products: %w", err)
		}
	}

	var fresh []string
	for i, name := range []string{"Connkit Field Notebook", "Connkit Enamel Mug"} {
		id, _, err := c.products.CreateKeyed(ctx, fmt.Sprintf("example-new-product-%d", i+1), Product{
			Title: name, Description: "<p>Created in the app, exported by connkit.</p>", Vendor: "connkit",
			Type: "Stationery", Status: "draft", Tags: "connkit-new",
			Variants: []Variant{{Title: "Default Title", SKU: fmt.Sprintf("CK-NEW-%d", i+1), Price: "12.50"}},
		})
		if err != nil {
			return fmt.Errorf("creating a local product: %w", err)
		}
		fresh = append(fresh, id)
	}
	job, err := b.Later().Export(ctx, "product", fresh...)
	if err != nil {
		return fmt.Errorf("queueing the export of new products: %w", err)
	}
	if err := waitJob(ctx, b.Queue(), job.ID); err != nil {
		return err
	}
	after, err := b.Stats(ctx)
	if err != nil {
		return err
	}
	d := diff(after.Models["product"].Total, before.Models["product"].Total)
	sum.add("product", "export", d)
	step.done(fmt.Sprintf("%d products", d.Total()))
	return nil
}

// waitJob waits for a queued job to end; the queue has no completion callback, so it
// polls the job's state.
func waitJob(ctx context.Context, q queue.Queue, id int64) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		j, err := q.GetJob(ctx, id)
		if err != nil {
			return fmt.Errorf("reading job %d: %w", id, err)
		}
		switch j.State {
		case queue.StateCompleted:
			return nil
		case queue.StateDiscarded, queue.StateCancelled:
			msg := "no error recorded"
			if n := len(j.Errors); n > 0 {
				msg = j.Errors[n-1].Error
			}
			return fmt.Errorf("job %d (%s) ended %s: %s", id, j.Kind, j.State, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func diff(a, b report.Counts) report.Counts {
	return report.Counts{Created: a.Created - b.Created, Updated: a.Updated - b.Updated, Skipped: a.Skipped - b.Skipped,
		Duplicates: a.Duplicates - b.Duplicates, Failed: a.Failed - b.Failed, Enqueued: a.Enqueued - b.Enqueued}
}

func isPartial(err error) bool {
	var p *report.PartialError
	return errors.As(err, &p)
}

// explain turns a refused connection into what to check. The token is never quoted.
func explain(err error, baseURL string) error {
	var ae *adapter.Error
	status := ""
	if errors.As(err, &ae) && ae.Status != 0 {
		status = fmt.Sprintf(" (HTTP %d)", ae.Status)
	}
	switch {
	case errors.Is(err, adapter.ErrUnauthorized):
		return fmt.Errorf("the shop at %s refused the access token%s: check -token (or SHOPIFY_TOKEN) is the Admin API access token "+
			"of this shop's custom app (it starts with shpat_), that the app is installed, and that it has the read_products, "+
			"write_products, read_customers and read_orders scopes", baseURL, status)
	case errors.Is(err, adapter.ErrNotFound):
		return fmt.Errorf("no Shopify Admin API at %s%s: check -base-url, e.g. https://{shop}.myshopify.com/admin/api/2024-04", baseURL, status)
	}
	return fmt.Errorf("cannot reach the shop at %s: %w", baseURL, err)
}

// fakeshopSecret signs the embedded shop's webhooks unless -webhook-secret says otherwise.
const fakeshopSecret = "fakeshop-webhook-secret"
