package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connkit/connkit/synclog"
)

const logsUsage = `Usage:
  connkit logs [--config NAME] [--status S] [--since T] [--until T] [flags]
  connkit logs --id N

Show the audit log: every HTTP exchange, inbound and outbound, newest first. Headers and
bodies were redacted before they were stored. With --id, show one entry in full, with
its headers and bodies.

--status is ok, failed, a code (404) or a class (4xx, 5xx). --since and --until take
RFC 3339 (2026-12-07T10:00:00Z), a date (2026-12-07, UTC) or a duration ago (90m, 24h).

--json writes one JSON object per line (id, time, backend, operation, direction, method,
url, status, duration_ms, attempts, error, model, record, truncated); with --id, one
object that also has request_header, response_header, request_body and response_body.
`

func runLogs(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("logs", logsUsage)
	dsn := f.dbFlag()
	asJSON := f.jsonFlag("write JSON lines (with --id, one JSON object) instead of a table")
	id := f.Int64("id", 0, "show the entry with this ID in full")
	var o logQuery
	f.StringVar(&o.config, "config", "", "only entries of this apisync config (its outbound requests and the inbound requests it served)")
	f.StringVar(&o.backend, "backend", "", "only entries of this backend")
	f.StringVar(&o.direction, "direction", "", "only inbound (in) or outbound (out) exchanges")
	f.StringVar(&o.status, "status", "", "only entries with this outcome: ok, failed, 404, 4xx, 5xx")
	f.StringVar(&o.since, "since", "", "only entries that started at or after this time")
	f.StringVar(&o.until, "until", "", "only entries that started before this time")
	f.StringVar(&o.model, "model", "", "only entries about records of this model")
	f.StringVar(&o.record, "record", "", "only entries about this record ID (with --model)")
	f.IntVar(&o.limit, "limit", 50, "show at most this many entries (0: all)")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	filter, okOnly, err := o.filter(f, e.now())
	if err != nil {
		return err
	}
	if *id < 0 {
		return usagef(f.cmd, "--id must be positive, got %d", *id)
	}
	if *id > 0 {
		var set []string
		f.Visit(func(fl *flag.Flag) {
			if fl.Name != "id" && fl.Name != "db" && fl.Name != "json" {
				set = append(set, "--"+fl.Name)
			}
		})
		if len(set) > 0 {
			return usagef(f.cmd, "--id shows one entry: it takes no filter (%s)", strings.Join(set, ", "))
		}
	}

	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)
	log := db.Log()

	if *id > 0 {
		ent, err := findEntry(ctx, log, *id)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e.stdout, fullEntry(ent))
		}
		return printEntry(e.stdout, ent)
	}

	want := filter.Limit
	if okOnly {
		filter.Limit = 0 // "ok" is checked here (no error and a status below 400): count after it
	}
	var tw = newTable(e.stdout)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tTIME\tDIR\tCONFIG\tMETHOD\tURL\tSTATUS\tDURATION\tERROR")
	}
	n := 0
	for ent, err := range queryLog(ctx, log, filter, o.config) {
		if err != nil {
			tw.Flush()
			return fmt.Errorf("read the audit log: %w", err)
		}
		if okOnly && ent.Failed() {
			continue
		}
		if *asJSON {
			if err := writeJSON(e.stdout, summary(ent)); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ent.ID, ent.Time.UTC().Format(time.DateTime),
				clean(string(ent.Direction)), clean(cut(ent.Operation, 24)), clean(ent.Method), clean(cut(ent.URL, 60)),
				statusText(ent.Status), ent.Duration.Round(time.Millisecond), clean(cut(ent.Error, 50)))
		}
		n++
		if want > 0 && n >= want {
			break
		}
	}
	if !*asJSON {
		if err := tw.Flush(); err != nil {
			return err
		}
		if n == 0 {
			fmt.Fprintln(e.stderr, "connkit: no log entries match")
		}
	}
	return nil
}

// logQuery is what the flags of logs select.
type logQuery struct {
	config, backend, direction, status, since, until, model, record string
	limit                                                           int
}

