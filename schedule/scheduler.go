package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/connkit/connkit/internal/schedulekit"
)

// runFunc is the work of an entry (see Scheduler.Add).
type runFunc = func(ctx context.Context, tick time.Time) error

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Scheduler runs functions on schedules kept in a Store. Every process sharing the store
// may run a Scheduler with the same entries: each tick of an enabled entry runs on one of
// them, never while the entry's previous run is still running. Entries are disabled until
// enabled (Enable, or SetEnabled on the store from a console).
type Scheduler struct {
	store    Store
	clock    schedulekit.Clock
	log      *slog.Logger
	lease    time.Duration
	poll     time.Duration
	maxRuns  int
	finishTO time.Duration

	mu        sync.Mutex
	entries   map[string]*entry
	specs     map[string]schedulekit.Spec // parsed store specs, by text
	active    int                         // runs in progress
	running   bool                        // Run has started and not returned
	dirty     bool                        // something changed since the loop last looked
	interrupt context.CancelFunc
}

type entry struct {
	name       string
	spec       string
	run        runFunc
	registered bool // written to the store by this scheduler
	busy       bool // a run of this entry is in progress here
}

// Option configures a Scheduler.
type Option func(*schedulekit.Settings)

// WithLogger sets where the scheduler reports runs, skips and store errors. The default
// discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *schedulekit.Settings) {
		if l != nil {
			s.Log = l
		}
	}
}

// New returns a Scheduler keeping its entries in store. It rereads the store every 15s
// when no tick is due sooner (the delay before it sees an entry enabled by another
// process), holds each run's entry with a 1-minute lease renewed every third of it (so
// only a process that died mid-run makes the entry wait), and runs at most 4 entries at
// once (a due entry waits for a free slot, and meanwhile another node may take its tick).
func New(store Store, opts ...Option) *Scheduler {
	set := schedulekit.Settings{
		Clock:      realClock{},
		Log:        slog.New(slog.DiscardHandler),
		Lease:      time.Minute,
		Poll:       15 * time.Second,
		MaxRunning: 4,
	}
	for _, o := range opts {
		if o != nil {
			o(&set)
		}
	}
	s := &Scheduler{
		store:    store,
		clock:    set.Clock,
		log:      set.Log,
		lease:    set.Lease,
		poll:     set.Poll,
		maxRuns:  set.MaxRunning,
		finishTO: 10 * time.Second,
		entries:  make(map[string]*entry),
		specs:    make(map[string]schedulekit.Spec),
	}
	return s
}

