// Package riverqueue runs queue workers on River
// (github.com/riverqueue/river), the durable engine: jobs are rows in a
// database, survive restarts, and are shared by every process pointed at the
// same database.
//
//   - [New]: the app's own connkit database (sqlstore.DB), SQLite or
//     Postgres, so one database holds the bindings, sync state, records and
//     jobs, and a job can be enqueued in the same transaction as the record
//     it is about ([queue.TxEnqueuer]). On Postgres River polls for new jobs
//     (database/sql has no LISTEN); every process still shares the work.
//   - [NewPostgres]: Postgres through a pgxpool, with LISTEN/NOTIFY so new
//     jobs start without waiting for a poll; EnqueueTx takes a pgx.Tx.
//
// Both take the options of package queue (WithWorkers, WithQueue,
// WithBackoff, WithJobTimeout, WithLogger) plus [WithRiverConfig] and
// [WithoutMigrate]. River's tables are created or upgraded on construction
// (rivermigrate) unless WithoutMigrate is given. On Postgres, processes
// starting together take turns (an advisory lock per schema), so a fleet can
// start on a fresh database. River's migrator itself takes no lock, so with
// SQLite let one process create the tables before others open the file.
//
// Mapping onto River: priorities 1..4 are River's; [queue.Permanent] is
// river.JobCancel (the job ends cancelled); [queue.RetryAfter] is a normal
// failed attempt whose next retry time is chosen by the worker, so it counts
// towards max attempts (River's JobSnooze would not, and could retry for
// ever); the identity key is a River unique job (by args and queue, across
// kinds, in states available, pending, scheduled, running and retryable),
// stored as the extra top-level field "_connkit_identity_key" in the args
// JSON and removed again before the worker decodes them. River's own client
// is reachable through Client for anything not covered here.
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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/internal/queuekit"
	"github.com/connkit/connkit/sqlstore"
)

// identityField is the args field that carries the identity key.
const identityField = "_connkit_identity_key"

// schedulerInterval is River's job scheduler interval (not configurable):
// River itself treats retries due within it as available at once.
const schedulerInterval = 5 * time.Second

// Queue is a queue.Queue on River. TTx is the driver's transaction type:
// *sql.Tx for [New] (so a Queue[*sql.Tx] is a [queue.TxEnqueuer]), pgx.Tx
// for [NewPostgres].
type Queue[TTx any] interface {
	queue.Queue
	// EnqueueTx adds a job inside the caller's transaction, which must be
	// on the queue's database: the job is visible, and runs, only if tx
	// commits. On SQLite, keep the transaction short: it holds the one
	// writer connection, which River's own work also needs.
	EnqueueTx(ctx context.Context, tx TTx, args queue.Args, opts ...queue.EnqueueOption) (queue.JobInfo, error)
	// Client returns the River client, for River features this package
	// does not wrap (queue pausing, events, periodic jobs).
	Client() *river.Client[TTx]
}

// riverQueue implements Queue.
type riverQueue[TTx any] struct {
	client  *river.Client[TTx]
	workers *queuekit.Workers
}

var (
	_ Queue[*sql.Tx]   = (*riverQueue[*sql.Tx])(nil)
	_ Queue[pgx.Tx]    = (*riverQueue[pgx.Tx])(nil)
	_ queue.TxEnqueuer = (*riverQueue[*sql.Tx])(nil)
)

// setting is what this package's options add to queue's configuration.
type setting struct {
	tweak     func(*river.Config)
	noMigrate bool
}

