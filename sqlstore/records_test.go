package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/sqlstore"
)

type product struct {
	SKU   string   `json:"sku"`
	Title string   `json:"title,omitempty"`
	Price float64  `json:"price"`
	Tags  []string `json:"tags,omitempty"`
}

func mustRecords[T any](t testing.TB, db *sqlstore.DB, model string) *sqlstore.RecordStore[T] {
	t.Helper()
	s, err := sqlstore.Records[T](context.Background(), db, model)
	if err != nil {
		t.Fatalf("Records(%q): %v", model, err)
	}
	return s
}

func collect[T any](t testing.TB, s *sqlstore.RecordStore[T]) []sqlstore.Entry[T] {
	t.Helper()
	var out []sqlstore.Entry[T]
	for e, err := range s.All(context.Background()) {
		if err != nil {
			t.Fatalf("All: %v", err)
		}
		out = append(out, e)
	}
	return out
}

func TestRecordsCRUD(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			clock := newClock()
			db := e.open(t, sqlstore.WithClock(clock.Now))
			s := mustRecords[product](t, db, "product")
			ctx := t.Context()

			if s.Table() != "connkit_records_product" {
				t.Fatalf("Table() = %q", s.Table())
			}
			p := product{SKU: "A-1", Title: "Mug", Price: 9.5, Tags: []string{"kitchen"}}
			id, err := s.Create(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if id != "1" {
				t.Fatalf("first ID = %q, want 1", id)
			}
			got, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p, got); diff != "" {
				t.Fatalf("Get after Create (-want +got):\n%s", diff)
			}

			created := clock.Now()
			clock.Advance(time.Minute)
			p.Price = 11
			if err := s.Update(ctx, id, p); err != nil {
				t.Fatal(err)
			}
			if got, err = s.Get(ctx, id); err != nil || got.Price != 11 {
				t.Fatalf("Get after Update = %+v, %v", got, err)
			}
			entries := collect(t, s)
			want := []sqlstore.Entry[product]{{ID: "1", Value: p, Version: 2, CreatedAt: created, UpdatedAt: clock.Now()}}
			if diff := cmp.Diff(want, entries); diff != "" {
				t.Fatalf("All (-want +got):\n%s", diff)
			}

			if err := s.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"1", "2", "007", "0", "-1", "abc", "", "99999999999999999999"} {
				if _, err := s.Get(ctx, id); !errors.Is(err, local.ErrNotFound) {
					t.Errorf("Get(%q) error = %v, want ErrNotFound", id, err)
				}
				if err := s.Update(ctx, id, p); !errors.Is(err, local.ErrNotFound) {
					t.Errorf("Update(%q) error = %v, want ErrNotFound", id, err)
				}
				if err := s.Delete(ctx, id); !errors.Is(err, local.ErrNotFound) {
					t.Errorf("Delete(%q) error = %v, want ErrNotFound", id, err)
				}
			}
			// IDs are never reused after a delete.
			if id, err := s.Create(ctx, p); err != nil || id != "2" {
				t.Fatalf("Create after Delete = %q, %v; want 2", id, err)
			}
			// "007" does not alias record 7.
			for range 5 {
				if _, err := s.Create(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Get(ctx, "7"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "007"); !errors.Is(err, local.ErrNotFound) {
				t.Fatalf("Get(007) = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestRecordsMatchesMemory runs one random sequence of operations on local.Memory and on
// a RecordStore and requires the same outcomes. IDs are compared through a mapping, as the
// SQL store may skip numbers.
func TestRecordsMatchesMemory(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			s := mustRecords[product](t, db, "product")
			m := local.NewMemory[product]()
			ctx := t.Context()
			rng := rand.New(rand.NewPCG(1, 2))
			toSQL := map[string]string{} // memory ID -> SQL ID
			var memIDs []string
			pickID := func() (string, string) {
				if len(memIDs) == 0 || rng.IntN(8) == 0 {
					return "424242", "424242" // never created on either side
				}
				mid := memIDs[rng.IntN(len(memIDs))]
				return mid, toSQL[mid]
			}
			sameErr := func(op string, merr, serr error) {
				t.Helper()
				if errors.Is(merr, local.ErrNotFound) != errors.Is(serr, local.ErrNotFound) || (merr == nil) != (serr == nil) {
					t.Fatalf("%s: memory error %v, sql error %v", op, merr, serr)
				}
			}
			for step := range 400 {
				v := product{SKU: fmt.Sprint("sku-", rng.IntN(50)), Price: float64(step)}
				switch op := rng.IntN(6); op {
				case 0:
					mid, merr := m.Create(ctx, v)
					sid, serr := s.Create(ctx, v)
					sameErr("Create", merr, serr)
					toSQL[mid] = sid
					memIDs = append(memIDs, mid)
				case 1:
					key := fmt.Sprint("k", rng.IntN(10))
					mid, mcreated, merr := m.CreateKeyed(ctx, key, v)
					sid, screated, serr := s.CreateKeyed(ctx, key, v)
					sameErr("CreateKeyed", merr, serr)
					if mcreated != screated {
						t.Fatalf("step %d CreateKeyed(%q): memory created=%v, sql created=%v", step, key, mcreated, screated)
					}
					if mcreated {
						toSQL[mid] = sid
						memIDs = append(memIDs, mid)
					} else if toSQL[mid] != sid {
						t.Fatalf("step %d CreateKeyed(%q): memory returned %s (sql %s), sql returned %s", step, key, mid, toSQL[mid], sid)
					}
				case 2:
					mid, sid := pickID()
					sameErr("Update", m.Update(ctx, mid, v), s.Update(ctx, sid, v))
				case 3:
					mid, sid := pickID()
					sameErr("Delete", m.Delete(ctx, mid), s.Delete(ctx, sid))
				case 4:
					mid, sid := pickID()
					mv, merr := m.Get(ctx, mid)
					sv, serr := s.Get(ctx, sid)
					sameErr("Get", merr, serr)
					if diff := cmp.Diff(mv, sv); diff != "" {
						t.Fatalf("step %d Get: (-memory +sql)\n%s", step, diff)
					}
				case 5:
					var mids, sids []string
					for range 5 {
						mid, sid := pickID()
						mids, sids = append(mids, mid), append(sids, sid)
					}
					got, err := s.Existing(ctx, sids)
					if err != nil {
						t.Fatal(err)
					}
					for i, mid := range mids {
						_, merr := m.Get(ctx, mid)
						if _, ok := got[sids[i]]; ok != (merr == nil) {
							t.Fatalf("step %d Existing(%s): sql says %v, memory Get says %v", step, sids[i], ok, merr)
						}
					}
				}
			}
			// Both hold the same records, in the same order.
			var want []product
			for _, id := range m.IDs() {
				v, err := m.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, v)
			}
			var got []product
			for _, e := range collect(t, s) {
				got = append(got, e.Value)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("final records (-memory +sql):\n%s", diff)
			}
		})
	}
}

