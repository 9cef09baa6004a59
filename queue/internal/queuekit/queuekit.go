// Package queuekit holds what the queue implementations of connkit share
// (the in-process pool in package queue and River in queue/riverqueue) but
// users do not need: option resolution, argument encoding, the worker
// registry and the error types behind queue.Permanent and queue.RetryAfter.
package queuekit

import (
	"cmp"
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Sentinel errors, re-exported by package queue.
var (
	ErrUnknownKind = errors.New("queue: no worker registered for job kind")
	ErrInvalid     = errors.New("queue: invalid job")
	ErrJobNotFound = errors.New("queue: job not found")
	ErrStopped     = errors.New("queue: stopped")
)

// Defaults shared by every queue.
const (
	DefaultQueueName   = "default"
	DefaultMaxAttempts = 10
	DefaultJobTimeout  = time.Minute
	DefaultPriority    = 2
	DefaultWorkers     = 10
	DefaultRetention   = 10000
	// identityKeyMax bounds WithIdentityKey.
	identityKeyMax = 1024
)

// EnqueueOptions are the resolved options of one Enqueue.
type EnqueueOptions struct {
	Priority int
	// Delay is relative to Enqueue; ResolveOptions folds it into RunAt.
	Delay time.Duration
	// RunAt is the earliest run time; zero means now.
	RunAt       time.Time
	MaxAttempts int
	IdentityKey string
	QueueName   string
}

// ValidQueueName reports an error matching ErrInvalid if name cannot be a
// queue name (River's rule: ^[a-z0-9]+(?:[_-][a-z0-9]+)*$, at most 64 bytes). Every
// Enqueue checks its queue's name, so it is a loop rather than a regexp.
func ValidQueueName(name string) error {
	if len(name) == 0 || len(name) > 64 || !queueNameChars(name) {
		return fmt.Errorf("%w: queue name %q must be 1-64 lowercase letters and digits separated by '_' or '-'", ErrInvalid, name)
	}
	return nil
}

// ResolveOptions applies opts over the defaults and validates the result.
// now resolves a delay into RunAt; RunAt is zero when the job may run at
// once. Errors match ErrInvalid.
func ResolveOptions[O ~func(*EnqueueOptions)](now time.Time, defaultQueue string, opts []O) (EnqueueOptions, error) {
	o := EnqueueOptions{Priority: DefaultPriority, MaxAttempts: DefaultMaxAttempts, QueueName: cmp.Or(defaultQueue, DefaultQueueName)}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.Priority < 1 || o.Priority > 4 {
		return o, fmt.Errorf("%w: priority %d is out of range, use 1 (first) to 4 (last)", ErrInvalid, o.Priority)
	}
	if o.MaxAttempts < 1 {
		return o, fmt.Errorf("%w: max attempts %d must be at least 1", ErrInvalid, o.MaxAttempts)
	}
	if err := ValidQueueName(o.QueueName); err != nil {
		return o, err
	}
	if len(o.IdentityKey) > identityKeyMax {
		return o, fmt.Errorf("%w: identity key is %d bytes, at most %d allowed", ErrInvalid, len(o.IdentityKey), identityKeyMax)
	}
	o.RunAt = time.Time{}
	if o.Delay > 0 {
		o.RunAt = now.Add(o.Delay)
	}
	return o, nil
}

// Config is what queue.Option sets, for the pool and for River.
type Config struct {
	Workers   int
	Queues    map[string]int
	Backoff   func(attempt int) time.Duration
	Logger    *slog.Logger
	Timeout   time.Duration
	Retention int
	// PoolOnly and DriverOnly name the options given that only the pool, or
	// only a driver, understands, so the other can refuse them.
	PoolOnly   []string
	DriverOnly []string
	// Driver holds driver-specific settings, in order (riverqueue's).
	Driver []any
	// Err is the first invalid option.
	Err error
}

// NewConfig applies opts over the defaults.
func NewConfig[O ~func(*Config)](opts []O) Config {
	c := Config{
		Workers:   DefaultWorkers,
		Backoff:   ExponentialBackoff(10*time.Second, time.Hour),
		Logger:    slog.New(slog.DiscardHandler),
		Timeout:   DefaultJobTimeout,
		Retention: DefaultRetention,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	for name := range c.Queues {
		if err := ValidQueueName(name); err != nil && c.Err == nil {
			c.Err = fmt.Errorf("WithQueue: %w", err)
		}
	}
	return c
}

// SetErr records the first invalid option.
func (c *Config) SetErr(err error) {
	if c.Err == nil {
		c.Err = err
	}
}

// ExponentialBackoff waits base·2^(attempt-1), capped at maxDelay, with
// "equal jitter": a random value in [d/2, d], so retries from many jobs
// failing together spread out.
func ExponentialBackoff(base, maxDelay time.Duration) func(int) time.Duration {
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

// EncodeArgs JSON-encodes args and checks that they decode back into their
// own type, so a job that could never be decoded by its worker is refused at
// Enqueue. The encoding must be a JSON object. Errors match ErrInvalid.
func EncodeArgs(args interface{ Kind() string }) ([]byte, error) {
	if args == nil || (reflect.ValueOf(args).Kind() == reflect.Pointer && reflect.ValueOf(args).IsNil()) {
		return nil, fmt.Errorf("%w: args are nil", ErrInvalid)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding %q args as JSON: %w", ErrInvalid, args.Kind(), err)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%w: %q args must encode to a JSON object, got %.40s", ErrInvalid, args.Kind(), raw)
	}
	if plainJSON(reflect.TypeOf(args)) {
		return raw, nil // decodes back: nothing in its type could refuse its own JSON
	}
	target := reflect.New(reflect.TypeOf(args))
	if err := json.Unmarshal(raw, target.Interface()); err != nil {
		return nil, fmt.Errorf("%w: %q args do not decode back from their own JSON %.80s: %w", ErrInvalid, args.Kind(), raw, err)
	}
	return raw, nil
}

// plainTypes caches plainJSON's answers by type.
var plainTypes sync.Map // reflect.Type → bool

// plainJSON reports whether every value of t that encodes to JSON also decodes back into
// t without error, whatever the value: t is made only of booleans, numbers, strings, empty
// interfaces, and pointers, slices, arrays, maps (string or integer keys) and structs of
// those, with no custom JSON or text (un)marshaler anywhere. EncodeArgs skips its decode
// check for such types: it could only succeed.
func plainJSON(t reflect.Type) bool {
	if v, ok := plainTypes.Load(t); ok {
		return v.(bool)
	}
	ok := plainType(t, map[reflect.Type]bool{})
	plainTypes.Store(t, ok)
	return ok
}

var customJSON = []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[json.Unmarshaler](),
	reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()}

func plainType(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true // a recursive type: judged where it was first met
	}
	seen[t] = true
	for _, c := range customJSON {
		if t.Implements(c) || reflect.PointerTo(t).Implements(c) {
			return false
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	case reflect.Interface:
		return t.NumMethod() == 0 // any JSON decodes into an empty interface, none into others
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return plainType(t.Elem(), seen)
	case reflect.Map:
		switch t.Key().Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return plainType(t.Key(), seen) && plainType(t.Elem(), seen)
		}
		return false
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && !f.IsExported() && f.Type.Kind() == reflect.Pointer {
				return false // decoding cannot set an embedded pointer to an unexported struct
			}
			if (f.IsExported() || f.Anonymous) && !plainType(f.Type, seen) {
				return false
			}
		}
		return true
	}
	return false
}

