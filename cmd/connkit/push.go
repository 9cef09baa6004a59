package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/sjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

const pushUsage = `Usage:
  connkit push --config FILE [--name NAME] [--db FILE] [--dry-run] [--json]

Push the records of one outbound (direction: out) apisync config: select the model's
records by the config's filter, map each one, send it, keep the external ID from the
response in the record's binding, and log every exchange ('connkit logs'). --config may
name a directory; --name then picks the config when it holds several outbound ones.

Progress goes to stderr: a line every --progress records, or one line kept up to date on
a terminal. The summary goes to stdout, and the failed records to stderr; the exit status
is 1 when any record failed ('connkit bindings list --status failed' lists them, and
'connkit bindings retry --config FILE' pushes them again).

--dry-run sends nothing and writes nothing: the push runs on a temporary copy of the
store (SQLite only) against a stand-in for the API that answers every request with
success, and the requests are printed (secrets redacted) with what would be created,
updated or skipped.

--json writes one JSON object: {"config", "dry_run", "created", "updated", "skipped",
"failed", "errors": [{"local_id", "external_id", "step", "error"}], "error"} ("error":
why the push stopped early, if it did); with --dry-run also "requests": [{"method",
"url", "header", "body", "record"}].
`

func runPush(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("push", pushUsage)
	dsn := f.dbFlag()
	config := f.String("config", "", "the outbound apisync config file, or a directory of configs (required)")
	name := f.String("name", "", "the outbound config to push, when --config holds several")
	dry := f.Bool("dry-run", false, "show the requests a push would send, sending nothing and writing nothing")
	every := f.Int("progress", 100, "print progress every this many records when stderr is not a terminal (0: none)")
	asJSON := f.jsonFlag("write the summary as one JSON object")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	if *config == "" {
		return usagef(f.cmd, "--config is required")
	}
	if *every < 0 {
		return usagef(f.cmd, "--progress must not be negative, got %d", *every)
	}
	cfgs, err := apisync.Load(*config)
	if err != nil {
		return reportProblems(e.stderr, configProblems(err))
	}
	cfg, err := pickOut(f, cfgs, *name, *config)
	if err != nil {
		return err
	}
	if *dry {
		return dryRun(ctx, e, *dsn, cfgs, cfg, *asJSON)
	}

	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)
	prog := newProgress(e.stderr, cfg.Name, *every)
	s, err := apisync.Open(ctx, db, cfgs, apisync.WithRecorder(synclog.Multi(db.Log(), prog)))
	if err != nil {
		return err
	}
	counts, err := s.Push(ctx, cfg.Name)
	prog.finish()
	return reportPush(e, pushResult{Config: cfg.Name}, counts, err, *asJSON)
}

