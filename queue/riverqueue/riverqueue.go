// Package riverqueue runs queue workers on River
// (github.com/riverqueue/river), the durable engine: jobs are rows in a
// database, survive restarts, and are shared by every process pointed at the
// same database.
//
//   - [NewSQLite] / [OpenSQLite]: a SQLite file (modernc.org/sqlite, no cgo)
//     for one machine.
//   - [NewPostgres]: Postgres through pgxpool, so many worker processes on
//     many machines share the work.
//
// River's tables are created or upgraded on construction (rivermigrate)
// unless [WithoutMigrate] is given. On Postgres, processes starting together
// take turns (an advisory lock per schema), so a fleet can start on a fresh
// database. River's migrator itself takes no lock, so with SQLite let one
// process create the file before others open it.
//
// Mapping onto River: priorities 1..4 are River's; [queue.Permanent] is
// river.JobCancel (the job ends cancelled); [queue.RetryAfter] is a normal
// failed attempt whose next retry time is chosen by the worker, so it counts
// towards max attempts (River's JobSnooze would not, and could retry for
// ever); the identity key is a River unique job (by args, across kinds and
// queues, in states available, pending, scheduled, running and retryable),
// stored as the extra top-level field "_connkit_identity_key" in the args
// JSON and removed again before the worker decodes them. River's own job
// rows are reachable through [Queue.Client] for anything not covered here.
package riverqueue

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"modernc.org/sqlite" // also the database/sql driver "sqlite" for OpenSQLite
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/connkit/connkit/queue"
)

// identityField is the args field that carries the identity key.
const identityField = "_connkit_identity_key"

// sqliteConns is the connection count OpenSQLite uses: one, as River
// recommends for SQLite (more connections only add busy waiting).
var sqliteConns = 1

// schedulerInterval is River's job scheduler interval (not configurable):
// River itself treats retries due within it as available at once.
const schedulerInterval = 5 * time.Second

// Queue is a queue.Queue on River. TTx is the driver's transaction type:
// *sql.Tx for SQLite, pgx.Tx for Postgres.
type Queue[TTx any] struct {
	client  *river.Client[TTx]
	workers *queue.Workers
	closeFn func() error
}

var (
	_ queue.Queue = (*Queue[*sql.Tx])(nil)
	_ queue.Queue = (*Queue[pgx.Tx])(nil)
)

type config struct {
	workers      int
	queues       map[string]int
	backoff      queue.Backoff
	logger       *slog.Logger
	schema       string
	pollInterval time.Duration
	timeout      time.Duration
	rescueAfter  time.Duration
	noLeader     bool
	migrate      bool
	tweak        []func(*river.Config)
}

// Option configures a Queue.
type Option func(*config)

// WithWorkers sets how many jobs of the default queue this process runs at
// once (default 10).
func WithWorkers(n int) Option { return func(c *config) { c.workers = n } }

// WithQueue makes this process also work the named queue, running at most
// maxWorkers of its jobs at once. Jobs can be enqueued to any valid queue
// name; only processes that work that queue run them.
func WithQueue(name string, maxWorkers int) Option {
	return func(c *config) {
		if c.queues == nil {
			c.queues = map[string]int{}
		}
		c.queues[name] = maxWorkers
	}
}

// WithBackoff sets the delay before retries (default queue.DefaultBackoff).
func WithBackoff(b queue.Backoff) Option { return func(c *config) { c.backoff = b } }

// WithLogger sets River's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithSchema puts River's tables in a Postgres schema (or attached SQLite
// database) instead of the connection's default; the same schema is used for
// migrations.
func WithSchema(schema string) Option { return func(c *config) { c.schema = schema } }

// WithFetchPollInterval sets how often each process polls for jobs that
// became available without a notification, e.g. delayed jobs coming due
// (default 1s, River's). Short values suit tests.
func WithFetchPollInterval(d time.Duration) Option {
	return func(c *config) { c.pollInterval = d }
}

