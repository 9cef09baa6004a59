package exporter_test

import (
	"bufio"
	"context"
	"fmt"
	"github.com/connkit/connkit/internal/pgtest"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/queue/riverqueue"
	"github.com/connkit/connkit/sqlstore"
)

// exportJob is one chunk of local IDs to export.
type exportJob struct {
	LocalIDs []string `json:"local_ids"`
}

func (exportJob) Kind() string { return "connkit_exporter_test_export" }

// genStore is a read-only local store every process agrees on: record i is "P<i>".
type genStore struct{}

func (genStore) Get(_ context.Context, id string) (product, error) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return product{}, fmt.Errorf("product %q: %w", id, local.ErrNotFound)
	}
	return product{Name: "P" + id, Price: n}, nil
}
func (genStore) Create(context.Context, product) (string, error) { return "", fmt.Errorf("read-only") }
func (genStore) Update(context.Context, string, product) error   { return fmt.Errorf("read-only") }
func (genStore) Delete(context.Context, string) error            { return fmt.Errorf("read-only") }

const (
	scaleChildEnv  = "CONNKIT_EXPORTER_SCALE_CHILD"
	scaleSchemaEnv = "CONNKIT_EXPORTER_SCALE_SCHEMA"
	scaleURLEnv    = "CONNKIT_EXPORTER_SCALE_API"
	// scaleRoleEnv is "wedge" for the worker that is killed, "worker" for
	// one that never runs River's maintenance, "" for one that does.
	scaleRoleEnv = "CONNKIT_EXPORTER_SCALE_ROLE"

	// scaleJobTimeout bounds an export job; River counts a job as stuck
	// (its process died) once it has run scaleRescueAfter, which River wants
	// at least as long as the job timeout.
	scaleJobTimeout  = 2 * time.Second
	scaleRescueAfter = 2 * time.Second
)

func pgPool(ctx context.Context, dsn, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	return pgxpool.NewWithConfig(ctx, cfg)
}

func riverOptions(schema string) []queue.Option {
	return []queue.Option{
		queue.WithWorkers(3),
		queue.WithJobTimeout(scaleJobTimeout),
		queue.WithBackoff(200*time.Millisecond, 200*time.Millisecond),
		riverqueue.WithRiverConfig(func(c *river.Config) {
			c.Schema = schema
			c.RescueStuckJobsAfter = scaleRescueAfter
			c.FetchPollInterval = 100 * time.Millisecond
			// No random start-up delay of up to 1 s before the first rescue.
			c.TestOnly = true
		}),
	}
}

// TestScaleOutWorker is one worker process of TestScaleOutExportPostgres.
func TestScaleOutWorker(t *testing.T) {
	if os.Getenv(scaleChildEnv) == "" {
		t.Skip("helper process of TestScaleOutExportPostgres")
	}
	ctx := context.Background()
	dsn, schema := os.Getenv(pgtest.Env), os.Getenv(scaleSchemaEnv)
	db, err := sqlstore.Open(ctx, pgtest.WithSearchPath(t, dsn, schema))
	require.NoError(t, err)
	c, err := adapter.New(os.Getenv(scaleURLEnv), adapter.WithRetryWait(5*time.Millisecond, 50*time.Millisecond))
	require.NoError(t, err)
	exp, err := exporter.New[product](c, db.Bindings(), genStore{}, "shop", "product", "/products", mapProduct,
		exporter.WithClaimer(&binding.Claimer{Store: db.Bindings(), TTL: 3 * time.Second, MaxWait: time.Minute, Owner: os.Getenv(scaleChildEnv)}))
	require.NoError(t, err)
	batch, err := exporter.NewBatch(exp, exporter.WithConcurrency(4))
	require.NoError(t, err)
	role := os.Getenv(scaleRoleEnv)
	workers := &queue.Workers{}
	queue.AddWorker(workers, func(ctx context.Context, job *queue.Job[exportJob]) error {
		if role == "wedge" {
			// Export half the chunk, then hang (ignoring ctx) until killed:
			// a process that dies in the middle of a job.
			half := job.Args.LocalIDs[:len(job.Args.LocalIDs)/2]
			if _, err := batch.Export(ctx, half); err != nil {
				return err
			}
			fmt.Printf("wedged %d\n", job.ID)
			select {}
		}
		sum, err := batch.Export(ctx, job.Args.LocalIDs)
		if err != nil {
			return err
		}
		if sum.Failed > 0 {
			return fmt.Errorf("%d records failed: %v", sum.Failed, sum.Errors[0])
		}
		fmt.Printf("exported %d\n", sum.Created+sum.Updated)
		return nil
	})
	pool, err := pgPool(ctx, dsn, schema)
	require.NoError(t, err)
	opts := append(riverOptions(schema), riverqueue.WithoutMigrate())
	if role != "" {
		// Maintenance (the rescuer) runs only in the process started after
		// the kill, so its first rescue pass, right at start, finds the
		// dead process's jobs already stuck; River's rescuer otherwise looks
		// only every 30 s.
		opts = append(opts, riverqueue.WithRiverConfig(func(c *river.Config) { c.LeaderElectionDisabled = true }))
	}
	q, err := riverqueue.NewPostgres(ctx, pool, workers, opts...)
	require.NoError(t, err)
	require.NoError(t, q.Start(ctx))
	fmt.Println("started")
	select {} // works until the parent kills it
}

func TestScaleOutExportPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns worker processes and waits for River's rescuer (a few seconds); skipped with -short")
	}
	ctx := context.Background()
	dsn, schema := pgtest.Schema(t, "exporter_test_") // skips without a test database

	const n, chunk = 600, 20
	srv := fakeapi.New()
	defer srv.Close()
	srv.Inject(fakeapi.Fault{Kind: fakeapi.FaultSlow, Delay: 20 * time.Millisecond, Every: 1})

	db, err := sqlstore.Open(ctx, pgtest.WithSearchPath(t, dsn, schema))
	require.NoError(t, err)
	defer db.Close()
	pool, err := pgPool(ctx, dsn, schema)
	require.NoError(t, err)
	defer pool.Close()
	// The parent only enqueues (it never starts working), but River wants the kind known.
	reg := &queue.Workers{}
	queue.AddWorker(reg, func(context.Context, *queue.Job[exportJob]) error { return nil })
	q, err := riverqueue.NewPostgres(ctx, pool, reg, riverOptions(schema)...)
	require.NoError(t, err)
	for lo := 1; lo <= n; lo += chunk {
		var ids []string
		for i := lo; i < lo+chunk; i++ {
			ids = append(ids, strconv.Itoa(i))
		}
		_, err := q.Enqueue(ctx, exportJob{LocalIDs: ids}, queue.WithMaxAttempts(20))
		require.NoError(t, err)
	}

	type worker struct {
		cmd   *exec.Cmd
		lines chan string
	}
	start := func(name, role string) *worker {
		cmd := exec.Command(os.Args[0], "-test.run=^TestScaleOutWorker$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), scaleChildEnv+"="+name, scaleSchemaEnv+"="+schema, scaleURLEnv+"="+srv.URL, scaleRoleEnv+"="+role)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		w := &worker{cmd: cmd, lines: make(chan string, 1000)}
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				select {
				case w.lines <- sc.Text():
				default:
				}
			}
			close(w.lines)
		}()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return w
	}
	began := time.Now()
	// w1 wedges in every job it takes; w2 works normally alongside it.
	// Neither runs River's maintenance.
	w1, _ := start("w1", "wedge"), start("w2", "worker")

	// Kill w1 once it is stuck in the middle of a job, after a moment to
	// take up its other worker slots.
	wedged := map[int64]bool{}
	deadline := time.After(60 * time.Second)
	var settle <-chan time.Time
wait:
	for {
		select {
		case l, ok := <-w1.lines:
			require.True(t, ok, "worker 1 exited on its own")
			if id, found := strings.CutPrefix(l, "wedged "); found {
				n, err := strconv.ParseInt(id, 10, 64)
				require.NoError(t, err)
				wedged[n] = true
				if settle == nil {
					settle = time.After(300 * time.Millisecond)
				}
			}
		case <-settle:
			break wait
		case <-deadline:
			t.Fatal("worker 1 took no job within 60 s")
		}
	}
	require.NoError(t, w1.cmd.Process.Signal(syscall.SIGKILL))
	_ = w1.cmd.Wait()
	killed := time.Now()
	t.Logf("worker 1 killed %s after start, in the middle of jobs %v", killed.Sub(began).Round(time.Millisecond), slices.Sorted(maps.Keys(wedged)))

	// Every job w1 held started before the kill, so all are stuck once
	// scaleRescueAfter has passed; w3 runs River's rescuer when it starts.
	time.Sleep(time.Until(killed.Add(scaleRescueAfter + 100*time.Millisecond)))
	start("w3", "")

	done := func() (int, error) {
		c := 0
		for j, err := range q.ListJobs(ctx, queue.ListFilter{Kinds: []string{exportJob{}.Kind()}}) {
			if err != nil {
				return 0, err
			}
			if j.State == queue.StateCompleted {
				c++
			}
		}
		return c, nil
	}
	var completed int
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		completed, err = done()
		require.NoError(t, err)
		if completed == n/chunk {
			break
		}
	}
	require.Equal(t, n/chunk, completed, "every export job completed")
	t.Logf("all jobs completed %s after the kill", time.Since(killed).Round(time.Millisecond))

	// The jobs w1 died in were rescued and finished by another process.
	for id := range wedged {
		j, err := q.GetJob(ctx, id)
		require.NoError(t, err)
		require.NotEmpty(t, j.Errors, "job %d", id)
		assert.Contains(t, j.Errors[0].Error, "rescued", "job %d: first attempt ended by River's rescuer", id)
		assert.GreaterOrEqual(t, j.Attempt, 2, "job %d", id)
	}

	st := srv.Stats()
	t.Logf("creates %d, create requests %d, replays %d", st.Creates, st.CreateRequests, st.Replays)
	assert.Equal(t, n, srv.Count("products"), "remote set == local set")
	assert.Equal(t, n, st.Creates, "every record created exactly once")
	names := map[string]bool{}
	for _, r := range srv.Records("products") {
		names[r.Get("name").String()] = true
	}
	assert.Len(t, names, n)
	counts, err := db.Bindings().Counts(ctx, "shop", "product")
	require.NoError(t, err)
	assert.Equal(t, map[binding.Status]int{binding.StatusSuccess: n}, counts)
	ext := map[string]bool{}
	for b, err := range db.Bindings().List(ctx, binding.Filter{Backend: "shop", Model: "product"}) {
		require.NoError(t, err)
		require.False(t, ext[b.ExternalID], "external %s bound twice", b.ExternalID)
		ext[b.ExternalID] = true
	}
}
