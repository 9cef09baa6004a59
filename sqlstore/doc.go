// Package sqlstore is connkit's one SQL layer: it opens SQLite or Postgres correctly,
// migrates a versioned schema, and stores bindings ([DB.Bindings], a binding.Store), the
// audit trail ([LogRecorder], a synclog.Recorder and synclog.Querier) and sync state
// ([DB.State], a state.Store) in the same database.
//
// # Opening
//
// [Open] picks the engine from the DSN: "postgres://…" or "postgresql://…" is Postgres;
// "sqlite:path", "file:…", a plain file path or ":memory:" is SQLite. The schema is
// migrated on open unless [WithoutMigrate] is given.
//
// SQLite runs through modernc.org/sqlite (pure Go, no cgo) in WAL mode with a busy
// timeout. Writes go through one connection whose transactions start with BEGIN
// IMMEDIATE (_txlock=immediate): writers in this process queue on that connection, and
// writers in other processes wait on busy_timeout instead of failing with SQLITE_BUSY when
// a read lock would have to be upgraded. Reads use a separate pool of query-only
// connections, which WAL lets run next to the writer. ":memory:" (or a "file:" DSN with
// mode=memory) uses a single connection for everything, because each connection to a
// private in-memory database would otherwise see a different, empty database.
//
// Postgres runs through database/sql with the jackc/pgx v5 stdlib driver rather than
// pgxpool: both engines then share one code path (queries are written once with "?"
// placeholders and rebound to $n), [DB.SQL] hands callers a plain *sql.DB, and pgx still
// provides the wire protocol, binary encoding and per-connection statement cache. The
// throughput cost against pgxpool is small next to the network round trip.
//
// # Schema and migrations
//
// The schema is an append-only list of numbered migrations (migrations.go), recorded in
// table connkit_schema_migrations. [DB.Migrate] applies the missing ones in one
// transaction; on Postgres it first takes a transaction-scoped advisory lock, so
// concurrent migrators of one schema run one after the other, and on SQLite the immediate
// transaction serialises them. Migrating twice is a no-op. A database whose schema
// version is newer than this code knows fails with [ErrSchemaTooNew] instead of being
// used by code that does not understand it. Features that need tables (webhook
// deliveries, for instance) add a migration at the end of the list; existing entries are
// never edited.
//
// Times are stored in UTC with microsecond precision (internal bindingkit.UTC): as timestamptz on
// Postgres and as integer microseconds since the Unix epoch on SQLite, where they sort
// and compare as numbers.
//
// Postgres TEXT cannot hold NUL bytes or invalid UTF-8. Free text (a binding's LastError,
// a log entry's URL, error and names) has such bytes replaced with U+FFFD there, so a
// failure report is never lost to its own content; IDs are stored as given, and bodies
// are stored as bytes (BLOB / BYTEA) on both engines.
//
// # Concurrency and leases
//
// Every store is safe for concurrent use, and safe across processes sharing the database:
// uniqueness of (backend, model, external ID) and (backend, model, local ID) is enforced
// by unique indexes (empty IDs are stored as NULL, which never collide), and
// the binding store's Claim is a single conditional UPDATE, so two processes cannot both win a
// lease.
package sqlstore
