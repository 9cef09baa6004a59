package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/bindingkit"
)

// bindingStore is the SQL binding.Store returned by DB.Bindings.
type bindingStore struct{ db *DB }

var _ binding.Store = (*bindingStore)(nil)

const bindingCols = `id, backend, model, local_id, external_id, status, last_error, retry_count, synced_at,
	external_updated_at, hash, no_export, lease_owner, lease_expires_at, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanBinding(sc scanner) (binding.Binding, error) {
	var b binding.Binding
	var status string
	err := sc.Scan(&b.ID, &b.Backend, &b.Model, nullString{&b.LocalID}, nullString{&b.ExternalID}, &status,
		&b.LastError, &b.RetryCount, nullTime{&b.SyncedAt}, nullTime{&b.ExternalUpdatedAt}, &b.Hash, &b.NoExport,
		nullString{&b.LeaseOwner}, nullTime{&b.LeaseExpiresAt}, nullTime{&b.CreatedAt}, nullTime{&b.UpdatedAt})
	b.Status = binding.Status(status)
	return b, err
}

// queryOne returns the binding selected by where, and whether there is one.
func (s *bindingStore) queryOne(ctx context.Context, q querier, where string, args ...any) (binding.Binding, bool, error) {
	b, err := scanBinding(q.QueryRowContext(ctx, s.db.q(`SELECT `+bindingCols+` FROM connkit_bindings WHERE `+where), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return binding.Binding{}, false, nil
	}
	if err != nil {
		return binding.Binding{}, false, err
	}
	return b, true, nil
}

// writeTx runs fn in a write transaction. On SQLite the transaction prepares each query
// once (batches reuse them); pgx already caches prepared statements per connection.
// A lost insert race (Postgres: a concurrent transaction inserted the same key first) is
// retried: the next attempt finds the row and updates it. So are a *retryBatch, which
// UpsertBatch's next attempt runs one item at a time, and a transaction Postgres aborted
// as a deadlock (concurrent batches writing the same keys in different orders).
func (s *bindingStore) writeTx(ctx context.Context, fn func(q querier) error) error {
	for attempt := 1; ; attempt++ {
		var cache *stmtCache
		err := s.db.inTx(ctx, func(tx *sql.Tx) error {
			if s.db.dialect == SQLite {
				cache = newStmtCache(tx, s.db.wq)
				return fn(cache)
			}
			return fn(tx)
		})
		if cache != nil && len(cache.misses) > 0 && err == nil {
			s.db.wq.warm(ctx, cache.misses)
		}
		var race *insertRace
		var retry *retryBatch
		if mustRetry(err) && attempt < maxTxAttempts {
			// Give the transaction that won time to finish: retried at once, the two
			// would likely lock each other again.
			t := time.NewTimer(time.Duration(attempt) * time.Duration(10+rand.IntN(40)) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
			continue
		}
		if (errors.As(err, &race) || errors.As(err, &retry)) && attempt < maxTxAttempts {
			continue
		}
		if errors.As(err, &race) {
			return race.err
		}
		if errors.As(err, &retry) {
			return retry.err
		}
		return err
	}
}

// maxTxAttempts bounds writeTx's attempts.
const maxTxAttempts = 8

// insertRace marks a unique violation on insert, which (the lookup having found no row)
// means another transaction inserted the key concurrently.
type insertRace struct{ err error }

func (e *insertRace) Error() string { return e.err.Error() }
func (e *insertRace) Unwrap() error { return e.err }

func validateUpsert(b *binding.Binding) error {
	if b.ID != 0 {
		return bindingkit.Validate(b)
	}
	return bindingkit.ValidateKeyed("binding: upsert", b)
}

// conflictError turns a unique violation into an ErrConflict naming the ID that collided.
func conflictError(detail string, b *binding.Binding) error {
	if strings.Contains(detail, "external") {
		return fmt.Errorf("%s/%s external ID %q is already bound to another binding: %w",
			b.Backend, b.Model, b.ExternalID, binding.ErrConflict)
	}
	return fmt.Errorf("%s/%s local ID %q is already bound to another binding: %w",
		b.Backend, b.Model, b.LocalID, binding.ErrConflict)
}

func notFoundID(op string, id int64) error {
	return fmt.Errorf("binding: %s: no binding with ID %d: %w", op, id, binding.ErrNotFound)
}

// leaseNow is the lease clock in SQL: the database's on Postgres, the process's (one
// argument, now) on SQLite.
func (s *bindingStore) leaseNow(now time.Time) (string, []any) {
	if s.db.dialect == Postgres {
		return `now()`, nil
	}
	return `?`, []any{s.db.timeArg(now)}
}

// leaseGuard is the lease rule of binding.Store as a WHERE condition on the stored row
// (table connkit_bindings) for a write naming owner, and its arguments.
func (s *bindingStore) leaseGuard(owner string, now time.Time) (string, []any) {
	if owner != "" {
		return `connkit_bindings.lease_owner = ?`, []any{owner}
	}
	at, args := s.leaseNow(now)
	return `(connkit_bindings.lease_owner IS NULL OR connkit_bindings.lease_expires_at <= ` + at + `)`, args
}

// leaseRow reads the binding selected by where together with whether its lease is
// unexpired on the lease clock, to explain a write the lease rule refused.
func (s *bindingStore) leaseRow(ctx context.Context, q querier, now time.Time, where string, args ...any) (binding.Binding, bool, bool, error) {
	at, atArgs := s.leaseNow(now)
	row := q.QueryRowContext(ctx, s.db.q(`SELECT `+bindingCols+`, (lease_owner IS NOT NULL AND lease_expires_at > `+at+
		`) FROM connkit_bindings WHERE `+where), append(atArgs, args...)...)
	var b binding.Binding
	var status string
	var leased bool
	err := row.Scan(&b.ID, &b.Backend, &b.Model, nullString{&b.LocalID}, nullString{&b.ExternalID}, &status,
		&b.LastError, &b.RetryCount, nullTime{&b.SyncedAt}, nullTime{&b.ExternalUpdatedAt}, &b.Hash, &b.NoExport,
		nullString{&b.LeaseOwner}, nullTime{&b.LeaseExpiresAt}, nullTime{&b.CreatedAt}, nullTime{&b.UpdatedAt}, &leased)
	b.Status = binding.Status(status)
	if errors.Is(err, sql.ErrNoRows) {
		return binding.Binding{}, false, false, nil
	}
	return b, leased, err == nil, err
}

// errLeaseMoved marks a refusal the lease no longer explains (it changed hands between the
// write and the look): the write is tried again.
var errLeaseMoved = errors.New("sqlstore: the lease changed during the write")

// explainRefusal returns why a guarded write selected by where matched no row: missing
// (nil when missing is nil and the row is gone, as for a keyed upsert whose row vanished),
// or the lease error; errLeaseMoved when the lease now allows the write.
func (s *bindingStore) explainRefusal(ctx context.Context, q querier, now time.Time, owner string, missing error, where string, args ...any) error {
	cur, leased, ok, err := s.leaseRow(ctx, q, now, where, args...)
	switch {
	case err != nil:
		return err
	case !ok && missing != nil:
		return missing
	case !ok:
		return errLeaseMoved
	}
	if lerr := bindingkit.LeaseError(&cur, owner, leased); lerr != nil {
		return lerr
	}
	return errLeaseMoved
}

// guardedAttempts bounds the retries of a guarded write whose refusal the lease no longer
// explains; a lease changing hands that fast is reported as it stands after the last try.
const guardedAttempts = 5

// guardedUpdate runs prefix ("UPDATE connkit_bindings SET … WHERE id = ?", with args)
// under the lease rule for owner and returns the updated binding, missing when there is
// no binding id, or the lease error.
func (s *bindingStore) guardedUpdate(ctx context.Context, q querier, id int64, owner string, missing error, prefix string, args ...any) (binding.Binding, error) {
	for attempt := 1; ; attempt++ {
		now := s.db.clock()
		guard, gargs := s.leaseGuard(owner, now)
		b, err := scanBinding(q.QueryRowContext(ctx, s.db.q(prefix+` AND `+guard+` RETURNING `+bindingCols),
			append(append([]any(nil), args...), gargs...)...))
		if !errors.Is(err, sql.ErrNoRows) {
			return b, err
		}
		err = s.explainRefusal(ctx, q, now, owner, missing, `id = ?`, id)
		if !errors.Is(err, errLeaseMoved) || attempt == guardedAttempts {
			return binding.Binding{}, err
		}
	}
}

// Get implements binding.Store.
func (s *bindingStore) Get(ctx context.Context, id int64) (binding.Binding, error) {
	b, ok, err := s.queryOne(ctx, s.db.rq, `id = ?`, id)
	if err != nil {
		return binding.Binding{}, fmt.Errorf("binding: get %d: %w", id, err)
	}
	if !ok {
		return binding.Binding{}, notFoundID("get", id)
	}
	return b, nil
}

// GetByExternal implements binding.Store.
func (s *bindingStore) GetByExternal(ctx context.Context, backend, model, externalID string) (binding.Binding, error) {
	return s.getBy(ctx, "external", backend, model, externalID)
}

// GetManyByExternal implements binding.Store with one query per chunk of IDs: on SQLite
// "external_id IN (?, …)" with at most sqliteInChunk IDs (bound variables are limited),
// on Postgres "external_id = ANY($3)" with a text array of at most pgInChunk IDs.
func (s *bindingStore) GetManyByExternal(ctx context.Context, backend, model string, externalIDs []string) (map[string]binding.Binding, error) {
	ids := uniqueNonEmpty(externalIDs)
	out := make(map[string]binding.Binding, len(ids))
	chunk := sqliteInChunk
	if s.db.dialect == Postgres {
		chunk = pgInChunk
	}
	// Checked up front too, so a cancelled caller gets its context error even when there is
	// nothing to query; each chunk's query checks it again.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("binding: get %d %s/%s bindings by external ID: %w", len(ids), backend, model, err)
	}
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		if err := s.getManyChunk(ctx, backend, model, part, out); err != nil {
			return nil, fmt.Errorf("binding: get %d %s/%s bindings by external ID (IDs %d to %d): %w",
				len(ids), backend, model, start, start+len(part)-1, err)
		}
	}
	return out, nil
}

// Chunk sizes of GetManyByExternal. SQLite allows 32766 bound variables; smaller chunks
// keep each statement cheap to prepare. Postgres binds one array whatever its length; the
// cap bounds one round trip's result.
const (
	sqliteInChunk = 500
	pgInChunk     = 5000
)

// uniqueNonEmpty returns ids without empty and repeated IDs, in first-seen order.
func uniqueNonEmpty(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id == "" {
			continue
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}

// inListSize rounds n up to the next of a few fixed IN-list lengths, so GetManyByExternal
// prepares (and caches) a handful of statement texts instead of one per length. The slots
// past n repeat an ID, which IN ignores.
func inListSize(n int) int {
	for size := 1; size < sqliteInChunk; size *= 4 {
		if n <= size {
			return size
		}
	}
	return sqliteInChunk
}

// getManyChunk reads the bindings of ids (unique, non-empty, at most one chunk) into out.
func (s *bindingStore) getManyChunk(ctx context.Context, backend, model string, ids []string, out map[string]binding.Binding) error {
	var query string
	var args []any
	if s.db.dialect == Postgres {
		query = `SELECT ` + bindingCols + ` FROM connkit_bindings WHERE backend = $1 AND model = $2 AND external_id = ANY($3)`
		args = []any{backend, model, ids}
	} else {
		size := inListSize(len(ids))
		query = `SELECT ` + bindingCols + ` FROM connkit_bindings WHERE backend = ? AND model = ? AND external_id IN (?` +
			strings.Repeat(`, ?`, size-1) + `)`
		args = make([]any, 0, size+2)
		args = append(args, backend, model)
		for i := range size {
			args = append(args, ids[min(i, len(ids)-1)])
		}
	}
	rows, err := s.db.rq.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		b, err := scanBinding(rows)
		if err != nil {
			return err
		}
		out[b.ExternalID] = b
	}
	return rows.Err()
}

// GetByLocal implements binding.Store.
func (s *bindingStore) GetByLocal(ctx context.Context, backend, model, localID string) (binding.Binding, error) {
	return s.getBy(ctx, "local", backend, model, localID)
}

func (s *bindingStore) getBy(ctx context.Context, side, backend, model, id string) (binding.Binding, error) {
	if err := ctx.Err(); err != nil {
		return binding.Binding{}, fmt.Errorf("binding: get %s/%s by %s ID %q: %w", backend, model, side, id, err)
	}
	if id != "" {
		b, ok, err := s.queryOne(ctx, s.db.rq, `backend = ? AND model = ? AND `+side+`_id = ?`, backend, model, id)
		if err != nil {
			return binding.Binding{}, fmt.Errorf("binding: get %s/%s by %s ID %q: %w", backend, model, side, id, err)
		}
		if ok {
			return b, nil
		}
	}
	return binding.Binding{}, fmt.Errorf("binding: no binding of %s ID %q for model %q on backend %q: %w",
		side, id, model, backend, binding.ErrNotFound)
}

// Ensure implements binding.Store.
func (s *bindingStore) Ensure(ctx context.Context, b binding.Binding) (binding.Binding, bool, error) {
	if err := ctx.Err(); err != nil {
		return binding.Binding{}, false, fmt.Errorf("binding: ensure: %w", err)
	}
	if err := bindingkit.ValidateKeyed("binding: ensure", &b); err != nil {
		return binding.Binding{}, false, err
	}
	side, key := "external", b.ExternalID
	if key == "" {
		side, key = "local", b.LocalID
	}
	where := `backend = ? AND model = ? AND ` + side + `_id = ?`
	var got binding.Binding
	var created bool
	err := s.writeTx(ctx, func(q querier) error {
		cur, ok, err := s.queryOne(ctx, q, where, b.Backend, b.Model, key)
		if err != nil {
			return err
		}
		if ok {
			got = cur
			return nil
		}
		now := s.db.clock()
		// DO NOTHING: a concurrent Ensure of the same key (Postgres) waits for the other
		// transaction and then inserts nothing instead of failing.
		got, err = scanBinding(q.QueryRowContext(ctx, s.db.q(insertBinding+` ON CONFLICT DO NOTHING RETURNING `+bindingCols),
			s.insertArgs(&b, now)...))
		if err == nil {
			created = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if got, ok, err = s.queryOne(ctx, q, where, b.Backend, b.Model, key); err != nil || ok {
			return err
		}
		// Nothing has b's key, yet the insert collided: b's other ID is bound elsewhere.
		other := "local"
		if side == "local" {
			other = "external"
		}
		return conflictError(other, &b)
	})
	if err != nil {
		return binding.Binding{}, false, fmt.Errorf("binding: ensure: %w", err)
	}
	return got, created, nil
}

const insertBinding = `INSERT INTO connkit_bindings (backend, model, local_id, external_id, status, last_error,
	retry_count, synced_at, external_updated_at, hash, no_export, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func statusOrPending(st binding.Status) string {
	if st == "" {
		return string(binding.StatusPending)
	}
	return string(st)
}

func (s *bindingStore) insertArgs(b *binding.Binding, now time.Time) []any {
	return []any{b.Backend, b.Model, strArg(b.LocalID), strArg(b.ExternalID), statusOrPending(b.Status), s.db.text(b.LastError),
		b.RetryCount, s.db.timeArg(b.SyncedAt), s.db.timeArg(b.ExternalUpdatedAt), b.Hash, b.NoExport,
		s.db.timeArg(now), s.db.timeArg(now)}
}

// upsertByExternal is followed by " WHERE <lease guard> RETURNING …": an existing binding
// is updated only under the lease rule.
const upsertByExternal = insertBinding + ` ON CONFLICT (backend, model, external_id) WHERE external_id IS NOT NULL
	DO UPDATE SET status = excluded.status, last_error = excluded.last_error, retry_count = excluded.retry_count,
	synced_at = excluded.synced_at, external_updated_at = excluded.external_updated_at, hash = excluded.hash,
	no_export = excluded.no_export, updated_at = excluded.updated_at`

const updateBinding = `UPDATE connkit_bindings SET backend = ?, model = ?, local_id = COALESCE(?, local_id),
	external_id = COALESCE(?, external_id), status = ?, last_error = ?, retry_count = ?, synced_at = ?,
	external_updated_at = ?, hash = ?, no_export = ?, updated_at = ?
	WHERE id = ?`

// Upsert implements binding.Store.
func (s *bindingStore) Upsert(ctx context.Context, b binding.Binding) (binding.Binding, error) {
	if err := ctx.Err(); err != nil {
		return binding.Binding{}, fmt.Errorf("binding: upsert: %w", err)
	}
	if err := validateUpsert(&b); err != nil {
		return binding.Binding{}, fmt.Errorf("binding: upsert: %w", err)
	}
	var got binding.Binding
	var err error
	if b.ID != 0 || b.LocalID == "" {
		// One atomic statement (see upsert): no explicit transaction needed.
		got, err = s.upsert(ctx, s.db.wq, &b, s.db.clock())
	} else {
		err = s.writeTx(ctx, func(q querier) error {
			var err error
			got, err = s.upsert(ctx, q, &b, s.db.clock())
			return err
		})
	}
	if err != nil {
		return binding.Binding{}, fmt.Errorf("binding: upsert: %w", err)
	}
	return got, nil
}

// UpsertBatch implements binding.Store: one transaction, all or nothing. Consecutive
// items without an ID are inserted with multi-row statements (see upsertRun); the rest
// take Upsert's path one by one, in order.
func (s *bindingStore) UpsertBatch(ctx context.Context, bs []binding.Binding) ([]binding.Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("binding: upsert batch of %d: %w", len(bs), err)
	}
	for i := range bs {
		if err := validateUpsert(&bs[i]); err != nil {
			return nil, &binding.BatchError{Index: i, Err: err}
		}
	}
	if len(bs) == 0 {
		return []binding.Binding{}, nil
	}
	out := make([]binding.Binding, len(bs))
	failed := -1
	attempt := 0
	err := s.writeTx(ctx, func(q querier) error {
		attempt++
		now := s.db.clock()
		if attempt == 1 {
			var err error
			failed, err = s.upsertRuns(ctx, q, bs, out, now)
			return err
		}
		// A retry (a lost insert race, or a multi-row statement that failed without
		// naming its item) goes one item at a time, so an error names its item.
		failed = -1
		for i := range bs {
			got, err := s.upsert(ctx, q, &bs[i], now)
			if err != nil {
				failed = i
				return err
			}
			out[i] = got
		}
		return nil
	})
	if err != nil {
		if failed < 0 {
			return nil, fmt.Errorf("binding: upsert batch of %d: %w", len(bs), err)
		}
		return nil, &binding.BatchError{Index: failed, Err: err}
	}
	return out, nil
}

