package binding_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connkit/connkit/binding"
)

func ExampleBinder() {
	ctx := context.Background()
	store := binding.NewMemory()
	binder := binding.NewBinder(store, "shop-eu")

	// After importing external product 1001 as local record 42:
	if _, err := store.Upsert(ctx, binding.Binding{Backend: "shop-eu", Model: "product", LocalID: "42", ExternalID: "1001",
		Status: binding.StatusSuccess}); err != nil {
		fmt.Println(err)
		return
	}
	local, _ := binder.ToLocal(ctx, "product", "1001")
	external, _ := binder.ToExternal(ctx, "product", "42")
	fmt.Println("external 1001 is local", local)
	fmt.Println("local 42 is external", external)

	_, err := binder.ToExternal(ctx, "product", "43")
	fmt.Println(errors.Is(err, binding.ErrNotFound))
	// Output:
	// external 1001 is local 42
	// local 42 is external 1001
	// true
}

func ExampleNewMemory_claim() {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	store := binding.NewMemory(binding.WithClock(func() time.Time { return now }))
	b, _ := store.Upsert(ctx, binding.Binding{Backend: "shop-eu", Model: "product", LocalID: "42"})

	// Worker A takes the record for five minutes; worker B must keep off.
	if _, err := store.Claim(ctx, b.ID, "worker-a", 5*time.Minute); err != nil {
		fmt.Println(err)
	}
	_, err := store.Claim(ctx, b.ID, "worker-b", 5*time.Minute)
	var locked *binding.LockedError
	if errors.As(err, &locked) {
		fmt.Println("locked by", locked.Owner, "until", locked.Expires.Format(time.Kitchen))
	}

	// Once A's lease expires (or A releases it), B gets the record.
	now = now.Add(6 * time.Minute)
	b, err = store.Claim(ctx, b.ID, "worker-b", 5*time.Minute)
	fmt.Println(b.LeaseOwner, err)
	_ = store.Release(ctx, b.ID, "worker-b")
	// Output:
	// locked by worker-a until 9:05AM
	// worker-b <nil>
}

// A Claimer holds a record's lease for one sync, waiting while another worker holds it and
// renewing it while the work runs; the writes that end the sync name the lease.
func ExampleClaimer_Hold() {
	ctx := context.Background()
	store := binding.NewMemory()
	b, _ := store.Upsert(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "p-1"})

	c := &binding.Claimer{Store: store, Owner: "worker-a", MaxWait: time.Second}
	lease, err := c.Hold(ctx, b.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lease.Release(ctx)
	fmt.Println("leased to", lease.Owner())

	// Another worker gives up after its MaxWait.
	other := &binding.Claimer{Store: store, Owner: "worker-b", MaxWait: 50 * time.Millisecond}
	_, err = other.Hold(ctx, b.ID)
	fmt.Println(errors.Is(err, binding.ErrLocked))

	// The work runs on lease.Context() (cancelled if the lease is lost); its outcome is
	// written under the lease. Writing under a lease one does not hold is refused.
	_, err = store.MarkSuccess(lease.Context(), b.ID, binding.Success{Owner: lease.Owner(), LocalID: "42"})
	fmt.Println("marked:", err)
	_, err = store.MarkFailed(ctx, b.ID, binding.Failure{Owner: "worker-b-1", Error: "late"})
	fmt.Println(errors.Is(err, binding.ErrLeaseLost))
	// Output:
	// leased to worker-a-1
	// true
	// marked: <nil>
	// true
}
