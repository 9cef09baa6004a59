// Command connkit runs config-driven connectors (package apisync) and inspects a connkit
// store: the audit log, the app's records, the bindings and the webhook deliveries.
//
// It needs no setup: the store is a SQLite file (connkit.db in the working directory
// unless --db names another; a postgres:// URL works too), created and migrated on first
// use, and work runs in-process.
//
// Usage:
//
//	connkit serve    --config DIR [--db FILE] [--listen ADDR] [--shutdown-timeout D]
//	                 [--enable-schedules] [--verbose]
//	connkit push     --config FILE|DIR [--name NAME] [--db FILE] [--dry-run] [--progress N] [--json]
//	connkit validate --config DIR|FILE [--json]
//	connkit logs     [--config NAME | --backend B] [--status ok|failed|404|4xx] [--since T] [--until T]
//	                 [--direction in|out] [--model M] [--record ID] [--limit N] [--json]
//	connkit logs     --id N [--json]
//	connkit records  list   --model M [--limit N] [--json]
//	connkit records  get    --model M ID [--json]
//	connkit records  import --model M [--file F] [--key FIELD] [--json]
//	connkit records  export --model M [--file F]
//	connkit bindings list   [--model M] [--status S[,S…]] [--backend B] [--limit N] [--json]
//	connkit bindings retry  --config FILE|DIR [--name NAME] [--id N]… [--json]
//	connkit bindings retry  --model M [--backend B] [--id N]… [--json]
//	connkit deliveries list  [--endpoint E] [--status S] [--before T] [--limit N] [--json]
//	connkit deliveries show  --endpoint E ID [--json]
//	connkit deliveries purge --before T [--status S[,S…]]
//
// Every command and subcommand prints its usage with --help.
//
// serve answers the inbound (direction: in) configs of DIR over HTTP, and runs the
// trigger jobs and enabled schedules of the outbound ones, until SIGINT or SIGTERM; it then
// shuts down gracefully (requests in flight are answered) and exits 0. push sends the
// records of one outbound config, with progress on stderr; --dry-run pushes on a copy of
// the store against a stand-in API and prints the requests, sending and writing nothing.
// validate checks configs and names the file, line and field of each problem. logs shows
// the audit log newest first (--config: the outbound requests of an out config and the
// requests an in config served), or one entry in full (headers and bodies, redacted when
// they were stored) with --id. records works on the app's records (sqlstore.Records: one
// table per model, shared with apisync): list, get, import JSON lines (all or nothing;
// --key makes a re-run idempotent) and export JSON lines (the format import reads).
// bindings lists bindings; bindings retry pushes the failed records of an apisync config
// again (--config), or resets the retry count of a model's failed bindings so a
// connector with a retry limit tries them again. deliveries lists the webhook deliveries a
// connector stored (by endpoint, status, age), shows one with its redacted headers and raw
// body, and purges old ones.
//
// # Output
//
// Tables for people go to stdout; --json writes JSON for scripts instead: JSON lines
// (one object per entry, record or binding) for lists, one JSON object for a single item
// or a summary. Each command's --help names the fields. Progress and notes go to stderr,
// and errors too, prefixed "connkit: ". Text from the store or a remote system (URLs,
// bodies, error texts) is printed with control characters escaped, so it cannot drive
// the terminal. Secrets are never printed: configs take them from ${ENV} variables, and
// the audit log stores them redacted.
//
// # Exit status
//
//	0  the command did what it was asked
//	1  it ran and failed: an invalid config, a record that failed to push or import,
//	   a store that cannot be opened
//	2  it was called wrongly: an unknown command or flag, a missing or malformed flag value
package main
