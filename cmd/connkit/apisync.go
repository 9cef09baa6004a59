package main

import (
	"context"
	"errors"
	"time"
)

// errNotAvailable: package apisync has not landed yet.
var errNotAvailable = errors.New("not available in this build: package apisync is not there yet")

const serveUsage = `Usage:
  connkit serve --config DIR [--db FILE] [--listen ADDR]

Serve the inbound (direction: in) apisync configs in DIR over HTTP: each config's path
answers the methods it allows, authenticates the caller, maps the JSON body onto the
config's model and writes the records to the store. Every exchange goes to the audit log
('connkit logs'). Outbound configs with on_create/on_update/on_delete triggers push the
records those requests write.

The address actually listened on is printed on stderr ("listening on 127.0.0.1:8080").
SIGINT or SIGTERM stops accepting connections and waits up to --shutdown-timeout for the
requests in flight.
`

func runServe(ctx context.Context, e *env, args []string) error {
	f := newFlags("serve", serveUsage)
	dsn := f.dbFlag()
	config := f.String("config", "", "a directory (or file) of apisync configs (required)")
	listen := f.String("listen", "127.0.0.1:8080", "the address to listen on (host:port; port 0 picks a free one)")
	grace := f.Duration("shutdown-timeout", 10*time.Second, "how long a shutdown waits for requests in flight")
	pos, err := f.parse(e.stdout, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(f.cmd, "unexpected argument %q", pos[0])
	}
	if *config == "" {
		return usagef(f.cmd, "--config is required")
	}
	_, _, _ = dsn, listen, grace
	return errNotAvailable
}

const pushUsage = `Usage:
  connkit push --config FILE [--db FILE] [--dry-run] [--json]

Push the records of one outbound (direction: out) apisync config: select the model's
records by the config's filter, map each one, send it, store the external ID from the
response in its binding, and log every exchange. Progress goes to stderr. The exit
status is 1 when any record failed ('connkit bindings list --status failed' shows them).

--dry-run maps and prints the requests that would be sent, sending nothing and writing
nothing. --json writes the summary as one JSON object.
`

func runPush(ctx context.Context, e *env, args []string) error {
	f := newFlags("push", pushUsage)
	dsn := f.dbFlag()
	config := f.String("config", "", "the outbound apisync config file (required)")
	dry := f.Bool("dry-run", false, "map the records and show the requests without sending them")
	asJSON := f.jsonFlag("write the summary as one JSON object")
	pos, err := f.parse(e.stdout, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(f.cmd, "unexpected argument %q", pos[0])
	}
	if *config == "" {
		return usagef(f.cmd, "--config is required")
	}
	_, _, _ = dsn, dry, asJSON
	return errNotAvailable
}

const validateUsage = `Usage:
  connkit validate --config DIR [--json]

Check every apisync config file (.json, .yaml, .yml) in DIR, or one file: syntax, fields
and their values, and what configs must agree on (unique names, one config per inbound
method and path). Each problem is printed on its own line as file:line: field: problem.
The exit status is 1 when any config is invalid.

--json writes one JSON object per problem: {"file", "config", "line", "field", "problem"}.
`

func runValidate(ctx context.Context, e *env, args []string) error {
	f := newFlags("validate", validateUsage)
	config := f.String("config", "", "a directory (or file) of apisync configs (required)")
	asJSON := f.jsonFlag("write one JSON object per problem")
	pos, err := f.parse(e.stdout, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(f.cmd, "unexpected argument %q", pos[0])
	}
	if *config == "" {
		return usagef(f.cmd, "--config is required")
	}
	_ = asJSON
	return errNotAvailable
}

func bindingsRetry(ctx context.Context, e *env, args []string) error {
	f := newFlags("bindings retry", `Usage:
  connkit bindings retry --model M [--backend B] [--id N]…

Mark the failed bindings of a model for retry, so the next push sends their records again.
`)
	dsn := f.dbFlag()
	model := f.String("model", "", "the model whose failed bindings to retry (required)")
	pos, err := f.parse(e.stdout, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef(f.cmd, "unexpected argument %q", pos[0])
	}
	if *model == "" {
		return usagef(f.cmd, "--model is required")
	}
	_ = dsn
	return errNotAvailable
}