// WithJobTimeout bounds each attempt: the job's context is cancelled after
// d (default queue.DefaultJobTimeout); d <= 0 means no limit. River runs the
// jobs of a process that died again once they have been running for
// d + 1h (see WithRescueStuckJobsAfter), so a job may run twice if its
// worker ignores its context that long. Without a limit River never does:
// a dead process's jobs stay running until retried by hand.
func WithJobTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithRescueStuckJobsAfter sets how long a job may stay running before
// River decides the process running it died and runs it again elsewhere
// (River's RescueStuckJobsAfter; default: the job timeout plus one hour).
// Shorter values bring back the jobs of a killed process sooner; the price
// is that a job still running on a live process after d runs a second time
// in parallel, so jobs must be safe to repeat. d must be at least the job
// timeout (see WithJobTimeout), so that only jobs whose context has already
// been cancelled count as stuck, and it needs a job timeout. The rescuer
// runs in one process (see WithoutMaintenance) when it starts and then every
// 30 seconds (not configurable in River), and rescued jobs wait for River's
// scheduler (every 5 s): a dead process's jobs run again roughly between d
// and d+35s after they started.
func WithRescueStuckJobsAfter(d time.Duration) Option {
	return func(c *config) { c.rescueAfter = d }
}

// WithoutMaintenance keeps this process out of River's leader election, so
// it never runs River's maintenance: rescuing the jobs of dead processes
// (see WithRescueStuckJobsAfter), moving retries and delayed jobs to
// available when they come due more than 5 seconds after being set, and
// deleting old finished jobs. It still works jobs. Use it for processes that
// come and go, so maintenance stays with long-lived ones; at least one
// started process per database must run without it.
func WithoutMaintenance() Option { return func(c *config) { c.noLeader = true } }

// WithoutMigrate skips running River's migrations on construction, for
// deployments that migrate separately (e.g. with the river CLI).
func WithoutMigrate() Option { return func(c *config) { c.migrate = false } }

// WithRiverConfig edits River's configuration after this package filled it
// in: an escape hatch for River settings not covered here. Append to
// Middleware rather than replace it; this package adds its own insert
// middleware after fn ran, innermost, to Middleware (or to
// JobInsertMiddleware if fn used the older JobInsertMiddleware and
// WorkerMiddleware fields, since River refuses a mix).
func WithRiverConfig(fn func(*river.Config)) Option {
	return func(c *config) { c.tweak = append(c.tweak, fn) }
}

// NewSQLite returns a queue storing jobs in the SQLite database db (opened
// with the modernc.org/sqlite driver). SQLite allows one writer at a time,
// so give db a single connection (db.SetMaxOpenConns(1)) or a busy timeout.
// The caller keeps ownership of db; close it after Stop.
func NewSQLite(ctx context.Context, db *sql.DB, workers *queue.Workers, opts ...Option) (*Queue[*sql.Tx], error) {
	if db == nil {
		return nil, errors.New("riverqueue: NewSQLite: db is nil")
	}
	return newQueue(ctx, riversqlite.New(db), workers, opts, nil)
}

// OpenSQLite opens (creating if needed) the SQLite file at path with WAL
// journaling and a busy timeout, on one connection as River recommends, and
// returns a queue on it. Close closes the database.
func OpenSQLite(ctx context.Context, path string, workers *queue.Workers, opts ...Option) (*Queue[*sql.Tx], error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("riverqueue: OpenSQLite: path %q must be non-empty and contain no '?' or '#'; open the database yourself and use NewSQLite", path)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("riverqueue: opening SQLite file %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteConns)
	q, err := NewSQLite(ctx, db, workers, opts...)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	q.closeFn = db.Close
	return q, nil
}

// NewPostgres returns a queue storing jobs in Postgres through pool. Every
// process given the same database (and schema) shares the jobs; each works
// its own queues with its own worker limits. The caller keeps ownership of
// pool; close it after Stop.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool, workers *queue.Workers, opts ...Option) (*Queue[pgx.Tx], error) {
	if pool == nil {
		return nil, errors.New("riverqueue: NewPostgres: pool is nil")
	}
	return newQueue(ctx, riverpgxv5.New(pool), workers, opts, func(ctx context.Context, schema string) (func(), error) {
		return lockPostgresMigrations(ctx, pool, schema)
	})
}

// lockPostgresMigrations serializes River migrations of one schema across
// processes with a session advisory lock, taken on a connection of its own
// so the migrator can use the pool (even a one-connection pool) meanwhile.
// River's migrator takes no lock: processes starting together on a fresh
// database all try to create the same tables, and all but one fail.
func lockPostgresMigrations(ctx context.Context, pool *pgxpool.Pool, schema string) (func(), error) {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("connecting to lock migrations: %w", err)
	}
	key := fnv.New64a()
	_, _ = key.Write([]byte("connkit/riverqueue migrate " + schema))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(key.Sum64())); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("waiting for another process's migrations: %w", err)
	}
	// Closing the session releases the lock.
	return func() { _ = conn.Close(context.WithoutCancel(ctx)) }, nil
}

