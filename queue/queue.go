// Package queue runs work later: the "with_delay" of connkit.
//
// A job is a kind plus JSON-encodable arguments. Workers are registered per
// kind with [AddWorker] in a [Workers] registry, and a [Queue] runs them:
//
//   - [NewPool] (this package) is an in-process worker pool: bounded workers,
//     priority order, delayed jobs, retries with backoff and a graceful drain
//     on Stop. Jobs live in memory and are lost when the process exits. It is
//     the default for tests and simple apps.
//   - package queue/riverqueue runs the same workers on River
//     (github.com/riverqueue/river): durable in the app's own SQLite or
//     Postgres database, shared by every process pointed at it, and able to
//     enqueue inside the app's transactions ([TxEnqueuer]).
//
// Both behave the same way and pass one conformance suite (queue/queuetest):
// arguments are JSON-encoded at Enqueue (arguments that do not survive a JSON
// round trip are refused there), priorities run 1 (first) to 4 (last), a
// failing job is retried with exponential backoff until its max attempts and
// then discarded, [Permanent] cancels a job at once, [RetryAfter] chooses the
// next retry time, and an identity key keeps a second job with the same key
// out while the first one is still pending. Neither logs unless given a
// logger with [WithLogger].
package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"iter"
	"time"

	"github.com/connkit/connkit/queue/internal/queuekit"
)

// Args are the arguments of a job. Kind names the job type and selects the
// worker; it must be stable, as it is stored with the job. The value is
// encoded as a JSON object. Args has the same shape as river.JobArgs, so the
// same types work with River directly.
type Args interface {
	Kind() string
}

// State is where a job is in its life cycle. The values are River's.
type State string

// Job states. Completed, discarded and cancelled are final: no worker picks
// the job up again unless it is retried with RetryJob. Discarded and
// cancelled jobs are the failed ones.
const (
	// StateAvailable: ready to run as soon as a worker is free.
	StateAvailable State = "available"
	// StateScheduled: waiting for its run-at time.
	StateScheduled State = "scheduled"
	// StateRunning: a worker is running it.
	StateRunning State = "running"
	// StateRetryable: failed, waiting for its next attempt.
	StateRetryable State = "retryable"
	// StateCompleted: ran successfully. Final.
	StateCompleted State = "completed"
	// StateDiscarded: failed on its last allowed attempt. Final.
	StateDiscarded State = "discarded"
	// StateCancelled: cancelled with CancelJob or by a Permanent error. Final.
	StateCancelled State = "cancelled"
)

// final reports whether no worker will pick the job up again on its own.
func (s State) final() bool {
	return s == StateCompleted || s == StateDiscarded || s == StateCancelled
}

// Job is one run of a job, handed to its worker with decoded arguments.
type Job[T Args] struct {
	// ID identifies the job in its queue.
	ID int64
	// Kind is the job's kind (Args.Kind()).
	Kind string
	// Queue is the named queue the job is in.
	Queue string
	// Priority is 1 (runs first) to 4 (runs last).
	Priority int
	// Attempt is the current attempt, starting at 1.
	Attempt int
	// MaxAttempts is how many attempts are allowed before the job is discarded.
	MaxAttempts int
	// IdentityKey is the key given with WithIdentityKey, if any.
	IdentityKey string
	// CreatedAt is when the job was enqueued.
	CreatedAt time.Time
	// Args are the job's arguments, decoded from JSON.
	Args T
}

// AttemptError is the error of one failed attempt.
type AttemptError struct {
	// At is when the attempt failed.
	At time.Time
	// Attempt is the attempt number, starting at 1.
	Attempt int
	// Error is the error text.
	Error string
}

// JobInfo is a snapshot of a job as stored by a queue.
type JobInfo struct {
	// ID identifies the job in its queue.
	ID int64
	// Kind is the job's kind.
	Kind string
	// Queue is the named queue the job is in.
	Queue string
	// State is where the job is in its life cycle.
	State State
	// Priority is 1 (runs first) to 4 (runs last).
	Priority int
	// Attempt is how many attempts have started.
	Attempt int
	// MaxAttempts is how many attempts are allowed.
	MaxAttempts int
	// IdentityKey is the key given with WithIdentityKey, if any.
	IdentityKey string
	// Args is the JSON-encoded arguments.
	Args json.RawMessage
	// CreatedAt is when the job was enqueued.
	CreatedAt time.Time
	// ScheduledAt is when the job is (or was) due to run next.
	ScheduledAt time.Time
	// FinalizedAt is when the job reached a final state; zero before.
	FinalizedAt time.Time
	// Errors are the errors of failed attempts, oldest first; the last one
	// is why a discarded or cancelled job failed.
	Errors []AttemptError
	// Duplicate is set by Enqueue when an identity key matched a pending
	// job: no new job was added and this is the existing one.
	Duplicate bool
}