// batchKey is one unique key of a binding: its external or local ID in its scope.
type batchKey struct {
	backend, model string
	local          bool
	id             string
}

func keysOf(b *binding.Binding) (ext, local batchKey) {
	return batchKey{b.Backend, b.Model, false, b.ExternalID}, batchKey{b.Backend, b.Model, true, b.LocalID}
}

// upsertRuns writes bs in order into out. It gathers runs of consecutive items that have
// no ID and share no key, and writes each run with upsertRun; an item with an ID, or one
// sharing a key with the run, ends the run first, so every item still sees the earlier
// ones. It returns the index of the failing item, or -1 when the error names none.
func (s *bindingStore) upsertRuns(ctx context.Context, q querier, bs, out []binding.Binding, now time.Time) (int, error) {
	var run []int
	keys := make(map[batchKey]struct{})
	flush := func() (int, error) {
		failed, err := s.upsertRun(ctx, q, bs, run, out, now)
		run = run[:0]
		clear(keys)
		return failed, err
	}
	for i := range bs {
		b := &bs[i]
		if b.ID != 0 {
			if failed, err := flush(); err != nil {
				return failed, err
			}
			got, err := s.upsert(ctx, q, b, now)
			if err != nil {
				return i, err
			}
			out[i] = got
			continue
		}
		ext, local := keysOf(b)
		_, extSeen := keys[ext]
		_, localSeen := keys[local]
		if b.ExternalID != "" && extSeen || b.LocalID != "" && localSeen {
			if failed, err := flush(); err != nil {
				return failed, err
			}
		}
		run = append(run, i)
		if b.ExternalID != "" {
			keys[ext] = struct{}{}
		}
		if b.LocalID != "" {
			keys[local] = struct{}{}
		}
	}
	return flush()
}