func newQueue[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], workers *queue.Workers, opts []Option, lockMigrations func(context.Context, string) (func(), error)) (*Queue[TTx], error) {
	cfg := config{workers: 10, backoff: queue.DefaultBackoff, migrate: true, timeout: queue.DefaultJobTimeout}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if workers == nil {
		workers = queue.NewWorkers()
	}
	if cfg.backoff == nil {
		cfg.backoff = queue.DefaultBackoff
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.rescueAfter < 0 {
		return nil, fmt.Errorf("riverqueue: %w: WithRescueStuckJobsAfter(%s) is negative", queue.ErrInvalidOption, cfg.rescueAfter)
	}
	if cfg.rescueAfter > 0 && cfg.timeout <= 0 {
		return nil, fmt.Errorf("riverqueue: %w: WithRescueStuckJobsAfter has no effect without a job timeout: River never rescues jobs that have no time limit", queue.ErrInvalidOption)
	}
	if cfg.rescueAfter > 0 && cfg.rescueAfter < cfg.timeout {
		return nil, fmt.Errorf("riverqueue: %w: WithRescueStuckJobsAfter(%s) is shorter than the job timeout %s; jobs still running within their timeout would be run twice", queue.ErrInvalidOption, cfg.rescueAfter, cfg.timeout)
	}
	queues := map[string]river.QueueConfig{queue.DefaultQueueName: {MaxWorkers: max(cfg.workers, 1)}}
	for name, n := range cfg.queues {
		if err := queue.ValidQueueName(name); err != nil {
			return nil, fmt.Errorf("riverqueue: WithQueue: %w", err)
		}
		queues[name] = river.QueueConfig{MaxWorkers: max(n, 1)}
	}
	if cfg.migrate {
		if err := migrate(ctx, driver, cfg, lockMigrations); err != nil {
			return nil, err
		}
	}

	rw := river.NewWorkers()
	for _, kind := range workers.Kinds() {
		river.AddWorkerArgs(rw, rawArgs{kind: kind}, river.Worker[rawArgs](&riverWorker{kind: kind, workers: workers}))
	}

	rc := &river.Config{
		Logger:                 cfg.logger,
		MaxAttempts:            queue.DefaultMaxAttempts,
		Queues:                 queues,
		Workers:                rw,
		RetryPolicy:            retryPolicy{backoff: cfg.backoff},
		Schema:                 cfg.schema,
		JobTimeout:             cmp.Or(max(cfg.timeout, -1), -1),
		RescueStuckJobsAfter:   cfg.rescueAfter,
		LeaderElectionDisabled: cfg.noLeader,
	}
	if cfg.pollInterval > 0 {
		rc.FetchPollInterval = cfg.pollInterval
		rc.FetchCooldown = min(cfg.pollInterval, river.FetchCooldownDefault)
	}
	for _, fn := range cfg.tweak {
		fn(rc)
	}
	// Added after the tweaks so a tweak cannot drop it, innermost so it sees
	// the final scheduled time, and in whichever middleware field the tweaks
	// used: River refuses both at once.
	if len(rc.JobInsertMiddleware) > 0 || len(rc.WorkerMiddleware) > 0 {
		rc.JobInsertMiddleware = append(rc.JobInsertMiddleware, &soonAvailable{})
	} else {
		rc.Middleware = append(rc.Middleware, &soonAvailable{})
	}
	client, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("riverqueue: creating River client: %w", err)
	}
	return &Queue[TTx]{client: client, workers: workers}, nil
}

func migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], cfg config, lock func(context.Context, string) (func(), error)) error {
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: cfg.logger, Schema: cfg.schema})
	if err != nil {
		return fmt.Errorf("riverqueue: preparing River migrations: %w", err)
	}
	if lock != nil {
		unlock, err := lock(ctx, cfg.schema)
		if err != nil {
			return fmt.Errorf("riverqueue: migrating River tables up (schema %q): %w", cfg.schema, err)
		}
		defer unlock()
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("riverqueue: migrating River tables up (schema %q): %w", cfg.schema, err)
	}
	return nil
}