// pickOut returns the outbound config to push: the one named, or the only one.
func pickOut(f *flags, cfgs []apisync.Config, name, path string) (apisync.Config, error) {
	var outs []apisync.Config
	var names []string
	for _, c := range cfgs {
		if c.Direction != apisync.Out {
			continue
		}
		if c.Name == name {
			return c, nil
		}
		outs, names = append(outs, c), append(names, c.Name)
	}
	switch {
	case name != "":
		return apisync.Config{}, fmt.Errorf("%s has no outbound config named %q (outbound configs: %s)", path, name, orNone(names))
	case len(outs) == 0:
		return apisync.Config{}, fmt.Errorf("%s has no outbound config (direction: out) to push", path)
	case len(outs) > 1:
		return apisync.Config{}, usagef(f.cmd, "%s holds %d outbound configs (%s): pick one with --name", path, len(outs), strings.Join(names, ", "))
	}
	return outs[0], nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// pushResult is the summary `push --json` writes.
type pushResult struct {
	Config  string `json:"config"`
	DryRun  bool   `json:"dry_run"`
	Created int    `json:"created"`
	Updated int    `json:"updated"`
	Skipped int    `json:"skipped"`
	Failed  int    `json:"failed"`
	// Errors are the failed records (the first ones, when very many failed).
	Errors []recordFailure `json:"errors"`
	// Error says why the push stopped before the end ("" when it did not).
	Error    string        `json:"error"`
	Requests []dryRequest  `json:"requests,omitempty"`
	counts   report.Counts // for the text summary
}

// recordFailure is one failed record.
type recordFailure struct {
	LocalID    string `json:"local_id"`
	ExternalID string `json:"external_id"`
	Step       string `json:"step"`
	Error      string `json:"error"`
}

// reportPush writes the summary of a push (or retry) and turns it into the command's
// result: failed records or a push that stopped early make it fail (exit 1).
func reportPush(e *env, res pushResult, counts report.Counts, err error, asJSON bool) error {
	res.counts = counts
	res.Created, res.Updated, res.Skipped, res.Failed = counts.Created, counts.Updated, counts.Skipped, counts.Failed
	res.Errors = []recordFailure{}
	var pe *report.PartialError
	if errors.As(err, &pe) {
		for _, re := range pe.Errors {
			var rerr *report.RecordError
			if errors.As(re, &rerr) {
				res.Errors = append(res.Errors, recordFailure{LocalID: rerr.LocalID, ExternalID: rerr.ExternalID, Step: rerr.Step, Error: rerr.Err.Error()})
			} else {
				res.Errors = append(res.Errors, recordFailure{Error: re.Error()})
			}
		}
		// Records are pushed concurrently: list their errors in record order.
		slices.SortStableFunc(res.Errors, func(a, b recordFailure) int {
			if c := cmpID(a.LocalID, b.LocalID); c != 0 {
				return c
			}
			return cmpID(a.ExternalID, b.ExternalID)
		})
		if res.Failed < pe.Failed {
			res.Failed = pe.Failed
		}
		err = nil
	}
	if err != nil {
		res.Error = err.Error()
		if errors.Is(err, context.Canceled) {
			res.Error = "interrupted: " + res.Error
		}
	}
	if asJSON {
		if werr := writeJSON(e.stdout, res); werr != nil {
			return werr
		}
		switch {
		case res.Error != "":
			fmt.Fprintf(e.stderr, "connkit: the push stopped: %s\n", clean(res.Error))
		case res.Failed > 0:
			fmt.Fprintf(e.stderr, "connkit: %d record(s) failed\n", res.Failed)
		}
	} else {
		verb := "pushed"
		if res.DryRun {
			verb = "dry run of"
		}
		fmt.Fprintf(e.stdout, "%s %s: %d created, %d updated, %d skipped, %d failed\n", verb, clean(res.Config),
			res.Created, res.Updated, res.Skipped, res.Failed)
		for _, f := range res.Errors {
			who := "record"
			switch {
			case f.LocalID != "":
				who += " " + f.LocalID
			case f.ExternalID != "":
				who += " (external " + f.ExternalID + ")"
			}
			if f.Step != "" {
				who += " (" + f.Step + ")"
			}
			fmt.Fprintf(e.stderr, "connkit: %s: %s\n", clean(who), clean(f.Error))
		}
		if more := res.Failed - len(res.Errors); more > 0 && len(res.Errors) > 0 {
			fmt.Fprintf(e.stderr, "connkit: … and %d more failed record(s): connkit bindings list --backend %s --status failed\n", more, res.Config)
		}
		if res.Error != "" {
			fmt.Fprintf(e.stderr, "connkit: the push stopped: %s\n", clean(res.Error))
		}
	}
	if res.Error != "" || res.Failed > 0 {
		return errReported
	}
	return nil
}

// cmpID orders IDs numerically when both are numbers, else as strings.
func cmpID(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a, b)
}

// progress counts the records a push sends, from the audit entries of its requests, and
// reports them on stderr: a line every `every` records, or one line redrawn at most ten
// times a second on a terminal. It is a synclog.Recorder (safe for concurrent use).
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	config  string
	every   int
	sent    int // records in requests sent
	failed  int // records in requests that failed
	next    int // sent count of the next plain line
	drawn   time.Time
	started bool
}

func newProgress(w io.Writer, config string, every int) *progress {
	return &progress{w: w, tty: isTerminal(w), config: config, every: every, next: every}
}

// Record implements synclog.Recorder.
func (p *progress) Record(_ context.Context, e synclog.Entry) error {
	if e.Direction != synclog.Outbound || p.every == 0 && !p.tty {
		return nil
	}
	n := 1
	if e.Record != "" {
		n = strings.Count(e.Record, ",") + 1 // a batch names its records joined by commas
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent += n
	if e.Failed() {
		p.failed += n
	}
	switch {
	case p.tty:
		if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond {
			p.drawn = now
			p.started = true
			fmt.Fprintf(p.w, "\r\x1b[Kconnkit: push %s: %d record(s) sent, %d failed", clean(p.config), p.sent, p.failed)
		}
	case p.sent >= p.next:
		for p.next <= p.sent {
			p.next += p.every
		}
		fmt.Fprintf(p.w, "connkit: push %s: %d record(s) sent, %d failed\n", clean(p.config), p.sent, p.failed)
	}
	return nil
}

// finish ends the terminal's progress line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.started {
		fmt.Fprintf(p.w, "\r\x1b[Kconnkit: push %s: %d record(s) sent, %d failed\n", clean(p.config), p.sent, p.failed)
	}
}

// dryRequest is one request a dry run would have sent.
type dryRequest struct {
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
	Record string      `json:"record"`
}