// ListFilter selects jobs for ListJobs. Empty fields match everything.
type ListFilter struct {
	// States keeps jobs in any of these states, e.g. StateDiscarded and
	// StateCancelled for the failed ones.
	States []State
	// Kinds keeps jobs of any of these kinds.
	Kinds []string
	// Queues keeps jobs in any of these queues.
	Queues []string
	// Limit caps the number of jobs returned; 0 means no cap.
	Limit int
}

// Queue runs jobs later. Implementations: [NewPool] (in-process) and
// queue/riverqueue (durable, SQLite or Postgres). All methods are safe for
// concurrent use.
type Queue interface {
	// Enqueue adds a job. With an identity key that matches a pending job
	// (available, scheduled, running or retryable), it adds nothing and
	// returns the existing job with Duplicate set.
	Enqueue(ctx context.Context, args Args, opts ...EnqueueOption) (JobInfo, error)
	// Start starts working jobs in the background and returns. Cancelling
	// ctx is a hard stop: running jobs see their context cancelled. Register
	// every worker before: River fixes its kinds when the queue is made.
	Start(ctx context.Context) error
	// Stop stops fetching new jobs and waits for running ones to finish, or
	// until ctx is done (then it returns ctx's error).
	Stop(ctx context.Context) error
	// GetJob returns one job, or an error matching ErrJobNotFound.
	GetJob(ctx context.Context, id int64) (JobInfo, error)
	// ListJobs yields the jobs matching f in ID order.
	ListJobs(ctx context.Context, f ListFilter) iter.Seq2[JobInfo, error]
	// RetryJob makes a job that is not running available again now. A job
	// that used up its attempts gets one more.
	RetryJob(ctx context.Context, id int64) (JobInfo, error)
	// CancelJob cancels a job that has not finished. A running job has its
	// context cancelled and ends cancelled if it returns an error.
	CancelJob(ctx context.Context, id int64) (JobInfo, error)
}

// TxEnqueuer is implemented by queues that can enqueue inside the app's
// database transaction (queue/riverqueue on a database/sql database): the
// job exists, and runs, only if tx commits. Writing a local record and
// enqueueing its export in one transaction means a crash can neither lose
// the export (record written, job not) nor run it for a record that was
// rolled back. tx must belong to the database the queue stores its jobs in.
type TxEnqueuer interface {
	EnqueueTx(ctx context.Context, tx *sql.Tx, args Args, opts ...EnqueueOption) (JobInfo, error)
}

// Sentinel errors, for errors.Is.
var (
	// ErrUnknownKind: no worker is registered for the job's kind.
	ErrUnknownKind = queuekit.ErrUnknownKind
	// ErrInvalid: the job's arguments cannot be stored (not a JSON object,
	// or they do not survive a JSON round trip), or an option is out of
	// range.
	ErrInvalid = queuekit.ErrInvalid
	// ErrJobNotFound: no job with that ID.
	ErrJobNotFound = queuekit.ErrJobNotFound
	// ErrStopped: the queue was stopped and takes no more work.
	ErrStopped = queuekit.ErrStopped
)

// Permanent wraps err so the job is not retried: it ends cancelled at once,
// with err recorded (River: river.JobCancel). Permanent(nil) returns nil.
// errors.Is and errors.As see err through it.
func Permanent(err error) error { return queuekit.Permanent(err) }

// RetryAfter fails the attempt and schedules the next one after d instead of
// the backoff delay, e.g. for an API that answered 429 with Retry-After. The
// attempt counts like any failure: once max attempts are used up the job is
// discarded. err may be nil. A negative d is treated as 0.
func RetryAfter(d time.Duration, err error) error {
	return &queuekit.RetryAfterError{Delay: max(d, 0), Err: err}
}