// Client returns the River client, for River features this package does
// not wrap (transactional inserts with InsertTx, queue pausing, events).
func (q *Queue[TTx]) Client() *river.Client[TTx] { return q.client }

// Close releases what OpenSQLite opened. Call it after Stop; it is a no-op
// for queues built on a caller-owned database.
func (q *Queue[TTx]) Close() error {
	if q.closeFn == nil {
		return nil
	}
	return q.closeFn()
}

// Enqueue adds a job. See queue.Queue.
func (q *Queue[TTx]) Enqueue(ctx context.Context, args queue.Args, opts ...queue.EnqueueOption) (queue.JobInfo, error) {
	a, o, err := q.prepare(args, opts)
	if err != nil {
		return queue.JobInfo{}, err
	}
	res, err := q.client.Insert(ctx, a, o)
	return q.inserted(a, res, err)
}

// EnqueueTx adds a job inside the caller's transaction, so it is only
// visible (and only runs) if the transaction commits: use it to enqueue work
// together with the database change that calls for it.
func (q *Queue[TTx]) EnqueueTx(ctx context.Context, tx TTx, args queue.Args, opts ...queue.EnqueueOption) (queue.JobInfo, error) {
	a, o, err := q.prepare(args, opts)
	if err != nil {
		return queue.JobInfo{}, err
	}
	res, err := q.client.InsertTx(ctx, tx, a, o)
	return q.inserted(a, res, err)
}

func (q *Queue[TTx]) prepare(args queue.Args, opts []queue.EnqueueOption) (insertArgs, *river.InsertOpts, error) {
	raw, err := queue.EncodeArgs(args)
	if err != nil {
		return insertArgs{}, nil, err
	}
	kind := args.Kind()
	if err := q.workers.CheckKind(kind); err != nil {
		return insertArgs{}, nil, err
	}
	o, err := queue.ResolveOptions(time.Now(), opts...)
	if err != nil {
		return insertArgs{}, nil, err
	}
	ins := &river.InsertOpts{
		MaxAttempts: o.MaxAttempts,
		Priority:    o.Priority,
		Queue:       o.QueueName,
		ScheduledAt: o.RunAt,
	}
	if o.IdentityKey != "" {
		raw, err = sjson.SetBytes(raw, identityField, o.IdentityKey)
		if err != nil {
			return insertArgs{}, nil, fmt.Errorf("%w: adding identity key to %s args: %w", queue.ErrInvalidArgs, kind, err)
		}
		ins.UniqueOpts = river.UniqueOpts{
			ByArgs:      true, // only the field tagged river:"unique": the key
			ExcludeKind: true,
			ByState: []rivertype.JobState{
				rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
				rivertype.JobStateRetryable, rivertype.JobStateScheduled,
			},
		}
	}
	return insertArgs{kind: kind, raw: raw}, ins, nil
}

func (q *Queue[TTx]) inserted(a insertArgs, res *rivertype.JobInsertResult, err error) (queue.JobInfo, error) {
	if err != nil {
		var unknown *river.UnknownJobKindError
		if errors.As(err, &unknown) {
			return queue.JobInfo{}, fmt.Errorf("%w %q: it was registered after the River queue was created; register every worker first", queue.ErrUnknownKind, a.kind)
		}
		return queue.JobInfo{}, fmt.Errorf("riverqueue: enqueueing %s job: %w", a.kind, err)
	}
	info := toInfo(res.Job)
	info.Duplicate = res.UniqueSkippedAsDuplicate
	return info, nil
}

// Start starts working jobs. Cancelling ctx is a hard stop: running jobs see
// their context cancelled.
func (q *Queue[TTx]) Start(ctx context.Context) error {
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("riverqueue: starting River client: %w", err)
	}
	return nil
}

// Stop stops fetching jobs and waits for running ones. When ctx is done
// first, running jobs have their context cancelled and Stop returns ctx's
// error; their rows are settled when they return (or rescued by River later
// if the process exits first).
func (q *Queue[TTx]) Stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		done, cancel := context.WithCancel(context.Background())
		cancel()
		_ = q.client.StopAndCancel(done) // cancels job contexts, does not wait
		return fmt.Errorf("riverqueue: stop: running jobs did not finish in time and were cancelled: %w", ctx.Err())
	}
	return fmt.Errorf("riverqueue: stopping River client: %w", err)
}