func TestRecordsCreateKeyed(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			s := mustRecords[product](t, db, "product")
			ctx := t.Context()
			id, created, err := s.CreateKeyed(ctx, "shop/product/1", product{SKU: "first"})
			if err != nil || !created {
				t.Fatalf("first CreateKeyed = %q, %v, %v", id, created, err)
			}
			again, created, err := s.CreateKeyed(ctx, "shop/product/1", product{SKU: "second"})
			if err != nil || created || again != id {
				t.Fatalf("second CreateKeyed = %q, %v, %v; want %q, false", again, created, err, id)
			}
			if got, _ := s.Get(ctx, id); got.SKU != "first" {
				t.Fatalf("the second CreateKeyed overwrote the record: %+v", got)
			}
			if es := collect(t, s); len(es) != 1 || es[0].Value.SKU != "first" {
				t.Fatalf("All = %+v", es)
			}
			// A deleted record frees its key.
			if err := s.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			id2, created, err := s.CreateKeyed(ctx, "shop/product/1", product{SKU: "third"})
			if err != nil || !created || id2 == id {
				t.Fatalf("CreateKeyed after Delete = %q, %v, %v; want a new record", id2, created, err)
			}

			// Many goroutines, one key: one record.
			const n = 8
			ids := make([]string, n)
			createds := make([]bool, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					var err error
					ids[i], createds[i], err = s.CreateKeyed(ctx, "race", product{SKU: fmt.Sprint(i)})
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			wins := 0
			for i := range n {
				if createds[i] {
					wins++
				}
				if ids[i] != ids[0] {
					t.Fatalf("CreateKeyed under one key returned IDs %v", ids)
				}
			}
			if wins != 1 {
				t.Fatalf("%d of %d concurrent CreateKeyed calls created a record, want 1", wins, n)
			}
		})
	}
}

