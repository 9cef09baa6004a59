package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/binding/bindingtest"
	"github.com/connkit/connkit/sqlstore"
)

// BenchmarkBindingStore runs the shared store benchmarks (ratio against a map).
func BenchmarkBindingStore(b *testing.B) {
	for _, e := range engines(b) {
		b.Run(e.name, func(b *testing.B) {
			bindingtest.Bench(b, func(b *testing.B) binding.Store { return e.open(b).Bindings() })
		})
	}
}

// BenchmarkVsDatabaseSQL compares the binding store with a hand-written database/sql loop on
// the same database: plain INSERT … ON CONFLICT DO UPDATE (and a plain SELECT) with
// prepared statements, into a table of the same shape and indexes, in the same batched
// transactions (single upserts autocommit). It reports records/s for
// both and "x-baseline", the store's time divided by the loop's.
func BenchmarkVsDatabaseSQL(b *testing.B) {
	engs := []engine{
		{"sqlite-file", func(b testing.TB, opts ...sqlstore.Option) *sqlstore.DB {
			return mustOpen(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), opts...)
		}},
		{"postgres", func(b testing.TB, opts ...sqlstore.Option) *sqlstore.DB {
			return mustOpen(b, pgSchemaDSN(b), opts...)
		}},
	}
	for _, e := range engs {
		b.Run(e.name, func(b *testing.B) {
			b.Run("UpsertBatch100", func(b *testing.B) {
				db := e.open(b)
				base := newBaseline(b, db)
				s := db.Bindings()
				ctx := b.Context()
				batch := func(i int) []binding.Binding {
					bs := make([]binding.Binding, 100)
					for j := range bs {
						bs[j] = binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprint("e", i, "-", j),
							Status: binding.StatusSuccess, Hash: "h", SyncedAt: time.Unix(1700000000, 0)}
					}
					return bs
				}
				compare(b, 100, func(i int) {
					if _, err := s.UpsertBatch(ctx, batch(i)); err != nil {
						b.Fatal(err)
					}
				}, func(i int) { base.upsertBatch(b, batch(i)) })
			})
			// An importer's page: 250 new bindings with both IDs (the local record was just
			// created), then the next run's page, which updates them by ID.
			page := func(i int) []binding.Binding {
				bs := make([]binding.Binding, 250)
				for j := range bs {
					bs[j] = binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprint("e", i, "-", j),
						LocalID: fmt.Sprint("l", i, "-", j), Status: binding.StatusSuccess, Hash: "h",
						SyncedAt: time.Unix(1700000000, 0), ExternalUpdatedAt: time.Unix(1690000000, 0)}
				}
				return bs
			}
			b.Run("ImportPage250", func(b *testing.B) {
				db := e.open(b)
				base := newBaseline(b, db)
				s := db.Bindings()
				ctx := b.Context()
				compare(b, 250, func(i int) {
					if _, err := s.UpsertBatch(ctx, page(i)); err != nil {
						b.Fatal(err)
					}
				}, func(i int) { base.upsertBatch(b, page(i)) })
			})
			b.Run("ReimportPage250", func(b *testing.B) {
				db := e.open(b)
				base := newBaseline(b, db)
				s := db.Bindings()
				ctx := b.Context()
				const pages = 40
				stored := make([][]binding.Binding, pages)
				for i := range pages {
					got, err := s.UpsertBatch(ctx, page(i))
					if err != nil {
						b.Fatal(err)
					}
					stored[i] = got
					base.upsertBatch(b, page(i))
				}
				compare(b, 250, func(i int) {
					bs := stored[i%pages]
					for j := range bs {
						bs[j].Hash = fmt.Sprint("h", i)
					}
					if _, err := s.UpsertBatch(ctx, bs); err != nil {
						b.Fatal(err)
					}
				}, func(i int) {
					bs := page(i % pages)
					for j := range bs {
						bs[j].Hash = fmt.Sprint("h", i)
					}
					base.upsertBatch(b, bs)
				})
			})
			b.Run("GetManyByExternal250", func(b *testing.B) {
				db := e.open(b)
				base := newBaseline(b, db)
				s := db.Bindings()
				ctx := b.Context()
				const pages = 40
				for i := range pages {
					if _, err := s.UpsertBatch(ctx, page(i)); err != nil {
						b.Fatal(err)
					}
					base.upsertBatch(b, page(i))
				}
				ids := func(i int) []string {
					out := make([]string, 250)
					for j := range out {
						out[j] = fmt.Sprint("e", i%pages, "-", j)
					}
					return out
				}
				compare(b, 250, func(i int) {
					got, err := s.GetManyByExternal(ctx, "shop", "product", ids(i))
					if err != nil || len(got) != 250 {
						b.Fatal(len(got), err)
					}
				}, func(i int) { base.getMany(b, ids(i)) })
			})
			b.Run("Upsert", func(b *testing.B) {
				db := e.open(b)
				base := newBaseline(b, db)
				s := db.Bindings()
				ctx := b.Context()
				one := func(i int) binding.Binding {
					// Alternate inserts and updates of the previous binding.
					return binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprint("e", i/2), Hash: fmt.Sprint(i)}
				}
				compare(b, 1, func(i int) {
					if _, err := s.Upsert(ctx, one(i)); err != nil {
						b.Fatal(err)
					}
				}, func(i int) { base.upsertBatch(b, []binding.Binding{one(i)}) })
			})
			b.Run("GetByExternal", func(b *testing.B) {
				db := e.open(b)
				base := newBaseline(b, db)
				s := db.Bindings()
				ctx := b.Context()
				const n = 10_000
				for k := 0; k < n; k += 500 {
					bs := make([]binding.Binding, 500)
					for j := range bs {
						bs[j] = binding.Binding{Backend: "shop", Model: "product", ExternalID: fmt.Sprint("e", k+j), LocalID: fmt.Sprint("l", k+j)}
					}
					if _, err := s.UpsertBatch(ctx, bs); err != nil {
						b.Fatal(err)
					}
					base.upsertBatch(b, bs)
				}
				key := func(i int) string { return fmt.Sprint("e", (i*7919)%n) }
				compare(b, 1, func(i int) {
					if _, err := s.GetByExternal(ctx, "shop", "product", key(i)); err != nil {
						b.Fatal(err)
					}
				}, func(i int) { base.get(b, key(i)) })
			})
		})
	}
}

