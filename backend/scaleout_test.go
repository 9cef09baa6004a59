//go:build unix

package backend_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"github.com/connkit/connkit/internal/pgtest"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

// The multi-process tests of the hub (scale-out, outbox kill, schedules across nodes) re-run
// this test binary as child processes. A child runs TestHubChild with these variables set;
// the parent passes it the database and the fake API's URL, and talks to it through stdin
// (a line per command) and stdout (a line per event).
const (
	hubChildEnv = "CONNKIT_BACKEND_HUB_CHILD" // the child's role: scale, outbox-*, sched
	hubNameEnv  = "CONNKIT_BACKEND_HUB_NAME"  // the child's name (River client ID)
	hubDSNEnv   = "CONNKIT_BACKEND_HUB_DSN"
	hubAPIEnv   = "CONNKIT_BACKEND_HUB_API"
)

// widget is the app's record of the multi-process tests.
type widget struct {
	Name  string `json:"name"`
	Price int    `json:"price"`
}

// hubName names the backend in every process of a test.
const hubName = "hub"

// widgetModel is the one model the multi-process hub exports.
func widgetModel(store *sqlstore.RecordStore[widget]) backend.Model[widget] {
	return backend.Model[widget]{
		Name:  "widget",
		Local: store,
		Export: &backend.Export{
			Create: "/widgets",
			Rules:  []mapper.Rule{mapper.Direct("name", "name"), mapper.Direct("price", "price")},
		},
	}
}

// newHub builds the backend every process of a test builds the same way: the widget model,
// a River queue on db (migrating it only when migrate is set, so that one process creates
// River's tables before the others start), and extra options.
func newHub(db *sqlstore.DB, apiURL, clientID string, migrate bool, opts ...backend.Option) (*backend.Backend, *sqlstore.RecordStore[widget], error) {
	ctx := context.Background()
	widgets, err := sqlstore.Records[widget](ctx, db, "widget")
	if err != nil {
		return nil, nil, err
	}
	qopts := []queue.Option{
		queue.WithWorkers(4),
		queue.WithBackoff(50*time.Millisecond, 200*time.Millisecond),
		riverqueue.WithRiverConfig(func(c *river.Config) {
			c.TestOnly = true // no random start-up stagger
			c.FetchPollInterval = 50 * time.Millisecond
			c.FetchCooldown = 10 * time.Millisecond
			if clientID != "" {
				c.ID = clientID // recorded in each job's attempted_by
			}
		}),
	}
	if !migrate {
		qopts = append(qopts, riverqueue.WithoutMigrate())
	}
	all := append([]backend.Option{
		backend.WithDB(db),
		backend.WithQueue(func(ctx context.Context, w *queue.Workers) (queue.Queue, error) {
			return riverqueue.New(ctx, db, w, qopts...)
		}),
		backend.WithModel(widgetModel(widgets)),
		backend.WithClientOptions(adapter.WithRetryWait(5*time.Millisecond, 50*time.Millisecond)),
	}, opts...)
	b, err := backend.New(backend.Config{Name: hubName, BaseURL: apiURL}, all...)
	return b, widgets, err
}

// pgSchemaDSN returns a DSN on a fresh schema of the test Postgres, or skips.
func pgSchemaDSN(t *testing.T) string { return pgtest.DSN(t, "backend_test_") }

// child is a running child process.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout, line by line; closed when the child's stdout ends

	mu  sync.Mutex
	out []string // every stdout line, for assertions and failure messages
}

// startChild re-runs the test binary as a child of role; the child is killed at cleanup if
// it is still running.
func startChild(t *testing.T, role, name, dsn, apiURL string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHubChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), hubChildEnv+"="+role, hubNameEnv+"="+name, hubDSNEnv+"="+dsn, hubAPIEnv+"="+apiURL)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 10000)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.out = append(c.out, sc.Text())
			c.mu.Unlock()
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// await reads the child's output until a line starting with prefix, and returns the rest
// of that line; it fails the test if the child ends first or after timeout.
func (c *child) await(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child %s ended before printing %q; output:\n%s", c.name, prefix, c.output())
			}
			if rest, found := strings.CutPrefix(l, prefix); found {
				return rest
			}
		case <-deadline:
			t.Fatalf("child %s did not print %q within %s; output:\n%s", c.name, prefix, timeout, c.output())
		}
	}
}

// awaitEnd reads the child's output until it ends (the child exited), and fails the test
// (the child is killed at cleanup) if that takes longer than timeout.
func (c *child) awaitEnd(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-c.lines:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("child %s still running after %s; output:\n%s", c.name, timeout, c.output())
		}
	}
}

func (c *child) send(t *testing.T, line string) {
	t.Helper()
	_, err := io.WriteString(c.stdin, line+"\n")
	require.NoError(t, err, "writing to child %s", c.name)
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.out, "\n")
}

// TestHubChild is the child process of the multi-process tests; it does nothing unless
// started by one of them.
func TestHubChild(t *testing.T) {
	role := os.Getenv(hubChildEnv)
	if role == "" {
		t.Skip("child process of TestScaleOutOnHubJobs, TestOutboxKillAtHub and TestScheduleOncePerTickAcrossProcesses")
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, os.Getenv(hubDSNEnv), sqlstore.WithoutMigrate())
	require.NoError(t, err)
	in := bufio.NewScanner(os.Stdin)
	switch {
	case role == "scale":
		scaleChild(t, db, in)
	case strings.HasPrefix(role, "outbox-"):
		outboxChild(t, db, strings.TrimPrefix(role, "outbox-"))
	case role == "sched":
		schedChild(t, db, in)
	default:
		t.Fatalf("unknown child role %q", role)
	}
}

