package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/connkit/connkit/local"
)

// ErrInvalidModel is returned (wrapped) by Records for a model name it cannot keep a
// table for: empty, longer than 128 bytes, invalid UTF-8 or holding control characters.
var ErrInvalidModel = errors.New("sqlstore: invalid model name")

// ErrCorruptRecord is returned (wrapped) when a stored record does not decode into the
// store's type: its row was edited by hand, or T changed incompatibly. The error names
// the model and the record ID; fix or delete that row.
var ErrCorruptRecord = errors.New("sqlstore: stored record does not decode")

// maxModelLen bounds model names; table names derived from them stay within Postgres'
// 63-byte identifier limit whatever the length.
const maxModelLen = 128

// RecordStore keeps the app's records of one model in one table, as JSON. It implements
// local.Store[T], local.KeyedCreator[T] and local.ExistenceChecker, and is safe for
// concurrent use, also by several processes sharing the database. Get one from [Records].
// Writes go through the DB's writer, reads through its read pool (on a SQLite file, a
// separate set of connections that read while a write runs).
//
// Records have IDs "1", "2", … in creation order (a SQLite AUTOINCREMENT column or a
// Postgres identity): unique across processes and never reused after a delete, but not
// dense (a CreateKeyed that lost a race may consume a number on Postgres). Only these
// canonical decimal forms name a record: Get("007") is not found.
//
// Values are stored as encoding/json encodes T (struct tags apply). A map or interface
// value reads JSON numbers back as json.Number, so 64-bit IDs keep every digit.
type RecordStore[T any] struct {
	db    *DB
	model string
	table string
	tx    *sql.Tx // set by WithTx: every statement runs on it

	get, insert, insertKeyed, keyID, update, del, page string
}

// Entry is one stored record, as yielded by RecordStore.All.
type Entry[T any] struct {
	// ID is the record's ID.
	ID string
	// Value is the record.
	Value T
	// Version is 1 after the create and grows by one with each Update.
	Version int64
	// CreatedAt and UpdatedAt are when the record was created and last written, from
	// the DB's clock (UTC, microseconds).
	CreatedAt, UpdatedAt time.Time
}

var (
	_ local.Store[int]        = (*RecordStore[int])(nil)
	_ local.KeyedCreator[int] = (*RecordStore[int])(nil)
	_ local.ExistenceChecker  = (*RecordStore[int])(nil)
)

// Records returns the store of model's records, creating its table
// (connkit_records_<model>, see RecordStore.Table) if it does not exist yet. It is safe
// to call from several processes at once, and creates the table even on a DB opened
// WithoutMigrate (record tables are not part of the numbered schema). On Postgres the table keeps data as JSON
// (exact text, so every encoding/json output is accepted; index fields with expression
// indexes such as ((data->>'sku'))), on SQLite as TEXT (json_extract works on it).
func Records[T any](ctx context.Context, db *DB, model string) (*RecordStore[T], error) {
	table, err := recordTable(model)
	if err != nil {
		return nil, err
	}
	s := &RecordStore[T]{db: db, model: model, table: table}
	if err := s.create(ctx); err != nil {
		return nil, fmt.Errorf("sqlstore: records of model %q: %w", model, err)
	}
	cols := `id, data, created_at, updated_at, version`
	s.get = db.q(`SELECT data FROM ` + table + ` WHERE id = ?`)
	s.insert = db.q(`INSERT INTO ` + table + ` (data, created_at, updated_at, version) VALUES (?, ?, ?, 1) RETURNING id`)
	s.insertKeyed = db.q(`INSERT INTO ` + table + ` (key, data, created_at, updated_at, version) VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (key) DO NOTHING RETURNING id`)
	s.keyID = db.q(`SELECT id FROM ` + table + ` WHERE key = ?`)
	s.update = db.q(`UPDATE ` + table + ` SET data = ?, updated_at = ?, version = version + 1 WHERE id = ?`)
	s.del = db.q(`DELETE FROM ` + table + ` WHERE id = ?`)
	s.page = db.q(`SELECT ` + cols + ` FROM ` + table + ` WHERE id > ? ORDER BY id LIMIT ?`)
	return s, nil
}