// GetJob returns one job.
func (q *Queue[TTx]) GetJob(ctx context.Context, id int64) (queue.JobInfo, error) {
	row, err := q.client.JobGet(ctx, id)
	if err != nil {
		return queue.JobInfo{}, notFound(err, "getting", id)
	}
	return toInfo(row), nil
}

// RetryJob makes a job that is not running available now; a job that used
// up its attempts gets one more. A running job is returned unchanged.
func (q *Queue[TTx]) RetryJob(ctx context.Context, id int64) (queue.JobInfo, error) {
	row, err := q.client.JobRetry(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		// River updates nothing (and finds no row) for running jobs and
		// for available ones already due.
		return q.GetJob(ctx, id)
	}
	if isUniqueViolation(err) {
		// Only the identity key is unique: another pending job holds it.
		return queue.JobInfo{}, fmt.Errorf("%w: cannot retry job %d: another pending job has the same identity key", queue.ErrInvalidOption, id)
	}
	if err != nil {
		return queue.JobInfo{}, notFound(err, "retrying", id)
	}
	return toInfo(row), nil
}

// isUniqueViolation reports whether err is a unique constraint violation
// from Postgres or SQLite.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	var sqliteErr *sqlite.Error
	return errors.As(err, &pgErr) && pgErr.Code == "23505" ||
		errors.As(err, &sqliteErr) && sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// CancelJob cancels a job that has not finished. A running job is marked
// for cancellation and its context is cancelled; it ends cancelled if it
// returns an error.
func (q *Queue[TTx]) CancelJob(ctx context.Context, id int64) (queue.JobInfo, error) {
	row, err := q.client.JobCancel(ctx, id)
	if err != nil {
		return queue.JobInfo{}, notFound(err, "cancelling", id)
	}
	return toInfo(row), nil
}

// ListJobs yields the jobs matching f in ID order, a page at a time.
func (q *Queue[TTx]) ListJobs(ctx context.Context, f queue.ListFilter) iter.Seq2[queue.JobInfo, error] {
	return func(yield func(queue.JobInfo, error) bool) {
		const pageSize = 100
		params := river.NewJobListParams().OrderBy(river.JobListOrderByID, river.SortOrderAsc)
		if len(f.States) > 0 {
			states := make([]rivertype.JobState, 0, len(f.States)+1)
			for _, s := range f.States {
				states = append(states, rivertype.JobState(s))
				if s == queue.StateScheduled {
					// Delayed jobs due soon are stored available; toInfo
					// reports them scheduled.
					states = append(states, rivertype.JobStateAvailable)
				}
			}
			params = params.States(states...)
		}
		if len(f.Kinds) > 0 {
			params = params.Kinds(f.Kinds...)
		}
		if len(f.Queues) > 0 {
			params = params.Queues(f.Queues...)
		}
		seen := 0
		for {
			res, err := q.client.JobList(ctx, params.First(pageSize))
			if err != nil {
				yield(queue.JobInfo{}, fmt.Errorf("riverqueue: listing jobs: %w", err))
				return
			}
			for _, row := range res.Jobs {
				info := toInfo(row)
				if len(f.States) > 0 && !containsState(f.States, info.State) {
					continue
				}
				if !yield(info, nil) {
					return
				}
				seen++
				if f.Limit > 0 && seen >= f.Limit {
					return
				}
			}
			if len(res.Jobs) < pageSize || res.LastCursor == nil {
				return
			}
			params = params.After(res.LastCursor)
		}
	}
}

func containsState(states []queue.State, s queue.State) bool {
	for _, x := range states {
		if x == s {
			return true
		}
	}
	return false
}

func notFound(err error, doing string, id int64) error {
	if errors.Is(err, rivertype.ErrNotFound) {
		return fmt.Errorf("%w: %s job %d", queue.ErrJobNotFound, doing, id)
	}
	return fmt.Errorf("riverqueue: %s job %d: %w", doing, id, err)
}