// WithRiverConfig edits River's configuration after this package filled it
// in: the way to set River's own settings, for example
//
//   - Schema: a Postgres schema (or attached SQLite database) for River's
//     tables; migrations use it too.
//   - FetchPollInterval: how often a process polls for jobs that became
//     due (default 1s); short values suit tests.
//   - RescueStuckJobsAfter: how long a job may stay running before River
//     decides the process running it died and runs it again (default: the
//     job timeout plus an hour). It must be at least the job timeout, which
//     must be set, so only jobs whose context was already cancelled count as
//     stuck; the rescuer runs every 30s and rescued jobs wait for River's
//     scheduler (5s).
//   - LeaderElectionDisabled: keep this process out of River's maintenance
//     (rescues, scheduling, cleanup of old jobs); at least one started
//     process per database must take part.
//   - CompletedJobRetentionPeriod and friends: how long finished jobs stay.
//
// Append to Middleware rather than replace it; this package adds its own
// insert middleware after fn ran, innermost, to Middleware (or to
// JobInsertMiddleware if fn used the older JobInsertMiddleware and
// WorkerMiddleware fields, since River refuses a mix). The in-process pool
// refuses this option.
func WithRiverConfig(fn func(*river.Config)) queue.Option {
	return func(c *queuekit.Config) {
		c.Driver = append(c.Driver, setting{tweak: fn})
		c.DriverOnly = append(c.DriverOnly, "riverqueue.WithRiverConfig")
	}
}

// WithoutMigrate skips running River's migrations on construction, for
// deployments that migrate separately (e.g. with the river CLI) and for
// processes started after one that migrated.
func WithoutMigrate() queue.Option {
	return func(c *queuekit.Config) {
		c.Driver = append(c.Driver, setting{noMigrate: true})
		c.DriverOnly = append(c.DriverOnly, "riverqueue.WithoutMigrate")
	}
}

// New returns a queue storing its jobs in db, the app's connkit database:
// River's SQLite driver on SQLite, River's database/sql driver on Postgres
// (polling for new jobs, every second unless FetchPollInterval is set with
// WithRiverConfig). The queue implements [queue.TxEnqueuer]: begin a
// transaction on db.SQL(), write the app's record, EnqueueTx its export,
// commit. The caller keeps ownership of db; close it after Stop.
func New(ctx context.Context, db *sqlstore.DB, workers *queue.Workers, opts ...queue.Option) (Queue[*sql.Tx], error) {
	if db == nil {
		return nil, errors.New("riverqueue: New: db is nil")
	}
	switch db.Dialect() {
	case sqlstore.SQLite:
		return newQueue(ctx, riversqlite.New(db.SQL()), workers, opts, nil)
	case sqlstore.Postgres:
		return newQueue(ctx, riverdatabasesql.New(db.SQL()), workers, opts, func(ctx context.Context, schema string) (func(), error) {
			return lockSQLMigrations(ctx, db.SQL(), schema)
		})
	}
	return nil, fmt.Errorf("riverqueue: New: unsupported dialect %s", db.Dialect())
}

// NewPostgres returns a queue storing jobs in Postgres through pool. Every
// process given the same database (and schema) shares the jobs; each works
// its own queues with its own worker limits. The caller keeps ownership of
// pool; close it after Stop.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool, workers *queue.Workers, opts ...queue.Option) (Queue[pgx.Tx], error) {
	if pool == nil {
		return nil, errors.New("riverqueue: NewPostgres: pool is nil")
	}
	return newQueue(ctx, riverpgxv5.New(pool), workers, opts, func(ctx context.Context, schema string) (func(), error) {
		return lockPostgresMigrations(ctx, pool.Config().ConnConfig, schema)
	})
}

// lockSQLMigrations is lockPostgresMigrations for a database/sql pool opened
// with pgx's stdlib driver: it reads the connection settings from one of the
// pool's connections.
func lockSQLMigrations(ctx context.Context, db *sql.DB, schema string) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to lock migrations: %w", err)
	}
	var cfg *pgx.ConnConfig
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the Postgres database/sql driver is %T, want pgx's stdlib", dc)
		}
		cfg = c.Conn().Config()
		return nil
	})
	_ = conn.Close()
	if err != nil {
		return nil, fmt.Errorf("locking migrations: %w", err)
	}
	return lockPostgresMigrations(ctx, cfg, schema)
}

