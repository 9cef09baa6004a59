package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/connkit/connkit/webhook"
)

// webhookStore is the SQL webhook.Store returned by DB.Webhooks.
type webhookStore struct {
	db *DB
	// group batches concurrent SQLite inserts into one transaction (group commit).
	group insertGroup
	// batchQueries caches InsertBatch's statement texts by row count.
	batchQueries sync.Map
}

var (
	_ webhook.Store         = (*webhookStore)(nil)
	_ webhook.BatchInserter = (*webhookStore)(nil)
)

// Webhooks returns the webhook delivery store kept in this database (table
// connkit_webhook_deliveries). It is safe for concurrent use and across processes sharing
// the database: Insert is one INSERT … ON CONFLICT DO NOTHING, so of concurrent inserts of
// one delivery, in any processes, exactly one stores it.
//
// Times are kept as every store here keeps them (UTC, microseconds; a zero ReceivedAt or
// UpdatedAt given to Insert is the DB's clock). The event type and error texts are stored
// as text; on Postgres, whose text rejects them, NUL bytes and invalid UTF-8 in them
// become U+FFFD, and an endpoint or delivery ID holding them is refused with
// webhook.ErrInvalid rather than stored under another key. Bodies are stored byte for
// byte. List reads at most 100 deliveries per round trip, so an
// iteration holds at most that many bodies in memory.
//
// On SQLite, whose single writer runs one transaction at a time, inserts that arrive while
// another is being written are committed together in the next transaction (group
// commit): a burst of deliveries costs one commit per batch instead of one per delivery.
// Get the store once and share it, so its inserts batch together.
func (db *DB) Webhooks() webhook.Store { return &webhookStore{db: db} }

// webhookPageSize caps the deliveries List reads per query: each holds a whole body.
const webhookPageSize = 100

const deliveryCols = `endpoint, id, event, header, body, received_at, status, attempts, last_error, updated_at, generation`

// deliveryColCount is the number of deliveryCols.
var deliveryColCount = strings.Count(deliveryCols, ",") + 1

// key checks a delivery's key: never cleaned, so a key Postgres cannot store fails
// instead of aliasing another.
func (s *webhookStore) key(op, endpoint, id string) error {
	switch {
	case endpoint == "":
		return fmt.Errorf("webhook: %s delivery %q: %w: the endpoint is empty", op, id, webhook.ErrInvalid)
	case id == "":
		return fmt.Errorf("webhook: %s delivery of endpoint %q: %w: the delivery ID is empty", op, endpoint, webhook.ErrInvalid)
	}
	if s.db.dialect == Postgres {
		for _, v := range [...]string{endpoint, id} {
			if !utf8.ValidString(v) || strings.Contains(v, "\x00") {
				return fmt.Errorf("webhook: %s delivery %q of endpoint %q: %w: a NUL byte or invalid UTF-8 in the key, which Postgres cannot store",
					op, id, endpoint, webhook.ErrInvalid)
			}
		}
	}
	return nil
}

func checkStatus(op string, st webhook.Status) error {
	if !st.Valid() {
		return fmt.Errorf("webhook: %s: %w: unknown status %q", op, webhook.ErrInvalid, st)
	}
	return nil
}

