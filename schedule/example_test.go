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

func ExampleParseSpec() {
	after := time.Date(2026, 3, 1, 12, 7, 30, 0, time.UTC)
	for _, text := range []string{"@every 15m", "*/5 * * * *", "@daily", "CRON_TZ=Europe/Paris 0 3 * * mon-fri"} {
		spec, err := schedule.ParseSpec(text)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-38s next %s\n", text, spec.Next(after).UTC().Format(time.RFC3339))
	}
	_, err := schedule.ParseSpec("0 25 * * *")
	fmt.Println(err)
	// Output:
	// @every 15m                             next 2026-03-01T12:15:00Z
	// */5 * * * *                            next 2026-03-01T12:10:00Z
	// @daily                                 next 2026-03-02T00:00:00Z
	// CRON_TZ=Europe/Paris 0 3 * * mon-fri   next 2026-03-02T02:00:00Z
	// schedule: invalid spec "0 25 * * *": end of range (25) above maximum (23): 25
}
