// Command crm keeps an app's contacts and companies in sync with a HubSpot-style CRM, both
// ways: it imports companies, then contacts with their company associations (cursor
// pagination, bearer token), and sends the app's own edits back — new contacts with POST,
// changed ones with PATCH — without importing its own writes back as changes. Two apisync
// config files add, with no Go code, an inbound endpoint for partner records and a push of
// partners to the CRM as companies.
//
// With no flags it runs against an embedded fake CRM (package connkittest/fakecrm), so
// `go run ./examples/crm` works with no account:
//
//	go run ./examples/crm                          # import, make two demo edits, export them
//	go run ./examples/crm -json                    # the summary as JSON on the last line
//	go run ./examples/crm -faults 0.2              # a CRM failing 20% of the requests
//	go run ./examples/crm -serve 127.0.0.1:8080 -partner-key k   # then, from another shell:
//	curl -H 'X-API-Key: k' -d '{"name":"Acme","domain":"acme.example"}' localhost:8080/api/partners
//	CRM_TOKEN=pat-... go run ./examples/crm -base-url https://api.hubapi.com -db crm.db
//
// Everything the connector keeps — the app's records, bindings, statistics, the audit log
// and the durable export jobs — is in one SQLite file (-db), and so is what the partner
// configs keep. A second run against the same file with
// unchanged data creates nothing. The connection is configured in crm.yaml and
// apisync/*.yaml, with the secrets taken from the environment (${CRM_TOKEN},
// ${PARTNER_API_KEY}) or from -token and -partner-key.
//
// The connector is connector.go (one backend, one declaration per model); app.go is how
// the app changes its records and queues their export; partners.go opens the apisync
// configs; this file is the command line.
package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/connkittest/fakecrm"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
)

//go:embed crm.yaml
var crmYAML []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0) // -h: the usage is printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "crm:", err)
		os.Exit(1)
	}
}

// Size of the embedded CRM's data set.
const (
	fakeContacts  = 120
	fakeCompanies = 12
)

// drainWait bounds how long a run waits for queued exports, retries included; it waits
// for a failed export's retry only when it is due within retryWindow.
const (
	drainWait   = 30 * time.Second
	retryWindow = 3 * time.Second
)

// counts is one model's outcome in one direction. Every field is always written, so the
// JSON summary has one shape.
type counts struct {
	Created    int `json:"created"`
	Updated    int `json:"updated"`
	Skipped    int `json:"skipped"`
	Duplicates int `json:"duplicates"`
	Failed     int `json:"failed"`
}

func (c counts) add(o counts) counts {
	return counts{Created: c.Created + o.Created, Updated: c.Updated + o.Updated, Skipped: c.Skipped + o.Skipped,
		Duplicates: c.Duplicates + o.Duplicates, Failed: c.Failed + o.Failed}
}

func countsOf(c report.Counts) counts {
	return counts{Created: c.Created, Updated: c.Updated, Skipped: c.Skipped, Duplicates: c.Duplicates, Failed: c.Failed}
}

// summary is what a run did, per model and in total, shaped like the other examples':
// each model's counts with every direction together, then split into import and export.
type summary struct {
	DB        string       `json:"db"`
	Companies modelSummary `json:"companies"`
	Contacts  modelSummary `json:"contacts"`
	Partners  modelSummary `json:"partners"`
	// ExportsWaiting counts export jobs still queued when the run ended (a CRM that kept
	// failing); the next run sends them.
	ExportsWaiting int     `json:"exports_waiting"`
	Requests       uint64  `json:"requests"`
	Retries        uint64  `json:"retries"`
	Limited        uint64  `json:"429s"`
	Seconds        float64 `json:"seconds"`
	// Errors are the last errors of records whose sync failed (a few per model).
	Errors []string `json:"errors,omitempty"`
}

// modelSummary is one model's outcome. Import counts are per record listed. Export
// counts are per attempt: a record whose export failed and then went through on a retry
// in the same run is counted as failed and as created or updated.
type modelSummary struct {
	counts
	Import counts `json:"import"`
	Export counts `json:"export"`
}

// model returns the summary of a model by its name in the connector.
func (s *summary) model(name string) *modelSummary {
	switch name {
	case "company":
		return &s.Companies
	case "contact":
		return &s.Contacts
	case "partner":
		return &s.Partners
	}
	panic("no summary for model " + name)
}