// Add declares the entry name, running run on spec. The entry is
// registered in the store (disabled, unless the store already has it enabled) when Run
// starts, or by Enable. A bad name or spec, a nil run or a name added twice fail with
// ErrInvalid.
//
// tick is the scheduled time of the run, the same on every node: use it as an identity
// key when the work is enqueued rather than done inline. run's ctx ends when the
// scheduler stops or the run loses its lease; a returned error (or a panic) is recorded
// as the entry's LastError.
func (s *Scheduler) Add(name, spec string, run func(ctx context.Context, tick time.Time) error) error {
	if err := schedulekit.CheckName(name); err != nil {
		return err
	}
	p, err := schedulekit.ParseSpec(spec)
	if err != nil {
		return err
	}
	if run == nil {
		return fmt.Errorf("%w: nil run func for entry %q", ErrInvalid, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[name]; ok {
		return fmt.Errorf("%w: entry %q added twice", ErrInvalid, name)
	}
	s.entries[name] = &entry{name: name, spec: p.String(), run: run}
	s.pokeLocked()
	return nil
}

// Enable enables the entry in the store, for every node: its first run is its first tick
// from now. An entry added to this scheduler is registered first; others must exist in
// the store (ErrNotFound).
func (s *Scheduler) Enable(ctx context.Context, name string) error {
	return s.setEnabled(ctx, name, true)
}

// Disable disables the entry in the store, for every node. A run in progress finishes.
func (s *Scheduler) Disable(ctx context.Context, name string) error {
	return s.setEnabled(ctx, name, false)
}

// Status lists every entry of the store with its state: enabled, last and next run, last
// error, whether a run holds it now. It is what a console shows.
func (s *Scheduler) Status(ctx context.Context) ([]Status, error) {
	return s.store.List(ctx)
}

func (s *Scheduler) setEnabled(ctx context.Context, name string, on bool) error {
	if err := s.ensureRegistered(ctx, name); err != nil {
		return err
	}
	if err := s.store.SetEnabled(ctx, name, on, s.clock.Now()); err != nil {
		return fmt.Errorf("schedule: set %q enabled=%t: %w", name, on, err)
	}
	s.poke()
	return nil
}

// ensureRegistered registers a locally added entry that is not in the store yet.
func (s *Scheduler) ensureRegistered(ctx context.Context, name string) error {
	s.mu.Lock()
	e, ok := s.entries[name]
	need := ok && !e.registered
	var spec string
	if need {
		spec = e.spec
	}
	s.mu.Unlock()
	if !need {
		return nil
	}
	if err := s.store.Register(ctx, name, spec); err != nil {
		return fmt.Errorf("schedule: register %q: %w", name, err)
	}
	s.mu.Lock()
	e.registered = true
	s.mu.Unlock()
	return nil
}

// poke makes the loop look at the store again now.
func (s *Scheduler) poke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pokeLocked()
}

func (s *Scheduler) pokeLocked() {
	s.dirty = true
	if s.interrupt != nil {
		s.interrupt()
	}
}

// Run registers the added entries and runs their ticks until ctx is done, then waits for
// the runs in progress (their ctx is cancelled too) and records their results. It returns
// nil after ctx ends; an error only when the scheduler is already running.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("schedule: Run called on a scheduler that is already running")
	}
	s.running = true
	s.mu.Unlock()

	runCtx, stopRuns := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopRuns()
		wg.Wait()
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()
	for ctx.Err() == nil {
		next := s.step(ctx, runCtx, &wg)
		s.sleep(ctx, next)
	}
	return nil
}

// sleep waits until next, a poke or the end of ctx.
func (s *Scheduler) sleep(ctx context.Context, next time.Time) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.dirty {
		s.dirty = false
		s.mu.Unlock()
		return
	}
	s.interrupt = cancel
	s.mu.Unlock()
	s.clock.SleepUntil(wctx, next)
	s.mu.Lock()
	s.interrupt = nil
	s.dirty = false
	s.mu.Unlock()
}

// retryAfterError is how soon the loop tries again after a store error.
const retryAfterError = 5 * time.Second

// step registers new entries, claims the due ticks, starts their runs and returns when
// to look again.
func (s *Scheduler) step(ctx, runCtx context.Context, wg *sync.WaitGroup) time.Time {
	now := s.clock.Now()
	next := now.Add(s.poll)
	retry := now.Add(min(s.poll, retryAfterError))

	s.mu.Lock()
	var unregistered []string
	for name, e := range s.entries {
		if !e.registered {
			unregistered = append(unregistered, name)
		}
	}
	s.mu.Unlock()
	for _, name := range unregistered {
		if err := s.ensureRegistered(ctx, name); err != nil {
			s.log.ErrorContext(ctx, "schedule: register entry", "entry", name, "error", err)
			next = earliest(next, retry)
		}
	}

	sts, err := s.store.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "schedule: list entries", "error", err)
		}
		return retry
	}
	for _, st := range sts {
		s.mu.Lock()
		e, ok := s.entries[st.Name]
		busy := ok && e.busy
		full := s.active >= s.maxRuns
		s.mu.Unlock()
		if !ok || !st.Enabled || st.NextRunAt.IsZero() {
			continue
		}
		if st.NextRunAt.After(now) {
			next = earliest(next, st.NextRunAt)
			continue
		}
		spec, err := s.spec(st.Spec)
		if err != nil {
			s.log.ErrorContext(ctx, "schedule: stored spec does not parse", "entry", st.Name, "error", err)
			continue
		}
		if full && !busy {
			// A run ending pokes the loop. A busy entry still claims, so that its skip
			// is recorded.
			continue
		}
		tick := spec.Latest(st.NextRunAt, now)
		won, err := s.store.Claim(ctx, st.Name, tick, s.lease)
		if err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "schedule: claim tick", "entry", st.Name, "tick", tick, "error", err)
			}
			next = earliest(next, retry)
			continue
		}
		if n := spec.Next(tick); !n.IsZero() {
			next = earliest(next, n)
		}
		switch {
		case won:
			s.start(runCtx, wg, e, tick)
		case st.Running:
			s.log.WarnContext(ctx, "schedule: tick skipped, the previous run is still running", "entry", st.Name, "tick", tick)
		default:
			s.log.DebugContext(ctx, "schedule: tick taken elsewhere", "entry", st.Name, "tick", tick)
		}
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// spec parses a spec read from the store, once per text.
func (s *Scheduler) spec(text string) (schedulekit.Spec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.specs[text]; ok {
		return p, nil
	}
	p, err := schedulekit.ParseSpec(text)
	if err != nil {
		return schedulekit.Spec{}, err
	}
	s.specs[text] = p
	return p, nil
}