// filter builds the query from the flags; okOnly asks the caller to keep only entries
// that did not fail (the filter cannot say "no error").
func (o *logQuery) filter(f *flags, now time.Time) (synclog.Filter, bool, error) {
	filter := synclog.Filter{Backend: o.backend, Model: o.model, Record: o.record, Limit: o.limit}
	if o.config != "" && o.backend != "" {
		return filter, false, usagef(f.cmd, "--config and --backend exclude each other: an apisync config is its own backend")
	}
	if o.limit < 0 {
		return filter, false, usagef(f.cmd, "--limit must not be negative, got %d", o.limit)
	}
	switch o.direction {
	case "", "in", "out":
		filter.Direction = synclog.Direction(o.direction)
	default:
		return filter, false, usagef(f.cmd, "--direction must be in or out, got %q", o.direction)
	}
	okOnly := false
	switch s := strings.ToLower(o.status); {
	case s == "":
	case s == "ok":
		okOnly = true
		filter.StatusMin, filter.StatusMax = 100, 399
	case s == "failed":
		filter.FailedOnly = true
	case len(s) == 3 && s[1:] == "xx" && s[0] >= '1' && s[0] <= '5':
		c := int(s[0]-'0') * 100
		filter.StatusMin, filter.StatusMax = c, c+99
	default:
		code, err := strconv.Atoi(s)
		if err != nil || code < 100 || code > 599 {
			return filter, false, usagef(f.cmd, "--status must be ok, failed, an HTTP status (404) or a class (4xx), got %q", o.status)
		}
		filter.Status = code
	}
	var err error
	if o.since != "" {
		if filter.Since, err = parseTime(o.since, now); err != nil {
			return filter, false, usagef(f.cmd, "--since: %v", err)
		}
	}
	if o.until != "" {
		if filter.Until, err = parseTime(o.until, now); err != nil {
			return filter, false, usagef(f.cmd, "--until: %v", err)
		}
	}
	if !filter.Since.IsZero() && !filter.Until.IsZero() && !filter.Since.Before(filter.Until) {
		return filter, false, usagef(f.cmd, "--since (%s) must be before --until (%s)",
			filter.Since.Format(time.RFC3339), filter.Until.Format(time.RFC3339))
	}
	return filter, okOnly, nil
}

// queryLog runs the query, limited to an apisync config's entries when config is set:
// an out config is a backend of its own, so its requests have Backend = config (the
// operation is the step, such as "export"); the requests an in config serves have
// Operation = config. Both lists come newest first and are merged.
func queryLog(ctx context.Context, q synclog.Querier, f synclog.Filter, config string) iter.Seq2[synclog.Entry, error] {
	if config == "" {
		return q.Query(ctx, f)
	}
	out, in := f, f
	out.Backend, in.Operation = config, config
	return mergeNewest(q.Query(ctx, out), q.Query(ctx, in))
}

