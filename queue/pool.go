package queue

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/connkit/connkit/queue/internal/queuekit"
)

// pool is the in-process [Queue] made by [NewPool].
type pool struct {
	workers *queuekit.Workers
	cfg     queuekit.Config
	cfgErr  error // a bad option, reported by Start

	mu      sync.Mutex
	state   poolState
	nextID  int64
	jobs    map[int64]*poolJob
	queues  map[string]*poolQueue
	delayed jobHeap // scheduled and retryable jobs, by due time
	// delayedCompactAt is delayed's length that triggers a sweep of stale entries.
	delayedCompactAt int
	identity         map[string]int64
	finished         []int64 // finished job IDs, oldest first, for retention
	running          sync.WaitGroup

	startCtx context.Context // the ctx given to Start; when done, the pool is hard-stopped

	wake     chan struct{}
	stopCh   chan struct{}
	loopDone chan struct{}
	drained  chan struct{}
}

type poolState int

const (
	poolNew poolState = iota
	poolStarted
	poolStopping
	poolStopped
)

type poolQueue struct {
	limit     int
	running   int
	ready     jobHeap
	compactAt int // ready's length that triggers a sweep of stale entries
}

type poolJob struct {
	info            JobInfo
	gen             int // bumped on every state change; stale heap entries are skipped
	cancel          context.CancelFunc
	cancelRequested bool
	retryAt         time.Time
}

// NewPool returns the in-process queue for the kinds in workers: jobs are
// kept in memory and run by a bounded number of goroutines per named queue,
// highest priority first, then oldest first. It is the default for tests
// and simple apps; use queue/riverqueue when jobs must survive a restart or
// be shared between processes. Enqueue works before Start; jobs wait until
// the pool is started. Options meant only for River make Start fail.
func NewPool(workers *Workers, opts ...Option) Queue {
	cfg := queuekit.NewConfig(opts)
	if workers == nil {
		workers = &Workers{}
	}
	p := &pool{
		workers:  (*queuekit.Workers)(workers),
		cfg:      cfg,
		jobs:     map[int64]*poolJob{},
		queues:   map[string]*poolQueue{(*queuekit.Workers)(workers).Queue(): {limit: cfg.Workers}},
		identity: map[string]int64{},
		wake:     make(chan struct{}, 1),
		stopCh:   make(chan struct{}),
		loopDone: make(chan struct{}),
		drained:  make(chan struct{}),
	}
	if cfg.Err != nil {
		// No job can be enqueued to a badly named queue; Start reports it.
		p.cfgErr = fmt.Errorf("queue: %w", cfg.Err)
	} else if len(cfg.DriverOnly) > 0 {
		p.cfgErr = fmt.Errorf("queue: %w: %v configure River, not the in-process pool", ErrInvalid, cfg.DriverOnly)
	}
	for name, n := range cfg.Queues {
		p.queues[name] = &poolQueue{limit: n}
	}
	return p
}

// Enqueue adds a job. See [Queue].
func (p *pool) Enqueue(ctx context.Context, args Args, opts ...EnqueueOption) (JobInfo, error) {
	if err := ctx.Err(); err != nil {
		return JobInfo{}, fmt.Errorf("queue: enqueue: %w", err)
	}
	raw, err := queuekit.EncodeArgs(args)
	if err != nil {
		return JobInfo{}, err
	}
	kind := args.Kind()
	if err := p.workers.CheckKind(kind); err != nil {
		return JobInfo{}, err
	}
	now := time.Now()
	o, err := queuekit.ResolveOptions(now, p.workers.Queue(), opts)
	if err != nil {
		return JobInfo{}, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stoppedLocked() {
		return JobInfo{}, fmt.Errorf("%w: cannot enqueue %s job", ErrStopped, kind)
	}
	q, ok := p.queues[o.QueueName]
	if !ok {
		return JobInfo{}, fmt.Errorf("%w: the pool has no queue %q; add it with queue.WithQueue", ErrInvalid, o.QueueName)
	}
	if o.IdentityKey != "" {
		if id, ok := p.identity[identity(o.QueueName, o.IdentityKey)]; ok {
			info := p.jobs[id].snapshot()
			info.Duplicate = true
			return info, nil
		}
	}
	p.nextID++
	j := &poolJob{info: JobInfo{
		ID:          p.nextID,
		Kind:        kind,
		Queue:       o.QueueName,
		State:       StateAvailable,
		Priority:    o.Priority,
		MaxAttempts: o.MaxAttempts,
		IdentityKey: o.IdentityKey,
		Args:        raw,
		CreatedAt:   now,
		ScheduledAt: now,
	}}
	p.jobs[j.info.ID] = j
	if o.IdentityKey != "" {
		p.identity[identity(o.QueueName, o.IdentityKey)] = j.info.ID
	}
	if o.RunAt.IsZero() {
		p.pushReady(q, j)
	} else {
		j.info.State = StateScheduled
		j.info.ScheduledAt = o.RunAt
		p.pushDelayed(j)
	}
	p.signal()
	return j.snapshot(), nil
}

// Start starts the dispatcher. Cancelling ctx is a hard stop: no more jobs
// are started, running jobs see their context cancelled, and Enqueue and
// Start then fail with ErrStopped (Stop still waits for running jobs).
func (p *pool) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stoppedLocked() {
		return fmt.Errorf("%w: a stopped pool cannot be started again; create a new one", ErrStopped)
	}
	if p.state == poolStarted {
		return errors.New("queue: the pool is already started")
	}
	if p.cfgErr != nil {
		return p.cfgErr
	}
	p.state = poolStarted
	p.startCtx = ctx
	go p.loop(ctx)
	return nil
}

