package schedule_test

import (
	"context"
	"fmt"
	"time"

	"github.com/connkit/connkit/schedule"
)

// A scheduler runs an operation every second once it is enabled. Every process sharing
// the store (sqlstore's DB.Schedules for several processes) runs the same entries; each
// tick runs on one of them. The tick time identifies the run on every node, so it makes a
// good identity key for a queued job.
func Example() {
	store := schedule.NewMemory()
	s := schedule.New(store)
	ctx, stop := context.WithCancel(context.Background())
	err := s.Add("sync_all", "@every 1s", func(ctx context.Context, tick time.Time) error {
		// Enqueue the real work here, e.g. with identity key "sync_all@"+tick.Format(time.RFC3339):
		// the same tick gives the same key on every node.
		fmt.Println("sync_all ran for a tick on a whole second:", tick.Equal(tick.Truncate(time.Second)))
		stop() // one run is enough for the example
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Disabled until enabled; the store keeps the flag, so it is enabled for every node.
	if err := s.Enable(ctx, "sync_all"); err != nil {
		fmt.Println(err)
		return
	}
	s.Run(ctx) // blocks until ctx ends, then waits for the run in progress

	st, _ := store.Get(context.Background(), "sync_all")
	fmt.Println("enabled:", st.Enabled, "running:", st.Running, "last error:", st.LastError == "")
	// Output:
	// sync_all ran for a tick on a whole second: true
	// enabled: true running: false last error: true
}