// mergeNewest merges two newest-first entry lists into one, newest first (ties by
// descending ID, as the log orders them), yielding an entry in both only once.
func mergeNewest(a, b iter.Seq2[synclog.Entry, error]) iter.Seq2[synclog.Entry, error] {
	return func(yield func(synclog.Entry, error) bool) {
		na, stopA := iter.Pull2(a)
		defer stopA()
		nb, stopB := iter.Pull2(b)
		defer stopB()
		ea, errA, okA := na()
		eb, errB, okB := nb()
		for okA || okB {
			switch {
			case okA && errA != nil:
				yield(synclog.Entry{}, errA)
				return
			case okB && errB != nil:
				yield(synclog.Entry{}, errB)
				return
			}
			var e synclog.Entry
			switch {
			case okA && okB && ea.ID == eb.ID:
				e = ea
				ea, errA, okA = na()
				eb, errB, okB = nb()
			case !okB || okA && newer(ea, eb):
				e = ea
				ea, errA, okA = na()
			default:
				e = eb
				eb, errB, okB = nb()
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func newer(a, b synclog.Entry) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.ID > b.ID
}

// errNoEntry is an --id that names no entry.
var errNoEntry = errors.New("no such log entry")

// findEntry reads entry id.
func findEntry(ctx context.Context, q synclog.Querier, id int64) (synclog.Entry, error) {
	for ent, err := range q.Query(ctx, synclog.Filter{ID: id}) {
		if err != nil {
			return synclog.Entry{}, fmt.Errorf("read the audit log: %w", err)
		}
		if ent.ID == id {
			return ent, nil
		}
	}
	return synclog.Entry{}, fmt.Errorf("%w: %d", errNoEntry, id)
}

func statusText(code int) string {
	if code == 0 {
		return "-"
	}
	return strconv.Itoa(code)
}

// entrySummary is one line of `logs --json`.
type entrySummary struct {
	ID         int64   `json:"id"`
	Time       string  `json:"time"`
	Backend    string  `json:"backend"`
	Operation  string  `json:"operation"`
	Direction  string  `json:"direction"`
	Method     string  `json:"method"`
	URL        string  `json:"url"`
	Status     int     `json:"status"`
	DurationMS float64 `json:"duration_ms"`
	Attempts   int     `json:"attempts"`
	Error      string  `json:"error"`
	Model      string  `json:"model"`
	Record     string  `json:"record"`
	Truncated  bool    `json:"truncated"`
}

// entryFull is the output of `logs --id N --json`.
type entryFull struct {
	entrySummary
	RequestHeader  http.Header `json:"request_header"`
	ResponseHeader http.Header `json:"response_header"`
	RequestBody    string      `json:"request_body"`
	ResponseBody   string      `json:"response_body"`
}

func summary(e synclog.Entry) entrySummary {
	return entrySummary{
		ID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano), Backend: e.Backend, Operation: e.Operation,
		Direction: string(e.Direction), Method: e.Method, URL: e.URL, Status: e.Status,
		DurationMS: float64(e.Duration.Microseconds()) / 1000, Attempts: e.Attempts, Error: e.Error,
		Model: e.Model, Record: e.Record, Truncated: e.Truncated,
	}
}

func fullEntry(e synclog.Entry) entryFull {
	return entryFull{entrySummary: summary(e), RequestHeader: e.RequestHeader, ResponseHeader: e.ResponseHeader,
		RequestBody: e.RequestBody, ResponseBody: e.ResponseBody}
}

// printEntry writes one entry in full for a person.
func printEntry(w io.Writer, e synclog.Entry) error {
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, clean(v)) }
	row("ID", strconv.FormatInt(e.ID, 10))
	row("Time", e.Time.UTC().Format(time.RFC3339Nano))
	row("Backend", e.Backend)
	row("Config", e.Operation)
	row("Direction", string(e.Direction))
	row("Request", e.Method+" "+e.URL)
	row("Status", statusText(e.Status))
	row("Duration", e.Duration.String())
	row("Attempts", strconv.Itoa(e.Attempts))
	if e.Error != "" {
		row("Error", e.Error)
	}
	if e.Model != "" || e.Record != "" {
		row("Record", strings.TrimSpace(e.Model+" "+e.Record))
	}
	if e.Truncated {
		row("Truncated", "yes: a body was cut to the log's body limit")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	section := func(title string, h http.Header, body string) {
		fmt.Fprintf(w, "\n%s headers:\n", title)
		if len(h) == 0 {
			fmt.Fprintln(w, "  (none)")
		}
		for _, k := range slices.Sorted(maps.Keys(h)) {
			for _, v := range h[k] {
				fmt.Fprintf(w, "  %s: %s\n", clean(k), clean(v))
			}
		}
		fmt.Fprintf(w, "%s body:\n", title)
		if body == "" {
			fmt.Fprintln(w, "  (empty)")
			return
		}
		for line := range strings.Lines(cleanBlock(body)) {
			fmt.Fprint(w, "  ", line)
		}
		if !strings.HasSuffix(body, "\n") {
			fmt.Fprintln(w)
		}
	}
	section("Request", e.RequestHeader, e.RequestBody)
	section("Response", e.ResponseHeader, e.ResponseBody)
	return nil
}