// compare runs op and the baseline alternately, the baseline with the timer stopped, so
// both see the same machine load and database size; each iteration handles perOp records.
func compare(b *testing.B, perOp int, op, baseline func(i int)) {
	var opT, baseT time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		op(i)
		opT += time.Since(start)
		b.StopTimer()
		start = time.Now()
		baseline(i)
		baseT += time.Since(start)
		b.StartTimer()
		i++
	}
	records := float64(i * perOp)
	b.ReportMetric(records/opT.Seconds(), "records/s")
	b.ReportMetric(records/baseT.Seconds(), "baseline-records/s")
	b.ReportMetric(opT.Seconds()/baseT.Seconds(), "x-baseline")
}

// baseline is the hand-written database/sql code a user might write instead.
type baseline struct {
	db        *sql.DB
	pg        bool
	upsertSQL string
	upsertOne *sql.Stmt // prepared on the pool, for single autocommit upserts
	getStmt   *sql.Stmt
}

func newBaseline(b *testing.B, db *sqlstore.DB) *baseline {
	b.Helper()
	ts := "BIGINT"
	upsert := `INSERT INTO bench_bindings (backend, model, local_id, external_id, status, last_error, retry_count,
		synced_at, external_updated_at, hash, no_export, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (backend, model, external_id) DO UPDATE SET local_id = COALESCE(excluded.local_id, bench_bindings.local_id),
		status = excluded.status, last_error = excluded.last_error, retry_count = excluded.retry_count,
		synced_at = excluded.synced_at, external_updated_at = excluded.external_updated_at, hash = excluded.hash,
		no_export = excluded.no_export, updated_at = excluded.updated_at
		RETURNING id, created_at`
	get := `SELECT id, backend, model, local_id, external_id, status, last_error, retry_count, synced_at,
		external_updated_at, hash, no_export, lease_owner, lease_expires_at, created_at, updated_at
		FROM bench_bindings WHERE backend = ? AND model = ? AND external_id = ?`
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if db.Dialect() == sqlstore.Postgres {
		ts, id = "TIMESTAMPTZ", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
		upsert, get = pgRebind(upsert), pgRebind(get)
	}
	for _, stmt := range []string{
		`CREATE TABLE bench_bindings (id ` + id + `, backend TEXT NOT NULL, model TEXT NOT NULL, local_id TEXT,
			external_id TEXT, status TEXT NOT NULL, last_error TEXT NOT NULL, retry_count INTEGER NOT NULL,
			synced_at ` + ts + `, external_updated_at ` + ts + `, hash TEXT NOT NULL, no_export BOOLEAN NOT NULL,
			lease_owner TEXT, lease_expires_at ` + ts + `, created_at ` + ts + ` NOT NULL, updated_at ` + ts + ` NOT NULL)`,
		`CREATE UNIQUE INDEX bench_bindings_external ON bench_bindings (backend, model, external_id)`,
		`CREATE UNIQUE INDEX bench_bindings_local ON bench_bindings (backend, model, local_id)`,
		// The same secondary indexes as connkit_bindings, so the ratio measures code, not schema.
		`CREATE INDEX bench_bindings_status ON bench_bindings (backend, model, status)`,
		`CREATE INDEX bench_bindings_updated ON bench_bindings (updated_at)`,
	} {
		if _, err := db.SQL().Exec(stmt); err != nil {
			b.Fatal(err)
		}
	}
	getStmt, err := db.SQL().Prepare(get)
	if err != nil {
		b.Fatal(err)
	}
	upsertOne, err := db.SQL().Prepare(upsert)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { getStmt.Close(); upsertOne.Close() })
	return &baseline{db: db.SQL(), pg: db.Dialect() == sqlstore.Postgres, upsertSQL: upsert, upsertOne: upsertOne, getStmt: getStmt}
}

