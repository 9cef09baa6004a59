package binding

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Claimer takes leases for workers that must wait their turn: it calls Store.Claim and,
// while another worker holds the lease, retries with jittered exponential backoff until
// MaxWait has passed. Importers and exporters hold a lease around each record's sync so
// that two workers — goroutines or processes sharing a SQL store — never sync one record at
// once. The zero value of each field means its default.
type Claimer struct {
	// Store is where the leases are taken. Required.
	Store Store
	// TTL is how long a lease lasts unless released (default 5 min). A worker that dies
	// holding one blocks the record for at most this long.
	TTL time.Duration
	// MaxWait is how long Claim waits for another worker's lease (default 30 s).
	MaxWait time.Duration
	// Backoff is the first wait between attempts, doubling up to MaxBackoff (defaults
	// 20 ms and 1 s); each wait is drawn from [d/2, d].
	Backoff, MaxBackoff time.Duration
	// Sleep waits between attempts (default: a timer that stops with ctx); tests inject
	// one that advances a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now reads the clock MaxWait is measured on (default time.Now).
	Now func() time.Time
	// Owner prefixes the owner names NewOwner hands out (default host-pid-random), so the
	// store shows which process holds a lease.
	Owner string

	seq atomic.Int64
}

// Claim leases binding id to owner. While someone else holds the lease it waits and tries
// again; after MaxWait it gives up with an error matching ErrLocked that wraps the last
// *LockedError. Other errors (ErrNotFound, ctx) are returned at once.
func (c *Claimer) Claim(ctx context.Context, id int64, owner string) (Binding, error) {
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

// NewOwner returns a lease owner name unique to this Claimer and call: Owner (or
// host-pid-random) followed by a sequence number. A distinct owner per sync keeps two
// goroutines of one process from sharing a lease.
func (c *Claimer) NewOwner() string {
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
