package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
)

type item struct {
	Name string `json:"name"`
}

// TestRetryResetsRetryLimit: a Go connector whose exporter stops after one failure
// (WithMaxRetries(1)) refuses a failed record until `bindings retry --model` resets its
// retry count; the binding stays failed meanwhile, and the next export succeeds.
func TestRetryResetsRetryLimit(t *testing.T) {
	rc := newReceiver(t)
	rc.setFail(func(string) bool { return true })
	path, db := tempDB(t)
	ctx := t.Context()
	items, err := sqlstore.Records[item](ctx, db, "item")
	if err != nil {
		t.Fatal(err)
	}
	id, err := items.Create(ctx, item{Name: "mug"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := adapter.New(rc.URL, adapter.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	exp, err := exporter.New(client, db.Bindings(), items, "shop", "item", "/items",
		func(_ context.Context, v item, _ binding.Binding, _ bool) (any, error) { return v, nil },
		exporter.WithMaxRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exp.Export(ctx, id); err == nil {
		t.Fatal("the first export succeeded against a failing API")
	}
	rc.setFail(nil)
	if _, err := exp.Export(ctx, id); !errors.Is(err, report.ErrTooManyRetries) {
		t.Fatalf("second export: %v, want ErrTooManyRetries", err)
	}

	r := runIn(t, "", "bindings", "retry", "--db", path, "--model", "item", "--json").want(t, exitOK)
	if r.stdout != "{\"reset\":[1],\"locked\":[]}\n" {
		t.Fatalf("retry: %q", r.stdout)
	}
	b, err := db.Bindings().GetByLocal(ctx, "shop", "item", id)
	if err != nil || b.Status != binding.StatusFailed || b.RetryCount != 0 || b.LastError == "" || b.LeaseOwner != "" {
		t.Fatalf("binding after the reset: %+v, %v", b, err)
	}
	if _, err := exp.Export(ctx, id); err != nil {
		t.Fatalf("export after the reset: %v", err)
	}
	r = runIn(t, "", "bindings", "retry", "--db", path, "--model", "item").want(t, exitOK)
	if r.stdout != "reset the retry count of 0 failed binding(s) of model \"item\": the next sync retries them\n" {
		t.Fatalf("retry with nothing failed: %q", r.stdout)
	}
}

// TestRetryLeavesLeasedBindings: a binding a worker holds is not written, and the exit
// status says the retry is incomplete.
func TestRetryLeavesLeasedBindings(t *testing.T) {
	path, db := tempDB(t)
	seedBindings(t, db) // 2 (partner) and 4 (order) failed
	ctx := t.Context()
	if _, err := db.Bindings().Claim(ctx, 2, "worker-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, "", "bindings", "retry", "--db", path, "--model", "partner", "--json").want(t, exitFailure)
	if r.stdout != "{\"reset\":[],\"locked\":[2]}\n" || !strings.Contains(r.stderr, "binding 2 is being synced") {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if b, _ := db.Bindings().Get(ctx, 2); b.RetryCount != 2 || b.LeaseOwner != "worker-1" {
		t.Fatalf("a held binding was written: %+v", b)
	}
	// --id selects; other models are untouched.
	r = runIn(t, "", "bindings", "retry", "--db", path, "--model", "order", "--id", "4", "--json").want(t, exitOK)
	if r.stdout != "{\"reset\":[4],\"locked\":[]}\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = runIn(t, "", "bindings", "retry", "--db", path, "--model", "order", "--id", "99", "--json").want(t, exitOK)
	if r.stdout != "{\"reset\":[],\"locked\":[]}\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
}