// lockPostgresMigrations serializes River migrations of one schema across
// processes with a session advisory lock, taken on a connection of its own
// so the migrator can use the pool (even a one-connection pool) meanwhile.
// River's migrator takes no lock: processes starting together on a fresh
// database all try to create the same tables, and all but one fail.
func lockPostgresMigrations(ctx context.Context, cfg *pgx.ConnConfig, schema string) (func(), error) {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
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

func newQueue[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], workers *queue.Workers, opts []queue.Option, lockMigrations func(context.Context, string) (func(), error)) (*riverQueue[TTx], error) {
	cfg := queuekit.NewConfig(opts)
	if cfg.Err != nil {
		return nil, fmt.Errorf("riverqueue: %w", cfg.Err)
	}
	if len(cfg.PoolOnly) > 0 {
		return nil, fmt.Errorf("riverqueue: %w: %v configure the in-process pool, not River", queue.ErrInvalid, cfg.PoolOnly)
	}
	if workers == nil {
		workers = &queue.Workers{}
	}
	kit := (*queuekit.Workers)(workers)
	migrateUp := true
	// The workers' own queue (SetQueue) replaces "default": a client that also worked
	// "default" would take the jobs of other apps sharing the database.
	queues := map[string]river.QueueConfig{kit.Queue(): {MaxWorkers: cfg.Workers}}
	for name, n := range cfg.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: n}
	}
	rw := river.NewWorkers()
	for _, kind := range kit.Kinds() {
		river.AddWorkerArgs(rw, rawArgs{kind: kind}, river.Worker[rawArgs](&riverWorker{kind: kind, workers: kit}))
	}
	rc := &river.Config{
		Logger:      cfg.Logger,
		MaxAttempts: queuekit.DefaultMaxAttempts,
		Queues:      queues,
		Workers:     rw,
		RetryPolicy: retryPolicy{backoff: cfg.Backoff},
		JobTimeout:  cmp.Or(max(cfg.Timeout, -1), -1),
	}
	for _, d := range cfg.Driver {
		s := d.(setting)
		if s.noMigrate {
			migrateUp = false
		}
		if s.tweak != nil {
			s.tweak(rc)
		}
	}
	if rc.FetchPollInterval > 0 && rc.FetchCooldown == 0 {
		rc.FetchCooldown = min(rc.FetchPollInterval, river.FetchCooldownDefault)
	}
	if err := checkRescue(rc); err != nil {
		return nil, err
	}
	// Added after the tweaks so a tweak cannot drop it, innermost so it sees
	// the final scheduled time, and in whichever middleware field the tweaks
	// used: River refuses both at once.
	if len(rc.JobInsertMiddleware) > 0 || len(rc.WorkerMiddleware) > 0 {
		rc.JobInsertMiddleware = append(rc.JobInsertMiddleware, &soonAvailable{})
	} else {
		rc.Middleware = append(rc.Middleware, &soonAvailable{})
	}
	if migrateUp {
		if err := migrate(ctx, driver, rc, lockMigrations); err != nil {
			return nil, err
		}
	}
	client, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("riverqueue: creating River client: %w", err)
	}
	return &riverQueue[TTx]{client: client, workers: kit}, nil
}

// checkRescue refuses a RescueStuckJobsAfter that would run live jobs twice
// or never take effect.
func checkRescue(rc *river.Config) error {
	d, timeout := rc.RescueStuckJobsAfter, rc.JobTimeout
	switch {
	case d < 0:
		return fmt.Errorf("riverqueue: %w: RescueStuckJobsAfter %s is negative", queue.ErrInvalid, d)
	case d > 0 && timeout <= 0:
		return fmt.Errorf("riverqueue: %w: RescueStuckJobsAfter has no effect without a job timeout: River never rescues jobs that have no time limit", queue.ErrInvalid)
	case d > 0 && d < timeout:
		return fmt.Errorf("riverqueue: %w: RescueStuckJobsAfter %s is shorter than the job timeout %s; jobs still running within their timeout would be run twice", queue.ErrInvalid, d, timeout)
	}
	return nil
}

func migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], rc *river.Config, lock func(context.Context, string) (func(), error)) error {
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: rc.Logger, Schema: rc.Schema})
	if err != nil {
		return fmt.Errorf("riverqueue: preparing River migrations: %w", err)
	}
	if lock != nil {
		unlock, err := lock(ctx, rc.Schema)
		if err != nil {
			return fmt.Errorf("riverqueue: migrating River tables up (schema %q): %w", rc.Schema, err)
		}
		defer unlock()
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("riverqueue: migrating River tables up (schema %q): %w", rc.Schema, err)
	}
	return nil
}

func (q *riverQueue[TTx]) Client() *river.Client[TTx] { return q.client }