// recordTable derives the table of a model. A model already in the form
// [a-z0-9]+(_[a-z0-9]+)* of at most 40 bytes is used as is ("product" →
// connkit_records_product); any other is lower-cased, cut down to [a-z0-9_] and 30 bytes,
// and suffixed with "__" and a hash of the full name ("res.partner" →
// connkit_records_res_partner__<12 hex>). Plain names never contain "__", so no two
// models share a table.
func recordTable(model string) (string, error) {
	switch {
	case model == "":
		return "", fmt.Errorf("%w: the model name is empty", ErrInvalidModel)
	case len(model) > maxModelLen:
		return "", fmt.Errorf("%w: %q is %d bytes long, at most %d are allowed", ErrInvalidModel, model[:32]+"…", len(model), maxModelLen)
	case !utf8.ValidString(model):
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidModel, model)
	case strings.IndexFunc(model, unicode.IsControl) >= 0:
		return "", fmt.Errorf("%w: %q holds a control character", ErrInvalidModel, model)
	}
	const prefix = "connkit_records_"
	if len(model) <= 40 && plainModel(model) {
		return prefix + model, nil
	}
	var b strings.Builder
	under := true // no leading "_", no runs of "_"
	for _, r := range strings.ToLower(model) {
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	name := b.String()
	name = strings.TrimRight(name[:min(len(name), 30)], "_")
	sum := sha256.Sum256([]byte(model))
	return prefix + name + "__" + hex.EncodeToString(sum[:6]), nil
}

func plainModel(m string) bool {
	prev := byte('_')
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_' && prev != '_':
		default:
			return false
		}
		prev = c
	}
	return prev != '_'
}

// create makes the model's table if it is missing, and checks that an existing one has
// the columns of a record table.
func (s *RecordStore[T]) create(ctx context.Context) error {
	var ddl string
	if s.db.dialect == Postgres {
		ddl = `CREATE TABLE IF NOT EXISTS ` + s.table + ` (
			id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
			key TEXT UNIQUE,
			data JSON NOT NULL,
			created_at TIMESTAMPTZ NOT NULL,
			updated_at TIMESTAMPTZ NOT NULL,
			version BIGINT NOT NULL
		)`
	} else {
		ddl = `CREATE TABLE IF NOT EXISTS ` + s.table + ` (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			key TEXT UNIQUE,
			data TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			updated_at INTEGER NOT NULL,
			version INTEGER NOT NULL
		)`
	}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		if s.db.dialect == Postgres {
			// Two sessions running CREATE TABLE IF NOT EXISTS at once can both pass the
			// existence check and one then fails on the catalog's unique index: serialise
			// creators of this table in this schema. The lock ends with the transaction.
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('connkit_records:' || COALESCE(current_schema(), '') || ':' || $1, 0))`,
				s.table); err != nil {
				return fmt.Errorf("take the table creation lock: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("create table %s: %w", s.table, err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, key, data, created_at, updated_at, version FROM `+s.table+` WHERE 1 = 0`)
		if err != nil {
			return fmt.Errorf("table %s exists but is not a connkit record table (want columns id, key, data, created_at, updated_at, version): %w", s.table, err)
		}
		return rows.Close()
	})
	return err
}

// Table returns the name of the table holding the model's records, for queries connkit
// does not offer (joins, reports, expression indexes).
func (s *RecordStore[T]) Table() string { return s.table }

// WithTx returns a view of the store whose every statement, reads included, runs in tx:
// the record write commits or rolls back with the rest of tx, for example a job enqueued
// in the same transaction (an outbox). Use the view only while tx is open. See
// DB.InTx.
func (s *RecordStore[T]) WithTx(tx *sql.Tx) *RecordStore[T] {
	c := *s
	c.tx = tx
	return &c
}

// InTx runs fn in a write transaction and commits it when fn returns nil; it rolls back
// when fn fails or panics. Inside fn, reach connkit stores only through tx
// (RecordStore.WithTx): on SQLite the transaction holds the only write connection, so a
// store call that does not use tx waits for it forever, or until ctx ends.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.inTx(ctx, fn)
}

func (s *RecordStore[T]) reader() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.db.rq
}