// stoppedLocked reports whether the pool takes no more work: Stop was called
// or the context given to Start is done. Called with p.mu held.
func (p *pool) stoppedLocked() bool {
	return p.state >= poolStopping || (p.state == poolStarted && p.startCtx.Err() != nil)
}

// Stop stops starting jobs and waits until running jobs return or ctx is
// done. When ctx is done first, running jobs have their context cancelled and
// Stop returns ctx's error without waiting for them. Jobs not yet started
// stay in memory and are lost with the pool. Calling Stop again waits again.
func (p *pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	switch p.state {
	case poolNew:
		p.state = poolStopped
		close(p.drained)
		p.mu.Unlock()
		return nil
	case poolStarted:
		p.state = poolStopping
		close(p.stopCh)
		go func() {
			<-p.loopDone
			p.running.Wait()
			p.mu.Lock()
			p.state = poolStopped
			p.mu.Unlock()
			close(p.drained)
		}()
	}
	p.mu.Unlock()
	select {
	case <-p.drained:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		for _, j := range p.jobs {
			if j.cancel != nil {
				j.cancel()
			}
		}
		p.mu.Unlock()
		return fmt.Errorf("queue: stop: running jobs did not finish in time and were cancelled: %w", ctx.Err())
	}
}

// GetJob returns one job.
func (p *pool) GetJob(ctx context.Context, id int64) (JobInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	j, ok := p.jobs[id]
	if !ok {
		return JobInfo{}, fmt.Errorf("%w: id %d", ErrJobNotFound, id)
	}
	return j.snapshot(), nil
}