// Enqueue adds a job. See queue.Queue.
func (q *riverQueue[TTx]) Enqueue(ctx context.Context, args queue.Args, opts ...queue.EnqueueOption) (queue.JobInfo, error) {
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
func (q *riverQueue[TTx]) EnqueueTx(ctx context.Context, tx TTx, args queue.Args, opts ...queue.EnqueueOption) (queue.JobInfo, error) {
	a, o, err := q.prepare(args, opts)
	if err != nil {
		return queue.JobInfo{}, err
	}
	res, err := q.client.InsertTx(ctx, tx, a, o)
	return q.inserted(a, res, err)
}

func (q *riverQueue[TTx]) prepare(args queue.Args, opts []queue.EnqueueOption) (insertArgs, *river.InsertOpts, error) {
	raw, err := queuekit.EncodeArgs(args)
	if err != nil {
		return insertArgs{}, nil, err
	}
	kind := args.Kind()
	if err := q.workers.CheckKind(kind); err != nil {
		return insertArgs{}, nil, err
	}
	o, err := queuekit.ResolveOptions(time.Now(), q.workers.Queue(), opts)
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
			return insertArgs{}, nil, fmt.Errorf("%w: adding identity key to %s args: %w", queue.ErrInvalid, kind, err)
		}
		ins.UniqueOpts = river.UniqueOpts{
			ByArgs:      true, // only the field tagged river:"unique": the key
			ByQueue:     true, // a twin left in a queue no client works must not block it
			ExcludeKind: true,
			ByState: []rivertype.JobState{
				rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
				rivertype.JobStateRetryable, rivertype.JobStateScheduled,
			},
		}
	}
	return insertArgs{kind: kind, raw: raw}, ins, nil
}

func (q *riverQueue[TTx]) inserted(a insertArgs, res *rivertype.JobInsertResult, err error) (queue.JobInfo, error) {
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
func (q *riverQueue[TTx]) Start(ctx context.Context) error {
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("riverqueue: starting River client: %w", err)
	}
	return nil
}

// Stop stops fetching jobs and waits for running ones. When ctx is done
// first, running jobs have their context cancelled and Stop returns ctx's
// error; their rows are settled when they return (or rescued by River later
// if the process exits first).
func (q *riverQueue[TTx]) Stop(ctx context.Context) error {
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
func (q *riverQueue[TTx]) GetJob(ctx context.Context, id int64) (queue.JobInfo, error) {
	row, err := q.client.JobGet(ctx, id)
	if err != nil {
		return queue.JobInfo{}, notFound(err, "getting", id)
	}
	return toInfo(row), nil
}

// RetryJob makes a job that is not running available now; a job that used
// up its attempts gets one more. A running job is returned unchanged.
func (q *riverQueue[TTx]) RetryJob(ctx context.Context, id int64) (queue.JobInfo, error) {
	row, err := q.client.JobRetry(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		// River updates nothing (and finds no row) for running jobs and
		// for available ones already due.
		return q.GetJob(ctx, id)
	}
	if isUniqueViolation(err) {
		// Only the identity key is unique: another pending job holds it.
		return queue.JobInfo{}, fmt.Errorf("%w: cannot retry job %d: another pending job has the same identity key", queue.ErrInvalid, id)
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
func (q *riverQueue[TTx]) CancelJob(ctx context.Context, id int64) (queue.JobInfo, error) {
	row, err := q.client.JobCancel(ctx, id)
	if err != nil {
		return queue.JobInfo{}, notFound(err, "cancelling", id)
	}
	return toInfo(row), nil
}

// ListJobs yields the jobs matching f in ID order, a page at a time.
func (q *riverQueue[TTx]) ListJobs(ctx context.Context, f queue.ListFilter) iter.Seq2[queue.JobInfo, error] {
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
	workers *queuekit.Workers
}

func (w *riverWorker) Work(ctx context.Context, job *river.Job[rawArgs]) error {
	raw, key := splitIdentity(job.Args.raw)
	meta := queuekit.Meta{
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
	var perm *queuekit.PermanentError
	if errors.As(err, &perm) {
		return river.JobCancel(err)
	}
	var after *queuekit.RetryAfterError
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
type retryPolicy struct {
	backoff func(attempt int) time.Duration
}

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