func TestRecordsExisting(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			s := mustRecords[map[string]any](t, db, "customer")
			ctx := t.Context()
			const n = 1200 // more than two SQLite chunks
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				st := s.WithTx(tx)
				for i := range n {
					if _, err := st.Create(ctx, map[string]any{"n": i}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := 2; i <= n; i += 3 {
				if err := s.Delete(ctx, fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			var ask []string
			want := map[string]struct{}{}
			for i := 1; i <= n+50; i++ {
				id := fmt.Sprint(i)
				ask = append(ask, id, id) // duplicates are harmless
				if i <= n && i%3 != 2 {
					want[id] = struct{}{}
				}
			}
			ask = append(ask, "", "abc", "007", "-3", "0")
			got, err := s.Existing(ctx, ask)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Existing (-want +got):\n%s", diff)
			}
			if got, err := s.Existing(ctx, nil); err != nil || len(got) != 0 {
				t.Fatalf("Existing(nil) = %v, %v", got, err)
			}
		})
	}
}

// All reads page by page; the loop body may write to the store, even on a single-
// connection in-memory SQLite database.
func TestRecordsAllPages(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t, sqlstore.WithPageSize(3))
			s := mustRecords[product](t, db, "product")
			ctx := t.Context()
			for i := range 10 {
				if _, err := s.Create(ctx, product{SKU: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			var seen []string
			for e, err := range s.All(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, e.Value.SKU)
				e.Value.Title = "seen"
				if err := s.Update(ctx, e.ID, e.Value); err != nil {
					t.Fatal(err)
				}
			}
			if want := strings.Fields("0 1 2 3 4 5 6 7 8 9"); !cmp.Equal(want, seen) {
				t.Fatalf("All yielded %v, want %v", seen, want)
			}
			for _, e := range collect(t, s) {
				if e.Value.Title != "seen" || e.Version != 2 {
					t.Fatalf("record %s after the walk: %+v", e.ID, e)
				}
			}
			n := 0
			for range s.All(ctx) {
				if n++; n == 4 {
					break
				}
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			for _, err := range s.All(cancelled) {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("All on a cancelled context: %v", err)
				}
			}
		})
	}
}

func TestRecordsCorruptRow(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			s := mustRecords[product](t, db, "product")
			ctx := t.Context()
			for i := range 4 {
				if _, err := s.Create(ctx, product{SKU: fmt.Sprint(i)}); err != nil {
					t.Fatal(err)
				}
			}
			// Someone edits the database by hand: valid JSON of the wrong shape (Postgres'
			// JSON column refuses invalid text), and on SQLite text that is not JSON at all.
			bad := map[string]string{"2": `["not", "a", "product"]`}
			if db.Dialect() == sqlstore.SQLite {
				bad["3"] = `{"sku": "3"`
				bad["4"] = `{"sku": "4"} {"sku": "5"}`
			}
			for id, data := range bad {
				q := `UPDATE ` + s.Table() + ` SET data = ? WHERE id = ?`
				if db.Dialect() == sqlstore.Postgres {
					q = pgRebind(q)
				}
				if _, err := db.SQL().ExecContext(ctx, q, data, id); err != nil {
					t.Fatal(err)
				}
			}
			for id := range bad {
				_, err := s.Get(ctx, id)
				if !errors.Is(err, sqlstore.ErrCorruptRecord) {
					t.Fatalf("Get(%s) error = %v, want ErrCorruptRecord", id, err)
				}
				if msg := err.Error(); !strings.Contains(msg, `record `+id+` of model "product"`) {
					t.Fatalf("Get(%s) error %q does not name the record and model", id, msg)
				}
			}
			var good, corrupt []string
			for e, err := range s.All(ctx) {
				if errors.Is(err, sqlstore.ErrCorruptRecord) {
					corrupt = append(corrupt, e.ID)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				good = append(good, e.ID)
			}
			wantCorrupt := []string{"2"}
			wantGood := []string{"1", "3", "4"}
			if len(bad) > 1 {
				wantCorrupt, wantGood = []string{"2", "3", "4"}, []string{"1"}
			}
			if !cmp.Equal(good, wantGood) || !cmp.Equal(corrupt, wantCorrupt) {
				t.Fatalf("All: good %v corrupt %v; want %v and %v", good, corrupt, wantGood, wantCorrupt)
			}
		})
	}
}