// Meta describes one run of a job, without its arguments.
type Meta struct {
	ID          int64
	Kind        string
	Queue       string
	Priority    int
	Attempt     int
	MaxAttempts int
	IdentityKey string
	CreatedAt   time.Time
}

// Handler decodes a job's raw arguments and runs its worker.
type Handler func(ctx context.Context, meta Meta, raw []byte) error

// Workers is the registry behind queue.Workers (which is defined as this
// type, so queue implementations convert a *queue.Workers to *Workers).
type Workers struct {
	mu       sync.RWMutex
	handlers map[string]Handler
	queue    string // jobs enqueued without a queue name go here ("" = DefaultQueueName)
}

// SetQueue makes name the queue of jobs enqueued without a queue name.
func (w *Workers) SetQueue(name string) error {
	if err := ValidQueueName(name); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queue = name
	return nil
}

// Queue returns the queue of jobs enqueued without a queue name: the one SetQueue
// set, else DefaultQueueName.
func (w *Workers) Queue() string {
	if w == nil {
		return DefaultQueueName
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	return cmp.Or(w.queue, DefaultQueueName)
}

// Add registers h for kind; it panics on an empty or duplicate kind.
func (w *Workers) Add(kind string, h Handler) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.handlers[kind]; dup {
		panic("queue.AddWorker: a worker for kind " + kind + " is already registered")
	}
	if w.handlers == nil {
		w.handlers = make(map[string]Handler)
	}
	w.handlers[kind] = h
}

// Kinds returns the registered kinds, sorted.
func (w *Workers) Kinds() []string {
	if w == nil {
		return nil
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	kinds := make([]string, 0, len(w.handlers))
	for k := range w.handlers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// CheckKind returns an error matching ErrUnknownKind when no worker is
// registered for kind.
func (w *Workers) CheckKind(kind string) error {
	ok := false
	if w != nil {
		w.mu.RLock()
		_, ok = w.handlers[kind]
		w.mu.RUnlock()
	}
	if !ok {
		return fmt.Errorf("%w %q: register one with queue.AddWorker before enqueueing (known kinds: %v)", ErrUnknownKind, kind, w.Kinds())
	}
	return nil
}

// Work decodes raw into the kind's argument type and runs its worker. A
// panic in the worker is returned as an error.
func (w *Workers) Work(ctx context.Context, meta Meta, raw []byte) (err error) {
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

// PermanentError marks an error that retrying cannot fix.
type PermanentError struct{ Err error }

// Permanent wraps err in a PermanentError; Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "permanent failure"
	}
	return "permanent failure: " + e.Err.Error()
}

func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfterError asks for the next attempt after Delay.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	msg := fmt.Sprintf("retry after %s", e.Delay)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// queueNameChars reports whether name is runs of [a-z0-9] joined by single '_' or '-'.
func queueNameChars(name string) bool {
	sep := true // at the start, as after a separator: a letter or digit must come
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			sep = false
		case (c == '_' || c == '-') && !sep:
			sep = true
		default:
			return false
		}
	}
	return !sep
}