func (s *RecordStore[T]) writer() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.db.wq
}

// parseID returns the row ID named by a record ID, or false when id is not the canonical
// decimal form of one (no record can have it).
func parseID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
		return 0, false
	}
	return n, true
}

func (s *RecordStore[T]) notFound(op, id string) error {
	return fmt.Errorf("sqlstore: %s %s record %q: %w", op, s.model, id, local.ErrNotFound)
}

func (s *RecordStore[T]) encode(op string, v T) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("sqlstore: %s %s record: encode %T as JSON (nothing was written): %w", op, s.model, v, err)
	}
	return string(b), nil
}

// decode reads stored JSON into a T; numbers in maps and interfaces become json.Number.
func (s *RecordStore[T]) decode(id int64, data []byte) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := dec.Decode(&v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data continues after the JSON value")
		}
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%w: record %d of model %q (table %s) does not decode into %T: %w; fix or delete that row",
			ErrCorruptRecord, id, s.model, s.table, v, err)
	}
	return v, nil
}

// Get implements local.Store.
func (s *RecordStore[T]) Get(ctx context.Context, id string) (T, error) {
	var zero T
	n, ok := parseID(id)
	if !ok {
		if err := ctx.Err(); err != nil {
			return zero, fmt.Errorf("sqlstore: get %s record %q: %w", s.model, id, err)
		}
		return zero, s.notFound("get", id)
	}
	var data []byte
	err := s.reader().QueryRowContext(ctx, s.get, n).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return zero, s.notFound("get", id)
	}
	if err != nil {
		return zero, fmt.Errorf("sqlstore: get %s record %q: %w", s.model, id, err)
	}
	return s.decode(n, data)
}

// Create implements local.Store.
func (s *RecordStore[T]) Create(ctx context.Context, v T) (string, error) {
	data, err := s.encode("create", v)
	if err != nil {
		return "", err
	}
	now := s.db.timeArg(s.db.clock())
	var id int64
	if err := s.writer().QueryRowContext(ctx, s.insert, data, now, now).Scan(&id); err != nil {
		return "", fmt.Errorf("sqlstore: create %s record: %w", s.model, err)
	}
	return strconv.FormatInt(id, 10), nil
}

// CreateKeyed implements local.KeyedCreator: the key is kept in a unique column, so two
// processes creating under one key store one record. Deleting the record frees its key.
func (s *RecordStore[T]) CreateKeyed(ctx context.Context, key string, v T) (string, bool, error) {
	data, err := s.encode("create", v)
	if err != nil {
		return "", false, err
	}
	w := s.writer()
	fail := func(err error) (string, bool, error) {
		return "", false, fmt.Errorf("sqlstore: create %s record under key %q: %w", s.model, key, err)
	}
	// Look the key up first: a re-run finds it without consuming an ID. When the record
	// holding the key is deleted between a failed insert and the lookup, insert again.
	for range 10 {
		var id int64
		err := w.QueryRowContext(ctx, s.keyID, key).Scan(&id)
		if err == nil {
			return strconv.FormatInt(id, 10), false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fail(err)
		}
		now := s.db.timeArg(s.db.clock())
		err = w.QueryRowContext(ctx, s.insertKeyed, key, data, now, now).Scan(&id)
		if err == nil {
			return strconv.FormatInt(id, 10), true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) { // ErrNoRows: another writer holds the key
			return fail(err)
		}
	}
	return fail(errors.New("the key was taken and freed again 10 times in a row; retry"))
}

// Update implements local.Store: it replaces the record and adds one to its version.
func (s *RecordStore[T]) Update(ctx context.Context, id string, v T) error {
	data, err := s.encode("update", v)
	if err != nil {
		return err
	}
	n, ok := parseID(id)
	if !ok {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlstore: update %s record %q: %w", s.model, id, err)
		}
		return s.notFound("update", id)
	}
	res, err := s.writer().ExecContext(ctx, s.update, data, s.db.timeArg(s.db.clock()), n)
	return s.changed("update", id, res, err)
}

