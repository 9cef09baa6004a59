// Package queue runs work later: the "with_delay" of connkit.
//
// A job is a kind plus JSON-encodable arguments. Workers are registered per
// kind with [AddWorker] in a [Workers] registry, and a [Queue] runs them:
//
//   - [Pool] (this package) is an in-process worker pool: bounded workers,
//     priority order, delayed jobs, retries with backoff and a graceful drain
//     on Stop. Jobs live in memory and are lost when the process exits. It is
//     the default for tests and simple apps.
//   - package queue/riverqueue runs the same workers on River
//     (github.com/riverqueue/river): durable on a SQLite file for one machine,
//     or on Postgres so many worker processes on many machines share the work.
//
// Both behave the same way and pass one conformance suite (queue/queuetest):
// arguments are JSON-encoded at Enqueue (arguments that do not survive a JSON
// round trip are refused there), priorities run 1 (first) to 4 (last), a
// failing job is retried with exponential backoff until its max attempts and
// then discarded, [Permanent] cancels a job at once, [RetryAfter] chooses the
// next retry time, and an identity key keeps a second job with the same key
// out while the first one is still pending.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"time"
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

// Job states.
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
	// StateDiscarded: failed on its last allowed attempt. Final, can be retried with RetryJob.
	StateDiscarded State = "discarded"
	// StateCancelled: cancelled with CancelJob or by a Permanent error. Final, can be retried with RetryJob.
	StateCancelled State = "cancelled"
)

// Final reports whether no worker will pick the job up again on its own.
func (s State) Final() bool {
	return s == StateCompleted || s == StateDiscarded || s == StateCancelled
}

// FailedStates are the states of jobs that gave up: discarded after the last
// attempt, or cancelled by a Permanent error (or by hand). Use them in a
// [ListFilter] to list failed jobs.
func FailedStates() []State { return []State{StateDiscarded, StateCancelled} }

// JobMeta describes one run of a job, without its arguments.
type JobMeta struct {
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
}

// Job is one run of a job, handed to its worker with decoded arguments.
type Job[T Args] struct {
	JobMeta
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
	// Errors are the errors of failed attempts, oldest first.
	Errors []AttemptError
	// Duplicate is set by Enqueue when an identity key matched a pending
	// job: no new job was added and this is the existing one.
	Duplicate bool
}

// LastError is the error text of the latest failed attempt, or "".
func (j JobInfo) LastError() string {
	if len(j.Errors) == 0 {
		return ""
	}
	return j.Errors[len(j.Errors)-1].Error
}

// ListFilter selects jobs for ListJobs. Empty fields match everything.
type ListFilter struct {
	// States keeps jobs in any of these states.
	States []State
	// Kinds keeps jobs of any of these kinds.
	Kinds []string
	// Queues keeps jobs in any of these queues.
	Queues []string
	// Limit caps the number of jobs returned; 0 means no cap.
	Limit int
}

// Queue runs jobs later. Implementations: [Pool] (in-process) and
// queue/riverqueue (durable, SQLite or Postgres). All methods are safe for
// concurrent use.
type Queue interface {
	// Enqueue adds a job. With an identity key that matches a pending job
	// (available, scheduled, running or retryable), it adds nothing and
	// returns the existing job with Duplicate set.
	Enqueue(ctx context.Context, args Args, opts ...EnqueueOption) (JobInfo, error)
	// Start starts working jobs in the background and returns. Cancelling
	// ctx is a hard stop: running jobs see their context cancelled.
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

// Sentinel errors, for errors.Is.
var (
	// ErrUnknownKind: no worker is registered for the job's kind.
	ErrUnknownKind = errors.New("queue: no worker registered for job kind")
	// ErrInvalidArgs: the job's arguments cannot be stored (not a JSON
	// object, or they do not survive a JSON round trip).
	ErrInvalidArgs = errors.New("queue: invalid job arguments")
	// ErrInvalidOption: an enqueue option is out of range.
	ErrInvalidOption = errors.New("queue: invalid enqueue option")
	// ErrJobNotFound: no job with that ID.
	ErrJobNotFound = errors.New("queue: job not found")
	// ErrStopped: the queue was stopped and takes no more work.
	ErrStopped = errors.New("queue: stopped")
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("queue: already started")
)

// PermanentError marks an error that retrying cannot fix. See [Permanent].
type PermanentError struct{ Err error }

// Error describes the wrapped error as permanent.
func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "permanent failure"
	}
	return "permanent failure: " + e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the job is not retried: it ends cancelled at once,
// with err recorded (River: river.JobCancel). Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError asks for the next attempt after Delay. See [RetryAfter].
type RetryAfterError struct {
	// Delay is how long to wait before the next attempt.
	Delay time.Duration
	// Err is the attempt's error; may be nil.
	Err error
}

// Error describes the requested delay and the wrapped error.
func (e *RetryAfterError) Error() string {
	msg := fmt.Sprintf("retry after %s", e.Delay)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter fails the attempt and schedules the next one after d instead of
// the backoff delay, e.g. for an API that answered 429 with Retry-After. The
// attempt counts like any failure: once max attempts are used up the job is
// discarded. err may be nil. A negative d is treated as 0.
func RetryAfter(d time.Duration, err error) error {
	return &RetryAfterError{Delay: max(d, 0), Err: err}
}

// EncodeArgs JSON-encodes args and checks that they decode back into their
// own type, so a job that could never be decoded by its worker is refused at
// Enqueue. The encoding must be a JSON object. Queue implementations use it;
// errors match ErrInvalidArgs.
func EncodeArgs(args Args) ([]byte, error) {
	if args == nil || (reflect.ValueOf(args).Kind() == reflect.Pointer && reflect.ValueOf(args).IsNil()) {
		return nil, fmt.Errorf("%w: args are nil", ErrInvalidArgs)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding %q args as JSON: %w", ErrInvalidArgs, args.Kind(), err)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%w: %q args must encode to a JSON object, got %.40s", ErrInvalidArgs, args.Kind(), raw)
	}
	t := reflect.TypeOf(args)
	target := reflect.New(t)
	if err := json.Unmarshal(raw, target.Interface()); err != nil {
		return nil, fmt.Errorf("%w: %q args do not decode back from their own JSON %.80s: %w", ErrInvalidArgs, args.Kind(), raw, err)
	}
	return raw, nil
}
