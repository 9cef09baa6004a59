//go:build unix

package backend_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
)

// schedOptions are the operations and schedules every process of
// TestScheduleOncePerTickAcrossProcesses declares: "tick" every second, enabled once by the
// parent, and "idle" every second, never enabled. Each run of an operation writes a row
// naming the process and the operation.
func schedOptions(db *sqlstore.DB, node string) []backend.Option {
	op := func(label string) func(context.Context, *backend.Backend) (report.Counts, error) {
		return func(ctx context.Context, _ *backend.Backend) (report.Counts, error) {
			_, err := db.SQL().ExecContext(ctx, `INSERT INTO sched_runs (node, label) VALUES ($1, $2)`, node, label)
			return report.Counts{}, err
		}
	}
	return []backend.Option{
		backend.WithOperation("tick_op", op("tick")),
		backend.WithOperation("idle_op", op("idle")),
		backend.WithScheduleForTest("tick", "@every 1s", "tick_op"),
		backend.WithScheduleForTest("idle", "@every 1s", "idle_op"),
	}
}

// schedChild is one node of TestScheduleOncePerTickAcrossProcesses: it runs the hub with
// the schedules, logging to stdout as JSON (the scheduler logs every run it starts, with
// its tick), from "start" until "stop" on stdin.
func schedChild(t *testing.T, db *sqlstore.DB, in *bufio.Scanner) {
	name := os.Getenv(hubNameEnv)
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b, _, err := newHub(db, os.Getenv(hubAPIEnv), name, false, append(schedOptions(db, name), backend.WithLogger(logger))...)
	require.NoError(t, err)
	fmt.Println("ready")
	require.True(t, in.Scan(), "parent closed stdin before start")
	require.NoError(t, b.Start(context.Background()))
	fmt.Println("started")
	in.Scan() // "stop", or the parent is gone
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, b.Stop(ctx))
	fmt.Println("stopped")
}

// A schedule runs once per tick with three processes on one Postgres database (issue 10),
// and a disabled schedule declared alongside never runs. Each node logs the ticks its
// scheduler claimed and started; no tick is started by two nodes, at least 3 ran, and the
// operation ran no more often than ticks were started.
func TestScheduleOncePerTickAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes; skipped with -short")
	}
	dsn := pgSchemaDSN(t)
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.SQL().ExecContext(ctx, `CREATE TABLE sched_runs (id bigserial PRIMARY KEY, node text NOT NULL, label text NOT NULL, at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	// The parent creates the tables and enables "tick" once, for every node; it never starts.
	hub, _, err := newHub(db, "http://127.0.0.1:1", "parent", true, schedOptions(db, "parent")...)
	require.NoError(t, err)
	require.NoError(t, hub.Schedules().Enable(ctx, hubName+"/tick"))

	const nodes = 3
	var kids []*child
	for i := range nodes {
		kids = append(kids, startChild(t, "sched", fmt.Sprintf("node-%d", i+1), dsn, "http://127.0.0.1:1"))
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

	runs := func(label string) int {
		var n int
		require.NoError(t, db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM sched_runs WHERE label = $1`, label).Scan(&n))
		return n
	}
	// About four or five seconds of ticks; bounded, counted, not timed.
	for end := time.Now().Add(45 * time.Second); runs("tick") < 4 && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
	}
	for _, k := range kids {
		k.send(t, "stop")
	}
	for _, k := range kids {
		k.await(t, "stopped", 30*time.Second)
	}

	// Every run a node started, from its scheduler's log.
	startedBy := map[string]string{} // entry + tick -> node
	var ticks, dup int
	perNode := map[string]int{}
	for _, k := range kids {
		for _, l := range strings.Split(k.output(), "\n") {
			if !strings.HasPrefix(l, "{") {
				continue
			}
			var e struct {
				Msg   string `json:"msg"`
				Entry string `json:"entry"`
				Tick  string `json:"tick"`
			}
			require.NoError(t, json.Unmarshal([]byte(l), &e), "log line %s", l)
			if e.Msg != "schedule: run started" {
				continue
			}
			require.NotEmpty(t, e.Tick, "log line %s", l)
			assert.Equal(t, hubName+"/tick", e.Entry, "only the enabled schedule runs")
			key := e.Entry + " " + e.Tick
			if other, ok := startedBy[key]; ok {
				dup++
				t.Errorf("tick %s of %s started by %s and by %s", e.Tick, e.Entry, other, k.name)
				continue
			}
			startedBy[key] = k.name
			perNode[k.name]++
			ticks++
		}
	}
	t.Logf("%d ticks started (per node %v); operation runs: tick %d, idle %d", ticks, perNode, runs("tick"), runs("idle"))
	assert.Zero(t, dup, "ticks started by more than one node")
	assert.GreaterOrEqual(t, ticks, 3, "ticks started")
	assert.GreaterOrEqual(t, runs("tick"), 3, "runs of the enabled schedule's operation")
	assert.LessOrEqual(t, runs("tick"), ticks, "the operation ran at most once per started tick")
	assert.Zero(t, runs("idle"), "the disabled schedule's operation never ran")

	sts, err := hub.Schedules().Status(ctx)
	require.NoError(t, err)
	require.Len(t, sts, 2)
	for _, st := range sts {
		switch st.Name {
		case hubName + "/idle":
			assert.False(t, st.Enabled, "idle stays disabled")
			assert.True(t, st.LastRunAt.IsZero(), "idle never ran")
		case hubName + "/tick":
			assert.True(t, st.Enabled)
			assert.False(t, st.LastRunAt.IsZero(), "tick ran")
		default:
			t.Errorf("unexpected schedule %q", st.Name)
		}
	}
}