// insertRowSizes are the row counts of upsertRun's INSERT statements, largest first: a
// run is cut into these so that a few statement texts (prepared once) serve every length.
var insertRowSizes = [...]int{100, 25, 5, 1}

// insertRows holds the multi-row INSERT … ON CONFLICT DO NOTHING RETURNING of each size.
var insertRows = func() map[int]string {
	m := make(map[int]string, len(insertRowSizes))
	values := `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	head, _, _ := strings.Cut(insertBinding, `VALUES`)
	for _, n := range insertRowSizes {
		m[n] = head + `VALUES ` + values + strings.Repeat(`, `+values, n-1) + ` ON CONFLICT DO NOTHING RETURNING ` + bindingCols
	}
	return m
}()

// upsertRun writes the items bs[run[0]], bs[run[1]]…: items without an ID whose keys are
// all distinct. A lone item takes Upsert's path. Otherwise the run is inserted with
// multi-row INSERT … ON CONFLICT DO NOTHING statements; the items that were not inserted
// because one of their IDs is already bound then take Upsert's path one by one, in
// order. The order does not change the outcome: the items' keys are distinct, so no item
// can find, move or conflict with another's binding.
//
// An error of a multi-row statement names no item: it is returned as a *retryBatch, and
// UpsertBatch runs the batch again one item at a time.
func (s *bindingStore) upsertRun(ctx context.Context, q querier, bs []binding.Binding, run []int, out []binding.Binding, now time.Time) (int, error) {
	if len(run) == 0 {
		return -1, nil
	}
	if len(run) == 1 {
		got, err := s.upsert(ctx, q, &bs[run[0]], now)
		if err != nil {
			return run[0], err
		}
		out[run[0]] = got
		return -1, nil
	}
	inserted := make(map[int]bool, len(run))
	byKey := make(map[batchKey]int, len(run))
	var args []any
	for rest := run; len(rest) > 0; {
		n := insertRowSizes[len(insertRowSizes)-1]
		for _, size := range insertRowSizes {
			if len(rest) >= size {
				n = size
				break
			}
		}
		part := rest[:n]
		rest = rest[n:]
		clear(byKey)
		args = args[:0]
		for _, i := range part {
			ext, local := keysOf(&bs[i])
			if bs[i].ExternalID != "" {
				byKey[ext] = i
			} else {
				byKey[local] = i
			}
			args = append(args, s.insertArgs(&bs[i], now)...)
		}
		if err := s.insertRows(ctx, q, insertRows[n], args, func(b binding.Binding) error {
			k := batchKey{b.Backend, b.Model, b.ExternalID == "", b.ExternalID}
			if b.ExternalID == "" {
				k.id = b.LocalID
			}
			i, ok := byKey[k]
			if !ok || inserted[i] {
				return fmt.Errorf("insert returned binding %d (%s/%s external %q, local %q), which the batch did not ask for",
					b.ID, b.Backend, b.Model, b.ExternalID, b.LocalID)
			}
			inserted[i] = true
			out[i] = b
			return nil
		}); err != nil {
			return -1, &retryBatch{err}
		}
	}
	for _, i := range run {
		if inserted[i] {
			continue
		}
		got, err := s.upsert(ctx, q, &bs[i], now)
		if err != nil {
			return i, err
		}
		out[i] = got
	}
	return -1, nil
}

// insertRows runs a multi-row INSERT … RETURNING and hands each stored binding to fn.
func (s *bindingStore) insertRows(ctx context.Context, q querier, query string, args []any, fn func(binding.Binding) error) error {
	rows, err := q.QueryContext(ctx, s.db.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		b, err := scanBinding(rows)
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// retryBatch marks an error of a statement that wrote several items: writeTx rolls back
// and UpsertBatch tries again one item at a time, which names the failing item.
type retryBatch struct{ err error }

func (e *retryBatch) Error() string { return e.err.Error() }
func (e *retryBatch) Unwrap() error { return e.err }

// upsert resolves which stored binding b is and writes it. Keyed by its ID or by its
// external ID alone, it is one atomic statement; keyed by its local ID it needs a write
// transaction (q is then one).
func (s *bindingStore) upsert(ctx context.Context, q querier, b *binding.Binding, now time.Time) (binding.Binding, error) {
	if b.ID != 0 {
		return s.updateByID(ctx, q, b, b.ID, now, notFoundID("upsert", b.ID))
	}
	if b.LocalID == "" {
		// Keyed by external ID alone (the common import case): one atomic statement. No
		// other unique key is involved, so it cannot conflict, and on Postgres concurrent
		// inserts of one key cannot race.
		for attempt := 1; ; attempt++ {
			guard, gargs := s.leaseGuard(b.LeaseOwner, now)
			got, err := scanBinding(q.QueryRowContext(ctx, s.db.q(upsertByExternal+` WHERE `+guard+` RETURNING `+bindingCols),
				append(s.insertArgs(b, now), gargs...)...))
			if !errors.Is(err, sql.ErrNoRows) {
				return got, err
			}
			// The key exists and the lease rule refused the update.
			err = s.explainRefusal(ctx, q, now, b.LeaseOwner, nil, `backend = ? AND model = ? AND external_id = ?`,
				b.Backend, b.Model, b.ExternalID)
			if !errors.Is(err, errLeaseMoved) || attempt == guardedAttempts {
				return binding.Binding{}, err
			}
		}
	}
	// One query finds the owners of both IDs (an empty ID binds NULL, which matches nothing).
	rows, err := q.QueryContext(ctx, s.db.q(`SELECT id, external_id, local_id FROM connkit_bindings
		WHERE backend = ? AND model = ? AND (external_id = ? OR local_id = ?)`),
		b.Backend, b.Model, strArg(b.ExternalID), strArg(b.LocalID))
	if err != nil {
		return binding.Binding{}, err
	}
	var extOwner, localOwner int64
	for rows.Next() {
		var id int64
		var ext, local string
		if err := rows.Scan(&id, nullString{&ext}, nullString{&local}); err != nil {
			rows.Close()
			return binding.Binding{}, err
		}
		if b.ExternalID != "" && ext == b.ExternalID {
			extOwner = id
		}
		if local == b.LocalID {
			localOwner = id
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return binding.Binding{}, err
	}
	if extOwner != 0 && localOwner != 0 && extOwner != localOwner {
		return binding.Binding{}, fmt.Errorf("%s/%s external ID %q is bound to binding %d but local ID %q to binding %d: %w",
			b.Backend, b.Model, b.ExternalID, extOwner, b.LocalID, localOwner, binding.ErrConflict)
	}
	curID := extOwner
	if curID == 0 {
		curID = localOwner
	}
	if curID == 0 {
		got, err := scanBinding(q.QueryRowContext(ctx, s.db.q(insertBinding+` RETURNING `+bindingCols), s.insertArgs(b, now)...))
		if detail, ok := uniqueViolation(err); ok {
			return binding.Binding{}, &insertRace{conflictError(detail, b)}
		}
		return got, err
	}
	// The row was there a moment ago in this transaction: it cannot be missing.
	return s.updateByID(ctx, q, b, curID, now, nil)
}

// updateByID writes b's fields to binding id (see Upsert for which); missing is returned
// when there is no such binding.
func (s *bindingStore) updateByID(ctx context.Context, q querier, b *binding.Binding, id int64, now time.Time, missing error) (binding.Binding, error) {
	if missing == nil {
		missing = notFoundID("upsert", id)
	}
	got, err := s.guardedUpdate(ctx, q, id, b.LeaseOwner, missing, updateBinding,
		b.Backend, b.Model, strArg(b.LocalID), strArg(b.ExternalID), statusOrPending(b.Status), s.db.text(b.LastError),
		b.RetryCount, s.db.timeArg(b.SyncedAt), s.db.timeArg(b.ExternalUpdatedAt), b.Hash, b.NoExport,
		s.db.timeArg(now), id)
	if detail, ok := uniqueViolation(err); ok {
		return binding.Binding{}, conflictError(detail, b)
	}
	return got, err
}

// update runs one guarded UPDATE on binding id (prefix ends "WHERE id = ?") for a write
// naming owner, mapping "no row" to ErrNotFound or the lease error.
func (s *bindingStore) update(ctx context.Context, op string, id int64, owner, prefix string, args ...any) (binding.Binding, error) {
	if err := ctx.Err(); err != nil {
		return binding.Binding{}, fmt.Errorf("binding: %s %d: %w", op, id, err)
	}
	b, err := s.guardedUpdate(ctx, s.db.wq, id, owner, notFoundID(op, id), prefix, args...)
	if err != nil {
		if _, unique := uniqueViolation(err); unique || errors.Is(err, binding.ErrNotFound) {
			return binding.Binding{}, err
		}
		return binding.Binding{}, fmt.Errorf("binding: %s %d: %w", op, id, err)
	}
	return b, nil
}

// MarkSuccess implements binding.Store.
func (s *bindingStore) MarkSuccess(ctx context.Context, id int64, sc binding.Success) (binding.Binding, error) {
	now := s.db.clock()
	at := now
	if !sc.At.IsZero() {
		at = sc.At
	}
	b, err := s.update(ctx, "mark success", id, sc.Owner, `UPDATE connkit_bindings SET status = ?, last_error = '', retry_count = 0,
		local_id = COALESCE(?, local_id), external_id = COALESCE(?, external_id), hash = COALESCE(?, hash),
		external_updated_at = COALESCE(?, external_updated_at), synced_at = ?, updated_at = ?
		WHERE id = ?`,
		string(binding.StatusSuccess), strArg(sc.LocalID), strArg(sc.ExternalID), strArg(sc.Hash),
		s.db.timeArg(sc.ExternalUpdatedAt), s.db.timeArg(at), s.db.timeArg(now), id)
	if detail, ok := uniqueViolation(err); ok {
		cur, gerr := s.Get(ctx, id)
		if gerr != nil {
			cur = binding.Binding{ID: id}
		}
		cur.LocalID, cur.ExternalID = sc.LocalID, sc.ExternalID
		return binding.Binding{}, fmt.Errorf("binding: mark success %d: %w", id, conflictError(detail, &cur))
	}
	return b, err
}

// MarkFailed implements binding.Store.
func (s *bindingStore) MarkFailed(ctx context.Context, id int64, f binding.Failure) (binding.Binding, error) {
	return s.update(ctx, "mark failed", id, f.Owner, `UPDATE connkit_bindings SET status = ?, last_error = ?,
		retry_count = retry_count + 1, updated_at = ? WHERE id = ?`,
		string(binding.StatusFailed), s.db.text(f.Error), s.db.timeArg(s.db.clock()), id)
}

// SetStatus implements binding.Store.
func (s *bindingStore) SetStatus(ctx context.Context, id int64, owner string, st binding.Status) error {
	if !st.Valid() {
		return fmt.Errorf("binding: set status of %d: unknown status %q: %w", id, st, binding.ErrInvalid)
	}
	_, err := s.update(ctx, "set status", id, owner, `UPDATE connkit_bindings SET status = ?, updated_at = ? WHERE id = ?`,
		string(st), s.db.timeArg(s.db.clock()), id)
	return err
}

// leaseUntil is the expiry now+ttl in SQL on the lease clock, and its arguments.
func (s *bindingStore) leaseUntil(now time.Time, ttl time.Duration) (string, []any) {
	if s.db.dialect == Postgres {
		return `now() + ?::bigint * interval '1 microsecond'`, []any{ttl.Microseconds()}
	}
	return `?`, []any{s.db.timeArg(now.Add(ttl))}
}

// Claim implements binding.Store with one conditional UPDATE, so the lease holds across
// processes: only one of two concurrent claimers can match the WHERE clause.
func (s *bindingStore) Claim(ctx context.Context, id int64, owner string, ttl time.Duration) (binding.Binding, error) {
	if err := bindingkit.ValidateClaim("claim", id, owner, ttl); err != nil {
		return binding.Binding{}, err
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return binding.Binding{}, fmt.Errorf("binding: claim %d: %w", id, err)
		}
		now := s.db.clock()
		until, uargs := s.leaseUntil(now, ttl)
		at, aargs := s.leaseNow(now)
		args := append(append(append([]any{owner}, uargs...), id, owner), aargs...)
		b, err := scanBinding(s.db.wq.QueryRowContext(ctx, s.db.q(`UPDATE connkit_bindings SET lease_owner = ?, lease_expires_at = `+until+`
			WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires_at <= `+at+`) RETURNING `+bindingCols), args...))
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return binding.Binding{}, fmt.Errorf("binding: claim %d for %q: %w", id, owner, err)
		}
		cur, leased, ok, err := s.leaseRow(ctx, s.db.wq, now, `id = ?`, id)
		if err != nil {
			return binding.Binding{}, fmt.Errorf("binding: claim %d for %q: %w", id, owner, err)
		}
		if !ok {
			return binding.Binding{}, notFoundID("claim", id)
		}
		if cur.LeaseOwner != owner && leased || attempt == guardedAttempts {
			return binding.Binding{}, &binding.LockedError{ID: id, Owner: cur.LeaseOwner, Expires: cur.LeaseExpiresAt}
		}
		// The holder released between the two statements: try again (a few times; a
		// lease changing hands that fast is contended, and reported as locked).
	}
}

// Renew implements binding.Store with one UPDATE conditional on the owner.
func (s *bindingStore) Renew(ctx context.Context, id int64, owner string, ttl time.Duration) (binding.Binding, error) {
	if err := bindingkit.ValidateClaim("renew", id, owner, ttl); err != nil {
		return binding.Binding{}, err
	}
	if err := ctx.Err(); err != nil {
		return binding.Binding{}, fmt.Errorf("binding: renew %d: %w", id, err)
	}
	now := s.db.clock()
	until, uargs := s.leaseUntil(now, ttl)
	b, err := scanBinding(s.db.wq.QueryRowContext(ctx, s.db.q(`UPDATE connkit_bindings SET lease_expires_at = `+until+`
		WHERE id = ? AND lease_owner = ? RETURNING `+bindingCols), append(uargs, id, owner)...))
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return binding.Binding{}, fmt.Errorf("binding: renew %d for %q: %w", id, owner, err)
	}
	cur, ok, err := s.queryOne(ctx, s.db.wq, `id = ?`, id)
	switch {
	case err != nil:
		return binding.Binding{}, fmt.Errorf("binding: renew %d for %q: %w", id, owner, err)
	case !ok:
		return binding.Binding{}, notFoundID("renew", id)
	}
	// The owner is all that matters, and it only changes away from a lost lease.
	return binding.Binding{}, &binding.LeaseLostError{ID: id, Owner: owner, Holder: cur.LeaseOwner, Expires: cur.LeaseExpiresAt}
}

// Release implements binding.Store.
func (s *bindingStore) Release(ctx context.Context, id int64, owner string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("binding: release %d: %w", id, err)
	}
	if owner == "" {
		return nil
	}
	if _, err := s.db.wq.ExecContext(ctx, s.db.q(`UPDATE connkit_bindings SET lease_owner = NULL, lease_expires_at = NULL
		WHERE id = ? AND lease_owner = ?`), id, owner); err != nil {
		return fmt.Errorf("binding: release %d for %q: %w", id, owner, err)
	}
	return nil
}

// Delete implements binding.Store.
func (s *bindingStore) Delete(ctx context.Context, id int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("binding: delete %d: %w", id, err)
	}
	res, err := s.db.wq.ExecContext(ctx, s.db.q(`DELETE FROM connkit_bindings WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("binding: delete %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return notFoundID("delete", id)
	}
	return nil
}

