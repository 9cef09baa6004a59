package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/connkit/connkit/webhook"
)

const deliveriesUsage = `Usage:
  connkit deliveries list  [--endpoint E] [--status S] [--before T] [--limit N] [--json]
  connkit deliveries show  --endpoint E ID [--json]
  connkit deliveries purge --before T [--status S[,S…]]

Inspect the webhook deliveries a connector stored (each delivery as received, and what
became of it) and purge old ones. An endpoint is named as stored: the backend's name, a
slash and the endpoint's ("shop/shopify"). A failed delivery is retried by the running
connector (Backend.Webhook(name).Reprocess), not from here.

Run 'connkit deliveries <subcommand> --help' for each subcommand's flags.
`

func runDeliveries(ctx context.Context, e *env, args []string) error {
	return runSub(ctx, e, "deliveries", deliveriesUsage, []subcommand{{"list", deliveriesList}, {"show", deliveriesShow}, {"purge", deliveriesPurge}}, args)
}

// deliveryJSON is one line of `deliveries list --json` and the output of `show --json`
// (which adds the header and body).
type deliveryJSON struct {
	Endpoint   string              `json:"endpoint"`
	ID         string              `json:"id"`
	Event      string              `json:"event"`
	Status     string              `json:"status"`
	Attempts   int                 `json:"attempts"`
	LastError  string              `json:"last_error"`
	ReceivedAt string              `json:"received_at"`
	UpdatedAt  string              `json:"updated_at"`
	Header     map[string][]string `json:"header,omitempty"`
	Body       string              `json:"body,omitempty"`
}

func toDeliveryJSON(d webhook.Delivery, full bool) deliveryJSON {
	j := deliveryJSON{Endpoint: d.Endpoint, ID: d.ID, Event: d.Event, Status: string(d.Status), Attempts: d.Attempts,
		LastError: d.LastError, ReceivedAt: d.ReceivedAt.UTC().Format(time.RFC3339Nano), UpdatedAt: d.UpdatedAt.UTC().Format(time.RFC3339Nano)}
	if full {
		j.Header, j.Body = d.Header, string(d.Body)
	}
	return j
}

// deliveryStatuses names the delivery statuses --status takes.
const deliveryStatuses = "pending, processed, ignored or failed"

func deliveriesList(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("deliveries list", `Usage:
  connkit deliveries list [--endpoint E] [--status S] [--before T] [--limit N] [--json]

List webhook deliveries, oldest received first. --status takes pending, processed,
ignored or failed. --before keeps those received before a time (RFC 3339, a date, or a
duration ago such as 24h). --json writes one JSON object per line: {"endpoint", "id",
"event", "status", "attempts", "last_error", "received_at", "updated_at"}.
`)
	dsn := f.dbFlag()
	endpoint := f.String("endpoint", "", `only deliveries of this endpoint ("shop/shopify")`)
	status := f.String("status", "", "only deliveries in this status")
	before := f.String("before", "", "only deliveries received before this time")
	limit := f.Int("limit", 0, "list at most this many deliveries (0: all)")
	asJSON := f.jsonFlag("write JSON lines instead of a table")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	statuses, err := parseStatuses[webhook.Status](f, *status, false, deliveryStatuses)
	if err != nil {
		return err
	}
	if *limit < 0 {
		return usagef(f.cmd, "--limit must not be negative, got %d", *limit)
	}
	filter := webhook.Filter{Endpoint: *endpoint, Limit: *limit}
	if len(statuses) == 1 {
		filter.Status = statuses[0]
	}
	if *before != "" {
		if filter.ReceivedBefore, err = parseTime(*before, e.now()); err != nil {
			return usagef(f.cmd, "--before: %v", err)
		}
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)

	return listOut(e, db.Webhooks().List(ctx, filter), *asJSON, "deliveries", "RECEIVED\tENDPOINT\tID\tEVENT\tSTATUS\tATTEMPTS\tERROR",
		func(d webhook.Delivery) any { return toDeliveryJSON(d, false) },
		func(d webhook.Delivery) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s", d.ReceivedAt.UTC().Format(time.DateTime), clean(cut(d.Endpoint, 24)),
				clean(cut(d.ID, 40)), clean(cut(d.Event, 24)), d.Status, d.Attempts, clean(cut(d.LastError, 60)))
		})
}

func deliveriesShow(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("deliveries show", `Usage:
  connkit deliveries show --endpoint E ID [--json]

Show one delivery: its status, attempts and last error, the request headers as stored
(signatures and credentials redacted) and the raw body. --json writes it as one JSON
object: the fields of 'deliveries list --json' plus "header" and "body".
`)
	dsn := f.dbFlag()
	endpoint := f.String("endpoint", "", `the delivery's endpoint ("shop/shopify"); required`)
	asJSON := f.jsonFlag("write JSON instead of text")
	pos, err := f.parse(e.stdout, args)
	if err != nil {
		return err
	}
	switch {
	case *endpoint == "":
		return usagef(f.cmd, "--endpoint is required")
	case len(pos) != 1:
		return usagef(f.cmd, "want one delivery ID, got %d arguments", len(pos))
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)
	d, err := db.Webhooks().Get(ctx, *endpoint, pos[0])
	if errors.Is(err, webhook.ErrNotFound) {
		return fmt.Errorf("no delivery %q of endpoint %q", pos[0], *endpoint)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, toDeliveryJSON(d, true))
	}
	tw := newTable(e.stdout)
	for _, kv := range [][2]string{
		{"endpoint", d.Endpoint}, {"id", d.ID}, {"event", d.Event}, {"status", string(d.Status)},
		{"attempts", fmt.Sprint(d.Attempts)}, {"last error", d.LastError},
		{"received", d.ReceivedAt.UTC().Format(time.RFC3339Nano)}, {"updated", d.UpdatedAt.UTC().Format(time.RFC3339Nano)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], clean(kv[1]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "\nheader:")
	for _, k := range slices.Sorted(maps.Keys(d.Header)) {
		for _, v := range d.Header[k] {
			fmt.Fprintf(e.stdout, "  %s: %s\n", clean(k), clean(v))
		}
	}
	fmt.Fprintf(e.stdout, "\nbody (%d bytes):\n%s\n", len(d.Body), cleanBlock(string(d.Body)))
	return nil
}

func deliveriesPurge(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("deliveries purge", `Usage:
  connkit deliveries purge --before T [--status S[,S…]]

Delete the deliveries received before a time (RFC 3339, a date, or a duration ago such
as 720h), of every endpoint; with --status, only those in these statuses (pending,
processed, ignored, failed; comma-separated). Prints how many were deleted. A pending
delivery purged is never processed: leave pending out unless that is what you want.
`)
	dsn := f.dbFlag()
	before := f.String("before", "", "delete deliveries received before this time; required")
	status := f.String("status", "", "only deliveries in these statuses (comma-separated)")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	if *before == "" {
		return usagef(f.cmd, "--before is required (e.g. --before 720h for deliveries older than 30 days)")
	}
	t, err := parseTime(*before, e.now())
	if err != nil {
		return usagef(f.cmd, "--before: %v", err)
	}
	statuses, err := parseStatuses[webhook.Status](f, *status, true, deliveryStatuses)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)
	n, err := db.Webhooks().Purge(ctx, t, statuses...)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d deliveries deleted\n", n)
	return nil
}