// run is the whole program, so that tests run it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("crm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	baseURL := fs.String("base-url", "", "the CRM API's root URL (default: an embedded fake CRM)")
	token := fs.String("token", "", "the CRM access token (default: $CRM_TOKEN; the embedded CRM needs none)")
	dbPath := fs.String("db", filepath.Join(os.TempDir(), "connkit-crm-example.db"),
		"the SQLite file the connector keeps everything in")
	faults := fs.Float64("faults", 0, "fraction (0-1) of requests the embedded CRM fails with 429 or 5xx")
	jsonOut := fs.Bool("json", false, "print the final summary as one JSON object on the last line of stdout")
	demo := fs.Bool("demo-edits", false, "after importing, edit the first contact and add one, and export both (default on with the embedded CRM)")
	serve := fs.String("serve", "", "after the sync, serve the partner endpoint at this address (host:port) and keep sending exports until interrupted")
	partnerKey := fs.String("partner-key", "", "the key callers of the partner endpoint send in X-API-Key (default: $PARTNER_API_KEY)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; see -h)", fs.Args())
	}
	if *faults < 0 || *faults > 1 {
		return fmt.Errorf("-faults %v: want a fraction between 0 and 1", *faults)
	}
	demoSet := false
	fs.Visit(func(f *flag.Flag) { demoSet = demoSet || f.Name == "demo-edits" })

	if *baseURL == "" {
		crm := fakecrm.New(fakecrm.WithSeedData(fakeContacts, fakeCompanies, 1), fakecrm.WithFaults(*faults, 1))
		defer crm.Close()
		*baseURL = crm.URL
		if *token == "" {
			*token = crm.Token()
		}
		if !demoSet {
			*demo = true
		}
		fmt.Fprintf(stderr, "using an embedded fake CRM at %s (-base-url to use another)\n", crm.URL)
	} else if *faults > 0 {
		return errors.New("-faults applies to the embedded CRM only; drop it or -base-url")
	}
	if *token == "" && os.Getenv("CRM_TOKEN") == "" {
		return errors.New("no CRM access token: pass -token or set CRM_TOKEN")
	}
	if *partnerKey == "" {
		*partnerKey = os.Getenv("PARTNER_API_KEY")
	}
	if *partnerKey == "" {
		if *serve != "" {
			return errors.New("-serve needs the partner endpoint's key: pass -partner-key or set PARTNER_API_KEY")
		}
		*partnerKey = randomKey() // the endpoint is not served: no caller needs it
	}
	// The config files read the URL and the secrets from the environment; the flags, when
	// given, stand in for it.
	lookup := func(name string) (string, bool) {
		switch {
		case name == "CRM_BASE_URL" && *baseURL != "":
			return *baseURL, true
		case name == "CRM_TOKEN" && *token != "":
			return *token, true
		case name == "PARTNER_API_KEY":
			return *partnerKey, true
		}
		return os.LookupEnv(name)
	}
	cfg, err := backend.ParseConfig(crmYAML, lookup)
	if err != nil {
		return err
	}

	db, err := sqlstore.Open(ctx, *dbPath)
	if err != nil {
		return fmt.Errorf("opening the database %s: %w", *dbPath, err)
	}
	defer db.Close()
	fmt.Fprintf(stderr, "database: %s\n", *dbPath)
	a, err := newApp(ctx, cfg, db, backend.WithProgress(importProgress(stderr)))
	if err != nil {
		return err
	}
	partners, err := openPartners(ctx, db, lookup)
	if err != nil {
		return err
	}
	a.partners = partners

	// The statistics before the queues start: exports queued by an earlier run may be sent
	// as soon as they do, and belong to this run's summary.
	before, err := a.statsBefore(ctx)
	if err != nil {
		return err
	}
	if err := a.start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		a.stop(sctx)
	}()
	sum, err := a.sync(ctx, before, *demo, stderr)
	sum.DB = *dbPath
	if err != nil {
		return err
	}
	if err := printSummary(stdout, sum, *jsonOut); err != nil || *serve == "" {
		return err
	}
	return a.serve(ctx, *serve, stderr)
}

// importProgress returns the backend's progress hook: a line per model while its import
// runs, at most one a second, so a large CRM shows it is moving without flooding a log.
func importProgress(w io.Writer) func(model string, s importer.Summary) {
	var mu sync.Mutex
	last := map[string]time.Time{}
	return func(model string, s importer.Summary) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last[model]) >= time.Second {
			last[model] = now
			fmt.Fprintf(w, "import %-8s %d records so far (%d pages)\n", model, s.Total(), s.Pages)
		}
	}
}

