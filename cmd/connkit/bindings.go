package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/connkit/connkit/binding"
)

const bindingsUsage = `Usage:
  connkit bindings list  [--model M] [--status S[,S…]] [--backend B] [--limit N] [--json]
  connkit bindings retry --model M [--backend B] [--id N]…

Inspect the bindings (which local record is which external record, and how its last sync
went) and retry the failed ones.

Run 'connkit bindings <subcommand> --help' for each subcommand's flags.
`

func runBindings(ctx context.Context, e *env, args []string) error {
	return runSub(ctx, e, "bindings", bindingsUsage, []subcommand{{"list", bindingsList}, {"retry", bindingsRetry}}, args)
}

// bindingJSON is one line of `bindings list --json`.
type bindingJSON struct {
	ID         int64  `json:"id"`
	Backend    string `json:"backend"`
	Model      string `json:"model"`
	LocalID    string `json:"local_id"`
	ExternalID string `json:"external_id"`
	Status     string `json:"status"`
	LastError  string `json:"last_error"`
	RetryCount int    `json:"retry_count"`
	SyncedAt   string `json:"synced_at,omitempty"`
	NoExport   bool   `json:"no_export"`
	UpdatedAt  string `json:"updated_at"`
}

func toBindingJSON(b binding.Binding) bindingJSON {
	j := bindingJSON{ID: b.ID, Backend: b.Backend, Model: b.Model, LocalID: b.LocalID, ExternalID: b.ExternalID,
		Status: string(b.Status), LastError: b.LastError, RetryCount: b.RetryCount, NoExport: b.NoExport,
		UpdatedAt: b.UpdatedAt.UTC().Format(time.RFC3339Nano)}
	if !b.SyncedAt.IsZero() {
		j.SyncedAt = b.SyncedAt.UTC().Format(time.RFC3339Nano)
	}
	return j
}

// parseStatuses reads --status: a comma-separated list of statuses of type S (binding or
// webhook delivery statuses); one only unless many. names lists the valid ones for the error.
func parseStatuses[S interface {
	~string
	Valid() bool
}](f *flags, s string, many bool, names string) ([]S, error) {
	if s == "" {
		return nil, nil
	}
	parts := []string{s}
	if many {
		parts = strings.Split(s, ",")
	}
	var out []S
	for _, p := range parts {
		st := S(strings.TrimSpace(p))
		if !st.Valid() {
			return nil, usagef(f.cmd, "--status: unknown status %q (want %s)", p, names)
		}
		out = append(out, st)
	}
	return out, nil
}

func bindingsList(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("bindings list", `Usage:
  connkit bindings list [--model M] [--status S[,S…]] [--backend B] [--limit N] [--json]

List bindings in ID order. --status takes pending, in_progress, success, failed or
skipped, several separated by commas. --json writes one JSON object per line: {"id",
"backend", "model", "local_id", "external_id", "status", "last_error", "retry_count",
"synced_at" (absent before the first success), "no_export", "updated_at"}.
`)
	dsn := f.dbFlag()
	model := f.String("model", "", "only bindings of this model")
	backend := f.String("backend", "", "only bindings of this backend (apisync: the config's backend name)")
	status := f.String("status", "", "only bindings in these statuses (comma-separated)")
	limit := f.Int("limit", 0, "list at most this many bindings (0: all)")
	asJSON := f.jsonFlag("write JSON lines instead of a table")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	statuses, err := parseStatuses[binding.Status](f, *status, true, "pending, in_progress, success, failed or skipped")
	if err != nil {
		return err
	}
	if *limit < 0 {
		return usagef(f.cmd, "--limit must not be negative, got %d", *limit)
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)

	filter := binding.Filter{Backend: *backend, Model: *model, Statuses: statuses, Limit: *limit}
	return listOut(e, db.Bindings().List(ctx, filter), *asJSON, "bindings", "ID\tBACKEND\tMODEL\tLOCAL\tEXTERNAL\tSTATUS\tRETRIES\tSYNCED\tERROR",
		func(b binding.Binding) any { return toBindingJSON(b) },
		func(b binding.Binding) string {
			synced := "-"
			if !b.SyncedAt.IsZero() {
				synced = b.SyncedAt.UTC().Format(time.DateTime)
			}
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s", b.ID, clean(cut(b.Backend, 20)), clean(cut(b.Model, 20)),
				clean(cut(b.LocalID, 20)), clean(cut(b.ExternalID, 24)), b.Status, b.RetryCount, synced, clean(cut(b.LastError, 60)))
		})
}