func TestRecordsModelNames(t *testing.T) {
	db := mustOpen(t, ":memory:")
	ctx := t.Context()
	for _, model := range []string{"", "a\x00b", "tab\there", "\xff\xfe", strings.Repeat("m", 129)} {
		if _, err := sqlstore.Records[product](ctx, db, model); !errors.Is(err, sqlstore.ErrInvalidModel) {
			t.Errorf("Records(%q) error = %v, want ErrInvalidModel", model, err)
		}
	}
	// Names that clean up to the same text still get their own tables.
	models := []string{"res_partner", "res.partner", "Res.Partner", "res partner", "res__partner", "res_partner_",
		"Commande client", "Bestellung-Ä", "ü", strings.Repeat("x", 40), strings.Repeat("x", 41), strings.Repeat("long.name", 14)}
	tables := map[string]string{}
	for i, model := range models {
		s, err := sqlstore.Records[product](ctx, db, model)
		if err != nil {
			t.Fatalf("Records(%q): %v", model, err)
		}
		if prev, dup := tables[s.Table()]; dup {
			t.Fatalf("models %q and %q share table %s", prev, model, s.Table())
		}
		if len(s.Table()) > 63 {
			t.Fatalf("table of %q is %d bytes long: %s", model, len(s.Table()), s.Table())
		}
		tables[s.Table()] = model
		if _, err := s.Create(ctx, product{SKU: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRecords[product](t, db, "res.partner").Table(); !strings.HasPrefix(got, "connkit_records_res_partner__") {
		t.Fatalf("Table of res.partner = %q", got)
	}
	for _, model := range models {
		if es := collect(t, mustRecords[product](t, db, model)); len(es) != 1 {
			t.Fatalf("model %q holds %d records, want 1", model, len(es))
		}
	}
}

// A table of the derived name that is not a record table is reported, not written to.
func TestRecordsForeignTable(t *testing.T) {
	db := mustOpen(t, ":memory:")
	if _, err := db.SQL().Exec(`CREATE TABLE connkit_records_legacy (id INTEGER PRIMARY KEY, payload TEXT)`); err != nil {
		t.Fatal(err)
	}
	_, err := sqlstore.Records[product](t.Context(), db, "legacy")
	if err == nil || !strings.Contains(err.Error(), "not a connkit record table") {
		t.Fatalf("Records over a foreign table: %v", err)
	}
}

func TestRecordsUnencodable(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			s := mustRecords[map[string]any](t, db, "thing")
			ctx := t.Context()
			id, err := s.Create(ctx, map[string]any{"ok": 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []map[string]any{{"price": math.NaN()}, {"ch": make(chan int)}} {
				if _, err := s.Create(ctx, v); err == nil {
					t.Fatalf("Create(%v) succeeded", v)
				}
				if _, _, err := s.CreateKeyed(ctx, "k", v); err == nil {
					t.Fatalf("CreateKeyed(%v) succeeded", v)
				}
				if err := s.Update(ctx, id, v); err == nil || !strings.Contains(err.Error(), "nothing was written") {
					t.Fatalf("Update(%v) error = %v", v, err)
				}
			}
			es := collect(t, s)
			if len(es) != 1 || es[0].Version != 1 || fmt.Sprint(es[0].Value) != "map[ok:1]" {
				t.Fatalf("after failed writes the store holds %+v", es)
			}
		})
	}
}

// Maps read numbers as json.Number, so integers past 2^53 keep every digit.
func TestRecordsMapNumbers(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			s := mustRecords[map[string]any](t, db, "order")
			ctx := t.Context()
			in := map[string]any{"id": int64(9007199254740993), "total": 12.5, "lines": []any{map[string]any{"q": 2}}, "note": "a\x00b"}
			id, err := s.Create(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"id": json.Number("9007199254740993"), "total": json.Number("12.5"),
				"lines": []any{map[string]any{"q": json.Number("2")}}, "note": "a\x00b"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Get (-want +got):\n%s", diff)
			}
		})
	}
}