func pgRebind(q string) string {
	out := []byte{}
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (bl *baseline) timeArg(t time.Time, pg bool) any {
	if t.IsZero() {
		return nil
	}
	if pg {
		return t
	}
	return t.UnixMicro()
}

func (bl *baseline) upsertBatch(b *testing.B, bs []binding.Binding) {
	ctx := context.Background()
	if len(bs) == 1 { // a single upsert: autocommit, no explicit transaction
		bl.upsert(b, bl.upsertOne, bs[0], time.Now())
		return
	}
	tx, err := bl.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, bl.upsertSQL)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for _, x := range bs {
		bl.upsert(b, stmt, x, now)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func (bl *baseline) upsert(b *testing.B, stmt *sql.Stmt, x binding.Binding, now time.Time) {
	pg := bl.pg
	ctx := context.Background()
	{
		status := x.Status
		if status == "" {
			status = binding.StatusPending
		}
		var id int64
		var created any
		if err := stmt.QueryRowContext(ctx, x.Backend, x.Model, nullable(x.LocalID), nullable(x.ExternalID), string(status),
			x.LastError, x.RetryCount, bl.timeArg(x.SyncedAt, pg), bl.timeArg(x.ExternalUpdatedAt, pg), x.Hash, x.NoExport,
			bl.timeArg(now, pg), bl.timeArg(now, pg)).Scan(&id, &created); err != nil {
			b.Fatal(err)
		}
	}
}

func (bl *baseline) get(b *testing.B, ext string) {
	var x binding.Binding
	var local, extID, owner sql.NullString
	var status string
	var t1, t2, t3, t4, t5 any
	if err := bl.getStmt.QueryRowContext(context.Background(), "shop", "product", ext).Scan(&x.ID, &x.Backend, &x.Model,
		&local, &extID, &status, &x.LastError, &x.RetryCount, &t1, &t2, &x.Hash, &x.NoExport, &owner, &t3, &t4, &t5); err != nil {
		b.Fatal(err)
	}
}

// getMany is the hand-written lookup of many external IDs: one IN (…) query (ANY($3) on
// Postgres) built for the call.
func (bl *baseline) getMany(b *testing.B, ids []string) {
	query := `SELECT id, backend, model, local_id, external_id, status, last_error, retry_count, synced_at,
		external_updated_at, hash, no_export, lease_owner, lease_expires_at, created_at, updated_at
		FROM bench_bindings WHERE backend = ? AND model = ? AND external_id `
	args := []any{"shop", "product"}
	if bl.pg {
		query = pgRebind(query + `= ANY(?)`)
		args = append(args, ids)
	} else {
		query += `IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := bl.db.QueryContext(context.Background(), query, args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var x binding.Binding
		var local, extID, owner sql.NullString
		var status string
		var t1, t2, t3, t4, t5 any
		if err := rows.Scan(&x.ID, &x.Backend, &x.Model, &local, &extID, &status, &x.LastError, &x.RetryCount,
			&t1, &t2, &x.Hash, &x.NoExport, &owner, &t3, &t4, &t5); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != len(ids) {
		b.Fatal(n, err)
	}
}
