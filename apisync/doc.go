// Package apisync builds connectors from configuration files instead of Go code: the Go
// counterpart of the BJ API Sync Odoo module. A config (one JSON or YAML file) says which
// local model moves, in which direction, to or from which URL, with which credentials,
// headers, parameters, timeouts, field-mapping lines, filter, page size, triggers,
// retry policy and, for pulls, the pagination of the remote listing.
//
// # API
//
//	cfgs, err := apisync.Load("configs/")              // files or directories; validated
//	db, err := sqlstore.Open(ctx, "app.db")            // SQLite file or postgres:// URL
//	s, err := apisync.Open(ctx, db, cfgs)              // compiled onto connkit's parts
//	http.Handle("/api/", s.Handler())                  // every in config, by path
//	counts, err := s.Push(ctx, "partners-to-crm")      // manual trigger of an out config
//	id, err := s.Create(ctx, "res.partner", apisync.Record{"name": "Ada"}) // + on_create push, one transaction
//	err = s.EnableSchedule(ctx, "partners-to-crm")     // schedules are disabled until enabled
//	err = s.Start(ctx)                                 // work trigger/schedule jobs until s.Stop(ctx)
//
// Config, Auth, Param, Line, Condition, Triggers and Pagination are the file's schema; Load, Parse,
// Config.Validate and ValidateAll check it, and every problem is a *ConfigError whose
// FieldErrors name the file, the config, the line and the field ("lines[2].kind").
// Unknown fields are errors.
//
// # What a config is compiled onto
//
// Open does not run a parallel implementation: each model's records live in a
// sqlstore.Records table (values as JSON, one table per model, shared by every config
// naming the model); each out config becomes a backend.Backend named after the config
// (client with the config's auth, headers, timeouts and retry policy; bindings, audit
// log and schedules in the same database) declaring one backend.Model whose export rules
// are the config's lines (mapper.Direct, mapper.Expr, mapper.Exec, dotted relational
// paths through mapper.Through and mapper.WithRelated), preceded by the filter as a rule
// that skips excluded records. POST configs export through the hub's exporter (POST,
// then PUT url/{id}, idempotency keys, external IDs in bindings, unchanged records
// skipped); PUT, DELETE, GET and batches are sent with the same backend's client and
// binding store. Triggers and schedules run as jobs of one durable River queue in the
// database that every config's backend shares.
//
// # Lines
//
// A line maps a local field to an API key. Plain lines copy the value. Relational lines
// cross related records with a dotted field ("partner_id.name", through: [res.partner]):
// partner_id holds the local ID of a res.partner record, whose name is sent; inbound,
// the related record whose name equals the received value is looked up and its ID stored
// (one hop). Expression lines (expr-lang, compiled once, sandboxed) run in evaluate mode
// (the value is assigned) or execute mode (a returned map is merged) and see the seed's
// script context: record (the record being mapped: env/records of the original),
// request (request_data: the config, model, method, path, query and body of an inbound
// request), the time helpers (now, date, duration, formatTime, parseTime, today) and
// b64encode/b64decode. The field "id" is the local record ID. One line may be marked
// identifier: inbound PUT and DELETE find their record by it, an outbound url's {id}
// falls back to it.
//
// # Filters and params
//
// The filter is the seed's domain as a list of [field, operator, value] triples, all of
// which must hold; filter_expression adds an expr-lang condition over record for what a
// domain cannot say (dates relative to now). Operators: =, !=, <, <=, >, >=, in, like
// (% and _ wildcards; without them a substring match). Numbers compare exactly as
// decimals, strings as strings (ISO dates sort correctly), a missing field is null.
// Params are sent as query parameters of an outbound GET ("key=value", or "key[op]=value"
// for the other operators: ne, lt, lte, gt, gte, in, like) and are record filters of an
// inbound GET: with a value they always apply, without one the caller may set them.
//
// # Pulls
//
// An out config with method GET pulls: it fetches url (with the params as query
// parameters), maps each returned object by the lines and writes it, matched by the
// identifier line, with its external ID (id_path) bound. records_path is the gjson path
// of the records in the response ("data"); by default the body itself (an array, or one
// object). A listing that comes in pages needs pagination, else only its first page is
// read:
//
//	records_path: data
//	pagination:
//	  style: cursor              # link_header, next_url, cursor, page or offset
//	  cursor_path: meta.next     # cursor: where the next cursor is (cursor_from_last_record: read it in the last record)
//	  param: cursor              # cursor, page, offset: the query parameter carrying it
//	  has_more_path: meta.more   # cursor: a boolean that ends the walk when false
//	  max_pages: 1000            # default 1000; a longer listing is an error
//
// next_url takes next_path (the next page's URL in the body); page and offset take
// param, size (1 to MaxPageSize) with size_param to send it, total_path (the total number
// of records in the body), and page zero_based; link_header and next_url refuse a next
// link to another host unless allow_other_hosts is true. Any other combination is a
// config error. Pages are walked by the adapter's paginators (adapter.Records) with the
// config's client, one page held at a time; a page that fails (see Sync.Push) stops
// the pull, and the records of the pages before it stay written.
//
// # Inbound
//
// Handler serves every in config (see its documentation for the pipeline and the status
// codes). Every response is JSON; errors are {"error": {"status", "code", "message"}},
// plus "error_id" for a 500, which is also in the audit entry. Bodies are limited in
// size (413), nesting depth, number size and UTF-8 validity (400); a failed request
// stores nothing.
//
// # Triggers and the outbox
//
// Sync.Create, Sync.Update and Sync.Delete (and inbound POST, PUT and DELETE) write the
// record and enqueue the pushes of the model's out configs with on_create, on_update or
// on_delete triggers in one database transaction, through River on the same database
// (the hub's Later().ExportTx for POST configs): a crash between the write and the push
// loses nothing and pushes nothing that was rolled back. on_delete deletes the remote
// record through the record's binding (exporter.Delete). A schedule trigger runs the
// config's push on an interval or cron spec once enabled.
package apisync
