package queue

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/connkit/connkit/queue/internal/queuekit"
)

// EnqueueOption sets one option of an Enqueue. Defaults: priority 2, no
// delay, 10 attempts, no identity key, queue "default".
type EnqueueOption func(*queuekit.EnqueueOptions)

// WithPriority sets the priority, 1 (runs first) to 4 (runs last); the
// default is 2, so urgent work can still jump ahead.
func WithPriority(p int) EnqueueOption {
	return func(o *queuekit.EnqueueOptions) { o.Priority = p }
}

// WithDelay runs the job no earlier than d after Enqueue. For an ETA t,
// pass time.Until(t); a time already past runs the job at once.
func WithDelay(d time.Duration) EnqueueOption {
	return func(o *queuekit.EnqueueOptions) { o.Delay = max(d, 0) }
}

// WithMaxAttempts sets how many attempts the job gets before it is
// discarded (at least 1; default 10).
func WithMaxAttempts(n int) EnqueueOption {
	return func(o *queuekit.EnqueueOptions) { o.MaxAttempts = n }
}

// WithIdentityKey keeps a second job with the same key out while one is
// available, scheduled, running or retryable: Enqueue then returns the
// existing job with Duplicate set, whatever the second job's delay. Keys are
// unique within a queue, across kinds (at most 1024 bytes); prefix them with the
// kind if they could collide.
func WithIdentityKey(key string) EnqueueOption {
	return func(o *queuekit.EnqueueOptions) { o.IdentityKey = key }
}

// WithQueueName puts the job in a named queue (default "default"). Names are
// lowercase letters and digits separated by '_' or '-', at most 64
// characters, as in River. Each queue has its own worker limit (see
// WithQueue).
func WithQueueName(name string) EnqueueOption {
	return func(o *queuekit.EnqueueOptions) { o.QueueName = name }
}

// Option configures a queue: the in-process pool ([NewPool]) or River
// (queue/riverqueue takes the same options, plus its own).
type Option func(*queuekit.Config)

// WithWorkers sets how many jobs of the default queue this process runs at
// once (default 10).
func WithWorkers(n int) Option { return func(c *queuekit.Config) { c.Workers = max(n, 1) } }

// WithQueue makes this process also work the named queue, running at most
// maxWorkers of its jobs at once. The pool refuses jobs enqueued to a queue
// it does not have, since nothing would run them; with River, jobs can go to
// any queue and wait for a process that works it. An invalid name makes the
// constructor (River) or Start (pool) fail with ErrInvalid.
func WithQueue(name string, maxWorkers int) Option {
	return func(c *queuekit.Config) {
		if c.Queues == nil {
			c.Queues = map[string]int{}
		}
		c.Queues[name] = max(maxWorkers, 1)
	}
}

// WithBackoff sets the delay before retries: base·2^(attempt-1), capped at
// maxDelay, each jittered down by up to half, so retries of many jobs
// failing together spread out. The default, WithBackoff(10s, time.Hour),
// discards a job failing 10 times roughly 43 to 85 minutes after its first
// attempt. WithBackoff(d, d) retries after d/2 to d.
func WithBackoff(base, maxDelay time.Duration) Option {
	return func(c *queuekit.Config) { c.Backoff = queuekit.ExponentialBackoff(base, maxDelay) }
}

// WithJobTimeout bounds each attempt: the job's context is cancelled after
// d (default one minute, as in River); d <= 0 means no limit. A worker that
// ignores its context is not stopped.
func WithJobTimeout(d time.Duration) Option { return func(c *queuekit.Config) { c.Timeout = d } }

// WithLogger sets where the queue reports failed attempts and discarded
// jobs (River: everything River logs). The default discards: the queue logs
// nothing unless given a logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *queuekit.Config) {
		if l != nil {
			c.Logger = l
		}
	}
}

// WithRetention sets how many finished jobs (completed, discarded,
// cancelled) the in-process pool keeps for ListJobs and RetryJob before the
// oldest are forgotten (default 10000), so memory stays bounded. 0 (or
// less) keeps none. River keeps finished jobs by age instead
// (river.Config's retention periods, via riverqueue.WithRiverConfig), so
// riverqueue refuses this option.
func WithRetention(n int) Option {
	return func(c *queuekit.Config) {
		c.Retention = max(n, 0)
		c.PoolOnly = append(c.PoolOnly, fmt.Sprintf("queue.WithRetention(%d)", n))
	}
}