// toInfo converts a River row. An available row whose scheduled time is
// still ahead is reported as scheduled (see soonAvailable).
func toInfo(row *rivertype.JobRow) queue.JobInfo {
	raw, key := splitIdentity(row.EncodedArgs)
	info := queue.JobInfo{
		ID:          row.ID,
		Kind:        row.Kind,
		Queue:       row.Queue,
		State:       queue.State(row.State),
		Priority:    row.Priority,
		Attempt:     row.Attempt,
		MaxAttempts: row.MaxAttempts,
		IdentityKey: key,
		Args:        raw,
		CreatedAt:   row.CreatedAt,
		ScheduledAt: row.ScheduledAt,
	}
	switch row.State {
	case rivertype.JobStateAvailable:
		if row.ScheduledAt.After(time.Now()) {
			info.State = queue.StateScheduled
		}
	case rivertype.JobStatePending:
		info.State = queue.StateScheduled
	}
	if row.FinalizedAt != nil {
		info.FinalizedAt = *row.FinalizedAt
	}
	for _, e := range row.Errors {
		info.Errors = append(info.Errors, queue.AttemptError{At: e.At, Attempt: e.Attempt, Error: e.Error})
	}
	return info
}

// splitIdentity removes the identity key field from encoded args.
func splitIdentity(encoded []byte) (json.RawMessage, string) {
	res := gjson.GetBytes(encoded, identityField)
	if !res.Exists() {
		return json.RawMessage(encoded), ""
	}
	stripped, err := sjson.DeleteBytes(encoded, identityField)
	if err != nil {
		return json.RawMessage(encoded), res.String()
	}
	return json.RawMessage(stripped), res.String()
}

// insertArgs is what Enqueue hands to River: the kind, the encoded args
// (with the identity key field when there is one), and a unique-tagged field
// so River's unique key covers only the identity key.
type insertArgs struct {
	kind string
	raw  []byte
	// IdentityKey is never set: it exists for River's struct-tag lookup of
	// unique fields; the value is read from raw.
	IdentityKey string `json:"_connkit_identity_key" river:"unique"` //nolint:unused
}

func (a insertArgs) Kind() string                 { return a.kind }
func (a insertArgs) MarshalJSON() ([]byte, error) { return a.raw, nil }

// rawArgs is what River's worker decodes: the raw JSON, left for
// queue.Workers to decode into the registered type.
type rawArgs struct {
	kind string
	raw  []byte
	// retryAfter is set by the worker when the job returned RetryAfter.
	retryAfter    time.Duration
	hasRetryAfter bool
}

func (a rawArgs) Kind() string { return a.kind }

func (a *rawArgs) UnmarshalJSON(b []byte) error {
	a.raw = append([]byte(nil), b...)
	return nil
}

type riverWorker struct {
	river.WorkerDefaults[rawArgs]
	kind    string
	workers *queue.Workers
}

func (w *riverWorker) Work(ctx context.Context, job *river.Job[rawArgs]) error {
	raw, key := splitIdentity(job.Args.raw)
	meta := queue.JobMeta{
		ID:          job.ID,
		Kind:        job.Kind,
		Queue:       job.Queue,
		Priority:    job.Priority,
		Attempt:     job.Attempt,
		MaxAttempts: job.MaxAttempts,
		IdentityKey: key,
		CreatedAt:   job.CreatedAt,
	}
	err := w.workers.Work(ctx, meta, raw)
	if err == nil {
		return nil
	}
	var perm *queue.PermanentError
	if errors.As(err, &perm) {
		return river.JobCancel(err)
	}
	var after *queue.RetryAfterError
	if errors.As(err, &after) {
		job.Args.retryAfter, job.Args.hasRetryAfter = after.Delay, true
	}
	return err
}

// NextRetry honours RetryAfter. It is called after Work returned, and the
// time is computed now so it is never before River's own "now".
func (w *riverWorker) NextRetry(job *river.Job[rawArgs]) time.Time {
	if !job.Args.hasRetryAfter {
		return time.Time{}
	}
	return time.Now().Add(job.Args.retryAfter)
}

// retryPolicy applies queue.Backoff to River retries.
type retryPolicy struct{ backoff queue.Backoff }

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(max(p.backoff(job.Attempt), 0))
}

// soonAvailable inserts jobs due within River's scheduler interval as
// available with their future scheduled time. River's fetch query never
// takes a job before its scheduled time, and River's executor does the same
// for short retries; without it, a job delayed by 200ms could wait up to 5s
// for the scheduler.
type soonAvailable struct{ river.MiddlewareDefaults }

func (*soonAvailable) InsertMany(ctx context.Context, many []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	now := time.Now()
	for _, p := range many {
		if p.State == rivertype.JobStateScheduled && p.ScheduledAt != nil && p.ScheduledAt.Sub(now) <= schedulerInterval {
			p.State = rivertype.JobStateAvailable
		}
	}
	return doInner(ctx)
}
