package queue

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"time"
)

// Priorities. Lower numbers run first; River uses the same 1..4 scale, so the
// values are passed through unchanged.
const (
	PriorityHigh   = 1
	PriorityNormal = 2 // the default, so urgent work can still jump ahead
	PriorityLow    = 3
	PriorityLowest = 4
)

// DefaultQueueName is the queue a job goes to without WithQueueName.
const DefaultQueueName = "default"

// DefaultMaxAttempts is how many attempts a job gets without WithMaxAttempts.
const DefaultMaxAttempts = 10

// DefaultJobTimeout bounds one attempt of a job unless the queue is
// configured otherwise (River's default): a worker that ignores its context
// past it is not stopped, but its context is cancelled.
const DefaultJobTimeout = time.Minute

// EnqueueOptions are the resolved options of one Enqueue. Queue
// implementations read them with [ResolveOptions].
type EnqueueOptions struct {
	// Priority is 1 (runs first) to 4 (runs last).
	Priority int
	// Delay is relative to Enqueue; ResolveOptions folds it into RunAt.
	Delay time.Duration
	// RunAt is the earliest run time; zero means now.
	RunAt time.Time
	// MaxAttempts is at least 1.
	MaxAttempts int
	// IdentityKey, when set, keeps duplicates out while the job is pending.
	IdentityKey string
	// QueueName is the named queue.
	QueueName string
}

// EnqueueOption sets one enqueue option.
type EnqueueOption func(*EnqueueOptions)

// WithPriority sets the priority, 1 (runs first) to 4 (runs last); the
// default is PriorityNormal (2).
func WithPriority(p int) EnqueueOption { return func(o *EnqueueOptions) { o.Priority = p } }

// WithDelay runs the job no earlier than d after Enqueue. It replaces an
// earlier WithRunAt.
func WithDelay(d time.Duration) EnqueueOption {
	return func(o *EnqueueOptions) { o.Delay, o.RunAt = d, time.Time{} }
}

// WithRunAt runs the job no earlier than t. It replaces an earlier WithDelay.
func WithRunAt(t time.Time) EnqueueOption {
	return func(o *EnqueueOptions) { o.RunAt, o.Delay = t, 0 }
}

// WithMaxAttempts sets how many attempts the job gets before it is
// discarded (at least 1; default DefaultMaxAttempts).
func WithMaxAttempts(n int) EnqueueOption { return func(o *EnqueueOptions) { o.MaxAttempts = n } }

// WithIdentityKey keeps a second job with the same key out while one is
// available, scheduled, running or retryable: Enqueue then returns the
// existing job with Duplicate set. Keys are global across kinds and queues;
// prefix them with the kind if they could collide.
func WithIdentityKey(key string) EnqueueOption {
	return func(o *EnqueueOptions) { o.IdentityKey = key }
}

// WithQueueName puts the job in a named queue (default "default"). Names are
// letters and digits separated by '_' or '-', at most 64 characters, as in
// River. Each queue has its own worker limit.
func WithQueueName(name string) EnqueueOption {
	return func(o *EnqueueOptions) { o.QueueName = name }
}

var queueNameRE = regexp.MustCompile(`^[a-z0-9]+(?:[_-][a-z0-9]+)*$`)

// ValidQueueName reports an error matching ErrInvalidOption if name cannot
// be a queue name.
func ValidQueueName(name string) error {
	if len(name) == 0 || len(name) > 64 || !queueNameRE.MatchString(name) {
		return fmt.Errorf("%w: queue name %q must be 1-64 lowercase letters and digits separated by '_' or '-'", ErrInvalidOption, name)
	}
	return nil
}

// ResolveOptions applies opts over the defaults and validates the result.
// now resolves WithDelay into RunAt; RunAt is zero when the job may run at
// once. Errors match ErrInvalidOption.
func ResolveOptions(now time.Time, opts ...EnqueueOption) (EnqueueOptions, error) {
	o := EnqueueOptions{Priority: PriorityNormal, MaxAttempts: DefaultMaxAttempts, QueueName: DefaultQueueName}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.Priority < PriorityHigh || o.Priority > PriorityLowest {
		return o, fmt.Errorf("%w: priority %d is out of range, use 1 (first) to 4 (last)", ErrInvalidOption, o.Priority)
	}
	if o.MaxAttempts < 1 {
		return o, fmt.Errorf("%w: max attempts %d must be at least 1", ErrInvalidOption, o.MaxAttempts)
	}
	if o.Delay < 0 {
		return o, fmt.Errorf("%w: delay %s is negative", ErrInvalidOption, o.Delay)
	}
	if err := ValidQueueName(o.QueueName); err != nil {
		return o, err
	}
	if len(o.IdentityKey) > 1024 {
		return o, fmt.Errorf("%w: identity key is %d bytes, at most 1024 allowed", ErrInvalidOption, len(o.IdentityKey))
	}
	if o.Delay > 0 {
		o.RunAt = now.Add(o.Delay)
	}
	if !o.RunAt.IsZero() && !o.RunAt.After(now) {
		o.RunAt = time.Time{} // due already: available now
	}
	return o, nil
}

// Backoff returns how long to wait before the next attempt after the given
// attempt (1-based) failed.
type Backoff func(attempt int) time.Duration

// ExponentialBackoff waits base·2^(attempt-1), capped at maxDelay, with
// "equal jitter": a random value in [d/2, d], so retries from many jobs
// failing together spread out.
func ExponentialBackoff(base, maxDelay time.Duration) Backoff {
	if base <= 0 {
		base = time.Millisecond
	}
	if maxDelay < base {
		maxDelay = base
	}
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < maxDelay; i++ {
			if d > maxDelay/2 {
				d = maxDelay // doubling would pass the cap, or overflow near MaxInt64
				break
			}
			d *= 2
		}
		d = min(d, maxDelay)
		half := d / 2
		return half + rand.N(d-half+1)
	}
}

// DefaultBackoff is ExponentialBackoff(10s, 1h): with DefaultMaxAttempts the
// nine retries of a job wait 10s, 20s, ... 2560s (each jittered down by up
// to half), so a failing job is discarded roughly 43 to 85 minutes after
// its first attempt, plus the attempts' own run time.
var DefaultBackoff = ExponentialBackoff(10*time.Second, time.Hour)
