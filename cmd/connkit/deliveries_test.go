package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/webhook"
)

// seedDeliveries stores four deliveries received an hour apart, oldest first: shop/shopify
// d1 processed, d2 failed, d3 pending; crm/hubspot h1 ignored.
func seedDeliveries(t *testing.T, db *sqlstore.DB) time.Time {
	t.Helper()
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := db.Webhooks()
	for i, d := range []struct {
		endpoint, id string
		st           webhook.Status
		errText      string
	}{
		{"shop/shopify", "d1", webhook.StatusProcessed, ""},
		{"shop/shopify", "d2", webhook.StatusFailed, "the ERP is down\x1b[2J"},
		{"shop/shopify", "d3", webhook.StatusPending, ""},
		{"crm/hubspot", "h1", webhook.StatusIgnored, ""},
	} {
		at := t0.Add(time.Duration(i) * time.Hour)
		_, _, err := s.Insert(ctx, webhook.Delivery{Endpoint: d.endpoint, ID: d.id, Event: "products/update", ReceivedAt: at,
			Header: http.Header{"X-Shopify-Topic": {"products/update"}, "X-Shopify-Hmac-Sha256": {"[REDACTED]"}},
			Body:   []byte(`{"id":` + string(rune('1'+i)) + `}`)})
		if err != nil {
			t.Fatal(err)
		}
		if d.st != webhook.StatusPending {
			if _, err := s.Finish(ctx, d.endpoint, d.id, webhook.Outcome{Status: d.st, Error: d.errText, At: at}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return t0
}

func TestDeliveriesList(t *testing.T) {
	path, db := tempDB(t)
	seedDeliveries(t, db)
	for _, tc := range []struct {
		name string
		args []string
		want []string // endpoint/id
	}{
		{"all", nil, []string{"shop/shopify/d1", "shop/shopify/d2", "shop/shopify/d3", "crm/hubspot/h1"}},
		{"endpoint", []string{"--endpoint", "crm/hubspot"}, []string{"crm/hubspot/h1"}},
		{"failed", []string{"--status", "failed"}, []string{"shop/shopify/d2"}},
		{"before", []string{"--before", "2026-12-01T11:30:00Z"}, []string{"shop/shopify/d1", "shop/shopify/d2"}},
		{"limit", []string{"--limit", "1"}, []string{"shop/shopify/d1"}},
		{"none", []string{"--endpoint", "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := runIn(t, "", append([]string{"deliveries", "list", "--db", path, "--json"}, tc.args...)...).want(t, exitOK).jsonLines(t)
			var got []string
			for _, l := range lines {
				got = append(got, l["endpoint"].(string)+"/"+l["id"].(string))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	table := runIn(t, "", "deliveries", "list", "--db", path, "--status", "failed").want(t, exitOK).stdout
	if !strings.Contains(table, "the ERP is down") || strings.Contains(table, "\x1b") {
		t.Fatalf("table without the error, or with a terminal escape:\n%q", table)
	}
	for _, bad := range [][]string{{"--status", "done"}, {"--limit", "-1"}, {"--before", "yesterday"}, {"extra"}} {
		runIn(t, "", append([]string{"deliveries", "list", "--db", path}, bad...)...).want(t, exitUsage)
	}
}

func TestDeliveriesShow(t *testing.T) {
	path, db := tempDB(t)
	seedDeliveries(t, db)
	out := runIn(t, "", "deliveries", "show", "--db", path, "--endpoint", "shop/shopify", "d2").want(t, exitOK).stdout
	for _, want := range []string{"status:", "failed", "X-Shopify-Hmac-Sha256: [REDACTED]", "body (8 bytes):", `{"id":2}`} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("show writes a terminal escape from the stored error:\n%q", out)
	}
	js := runIn(t, "", "deliveries", "show", "--db", path, "--endpoint", "shop/shopify", "d2", "--json").want(t, exitOK).jsonLines(t)
	if len(js) != 1 || js[0]["body"] != `{"id":2}` || js[0]["status"] != "failed" || js[0]["header"] == nil {
		t.Fatalf("show --json: %v", js)
	}
	r := runIn(t, "", "deliveries", "show", "--db", path, "--endpoint", "shop/shopify", "nope").want(t, exitFailure)
	if !strings.Contains(r.stderr, `no delivery "nope"`) {
		t.Fatalf("stderr: %s", r.stderr)
	}
	runIn(t, "", "deliveries", "show", "--db", path, "d2").want(t, exitUsage)                                   // no --endpoint
	runIn(t, "", "deliveries", "show", "--db", path, "--endpoint", "shop/shopify").want(t, exitUsage)           // no ID
	runIn(t, "", "deliveries", "show", "--db", path, "--endpoint", "shop/shopify", "a", "b").want(t, exitUsage) // two
}

func TestDeliveriesPurge(t *testing.T) {
	path, db := tempDB(t)
	seedDeliveries(t, db)
	// Processed and ignored ones received before 12:30: d1 (10:00) and h1 (13:00) is after.
	out := runIn(t, "", "deliveries", "purge", "--db", path, "--before", "2026-12-01T12:30:00Z", "--status", "processed,ignored").want(t, exitOK).stdout
	if out != "1 deliveries deleted\n" {
		t.Fatalf("purge said %q", out)
	}
	lines := runIn(t, "", "deliveries", "list", "--db", path, "--json").want(t, exitOK).jsonLines(t)
	var left []string
	for _, l := range lines {
		left = append(left, l["id"].(string))
	}
	if diff := cmp.Diff([]string{"d2", "d3", "h1"}, left); diff != "" {
		t.Fatalf("left after purge (-want +got):\n%s", diff)
	}
	runIn(t, "", "deliveries", "purge", "--db", path).want(t, exitUsage) // --before is required
	runIn(t, "", "deliveries", "purge", "--db", path, "--before", "1h", "--status", "processed,done").want(t, exitUsage)
}