// dryRun pushes on a copy of the store against a stand-in API and prints the requests.
func dryRun(ctx context.Context, e *env, dsn string, cfgs []apisync.Config, cfg apisync.Config, asJSON bool) error {
	dir, err := os.MkdirTemp("", "connkit-dry-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	copyPath := filepath.Join(dir, "copy.db")
	if err := copyStore(ctx, dsn, copyPath); err != nil {
		return fmt.Errorf("--dry-run: %w", err)
	}
	cdb, err := sqlstore.Open(ctx, copyPath)
	if err != nil {
		return fmt.Errorf("--dry-run: open the copy of the store: %w", err)
	}
	defer cdb.Close()

	rec := &dryRecorder{}
	s, err := apisync.Open(ctx, cdb, cfgs, apisync.WithRecorder(rec),
		apisync.WithClientOptions(adapter.WithBaseTransport(&standIn{idPath: cfg.IDPath})))
	if err != nil {
		return err
	}
	counts, perr := s.Push(ctx, cfg.Name)
	reqs := rec.requests()
	if !asJSON {
		for _, r := range reqs {
			fmt.Fprintf(e.stdout, "%s %s", clean(r.Method), clean(r.URL))
			if r.Record != "" {
				fmt.Fprintf(e.stdout, "  (record %s)", clean(r.Record))
			}
			fmt.Fprintln(e.stdout)
			for _, k := range slices.Sorted(maps.Keys(r.Header)) {
				for _, v := range r.Header[k] {
					fmt.Fprintf(e.stdout, "  %s: %s\n", clean(k), clean(v))
				}
			}
			if r.Body != "" {
				fmt.Fprintf(e.stdout, "  %s\n", clean(r.Body))
			}
		}
	}
	return reportPush(e, pushResult{Config: cfg.Name, DryRun: true, Requests: reqs}, counts, perr, asJSON)
}

// copyStore copies the SQLite store named by dsn to path (VACUUM INTO: a consistent
// snapshot), touching nothing in it: it is opened without migrating, and a store file that
// does not exist yet is not created (the copy then starts empty).
func copyStore(ctx context.Context, dsn, path string) (err error) {
	if file, ok := plainSQLiteFile(dsn); ok {
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	db, err := sqlstore.Open(ctx, dsn, sqlstore.WithoutMigrate())
	if err != nil {
		return fmt.Errorf("open the store %s: %w", redactDSN(dsn), err)
	}
	defer closeStore(db, &err)
	if db.Dialect() != sqlstore.SQLite || dsn == ":memory:" {
		return fmt.Errorf("it works on a SQLite file store (it pushes on a copy of it); %s is %s", redactDSN(dsn), db.Dialect())
	}
	if _, err := db.SQL().ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("copy the store: %w", err)
	}
	return nil
}

// plainSQLiteFile returns the file of a DSN that names one by its path ("x.db",
// "sqlite:x.db").
func plainSQLiteFile(dsn string) (string, bool) {
	p := strings.TrimPrefix(dsn, "sqlite:")
	if p == "" || p == ":memory:" || strings.HasPrefix(p, "file:") || strings.Contains(p, "://") || strings.Contains(p, "?") {
		return "", false
	}
	return p, true
}

// dryRecorder keeps the outbound requests of a dry run (already redacted by the client).
type dryRecorder struct {
	mu   sync.Mutex
	reqs []dryRequest
}

func (r *dryRecorder) Record(_ context.Context, e synclog.Entry) error {
	if e.Direction != synclog.Outbound {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, dryRequest{Method: e.Method, URL: e.URL, Header: e.RequestHeader, Body: e.RequestBody, Record: e.Record})
	return nil
}

func (r *dryRecorder) requests() []dryRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// standIn answers every request of a dry run with success, without a network: a GET
// gets an empty list, a record gets an object with a made-up external ID at the config's
// id_path, a batch an array of them.
type standIn struct {
	idPath string
	mu     sync.Mutex
	n      int
}

func (s *standIn) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	out := "[]"
	if req.Method != http.MethodGet {
		var batch []json.RawMessage
		if json.Unmarshal(body, &batch) == nil {
			items := make([]string, len(batch))
			for i := range batch {
				items[i] = s.object()
			}
			out = "[" + strings.Join(items, ",") + "]"
		} else {
			out = s.object()
		}
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(out)),
		ContentLength: int64(len(out)),
		Request:       req,
	}, nil
}

func (s *standIn) object() string {
	s.mu.Lock()
	s.n++
	id := "dry-run-" + strconv.Itoa(s.n)
	s.mu.Unlock()
	path := s.idPath
	if path == "" {
		path = "id"
	}
	obj, err := sjson.Set("{}", path, id)
	if err != nil {
		return `{"id":"` + id + `"}`
	}
	return obj
}