// start runs e for tick on its own goroutine, renewing the lease while it runs.
func (s *Scheduler) start(ctx context.Context, wg *sync.WaitGroup, e *entry, tick time.Time) {
	s.mu.Lock()
	s.active++
	e.busy = true
	s.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		runCtx, cancelRun := context.WithCancel(ctx)
		defer cancelRun()
		renewCtx, stopRenew := context.WithCancel(runCtx)
		renewed := make(chan struct{})
		go func() {
			defer close(renewed)
			s.renew(renewCtx, cancelRun, e.name, tick)
		}()

		s.log.InfoContext(ctx, "schedule: run started", "entry", e.name, "tick", tick)
		began := s.clock.Now()
		err := call(runCtx, e.run, tick)
		took := s.clock.Now().Sub(began)
		stopRenew()
		<-renewed

		lastError := ""
		if err != nil {
			lastError = truncate(err.Error(), maxErrorLen)
			s.log.ErrorContext(ctx, "schedule: run failed", "entry", e.name, "tick", tick, "took", took, "error", err)
		} else {
			s.log.InfoContext(ctx, "schedule: run finished", "entry", e.name, "tick", tick, "took", took)
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.finishTO)
		if ferr := s.store.Finish(fctx, e.name, tick, took, lastError); ferr != nil {
			s.log.ErrorContext(ctx, "schedule: record run result", "entry", e.name, "tick", tick, "error", ferr)
		}
		cancel()

		s.mu.Lock()
		s.active--
		e.busy = false
		s.pokeLocked()
		s.mu.Unlock()
	}()
}

// renew extends the run's lease every third of it until ctx ends. When the lease is
// lost, or could not be renewed for a whole lease (the store unreachable), it cancels the
// run, so that it cannot overlap a run another node may start once the lease expires.
func (s *Scheduler) renew(ctx context.Context, cancelRun context.CancelFunc, name string, tick time.Time) {
	renewed := s.clock.Now()
	for {
		if s.clock.SleepUntil(ctx, s.clock.Now().Add(s.lease/3)) != nil {
			return
		}
		err := s.store.Renew(ctx, name, tick, s.lease)
		switch {
		case err == nil:
			renewed = s.clock.Now()
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrLeaseLost):
			s.log.ErrorContext(ctx, "schedule: run lost its lease, cancelling it", "entry", name, "tick", tick)
			cancelRun()
			return
		case s.clock.Now().Sub(renewed) >= s.lease:
			s.log.ErrorContext(ctx, "schedule: lease not renewed for a whole lease, cancelling the run", "entry", name, "tick", tick, "error", err)
			cancelRun()
			return
		default:
			s.log.WarnContext(ctx, "schedule: renew lease", "entry", name, "tick", tick, "error", err)
		}
	}
}

// call runs f, turning a panic into an error.
func call(ctx context.Context, f runFunc, tick time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f(ctx, tick)
}

// maxErrorLen bounds the error text kept per entry.
const maxErrorLen = 4000

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