// List implements binding.Store. It reads one page per query and closes the rows before
// yielding, so the loop body may use the store (even on single-connection :memory:).
func (s *bindingStore) List(ctx context.Context, f binding.Filter) iter.Seq2[binding.Binding, error] {
	return func(yield func(binding.Binding, error) bool) {
		if err := bindingkit.ValidateFilter(&f); err != nil {
			yield(binding.Binding{}, fmt.Errorf("binding: list: %w", err))
			return
		}
		where := []string{`id > ?`}
		var args []any
		if f.Backend != "" {
			where = append(where, `backend = ?`)
			args = append(args, f.Backend)
		}
		if f.Model != "" {
			where = append(where, `model = ?`)
			args = append(args, f.Model)
		}
		if len(f.Statuses) > 0 {
			where = append(where, `status IN (?`+strings.Repeat(`, ?`, len(f.Statuses)-1)+`)`)
			for _, st := range f.Statuses {
				args = append(args, string(st))
			}
		}
		if f.RetryableBelow > 0 {
			where = append(where, `status = ? AND retry_count < ?`)
			args = append(args, string(binding.StatusFailed), f.RetryableBelow)
		}
		if !f.ChangedSince.IsZero() {
			where = append(where, `updated_at >= ?`)
			args = append(args, s.db.timeArg(f.ChangedSince))
		}
		query := s.db.q(`SELECT ` + bindingCols + ` FROM connkit_bindings WHERE ` + strings.Join(where, ` AND `) + ` ORDER BY id LIMIT ?`)
		pages := keysetPages(f.Limit, s.db.pageSize, func(last *binding.Binding, n int) ([]binding.Binding, error) {
			var after int64
			if last != nil {
				after = last.ID
			}
			page, err := s.page(ctx, query, append(append([]any{after}, args...), n))
			if err != nil {
				return nil, fmt.Errorf("binding: list: %w", err)
			}
			return page, nil
		})
		for b, err := range pages {
			if !yield(b, err) {
				return
			}
		}
	}
}

