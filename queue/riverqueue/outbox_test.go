package riverqueue_test

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/queuetest"
	"github.com/connkit/connkit/sqlstore"
)

// exportOrderArgs is the export job of the outbox tests.
type exportOrderArgs struct {
	OrderID int `json:"order_id"`
}

func (exportOrderArgs) Kind() string { return "export_order" }

// outboxKey is the identity key of an order's export.
func outboxKey(id int) string { return "export_order:" + strconv.Itoa(id) }

// createOrders makes the app's own table in the connkit database.
func createOrders(t testing.TB, db *sqlstore.DB) {
	t.Helper()
	if _, err := db.SQL().ExecContext(context.Background(), `CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		t.Fatalf("creating the orders table: %v", err)
	}
}

// saveAndExport writes an order and enqueues its export in one transaction;
// between (with the transaction still open) it calls beforeCommit.
func saveAndExport(ctx context.Context, db *sqlstore.DB, q queue.TxEnqueuer, id int, beforeCommit func(*sql.Tx) error) (queue.JobInfo, error) {
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return queue.JobInfo{}, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	insert := `INSERT INTO orders (id, name) VALUES (?, ?)`
	if db.Dialect() == sqlstore.Postgres {
		insert = `INSERT INTO orders (id, name) VALUES ($1, $2)`
	}
	if _, err := tx.ExecContext(ctx, insert, id, "order"); err != nil {
		return queue.JobInfo{}, err
	}
	job, err := q.EnqueueTx(ctx, tx, exportOrderArgs{OrderID: id}, queue.WithIdentityKey(outboxKey(id)))
	if err != nil {
		return job, err
	}
	if err := beforeCommit(tx); err != nil {
		return job, err
	}
	return job, tx.Commit()
}

func orderExists(t testing.TB, db *sqlstore.DB, id int) bool {
	t.Helper()
	q := `SELECT count(*) FROM orders WHERE id = ?`
	if db.Dialect() == sqlstore.Postgres {
		q = `SELECT count(*) FROM orders WHERE id = $1`
	}
	var n int
	if err := db.SQL().QueryRowContext(context.Background(), q, id).Scan(&n); err != nil {
		t.Fatalf("reading order %d: %v", id, err)
	}
	return n == 1
}

// exportCounter is a worker that counts the exports of each order.
type exportCounter struct {
	mu   sync.Mutex
	runs map[int]int
}

func (c *exportCounter) workers() *queue.Workers {
	w := &queue.Workers{}
	queue.AddWorker(w, func(ctx context.Context, job *queue.Job[exportOrderArgs]) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.runs == nil {
			c.runs = map[int]int{}
		}
		c.runs[job.Args.OrderID]++
		return nil
	})
	return w
}

func (c *exportCounter) count(id int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

// waitJob polls until job id is in state want.
func waitJob(t testing.TB, q queue.Queue, id int64, want queue.State) queue.JobInfo {
	t.Helper()
	var got queue.JobInfo
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = q.GetJob(context.Background(), id); err != nil {
			t.Fatalf("GetJob(%d): %v", id, err)
		}
		if got.State == want {
			return got
		}
	}
	t.Fatalf("job %d is %s, want %s (errors %+v)", id, got.State, want, got.Errors)
	return got
}

// outboxDatabases runs fn on a SQLite file and, when
// CONNKIT_TEST_POSTGRES_URL is set, on Postgres.
func outboxDatabases(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite(t, migratedSQLiteFile(t))) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPostgres(t)) })
}

// The app writes its record and enqueues its export in one transaction: on
// commit both exist and the export runs once; on rollback neither exists.
func TestOutboxCommitAndRollback(t *testing.T) {
	outboxDatabases(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		createOrders(t, db)
		var c exportCounter
		q := newOn(t, db, c.workers(), testOptions(t, queueConfig())...)

		committed, err := saveAndExport(ctx, db, q, 1, func(*sql.Tx) error { return nil })
		if err != nil {
			t.Fatalf("commit path: %v", err)
		}
		errRollback := errors.New("app changed its mind")
		rolledBack, err := saveAndExport(ctx, db, q, 2, func(*sql.Tx) error { return errRollback })
		if !errors.Is(err, errRollback) {
			t.Fatalf("rollback path: %v", err)
		}
		if !orderExists(t, db, 1) || orderExists(t, db, 2) {
			t.Fatalf("orders after commit/rollback: 1 exists %v, 2 exists %v; want only 1", orderExists(t, db, 1), orderExists(t, db, 2))
		}
		if _, err := q.GetJob(ctx, rolledBack.ID); !errors.Is(err, queue.ErrJobNotFound) {
			t.Errorf("job enqueued in a rolled back transaction: %v, want ErrJobNotFound", err)
		}
		// Enqueueing the export again (an app's recovery sweep) is a duplicate
		// while the committed one is pending.
		if again, err := q.Enqueue(ctx, exportOrderArgs{OrderID: 1}, queue.WithIdentityKey(outboxKey(1))); err != nil || !again.Duplicate || again.ID != committed.ID {
			t.Errorf("re-enqueue of a pending export: %+v, %v; want a duplicate of job %d", again, err, committed.ID)
		}
		if err := q.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitJob(t, q, committed.ID, queue.StateCompleted)
		var jobs int
		for j, err := range q.ListJobs(ctx, queue.ListFilter{Kinds: []string{exportOrderArgs{}.Kind()}}) {
			if err != nil {
				t.Fatal(err)
			}
			jobs++
			if j.ID != committed.ID {
				t.Errorf("unexpected job %+v", j)
			}
		}
		if jobs != 1 || c.count(1) != 1 || c.count(2) != 0 {
			t.Errorf("%d export jobs; order 1 exported %d times, order 2 %d; want one job, run once, for order 1", jobs, c.count(1), c.count(2))
		}
	})
}

// A Queue[*sql.Tx] is a queue.TxEnqueuer, so code given a queue.Queue can
// find the transactional path by a type assertion.
func TestNewIsTxEnqueuer(t *testing.T) {
	var q queue.Queue = newOn(t, openSQLite(t, migratedSQLiteFile(t)), &queue.Workers{})
	if _, ok := q.(queue.TxEnqueuer); !ok {
		t.Fatal("riverqueue.New's queue is not a queue.TxEnqueuer")
	}
	if _, ok := queue.NewPool(&queue.Workers{}).(queue.TxEnqueuer); ok {
		t.Error("the in-process pool claims to enqueue in a database transaction")
	}
}

func queueConfig() queuetest.Config { return queuetest.Config{MaxWorkers: 2} }