// A record written through WithTx commits or rolls back with the transaction.
func TestRecordsInTx(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			s := mustRecords[product](t, db, "product")
			ctx := t.Context()
			boom := errors.New("boom")
			var rolledBack string
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				st := s.WithTx(tx)
				id, err := st.Create(ctx, product{SKU: "rolled back"})
				if err != nil {
					return err
				}
				rolledBack = id
				// Reads through the transaction see its own writes.
				if got, err := st.Get(ctx, id); err != nil || got.SKU != "rolled back" {
					t.Errorf("Get inside the transaction = %+v, %v", got, err)
				}
				if got, err := st.Existing(ctx, []string{id}); err != nil || len(got) != 1 {
					t.Errorf("Existing inside the transaction = %v, %v", got, err)
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("InTx = %v, want boom", err)
			}
			if _, err := s.Get(ctx, rolledBack); !errors.Is(err, local.ErrNotFound) {
				t.Fatalf("record of a rolled back transaction: %v", err)
			}

			var kept string
			err = db.InTx(ctx, func(tx *sql.Tx) error {
				st := s.WithTx(tx)
				var err error
				if kept, _, err = st.CreateKeyed(ctx, "k", product{SKU: "kept"}); err != nil {
					return err
				}
				if err := st.Update(ctx, kept, product{SKU: "kept", Price: 3}); err != nil {
					return err
				}
				// The app's own statement in the same transaction (an outbox row, a job).
				_, err = tx.ExecContext(ctx, `CREATE TABLE app_outbox (record TEXT)`)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, kept); err != nil || got.Price != 3 {
				t.Fatalf("committed record = %+v, %v", got, err)
			}
		})
	}
}

// Several processes (here: several DB handles) opening one model's store at once all get
// it, and share one table.
func TestRecordsConcurrentFirstUse(t *testing.T) {
	dsns := map[string]func(t *testing.T) string{
		"sqlite-file": func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "shared.db") },
		"postgres":    func(t *testing.T) string { return pgSchemaDSN(t) },
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			dsn := dsn(t)
			const n = 6
			dbs := make([]*sqlstore.DB, n)
			for i := range dbs {
				dbs[i] = mustOpen(t, dsn)
			}
			for round := range 3 {
				model := fmt.Sprint("model_", round)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						s, err := sqlstore.Records[product](t.Context(), dbs[i], model)
						if err != nil {
							t.Errorf("process %d: %v", i, err)
							return
						}
						if _, err := s.Create(t.Context(), product{SKU: fmt.Sprint(i)}); err != nil {
							t.Errorf("process %d: %v", i, err)
						}
					})
				}
				close(start)
				wg.Wait()
				if t.Failed() {
					return
				}
				if es := collect(t, mustRecords[product](t, dbs[0], model)); len(es) != n {
					t.Fatalf("%s holds %d records, want %d", model, len(es), n)
				}
			}
		})
	}
}

// Concurrent writers and readers on one store (run with -race).
func TestRecordsConcurrentUse(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			s := mustRecords[product](t, db, "product")
			ctx := t.Context()
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := range 25 {
						id, err := s.Create(ctx, product{SKU: fmt.Sprint(w, "-", i)})
						if err != nil {
							t.Error(err)
							return
						}
						if err := s.Update(ctx, id, product{SKU: fmt.Sprint(w, "-", i), Price: 1}); err != nil {
							t.Error(err)
							return
						}
						if got, err := s.Get(ctx, id); err != nil || got.Price != 1 {
							t.Errorf("Get(%s) = %+v, %v", id, got, err)
							return
						}
					}
				})
			}
			wg.Wait()
			if es := collect(t, s); len(es) != 100 {
				t.Fatalf("%d records, want 100", len(es))
			}
		})
	}
}