// scaleChild is one worker process of TestScaleOutOnHubJobs: it builds the hub, says it is
// ready, starts working when told to, and works until it is killed.
func scaleChild(t *testing.T, db *sqlstore.DB, in *bufio.Scanner) {
	b, _, err := newHub(db, os.Getenv(hubAPIEnv), os.Getenv(hubNameEnv), false)
	require.NoError(t, err)
	fmt.Println("ready")
	require.True(t, in.Scan(), "parent closed stdin before start")
	require.NoError(t, b.Start(context.Background()))
	fmt.Println("started")
	select {} // works until the parent kills it
}

// Several worker processes share the hub's built-in export jobs through River on one
// Postgres database (issue 10: "the existing scale-out test moves onto these job kinds").
// The parent writes M local records and defers their export in chunks, twice over with
// overlapping chunks, so that the same record is in two jobs that run at the same time in
// different processes; three children build the same backend and work the jobs. Every
// record is created remotely exactly once, every binding ends in success, and more than
// one process did work.
func TestScaleOutOnHubJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns worker processes; skipped with -short")
	}
	dsn := pgSchemaDSN(t)
	ctx := context.Background()
	const m, chunk, workers = 300, 10, 3

	api := fakeapi.New()
	t.Cleanup(api.Close)
	// Each request takes a moment, so one process cannot drain the queue alone.
	api.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: 10 * time.Millisecond, Every: 1})

	db, err := sqlstore.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	hub, widgets, err := newHub(db, api.URL, "parent", true) // creates River's tables; never started
	require.NoError(t, err)

	ids := make([]string, 0, m)
	require.NoError(t, db.InTx(ctx, func(tx *sql.Tx) error {
		for i := range m {
			id, err := widgets.WithTx(tx).Create(ctx, widget{Name: fmt.Sprintf("W%03d", i), Price: i})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))

	// Chunks [0,10), [10,20)…, then chunks shifted by half a chunk: every record but the
	// first and last few is in two jobs.
	var jobs int
	enqueue := func(lo, hi int) {
		job, err := hub.Later(queue.WithMaxAttempts(10)).Export(ctx, "widget", ids[max(lo, 0):min(hi, m)]...)
		require.NoError(t, err)
		require.False(t, job.Duplicate)
		jobs++
	}
	for lo := 0; lo < m; lo += chunk {
		enqueue(lo, lo+chunk)
	}
	for lo := chunk / 2; lo < m; lo += chunk {
		enqueue(lo, lo+chunk)
	}
	// The same chunk deferred again while its job is pending is the same job.
	again, err := hub.Later().Export(ctx, "widget", ids[:chunk]...)
	require.NoError(t, err)
	assert.True(t, again.Duplicate, "the same export deferred twice is one job")

	var kids []*child
	for i := range workers {
		kids = append(kids, startChild(t, "scale", fmt.Sprintf("worker-%d", i+1), dsn, api.URL))
	}
	for _, k := range kids {
		k.await(t, "ready", 60*time.Second)
	}
	for _, k := range kids {
		k.send(t, "start")
	}
	for _, k := range kids {
		k.await(t, "started", 30*time.Second)
	}

	exportKind := []string{"connkit.export"}
	var completed int
	for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		completed = 0
		for j, err := range hub.Queue().ListJobs(ctx, queue.ListFilter{Kinds: exportKind}) {
			require.NoError(t, err)
			switch j.State {
			case queue.StateCompleted:
				completed++
			case queue.StateDiscarded, queue.StateCancelled:
				t.Fatalf("export job %d ended %s: %+v", j.ID, j.State, j.Errors)
			}
		}
		if completed >= jobs {
			break
		}
	}
	require.Equal(t, jobs, completed, "every export job completed")

	st := api.Stats()
	t.Logf("%d jobs; creates %d, create requests %d, replays %d, updates %d", jobs, st.Creates, st.CreateRequests, st.Replays, st.Updates)
	assert.Equal(t, m, api.Count("widgets"), "remote set == local set")
	assert.Equal(t, m, st.Creates, "every record created exactly once")
	// Without faults nothing is retried: a record in two jobs at once is POSTed by the one
	// holding its lease, and the other finds it exported. The fake API's idempotency
	// replay must not be what keeps the count right.
	assert.Equal(t, m, st.CreateRequests, "every record POSTed once (the lease, not the API's replay)")
	names := map[string]int{}
	for _, r := range api.Records("widgets") {
		names[r.Get("name").String()]++
	}
	assert.Len(t, names, m, "one remote record per local record")
	for name, n := range names {
		assert.Equal(t, 1, n, "remote records named %s", name)
	}

	counts, err := db.Bindings().Counts(ctx, hubName, "widget")
	require.NoError(t, err)
	assert.Equal(t, map[binding.Status]int{binding.StatusSuccess: m}, counts)
	ext := map[string]bool{}
	for bd, err := range db.Bindings().List(ctx, binding.Filter{Backend: hubName, Model: "widget"}) {
		require.NoError(t, err)
		assert.False(t, ext[bd.ExternalID], "external %s bound twice", bd.ExternalID)
		ext[bd.ExternalID] = true
	}

	// Which processes worked the jobs: River records each attempt's client ID.
	rows, err := db.SQL().QueryContext(ctx, `SELECT DISTINCT unnest(attempted_by) FROM river_job WHERE kind = $1`, exportKind[0])
	require.NoError(t, err)
	defer rows.Close()
	var by []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		by = append(by, id)
	}
	require.NoError(t, rows.Err())
	t.Logf("jobs worked by %v", by)
	assert.NotContains(t, by, "parent", "the parent never started")
	assert.Greater(t, len(by), 1, "more than one process did work")
}
