// Package schedule runs operations on intervals or cron expressions, across processes.
//
// An entry has a name, a spec (ParseSpec: "@every 15m", "15m", "0 3 * * *", "@hourly",
// "CRON_TZ=Europe/Paris 0 3 * * mon-fri") and a Func. Entries live in a Store shared by
// every process: MemoryStore for one process, sqlstore's DB.Schedules (SQLite or
// Postgres) for several. The store keeps what a console shows and toggles (Status:
// enabled, last and next run, last error and duration, running, skipped ticks).
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