// Delete implements local.Store.
func (s *RecordStore[T]) Delete(ctx context.Context, id string) error {
	n, ok := parseID(id)
	if !ok {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlstore: delete %s record %q: %w", s.model, id, err)
		}
		return s.notFound("delete", id)
	}
	res, err := s.writer().ExecContext(ctx, s.del, n)
	return s.changed("delete", id, res, err)
}

func (s *RecordStore[T]) changed(op, id string, res sql.Result, err error) error {
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			return s.notFound(op, id)
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: %s %s record %q: %w", op, s.model, id, err)
	}
	return nil
}

// Existing implements local.ExistenceChecker: it reports which of ids name stored records, with one query per chunk of IDs
// (500 on SQLite, 5000 on Postgres). IDs that are not record IDs are simply absent.
func (s *RecordStore[T]) Existing(ctx context.Context, ids []string) (map[string]struct{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: check %d %s records exist: %w", len(ids), s.model, err)
	}
	nums := make([]int64, 0, len(ids))
	seen := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		if n, ok := parseID(id); ok {
			if _, dup := seen[n]; !dup {
				seen[n] = struct{}{}
				nums = append(nums, n)
			}
		}
	}
	chunk := sqliteInChunk
	if s.db.dialect == Postgres {
		chunk = pgInChunk
	}
	out := make(map[string]struct{}, len(nums))
	for start := 0; start < len(nums); start += chunk {
		part := nums[start:min(start+chunk, len(nums))]
		if err := s.existingChunk(ctx, part, out); err != nil {
			return nil, fmt.Errorf("sqlstore: check %d %s records exist: %w", len(ids), s.model, err)
		}
	}
	return out, nil
}

func (s *RecordStore[T]) existingChunk(ctx context.Context, ids []int64, out map[string]struct{}) error {
	var query string
	var args []any
	if s.db.dialect == Postgres {
		query = `SELECT id FROM ` + s.table + ` WHERE id = ANY($1)`
		args = []any{ids}
	} else {
		// A few fixed IN-list lengths, so the pool prepares a handful of statements.
		size := inListSize(len(ids))
		query = `SELECT id FROM ` + s.table + ` WHERE id IN (?` + strings.Repeat(`, ?`, size-1) + `)`
		args = make([]any, size)
		for i := range size {
			args[i] = ids[min(i, len(ids)-1)]
		}
	}
	rows, err := s.reader().QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		out[strconv.FormatInt(id, 10)] = struct{}{}
	}
	return rows.Err()
}

// storedRow is a record as read, before its data is decoded.
type storedRow struct {
	id      int64
	data    []byte
	created time.Time
	updated time.Time
	version int64
}

// All yields every record in ID order, reading a page of rows per query (500), so memory stays bounded by the page, not the table. Records created
// while the walk runs appear if their ID is past the current page. A record that does
// not decode is yielded with its ID and an error matching ErrCorruptRecord, and the walk
// goes on if the loop continues; a failed query ends it.
func (s *RecordStore[T]) All(ctx context.Context) iter.Seq2[Entry[T], error] {
	rows := keysetPages(0, s.db.pageSize, func(last *storedRow, n int) ([]storedRow, error) {
		after := int64(math.MinInt64)
		if last != nil {
			after = last.id
		}
		page, err := s.readPage(ctx, after, n)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list %s records after ID %d: %w", s.model, max(after, 0), err)
		}
		return page, nil
	})
	return func(yield func(Entry[T], error) bool) {
		for r, err := range rows {
			if err != nil {
				yield(Entry[T]{}, err)
				return
			}
			e := Entry[T]{ID: strconv.FormatInt(r.id, 10), Version: r.version, CreatedAt: r.created, UpdatedAt: r.updated}
			e.Value, err = s.decode(r.id, r.data)
			if !yield(e, err) {
				return
			}
		}
	}
}

func (s *RecordStore[T]) readPage(ctx context.Context, after int64, n int) ([]storedRow, error) {
	rows, err := s.reader().QueryContext(ctx, s.page, after, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]storedRow, 0, n)
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.id, &r.data, nullTime{&r.created}, nullTime{&r.updated}, &r.version); err != nil {
			return nil, err
		}
		page = append(page, r)
	}
	return page, rows.Err()
}
