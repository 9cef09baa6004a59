// Package schedule runs operations on intervals or cron expressions, across processes.
//
// An entry has a name, a spec and a run func. Entries live in a Store shared by every
// process: NewMemory for one process, sqlstore's DB.Schedules (SQLite or Postgres) for
// several. The store keeps what a console shows and toggles (Status: enabled, last and
// next run, last error and duration, running, skipped ticks).
//
// A spec is one of:
//
//   - an interval: "@every 15m" or a bare Go duration "15m", a whole number of seconds, at
//     least 1s. Ticks are aligned to multiples of the interval (15m ticks at :00, :15, :30
//     and :45 UTC), not counted from a start time.
//   - a standard 5-field cron expression "minute hour day-of-month month day-of-week"
//     ("*/5 * * * *", "0 3 * * mon-fri") or a descriptor: @yearly (@annually), @monthly,
//     @weekly, @daily (@midnight), @hourly.
//   - either cron form prefixed by a time zone: "CRON_TZ=Europe/Paris 0 3 * * *" (TZ= is
//     accepted too). Without one, cron fields are read in UTC, so nodes in different local
//     zones agree.
//
// A bad spec fails Scheduler.Add and Store.Register with an error matching ErrInvalid
// that quotes the spec.
//
// The rules:
//
//   - An entry is disabled until enabled (Scheduler.Enable, or Store.SetEnabled from a
//     console); its first run is its first tick after it was enabled.
//   - Ticks are computed from the spec alone, so all nodes agree on them, and each tick
//     runs on one node: Store.Claim lets exactly one claimer win it.
//   - A run never overlaps the entry's previous run: while that one holds its lease
//     (renewed as it runs, so only a dead process leaves a lease to expire), a tick is
//     skipped and counted.
//   - Ticks missed while no scheduler ran collapse into one run, for the latest of them.
//
// An entry's run func receives the tick, the same on every node, which makes a good
// identity key for a job enqueued on a queue.
package schedule