func (s *bindingStore) page(ctx context.Context, query string, args []any) ([]binding.Binding, error) {
	rows, err := s.db.rq.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []binding.Binding
	for rows.Next() {
		b, err := scanBinding(rows)
		if err != nil {
			return nil, err
		}
		page = append(page, b)
	}
	return page, rows.Err()
}

// Counts implements binding.Store. An empty backend counts every backend.
func (s *bindingStore) Counts(ctx context.Context, backend, model string) (map[binding.Status]int, error) {
	where := []string{`1 = 1`}
	var args []any
	if backend != "" {
		where = append(where, `backend = ?`)
		args = append(args, backend)
	}
	if model != "" {
		where = append(where, `model = ?`)
		args = append(args, model)
	}
	rows, err := s.db.rq.QueryContext(ctx, s.db.q(`SELECT status, COUNT(*) FROM connkit_bindings WHERE `+
		strings.Join(where, ` AND `)+` GROUP BY status`), args...)
	if err != nil {
		return nil, fmt.Errorf("binding: counts of %s/%s: %w", backend, model, err)
	}
	defer rows.Close()
	out := make(map[binding.Status]int)
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("binding: counts of %s/%s: %w", backend, model, err)
		}
		out[binding.Status(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("binding: counts of %s/%s: %w", backend, model, err)
	}
	return out, nil
}