// ListJobs yields the jobs matching f in ID order, from a snapshot taken
// when iteration starts.
func (p *pool) ListJobs(ctx context.Context, f ListFilter) iter.Seq2[JobInfo, error] {
	return func(yield func(JobInfo, error) bool) {
		p.mu.Lock()
		var out []JobInfo
		for _, j := range p.jobs {
			if matches(f, &j.info) {
				out = append(out, j.snapshot())
			}
		}
		p.mu.Unlock()
		slices.SortFunc(out, func(a, b JobInfo) int { return cmp.Compare(a.ID, b.ID) })
		if f.Limit > 0 && len(out) > f.Limit {
			out = out[:f.Limit]
		}
		for _, info := range out {
			if err := ctx.Err(); err != nil {
				yield(JobInfo{}, fmt.Errorf("queue: list jobs: %w", err))
				return
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

func matches(f ListFilter, j *JobInfo) bool {
	return (len(f.States) == 0 || slices.Contains(f.States, j.State)) &&
		(len(f.Kinds) == 0 || slices.Contains(f.Kinds, j.Kind)) &&
		(len(f.Queues) == 0 || slices.Contains(f.Queues, j.Queue))
}

// RetryJob makes a job that is not running available now; a job that used
// up its attempts gets one more. A running job is returned unchanged.
func (p *pool) RetryJob(ctx context.Context, id int64) (JobInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	j, ok := p.jobs[id]
	if !ok {
		return JobInfo{}, fmt.Errorf("%w: id %d (finished jobs are kept only up to the retention limit)", ErrJobNotFound, id)
	}
	if j.info.State == StateRunning || (j.info.State == StateAvailable) {
		return j.snapshot(), nil
	}
	if j.info.IdentityKey != "" {
		if other, ok := p.identity[identity(j.info.Queue, j.info.IdentityKey)]; ok && other != id {
			return JobInfo{}, fmt.Errorf("%w: cannot retry job %d: job %d with the same identity key %q is pending", ErrInvalid, id, other, j.info.IdentityKey)
		}
		p.identity[identity(j.info.Queue, j.info.IdentityKey)] = id
	}
	if j.info.State.final() {
		p.finished = slices.DeleteFunc(p.finished, func(x int64) bool { return x == id })
	}
	if j.info.Attempt >= j.info.MaxAttempts {
		j.info.MaxAttempts = j.info.Attempt + 1
	}
	j.info.FinalizedAt = time.Time{}
	j.info.ScheduledAt = time.Now()
	j.cancelRequested = false
	p.pushReady(p.queues[j.info.Queue], j)
	p.signal()
	return j.snapshot(), nil
}

// CancelJob cancels a job that has not finished. A running job has its
// context cancelled; it ends cancelled if it returns an error and completed
// if it returns nil. Finished jobs are returned unchanged.
func (p *pool) CancelJob(ctx context.Context, id int64) (JobInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	j, ok := p.jobs[id]
	if !ok {
		return JobInfo{}, fmt.Errorf("%w: id %d", ErrJobNotFound, id)
	}
	switch {
	case j.info.State == StateRunning:
		j.cancelRequested = true
		j.cancel()
	case !j.info.State.final():
		p.finish(j, StateCancelled, time.Now())
	}
	return j.snapshot(), nil
}

func (j *poolJob) snapshot() JobInfo {
	info := j.info
	info.Errors = slices.Clone(info.Errors)
	return info
}

// pushReady and pushDelayed are called with p.mu held.
func (p *pool) pushReady(q *poolQueue, j *poolJob) {
	j.gen++
	j.info.State = StateAvailable
	pushEntry(&q.ready, &q.compactAt, heapEntry{job: j, gen: j.gen, due: j.info.ScheduledAt})
}

func (p *pool) pushDelayed(j *poolJob) {
	j.gen++
	pushEntry(&p.delayed, &p.delayedCompactAt, heapEntry{job: j, gen: j.gen, due: j.info.ScheduledAt, byTime: true})
}

// pushEntry adds e to h. Cancelled and re-queued jobs leave stale entries
// behind, skipped when they reach the top; a delayed one would otherwise
// stay until its due time (hours, for a debounce that cancels and
// re-enqueues), holding the job and its arguments. So once h has doubled
// since the last sweep, stale entries are dropped: amortized O(1) per push.
func pushEntry(h *jobHeap, compactAt *int, e heapEntry) {
	if len(*h) >= *compactAt {
		*h = slices.DeleteFunc(*h, func(x heapEntry) bool { return x.gen != x.job.gen })
		heap.Init(h)
		*compactAt = max(2*len(*h), 64)
	}
	heap.Push(h, e)
}

// finish moves j to a final state; called with p.mu held.
func (p *pool) finish(j *poolJob, s State, now time.Time) {
	j.gen++
	j.info.State = s
	j.info.FinalizedAt = now
	if k := identity(j.info.Queue, j.info.IdentityKey); j.info.IdentityKey != "" && p.identity[k] == j.info.ID {
		delete(p.identity, k)
	}
	p.finished = append(p.finished, j.info.ID)
	for len(p.finished) > p.cfg.Retention {
		delete(p.jobs, p.finished[0])
		p.finished = p.finished[1:]
	}
}

func (p *pool) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pool) loop(ctx context.Context) {
	defer close(p.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := p.dispatch(ctx)
		if next.IsZero() {
			timer.Reset(time.Hour)
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return
		case <-p.stopCh:
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// dispatch promotes due jobs, starts as many ready jobs as the queues allow,
// and returns when the next delayed job is due (zero if none).
func (p *pool) dispatch(ctx context.Context) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for p.delayed.Len() > 0 && !p.delayed[0].due.After(now) {
		e := heap.Pop(&p.delayed).(heapEntry)
		if e.gen != e.job.gen {
			continue
		}
		p.pushReady(p.queues[e.job.info.Queue], e.job)
	}
	if ctx.Err() != nil || p.state != poolStarted {
		return time.Time{}
	}
	for _, q := range p.queues {
		for q.running < q.limit {
			j := p.popReady(q)
			if j == nil {
				break
			}
			p.startJob(ctx, q, j)
		}
	}
	for p.delayed.Len() > 0 {
		if e := p.delayed[0]; e.gen == e.job.gen {
			return e.due
		}
		heap.Pop(&p.delayed)
	}
	return time.Time{}
}

// startJob starts a worker goroutine for j; called with p.mu held. The
// goroutine keeps taking ready jobs from its queue while there are any, so
// a busy queue reuses goroutines (and their grown stacks).
func (p *pool) startJob(ctx context.Context, q *poolQueue, j *poolJob) {
	q.running++
	p.running.Add(1)
	run := p.begin(ctx, j)
	go p.work(ctx, q, j, run)
}

type jobRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	meta   queuekit.Meta
	raw    []byte
}

// begin marks j running; called with p.mu held.
func (p *pool) begin(ctx context.Context, j *poolJob) jobRun {
	j.gen++
	j.info.State = StateRunning
	j.info.Attempt++
	var jctx context.Context
	var cancel context.CancelFunc
	if p.cfg.Timeout > 0 {
		jctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
	} else {
		jctx, cancel = context.WithCancel(ctx)
	}
	j.cancel = cancel
	return jobRun{ctx: jctx, cancel: cancel, raw: j.info.Args, meta: queuekit.Meta{
		ID: j.info.ID, Kind: j.info.Kind, Queue: j.info.Queue, Priority: j.info.Priority,
		Attempt: j.info.Attempt, MaxAttempts: j.info.MaxAttempts, IdentityKey: j.info.IdentityKey,
		CreatedAt: j.info.CreatedAt,
	}}
}

func (p *pool) work(ctx context.Context, q *poolQueue, j *poolJob, run jobRun) {
	defer p.running.Done()
	for j != nil {
		err := p.workers.Work(run.ctx, run.meta, run.raw)
		run.cancel()
		p.mu.Lock()
		j.cancel = nil
		p.record(j, err)
		j = nil
		if p.state == poolStarted && ctx.Err() == nil {
			j = p.popReady(q)
		}
		if j == nil {
			q.running--
		} else {
			run = p.begin(ctx, j)
		}
		p.mu.Unlock()
	}
	p.signal()
}

// popReady returns the next ready job of q, or nil; called with p.mu held.
func (p *pool) popReady(q *poolQueue) *poolJob {
	for q.ready.Len() > 0 {
		e := heap.Pop(&q.ready).(heapEntry)
		if e.gen == e.job.gen {
			return e.job
		}
	}
	return nil
}

// record stores the outcome of one attempt; called with p.mu held.
func (p *pool) record(j *poolJob, err error) {
	now := time.Now()
	if err == nil {
		p.finish(j, StateCompleted, now)
		return
	}
	j.info.Errors = append(j.info.Errors, AttemptError{At: now, Attempt: j.info.Attempt, Error: err.Error()})
	var perm *queuekit.PermanentError
	var after *queuekit.RetryAfterError
	switch {
	case j.cancelRequested || errors.As(err, &perm):
		p.finish(j, StateCancelled, now)
	case j.info.Attempt >= j.info.MaxAttempts:
		p.finish(j, StateDiscarded, now)
		p.cfg.Logger.Warn("queue: job discarded after its last attempt",
			"kind", j.info.Kind, "job_id", j.info.ID, "attempt", j.info.Attempt, "error", err)
	default:
		delay := p.cfg.Backoff(j.info.Attempt)
		if errors.As(err, &after) {
			delay = after.Delay
		}
		j.info.State = StateRetryable
		j.info.ScheduledAt = now.Add(delay)
		p.pushDelayed(j)
		p.cfg.Logger.Debug("queue: job attempt failed, will retry",
			"kind", j.info.Kind, "job_id", j.info.ID, "attempt", j.info.Attempt, "retry_in", delay, "error", err)
	}
}

type heapEntry struct {
	job    *poolJob
	gen    int
	due    time.Time
	byTime bool // delayed heap: order by due time only
}

// jobHeap orders ready jobs by priority, then due time, then ID (River's
// fetch order), and delayed jobs by due time.
type jobHeap []heapEntry

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(a, b int) bool {
	x, y := h[a], h[b]
	if !x.byTime && x.job.info.Priority != y.job.info.Priority {
		return x.job.info.Priority < y.job.info.Priority
	}
	if !x.due.Equal(y.due) {
		return x.due.Before(y.due)
	}
	return x.job.info.ID < y.job.info.ID
}
func (h jobHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *jobHeap) Push(x any)   { *h = append(*h, x.(heapEntry)) }
func (h *jobHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = heapEntry{}
	*h = old[:len(old)-1]
	return e
}

// identity is the pool's key of an identity key: keys are unique within a queue.
func identity(queue, key string) string { return queue + "\x00" + key }
