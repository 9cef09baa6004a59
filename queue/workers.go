package queue

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/connkit/connkit/queue/internal/queuekit"
)

// Workers is the registry of job kinds and the functions that work them.
// The zero value is ready to use: var w queue.Workers, then AddWorker(&w,
// ...). Register every kind before making the queue: River fixes the kinds
// it works when it is created.
type Workers queuekit.Workers

// SetQueue names the queue that jobs enqueued without [WithQueueName] go to, in every
// queue made from w (NewPool, riverqueue), and that those queues work instead of
// "default" (queues added with [WithQueue] are worked too). Two apps or connectors that
// share one River database each set their own, so neither runs the other's jobs; the
// backend does this with its name. An invalid name is ErrInvalid.
func (w *Workers) SetQueue(name string) error {
	return (*queuekit.Workers)(w).SetQueue(name)
}

// AddWorker registers fn as the worker for T's kind. The kind is taken from
// the zero value of T, as River does. It panics when the kind is empty or
// already registered: both are programming errors found at start-up.
//
// fn returns nil on success; an error to retry with backoff; [Permanent] to
// give up at once; [RetryAfter] to retry at a chosen time. A panic in fn is
// recovered and counts as a failed attempt.
func AddWorker[T Args](w *Workers, fn func(ctx context.Context, job *Job[T]) error) {
	var zero T
	kind := zero.Kind()
	if kind == "" {
		panic(fmt.Sprintf("queue.AddWorker: %T has an empty Kind()", zero))
	}
	if fn == nil {
		panic("queue.AddWorker: nil worker func for kind " + kind)
	}
	(*queuekit.Workers)(w).Add(kind, func(ctx context.Context, m queuekit.Meta, raw []byte) error {
		job := &Job[T]{
			ID: m.ID, Kind: m.Kind, Queue: m.Queue, Priority: m.Priority, Attempt: m.Attempt,
			MaxAttempts: m.MaxAttempts, IdentityKey: m.IdentityKey, CreatedAt: m.CreatedAt,
		}
		if err := json.Unmarshal(raw, &job.Args); err != nil {
			// Retrying cannot fix arguments that do not decode.
			return Permanent(fmt.Errorf("%w: decoding %s args of job %d: %w", ErrInvalid, kind, m.ID, err))
		}
		return fn(ctx, job)
	})
}
