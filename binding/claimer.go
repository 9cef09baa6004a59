package binding

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Claimer holds leases for workers: Hold takes a binding's lease (waiting its turn while
// another worker holds it), renews it in the background while the work runs, and tells the
// worker when it was lost. Importers and exporters hold a lease around each record's sync
// so that two workers — goroutines or processes sharing a SQL store — never sync one record
// at once, however long a request takes. The zero value of each field means its default.
type Claimer struct {
	// Store is where the leases are taken. Required.
	Store Store
	// TTL is how long a lease lasts without renewal (default 5 min): a worker that dies
	// holding one blocks the record for at most this long. A held lease is renewed every
	// TTL/3.
	TTL time.Duration
	// MaxWait is how long Hold waits for another worker's lease (default 30 s).
	MaxWait time.Duration
	// Backoff is the first wait between attempts, doubling up to MaxBackoff (defaults
	// 20 ms and 1 s); each wait is drawn from [d/2, d].
	Backoff, MaxBackoff time.Duration
	// Sleep waits between claim attempts and between renewals (default: a timer that
	// stops with ctx); tests inject one that advances a fake clock or waits for a signal.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now reads the clock MaxWait is measured on (default time.Now).
	Now func() time.Time
	// Owner prefixes the owner names of the leases (default host-pid-random), so the
	// store shows which process holds a lease.
	Owner string

	seq atomic.Int64
}

// Lease is a lease held through Claimer.Hold. It is renewed in the background until
// Release; its Context ends when the lease is lost. A Lease is safe for concurrent use.
type Lease struct {
	b      Binding
	owner  string
	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	store  Store
}

// errReleased is the cause of a released lease's context.
var errReleased = errors.New("binding: lease released")

// Hold leases binding id to a new owner name (unique to this call) and renews the lease
// every TTL/3 until Release. While someone else holds the lease it waits and tries again;
// after MaxWait it gives up with an error matching ErrLocked that wraps the last
// *LockedError. Other errors (ErrNotFound, ctx) are returned at once.
//
// Do the work under the lease with Lease.Context, and name Lease.Owner in the writes that
// record its outcome (Success.Owner, Failure.Owner…): if a renewal finds the lease lost
// (another worker claimed it after it expired, or it was released or deleted), the
// context is cancelled with a *LeaseLostError as its cause (context.Cause), and those
// writes fail with ErrLeaseLost instead of overwriting the new holder's work. Errors of
// the store other than a lost lease do not end the lease: the renewal is tried again
// TTL/3 later, and a write still succeeds as long as no one else claimed the binding.
func (c *Claimer) Hold(ctx context.Context, id int64) (*Lease, error) {
	if c.Store == nil {
		return nil, fmt.Errorf("binding: hold %d: the Claimer has no Store: %w", id, ErrInvalid)
	}
	owner := c.newOwner()
	b, err := c.claim(ctx, id, owner)
	if err != nil {
		return nil, err
	}
	l := &Lease{b: b, owner: owner, store: c.Store, stop: make(chan struct{}), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancelCause(ctx)
	go c.renew(l)
	return l, nil
}

// renew extends l every TTL/3 until it is released, lost or its context ends.
func (c *Claimer) renew(l *Lease) {
	defer close(l.done)
	ttl := orDefault(c.TTL, 5*time.Minute)
	sleep := c.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	// Sleeps end on Release as well as with the caller's context.
	sctx, cancel := context.WithCancel(l.ctx)
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-sctx.Done():
		}
	}()
	for {
		if err := sleep(sctx, ttl/3); err != nil || sctx.Err() != nil {
			return
		}
		_, err := c.Store.Renew(sctx, l.b.ID, l.owner, ttl)
		switch {
		case err == nil:
		case errors.Is(err, ErrLeaseLost):
			l.cancel(err)
			return
		case errors.Is(err, ErrNotFound):
			l.cancel(&LeaseLostError{ID: l.b.ID, Owner: l.owner})
			return
		case sctx.Err() != nil:
			return
		}
		// Any other error: the store may be back at the next renewal, and until someone
		// else claims the binding the lease is still ours.
	}
}

// Binding returns the binding as it was when the lease was taken.
func (l *Lease) Binding() Binding { return l.b }

// Owner returns the lease's owner name, to put in Success.Owner, Failure.Owner,
// Binding.LeaseOwner and SetStatus.
func (l *Lease) Owner() string { return l.owner }

// Context returns a context derived from Hold's that is cancelled when the lease is lost
// (context.Cause is then a *LeaseLostError) or released.
func (l *Lease) Context() context.Context { return l.ctx }

// Release stops the renewal, waits for it to finish and ends the lease in the store (a
// lease lost meanwhile is left to its new holder). It may be called more than once; only
// the first call does anything. Write the record's outcome before releasing.
func (l *Lease) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.cancel(errReleased)
		err = l.store.Release(ctx, l.b.ID, l.owner)
	})
	return err
}

// claim calls Store.Claim until it succeeds, fails otherwise than ErrLocked, or MaxWait
// has passed.
func (c *Claimer) claim(ctx context.Context, id int64, owner string) (Binding, error) {
	ttl, maxWait := orDefault(c.TTL, 5*time.Minute), orDefault(c.MaxWait, 30*time.Second)
	delay, longest := orDefault(c.Backoff, 20*time.Millisecond), orDefault(c.MaxBackoff, time.Second)
	now, sleep := c.Now, c.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	deadline := now().Add(maxWait)
	for {
		b, err := c.Store.Claim(ctx, id, owner, ttl)
		if err == nil || !errors.Is(err, ErrLocked) {
			return b, err
		}
		wait := delay/2 + rand.N(delay/2+1)
		if now().Add(wait).After(deadline) {
			return b, fmt.Errorf("gave up after %s: %w", maxWait, err)
		}
		if err := sleep(ctx, wait); err != nil {
			return b, err
		}
		delay = min(delay*2, longest)
	}
}

// newOwner returns a lease owner name unique to this Claimer and call: Owner (or
// host-pid-random) followed by a sequence number. A distinct owner per sync keeps two
// goroutines of one process from sharing a lease.
func (c *Claimer) newOwner() string {
	return c.ownerPrefix() + "-" + strconv.FormatInt(c.seq.Add(1), 10)
}

var processOwner = func() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%x", host, os.Getpid(), rand.Uint32())
}()

func (c *Claimer) ownerPrefix() string {
	if c.Owner != "" {
		return c.Owner
	}
	return processOwner
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
