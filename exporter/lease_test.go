package exporter_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
)

type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// leaseEnv runs one export whose create blocks in the server until the test lets it
// answer, over a store on a fake clock, with renewals stepped by the test.
type leaseEnv struct {
	clock          *stepClock
	bs             binding.Store
	exp            *exporter.Exporter[product]
	inPost, answer chan struct{}
	slept, wake    chan struct{}
}

func newLeaseEnv(t *testing.T) *leaseEnv {
	e := &leaseEnv{clock: &stepClock{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		inPost: make(chan struct{}), answer: make(chan struct{}), slept: make(chan struct{}), wake: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.inPost <- struct{}{}
		<-e.answer
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id": 7}`))
	}))
	t.Cleanup(srv.Close)
	e.bs = binding.NewMemory(binding.WithClock(e.clock.Now))
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "A"})
	claimer := &binding.Claimer{Store: e.bs, TTL: time.Minute, MaxWait: time.Second, Now: e.clock.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			select { // a renewal wait: the test decides when it ends
			case e.slept <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-e.wake:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
	var err error
	e.exp, err = exporter.New(newClient(t, srv.URL), e.bs, store, "shop", "product", "/products", mapProduct,
		exporter.WithClaimer(claimer))
	require.NoError(t, err)
	return e
}

// Issue 9 defect 6: a request that outlasts the lease TTL keeps the lease, because it is
// renewed while the export runs; no other worker takes the record in the middle.
func TestExportRenewsLeaseDuringLongRequest(t *testing.T) {
	ctx := context.Background()
	e := newLeaseEnv(t)
	type outcome struct {
		res report.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() { res, err := e.exp.Export(ctx, "1"); done <- outcome{res, err} }()
	<-e.slept // the lease is held, its renewal waiting
	<-e.inPost
	for range 6 { // two TTLs pass while the create runs
		e.clock.Advance(20 * time.Second)
		e.wake <- struct{}{}
		<-e.slept
	}
	b, err := e.bs.GetByLocal(ctx, "shop", "product", "1")
	require.NoError(t, err)
	_, err = e.bs.Claim(ctx, b.ID, "other-worker", time.Minute)
	require.ErrorIs(t, err, binding.ErrLocked, "the running export's lease must still be held")
	close(e.answer)
	out := <-done
	require.NoError(t, out.err)
	assert.Equal(t, report.Created, out.res.Action)
	assert.Equal(t, "7", out.res.Binding.ExternalID)
	assert.NotEqual(t, "other-worker", out.res.Binding.LeaseOwner)
	got, _ := e.bs.Get(ctx, b.ID)
	assert.Empty(t, got.LeaseOwner, "released after the export")
}

// When the lease is lost anyway (the process stalled past the TTL and another worker took
// the record), the export stops without overwriting the new holder's binding, and reports
// a lost lease, not a failure of the record.
func TestExportStopsWhenLeaseLost(t *testing.T) {
	ctx := context.Background()
	e := newLeaseEnv(t)
	done := make(chan error, 1)
	var res report.Result
	go func() {
		var err error
		res, err = e.exp.Export(ctx, "1")
		done <- err
	}()
	<-e.slept
	<-e.inPost
	e.clock.Advance(2 * time.Minute) // stalled: no renewal ran
	b, err := e.bs.GetByLocal(ctx, "shop", "product", "1")
	require.NoError(t, err)
	_, err = e.bs.Claim(ctx, b.ID, "other-worker", time.Hour)
	require.NoError(t, err)
	e.wake <- struct{}{} // the renewal finds the lease lost and cancels the request
	err = <-done
	close(e.answer)
	require.ErrorIs(t, err, binding.ErrLeaseLost)
	var re *report.RecordError
	require.True(t, errors.As(err, &re))
	assert.Equal(t, "lease", re.Step)
	got, _ := e.bs.Get(ctx, b.ID)
	assert.Equal(t, "other-worker", got.LeaseOwner, "the new holder keeps its lease")
	assert.Equal(t, binding.StatusPending, got.Status, "nothing was written over the new holder's binding")
	assert.Zero(t, got.RetryCount)
	_ = res
}