// randomKey is a key nobody knows.
func randomKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// start starts working queued jobs: the connector's exports and the partner configs'
// pushes.
func (a *app) start(ctx context.Context) error {
	// An interrupt must not cut a push short (the CRM would have the record without the
	// connector knowing its ID): the queues run until stop, which lets running jobs finish.
	ctx = context.WithoutCancel(ctx)
	if err := a.crm.Start(ctx); err != nil {
		return err
	}
	return a.partners.Start(ctx)
}

// stop lets running jobs finish (until ctx ends) and stops both queues.
func (a *app) stop(ctx context.Context) {
	_ = a.partners.Stop(ctx)
	_ = a.crm.Stop(ctx)
}

// serve serves the partner endpoint at addr until ctx ends; partners posted to it are
// pushed to the CRM by their on_create trigger, and the app's exports keep being sent.
func (a *app) serve(ctx context.Context, addr string, progress io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("-serve %s: %w", addr, err)
	}
	srv := &http.Server{Handler: a.partners.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(progress, "partner endpoint: http://%s/api/partners (X-API-Key; Ctrl-C stops)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// baseline is the statistics a run's summary counts from.
type baseline struct{ crm, pushed backend.Stats }

// statsBefore reads the statistics of the connector and of the partner pushes.
func (a *app) statsBefore(ctx context.Context) (baseline, error) {
	pushes, err := a.partners.Backend(partnersToCRM)
	if err != nil {
		return baseline{}, err
	}
	crm, err := a.crm.Stats(ctx)
	if err != nil {
		return baseline{}, err
	}
	pushed, err := pushes.Stats(ctx)
	return baseline{crm, pushed}, err
}

// sync runs one round: send what is queued (the app's exports, the partners' pushes),
// push the partners not sent yet, import both models, make the demo edits if asked, and
// send their exports. The summary counts what happened since base was read, before the
// queues started.
func (a *app) sync(ctx context.Context, base baseline, demo bool, progress io.Writer) (sum summary, err error) {
	started := time.Now()
	defer func() { sum.Seconds = time.Since(started).Seconds() }()
	pushes, err := a.partners.Backend(partnersToCRM)
	if err != nil {
		return sum, err
	}
	before, pushedBefore := base.crm, base.pushed

	// Local edits first, so an import cannot overwrite a change not sent yet; partners
	// before the import, so the companies they become come back in this run.
	if _, err := drain(ctx, a.crm, progress); err != nil {
		return sum, err
	}
	if _, err := drain(ctx, pushes, progress); err != nil {
		return sum, err
	}
	if _, err := a.partners.Push(ctx, partnersToCRM); err != nil && !isPartial(err) {
		return sum, a.explain(err)
	}

	rep, err := a.crm.SyncAll(ctx)
	for _, r := range rep.Results {
		model := strings.TrimPrefix(r.Name, "import_")
		sum.model(model).Import = countsOf(r.Counts)
		line := fmt.Sprintf("import %-8s created %d, updated %d, skipped %d, duplicates %d, failed %d",
			model, r.Counts.Created, r.Counts.Updated, r.Counts.Skipped, r.Counts.Duplicates, r.Counts.Failed)
		if r.Skipped != "" {
			line += " (not run: " + r.Skipped + ")"
		}
		fmt.Fprintln(progress, line)
	}
	if err != nil && !isPartial(err) {
		// Records that failed are counted, kept as failed bindings and retried by the next
		// run; anything else stops the run.
		return sum, a.explain(err)
	}

	if demo {
		n, err := a.demoEdits(ctx)
		if err != nil {
			return sum, err
		}
		fmt.Fprintf(progress, "app: %d local edits queued for export\n", n)
	}
	waiting, err := drain(ctx, a.crm, progress)
	if err != nil {
		return sum, err
	}
	sum.ExportsWaiting = waiting

	after, err := a.crm.Stats(ctx)
	if err != nil {
		return sum, err
	}
	for _, model := range a.crm.Models() {
		sum.model(model).Export = countsOf(sub(after.Models[model].Total, before.Models[model].Total))
	}
	pushedAfter, err := pushes.Stats(ctx)
	if err != nil {
		return sum, err
	}
	sum.Partners.Export = countsOf(sub(pushedAfter.Models["partner"].Total, pushedBefore.Models["partner"].Total))
	for _, model := range []string{"company", "contact", "partner"} {
		m := sum.model(model)
		m.counts = m.Import.add(m.Export)
		if e := m.Export; e != (counts{}) {
			fmt.Fprintf(progress, "export %-8s created %d, updated %d, skipped %d, failed %d\n",
				model, e.Created, e.Updated, e.Skipped, e.Failed)
		}
	}
	if sum.Errors, err = a.failures(ctx, progress); err != nil {
		return sum, err
	}
	for _, c := range []*adapter.Client{a.crm.Client(), pushes.Client()} {
		st := c.Stats()
		sum.Requests += st.Requests
		sum.Retries += st.Retries
		sum.Limited += st.RateLimited
	}
	return sum, nil
}

func isPartial(err error) bool {
	var partial *report.PartialError
	return errors.As(err, &partial)
}

// explain turns a refused token into what to check.
func (a *app) explain(err error) error {
	if errors.Is(err, adapter.ErrUnauthorized) {
		return fmt.Errorf("the CRM refused the access token: check -token (or CRM_TOKEN) and that it "+
			"belongs to the app at -base-url %s with the crm.objects.contacts and companies read and write scopes: %w",
			a.crm.Config().BaseURL, err)
	}
	return err
}

func sub(a, b report.Counts) report.Counts {
	return report.Counts{Created: a.Created - b.Created, Updated: a.Updated - b.Updated, Skipped: a.Skipped - b.Skipped,
		Duplicates: a.Duplicates - b.Duplicates, Failed: a.Failed - b.Failed, Enqueued: a.Enqueued - b.Enqueued}
}

// drain waits until the queued jobs have run: those available or running, and retries
// due within retryWindow (a CRM failing for a moment), for at most drainWait. It returns
// how many jobs are still queued then; the next run sends them.
func drain(ctx context.Context, b *backend.Backend, progress io.Writer) (int, error) {
	deadline := time.Now().Add(drainWait)
	announced := false
	for {
		due, queued := 0, 0
		soon := time.Now().Add(retryWindow)
		for j, err := range b.Queue().ListJobs(ctx, queue.ListFilter{States: []queue.State{
			queue.StateAvailable, queue.StateRunning, queue.StateRetryable, queue.StateScheduled}}) {
			if err != nil {
				return 0, err
			}
			queued++
			if j.State == queue.StateAvailable || j.State == queue.StateRunning || j.ScheduledAt.Before(soon) {
				due++
			}
		}
		if due == 0 || time.Now().After(deadline) {
			return queued, nil
		}
		if !announced {
			fmt.Fprintf(progress, "%s: sending %d queued exports\n", b.Name(), due)
			announced = true
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// failures lists on progress, and returns, the records whose last sync failed (at most a
// few per model), with the API's reason; the next run retries them.
func (a *app) failures(ctx context.Context, progress io.Writer) ([]string, error) {
	const show = 5
	var out []string
	for _, model := range a.crm.Models() {
		for b, err := range a.crm.Bindings().List(ctx, binding.Filter{Backend: a.crm.Name(), Model: model,
			Statuses: []binding.Status{binding.StatusFailed}, Limit: show}) {
			if err != nil {
				return out, err
			}
			msg := fmt.Sprintf("%s local %q remote %q (%d attempts): %s", model, b.LocalID, b.ExternalID, b.RetryCount, b.LastError)
			fmt.Fprintln(progress, "failed:", msg)
			out = append(out, msg)
		}
	}
	return out, nil
}

func printSummary(w io.Writer, s summary, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(s)
	}
	for _, model := range []string{"company", "contact", "partner"} {
		m := s.model(model)
		fmt.Fprintf(w, "%-8s import: %d created, %d updated, %d skipped, %d duplicates, %d failed; "+
			"export: %d created, %d updated, %d skipped, %d failed\n", model,
			m.Import.Created, m.Import.Updated, m.Import.Skipped, m.Import.Duplicates, m.Import.Failed,
			m.Export.Created, m.Export.Updated, m.Export.Skipped, m.Export.Failed)
	}
	if s.ExportsWaiting > 0 {
		fmt.Fprintf(w, "%d exports still queued; the next run sends them\n", s.ExportsWaiting)
	}
	_, err := fmt.Fprintf(w, "%d requests, %d retries, %d rate limited, %.1f s; everything is kept in %s\n",
		s.Requests, s.Retries, s.Limited, s.Seconds, s.DB)
	return err
}