// Insert implements webhook.Store.
func (s *webhookStore) Insert(ctx context.Context, d webhook.Delivery) (webhook.Delivery, bool, error) {
	d, args, err := s.insertArgs(nil, d)
	if err != nil {
		return webhook.Delivery{}, false, err
	}
	insert := s.db.q(`INSERT INTO connkit_webhook_deliveries (` + deliveryCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint, id) DO NOTHING`)
	// A duplicate is read back after the conflict; should it be purged in between, the
	// insert goes again (and then most likely stores d).
	for range 3 {
		var inserted bool
		var err error
		if s.db.dialect == SQLite {
			inserted, err = s.group.insert(ctx, s.db, insert, args)
		} else {
			inserted, err = execInsert(ctx, s.db.wq, insert, args)
		}
		if err != nil {
			return webhook.Delivery{}, false, fmt.Errorf("webhook: insert delivery %q of endpoint %q: %w", d.ID, d.Endpoint, err)
		}
		if inserted {
			// Copies, so the result does not share the caller's map and slice.
			d.Header = d.Header.Clone()
			d.Body = append([]byte{}, d.Body...)
			return d, true, nil
		}
		// The conflicting row is committed (SQLite has one writer; Postgres waited for the
		// inserting transaction), so the writer's pool sees it.
		stored, err := s.get(ctx, s.db.wq, d.Endpoint, d.ID)
		if errors.Is(err, webhook.ErrNotFound) {
			continue
		}
		if err != nil {
			return webhook.Delivery{}, false, fmt.Errorf("webhook: insert delivery %q of endpoint %q: %w", d.ID, d.Endpoint, err)
		}
		return stored, false, nil
	}
	return webhook.Delivery{}, false, fmt.Errorf("webhook: insert delivery %q of endpoint %q: it conflicts with a delivery deleted as it is read, three times; try again",
		d.ID, d.Endpoint)
}

// insertArgs checks and completes d as Insert stores it, and returns it with args and
// the arguments of its row appended (deliveryCols' order).
func (s *webhookStore) insertArgs(args []any, d webhook.Delivery) (webhook.Delivery, []any, error) {
	if err := s.key("insert", d.Endpoint, d.ID); err != nil {
		return d, nil, err
	}
	if d.Status == "" {
		d.Status = webhook.StatusPending
	}
	if err := checkStatus("insert delivery "+d.ID, d.Status); err != nil {
		return d, nil, err
	}
	if d.Attempts < 0 || d.Generation < 0 {
		return d, nil, fmt.Errorf("webhook: insert delivery %q of endpoint %q: %w: negative attempts (%d) or generation (%d)",
			d.ID, d.Endpoint, webhook.ErrInvalid, d.Attempts, d.Generation)
	}
	d.ReceivedAt, d.UpdatedAt = utc(d.ReceivedAt), utc(d.UpdatedAt)
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = s.db.clock()
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.ReceivedAt
	}
	d.Event, d.LastError = s.db.text(d.Event), s.db.text(d.LastError)
	if d.Body == nil {
		d.Body = []byte{}
	}
	return d, append(args, d.Endpoint, d.ID, d.Event, headerJSON(d.Header), d.Body,
		s.db.timeArg(d.ReceivedAt), string(d.Status), d.Attempts, d.LastError, s.db.timeArg(d.UpdatedAt), d.Generation), nil
}

// batchChunks are the row counts of InsertBatch's statements: a batch is cut into these,
// largest first, so a handful of statement texts serve every batch size.
var batchChunks = [...]int{256, 64, 16, 4, 1}

// InsertBatch implements webhook.BatchInserter: one transaction, with one multi-row
// INSERT … ON CONFLICT DO NOTHING RETURNING per chunk of the batch. Rows go in in key
// order, so two batches sharing keys take their locks in the same order: on Postgres,
// batches in arrival order deadlocked each other (40P01) when two processes inserted
// the same deliveries.
func (s *webhookStore) InsertBatch(ctx context.Context, ds []webhook.Delivery) ([]bool, error) {
	order := make([]int, len(ds))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { // stable: a key given twice keeps its first
		return cmp.Or(strings.Compare(ds[a].Endpoint, ds[b].Endpoint), strings.Compare(ds[a].ID, ds[b].ID))
	})
	args := make([]any, 0, len(ds)*deliveryColCount)
	first := make(map[[2]string]int, len(ds)) // each key's first delivery in ds
	for _, i := range order {
		d := ds[i]
		var err error
		if _, args, err = s.insertArgs(args, d); err != nil {
			return nil, err
		}
		if _, dup := first[[2]string{d.Endpoint, d.ID}]; !dup {
			first[[2]string{d.Endpoint, d.ID}] = i
		}
	}
	cols := deliveryColCount
	inserted := make([]bool, len(ds))
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		for at := 0; at < len(ds); {
			n := batchChunks[slices.IndexFunc(batchChunks[:], func(n int) bool { return n <= len(ds)-at })]
			rows, err := tx.QueryContext(ctx, s.batchQuery(n), args[at*cols:(at+n)*cols]...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var k [2]string
				if err := rows.Scan(&k[0], &k[1]); err != nil {
					rows.Close()
					return err
				}
				inserted[first[k]] = true
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			at += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: insert %d deliveries: %w", len(ds), err)
	}
	return inserted, nil
}

// batchQuery returns InsertBatch's statement for n rows.
func (s *webhookStore) batchQuery(n int) string {
	if q, ok := s.batchQueries.Load(n); ok {
		return q.(string)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", deliveryColCount), ", ") + ")"
	q := s.db.q(`INSERT INTO connkit_webhook_deliveries (` + deliveryCols + `) VALUES ` +
		strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + ` ON CONFLICT (endpoint, id) DO NOTHING RETURNING endpoint, id`)
	s.batchQueries.Store(n, q)
	return q
}

// execInsert runs one INSERT … ON CONFLICT DO NOTHING and reports whether it inserted.
func execInsert(ctx context.Context, q querier, query string, args []any) (bool, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// insertGroup commits concurrent inserts together (group commit, leader style). An insert
// finding no write in flight becomes the leader: it writes on its own goroutine, so a lone
// insert costs one autocommit statement and no goroutine switch. Inserts arriving while a
// leader writes wait in queue; when the leader is done it wakes every insert it wrote and
// hands the lead to the first one still queued, which writes all the queued inserts (up to
// maxGroup) in one transaction. No insert waits for more than the batch before its own.
type insertGroup struct {
	mu      sync.Mutex
	queue   []*groupedInsert
	writing bool // a leader is writing or about to
}

type groupedInsert struct {
	ctx      context.Context
	query    string
	args     []any
	inserted bool
	err      error
	// wake is closed, under insertGroup.mu, when the insert is written (its result set) or
	// when it is made the leader (lead set).
	wake chan struct{}
	lead bool
}

// maxGroup caps the inserts of one transaction; groupTimeout bounds one batch's writing.
const (
	maxGroup     = 64
	groupTimeout = time.Minute
)

// insert queues one insert and waits for its outcome, or for ctx: a caller that stops
// waiting may still see its delivery stored (the sender's redelivery is then a duplicate).
func (g *insertGroup) insert(ctx context.Context, db *DB, query string, args []any) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	r := &groupedInsert{ctx: ctx, query: query, args: args, wake: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	lead := !g.writing
	if lead {
		g.writing, r.lead = true, true
	}
	g.mu.Unlock()
	if !lead {
		select {
		case <-r.wake:
		case <-ctx.Done():
			g.mu.Lock()
			if i := slices.Index(g.queue, r); i >= 0 && !r.lead { // still waiting its turn: leave
				g.queue = slices.Delete(g.queue, i, i+1)
				g.mu.Unlock()
				return false, ctx.Err()
			}
			g.mu.Unlock()
			<-r.wake // being written, or made the leader just now: take it on
		}
		lead = r.lead // set before wake was closed
	}
	if lead {
		g.write(db)
	}
	return r.inserted, r.err
}

// write is the leader's work: the queued inserts (the leader's own first) in one
// transaction, then the lead to the next queued insert, if any.
func (g *insertGroup) write(db *DB) {
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()
	// Callers that stopped waiting are not written.
	live := batch[:0:0]
	for _, r := range batch {
		if r.err = r.ctx.Err(); r.err == nil {
			live = append(live, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	switch len(live) {
	case 0:
	case 1:
		live[0].inserted, live[0].err = execInsert(ctx, db.wq, live[0].query, live[0].args)
	default:
		writeBatch(ctx, db, live)
	}
	cancel()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range batch {
		if !r.lead {
			close(r.wake)
		}
	}
	if len(g.queue) == 0 {
		g.queue, g.writing = nil, false
		return
	}
	next := g.queue[0]
	next.lead = true
	close(next.wake)
}

// writeBatch inserts batch in one transaction. A statement that fails is rolled back
// alone (SQLite's statement journal) and fails only its own insert.
func writeBatch(ctx context.Context, db *DB, batch []*groupedInsert) {
	var stmts *stmtCache
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmts = newStmtCache(tx, db.wq)
		for _, r := range batch {
			r.inserted, r.err = execInsert(ctx, stmts, r.query, r.args)
		}
		return nil
	})
	if stmts != nil {
		db.wq.warm(ctx, stmts.misses)
	}
	if err != nil {
		for _, r := range batch {
			r.inserted, r.err = false, err
		}
	}
}

// Get implements webhook.Store.
func (s *webhookStore) Get(ctx context.Context, endpoint, id string) (webhook.Delivery, error) {
	if err := s.key("get", endpoint, id); err != nil {
		return webhook.Delivery{}, err
	}
	d, err := s.get(ctx, s.db.rq, endpoint, id)
	if err != nil && !errors.Is(err, webhook.ErrNotFound) {
		return webhook.Delivery{}, fmt.Errorf("webhook: get delivery %q of endpoint %q: %w", id, endpoint, err)
	}
	return d, err
}

func (s *webhookStore) get(ctx context.Context, q querier, endpoint, id string) (webhook.Delivery, error) {
	d, err := scanDelivery(q.QueryRowContext(ctx,
		s.db.q(`SELECT `+deliveryCols+` FROM connkit_webhook_deliveries WHERE endpoint = ? AND id = ?`), endpoint, id))
	if errors.Is(err, sql.ErrNoRows) {
		return webhook.Delivery{}, notFound(endpoint, id)
	}
	return d, err
}

func notFound(endpoint, id string) error {
	return fmt.Errorf("%w: delivery %q of endpoint %q", webhook.ErrNotFound, id, endpoint)
}

func scanDelivery(sc interface{ Scan(...any) error }) (webhook.Delivery, error) {
	var d webhook.Delivery
	var header, status string
	err := sc.Scan(&d.Endpoint, &d.ID, &d.Event, nullString{&header}, &d.Body, nullTime{&d.ReceivedAt},
		&status, &d.Attempts, &d.LastError, nullTime{&d.UpdatedAt}, &d.Generation)
	if err != nil {
		return webhook.Delivery{}, err
	}
	d.Status = webhook.Status(status)
	if d.Body == nil {
		d.Body = []byte{}
	}
	if d.Header, err = parseHeader(header); err != nil {
		return webhook.Delivery{}, fmt.Errorf("delivery %q of endpoint %q: %w", d.ID, d.Endpoint, err)
	}
	return d, nil
}

// Finish implements webhook.Store with one UPDATE … RETURNING, conditional on the
// generation; when it updates nothing, a read tells a stale outcome from a missing delivery.
func (s *webhookStore) Finish(ctx context.Context, endpoint, id string, o webhook.Outcome) (webhook.Delivery, error) {
	if err := s.key("finish", endpoint, id); err != nil {
		return webhook.Delivery{}, err
	}
	if err := checkStatus("finish delivery "+id, o.Status); err != nil {
		return webhook.Delivery{}, err
	}
	d, err := s.update(ctx, "finish", endpoint, id, `status = ?, last_error = ?, attempts = attempts + 1, updated_at = ?`,
		`generation = ?`, string(o.Status), s.db.text(o.Error), s.db.timeArg(s.at(o.At)), o.Generation)
	if !errors.Is(err, webhook.ErrNotFound) {
		return d, err
	}
	now, gerr := s.get(ctx, s.db.wq, endpoint, id)
	switch {
	case errors.Is(gerr, webhook.ErrNotFound):
		return webhook.Delivery{}, err
	case gerr != nil:
		return webhook.Delivery{}, fmt.Errorf("webhook: finish delivery %q of endpoint %q: %w", id, endpoint, gerr)
	}
	return webhook.Delivery{}, fmt.Errorf("webhook: finish delivery %q of endpoint %q: %w (the attempt read generation %d, it is at %d)",
		id, endpoint, webhook.ErrStale, o.Generation, now.Generation)
}

// Reset implements webhook.Store with one UPDATE … RETURNING.
func (s *webhookStore) Reset(ctx context.Context, endpoint, id string, at time.Time) (webhook.Delivery, error) {
	if err := s.key("reset", endpoint, id); err != nil {
		return webhook.Delivery{}, err
	}
	return s.update(ctx, "reset", endpoint, id, `status = ?, updated_at = ?, generation = generation + 1`, "",
		string(webhook.StatusPending), s.db.timeArg(s.at(at)))
}

// at is the time of a status change: at, or the DB's clock when at is zero.
func (s *webhookStore) at(at time.Time) time.Time {
	if at.IsZero() {
		return s.db.clock()
	}
	return utc(at)
}

// update runs UPDATE … SET set WHERE [cond AND] the key RETURNING the delivery; args are
// set's, then cond's. No row updated is ErrNotFound.
func (s *webhookStore) update(ctx context.Context, op, endpoint, id, set, cond string, args ...any) (webhook.Delivery, error) {
	where := ` WHERE endpoint = ? AND id = ?`
	if cond != "" {
		where = ` WHERE ` + cond + ` AND endpoint = ? AND id = ?`
	}
	d, err := scanDelivery(s.db.wq.QueryRowContext(ctx,
		s.db.q(`UPDATE connkit_webhook_deliveries SET `+set+where+` RETURNING `+deliveryCols),
		append(args, endpoint, id)...))
	if errors.Is(err, sql.ErrNoRows) {
		return webhook.Delivery{}, fmt.Errorf("webhook: %s: %w", op, notFound(endpoint, id))
	}
	if err != nil {
		return webhook.Delivery{}, fmt.Errorf("webhook: %s delivery %q of endpoint %q: %w", op, id, endpoint, err)
	}
	return d, nil
}

// List implements webhook.Store: keyset pages on (received_at, id, endpoint), each read
// whole and its rows closed before it is yielded.
func (s *webhookStore) List(ctx context.Context, f webhook.Filter) iter.Seq2[webhook.Delivery, error] {
	return func(yield func(webhook.Delivery, error) bool) {
		if f.Limit < 0 {
			yield(webhook.Delivery{}, fmt.Errorf("webhook: list deliveries: %w: Limit is negative (%d); use 0 for no limit", webhook.ErrInvalid, f.Limit))
			return
		}
		if f.Status != "" {
			if err := checkStatus("list deliveries", f.Status); err != nil {
				yield(webhook.Delivery{}, err)
				return
			}
		}
		var where []string
		var args []any
		if f.Endpoint != "" {
			// On SQLite, "+" keeps the planner (which has no statistics) off the primary
			// key for this term: the list's order comes from the other indexes.
			cond := `endpoint = ?`
			if s.db.dialect == SQLite {
				cond = `+endpoint = ?`
			}
			where, args = append(where, cond), append(args, f.Endpoint)
		}
		if f.Status != "" {
			where, args = append(where, `status = ?`), append(args, string(f.Status))
		}
		if !f.ReceivedBefore.IsZero() {
			where, args = append(where, `received_at < ?`), append(args, s.db.timeArg(f.ReceivedBefore))
		}
		base := `SELECT ` + deliveryCols + ` FROM connkit_webhook_deliveries WHERE `
		if len(where) > 0 {
			base += strings.Join(where, ` AND `) + ` AND `
		}
		const order = ` ORDER BY received_at, id, endpoint LIMIT ?`
		first := s.db.q(base + `1 = 1` + order)
		next := s.db.q(base + `(received_at, id, endpoint) > (?, ?, ?)` + order)
		pages := keysetPages(f.Limit, min(s.db.pageSize, webhookPageSize), func(last *webhook.Delivery, n int) ([]webhook.Delivery, error) {
			a := args[:len(args):len(args)]
			query := first
			if last != nil {
				a, query = append(a, s.db.timeArg(last.ReceivedAt), last.ID, last.Endpoint), next
			}
			page, err := s.page(ctx, query, append(a, n))
			if err != nil {
				return nil, fmt.Errorf("webhook: list deliveries: %w", err)
			}
			return page, nil
		})
		for d, err := range pages {
			if !yield(d, err) {
				return
			}
		}
	}
}

func (s *webhookStore) page(ctx context.Context, query string, args []any) ([]webhook.Delivery, error) {
	rows, err := s.db.rq.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []webhook.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		page = append(page, d)
	}
	return page, rows.Err()
}

// Purge implements webhook.Store with one DELETE.
func (s *webhookStore) Purge(ctx context.Context, before time.Time, statuses ...webhook.Status) (int, error) {
	for _, st := range statuses {
		if err := checkStatus("purge deliveries", st); err != nil {
			return 0, err
		}
	}
	if before.IsZero() {
		return 0, nil // nothing was received before the zero time
	}
	query := `DELETE FROM connkit_webhook_deliveries WHERE received_at < ?`
	args := []any{s.db.timeArg(before)}
	if len(statuses) > 0 {
		query += ` AND status IN (?` + strings.Repeat(`, ?`, len(statuses)-1) + `)`
		for _, st := range statuses {
			args = append(args, string(st))
		}
	}
	res, err := s.db.wq.ExecContext(ctx, s.db.q(query), args...)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil {
			return int(n), nil
		}
	}
	return 0, fmt.Errorf("webhook: purge deliveries received before %s: %w", utc(before).Format(time.RFC3339Nano), err)
}
