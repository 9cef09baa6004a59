package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
)

// Workers is the registry of job kinds and the functions that work them.
// Register every kind before handing the registry to a queue: River copies
// the registry when the queue is created. The zero value is ready to use.
type Workers struct {
	mu       sync.RWMutex
	handlers map[string]handler
}

type handler func(ctx context.Context, meta JobMeta, raw []byte) error

// NewWorkers returns an empty registry.
func NewWorkers() *Workers { return &Workers{} }

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
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.handlers[kind]; dup {
		panic("queue.AddWorker: a worker for kind " + kind + " is already registered")
	}
	if w.handlers == nil {
		w.handlers = make(map[string]handler)
	}
	w.handlers[kind] = func(ctx context.Context, meta JobMeta, raw []byte) error {
		job := &Job[T]{JobMeta: meta}
		if err := json.Unmarshal(raw, &job.Args); err != nil {
			// Retrying cannot fix arguments that do not decode.
			return Permanent(fmt.Errorf("%w: decoding %s args of job %d: %w", ErrInvalidArgs, kind, meta.ID, err))
		}
		return fn(ctx, job)
	}
}

// Kinds returns the registered kinds, sorted.
func (w *Workers) Kinds() []string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	kinds := make([]string, 0, len(w.handlers))
	for k := range w.handlers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Has reports whether a worker is registered for kind.
func (w *Workers) Has(kind string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	_, ok := w.handlers[kind]
	return ok
}

// CheckKind returns an error matching ErrUnknownKind when no worker is
// registered for kind.
func (w *Workers) CheckKind(kind string) error {
	if !w.Has(kind) {
		return fmt.Errorf("%w %q: register one with queue.AddWorker before enqueueing (known kinds: %v)", ErrUnknownKind, kind, w.Kinds())
	}
	return nil
}

// Work decodes raw into the kind's argument type and runs its worker. It is
// the hook queue implementations call for every attempt; a panic in the
// worker is returned as an error.
func (w *Workers) Work(ctx context.Context, meta JobMeta, raw []byte) (err error) {
	w.mu.RLock()
	h, ok := w.handlers[meta.Kind]
	w.mu.RUnlock()
	if !ok {
		return Permanent(w.CheckKind(meta.Kind))
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("queue: worker for %s job %d panicked: %v\n%s", meta.Kind, meta.ID, r, debug.Stack())
		}
	}()
	return h(ctx, meta, raw)
}
