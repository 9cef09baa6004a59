package apisync_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/sqlstore"
)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func methodsSeen(rc *receiver) []string {
	var out []string
	for _, r := range rc.requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// Record triggers: a create, an update and a delete written through the Sync (and an
// inbound POST) each push once, through the queue in the database.
func TestTriggersCreateUpdateDelete(t *testing.T) { forEachDB(t, triggersCreateUpdateDelete) }

func triggersCreateUpdateDelete(t *testing.T, db *sqlstore.DB) {
	ctx := context.Background()
	n := 0
	rc := newReceiver(t, func(_ int, r received) (int, string) {
		if r.Method == "POST" {
			n++
			return 201, fmt.Sprintf(`{"id":"crm-%d"}`, n)
		}
		return 200, `{}`
	})
	put := newReceiver(t, func(int, received) (int, string) { return 200, `{}` })
	hub := crmConfig(rc.URL, "triggers: {on_create: true, on_update: true, on_delete: true}\n")
	direct := fmt.Sprintf("name: mirror\ndirection: out\nmodel: res.partner\nurl: %s/mirror/{id}\nmethods: [PUT]\ntriggers: {on_create: true}\nlines: [{field: id, key: id, identifier: true}, {field: name, key: name}]\n", put.URL)
	s := openSync(t, db, parseAll(t, mergeEnv(crmEnv, tokenEnv), hub, direct, partnersIn))
	require.NoError(t, s.Start(ctx))

	id := mustCreate(t, s, "res.partner", apisync.Record{"name": "Ada", "customer_rank": 1, "active": true})
	waitFor(t, 15*time.Second, "the create push", func() bool { return len(rc.requests()) == 1 && len(put.requests()) == 1 })
	assert.Equal(t, []string{"POST /api/customers"}, methodsSeen(rc))
	assert.Equal(t, []string{"PUT /mirror/" + id}, methodsSeen(put))

	require.NoError(t, s.Update(ctx, "res.partner", id, apisync.Record{"name": "Ada L.", "customer_rank": 1, "active": true}))
	waitFor(t, 15*time.Second, "the update push", func() bool { return len(rc.requests()) == 2 })
	assert.Equal(t, "PUT /api/customers/crm-1", methodsSeen(rc)[1])

	require.NoError(t, s.Delete(ctx, "res.partner", id))
	waitFor(t, 15*time.Second, "the delete push", func() bool { return len(rc.requests()) == 3 })
	assert.Equal(t, "DELETE /api/customers/crm-1", methodsSeen(rc)[2])
	waitFor(t, 5*time.Second, "the binding removed", func() bool {
		_, err := db.Bindings().GetByLocal(ctx, "partners-to-crm", "res.partner", id)
		return err != nil
	})

	// A record the filter excludes is not sent by its trigger.
	mustCreate(t, s, "res.partner", apisync.Record{"name": "Prospect", "customer_rank": 0, "active": true})
	// An inbound POST is a create too.
	code, out, _ := call(t, s.Handler(), "POST", "/api/partners", `{"full_name":"Via API","rank":4,"active":true}`, bearer)
	require.Equal(t, 201, code, out)
	waitFor(t, 15*time.Second, "the inbound create's push", func() bool { return len(rc.requests()) == 4 })
	assert.Contains(t, rc.requests()[3].Body, `"full_name":"Via API"`)
	time.Sleep(300 * time.Millisecond)
	assert.Len(t, rc.requests(), 4, "the prospect was skipped by the filter")
	st, err := s.Backend("partners-to-crm")
	require.NoError(t, err)
	counts, err := st.Bindings().Counts(ctx, "partners-to-crm", "res.partner")
	require.NoError(t, err)
	assert.Equal(t, 1, counts[binding.StatusSkipped], "%v", counts)
}

func mergeEnv(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// A schedule trigger pushes the selected records once enabled, and not before.
func TestScheduleTrigger(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t, func(int, received) (int, string) { return 201, `{"id":"s1"}` })
	cfg := crmConfig(rc.URL, "triggers: {schedule: \"@every 1s\"}\n")
	s := openSync(t, nil, parseAll(t, crmEnv, cfg))
	mustCreate(t, s, "res.partner", apisync.Record{"name": "Ada", "customer_rank": 1, "active": true})
	require.NoError(t, s.Start(ctx))
	time.Sleep(2500 * time.Millisecond)
	assert.Empty(t, rc.requests(), "disabled until enabled")
	require.NoError(t, s.EnableSchedule(ctx, "partners-to-crm"))
	waitFor(t, 20*time.Second, "the scheduled push", func() bool { return len(rc.requests()) >= 1 })
	assert.Equal(t, "POST", rc.requests()[0].Method)
	require.NoError(t, s.DisableSchedule(ctx, "partners-to-crm"))
	assert.ErrorIs(t, s.EnableSchedule(ctx, "nope"), apisync.ErrUnknownConfig)
}

// A push the API refuses for good (422) is not retried by the queue: the trigger's job
// ends after one attempt and the record's binding is left failed with the API's answer,
// for a retry on purpose, as the backend's own jobs do (backend.JobError).
func TestTriggerPushRefusedForGoodIsNotRetried(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t, func(int, received) (int, string) {
		return 422, `{"errors":{"email":["is invalid"]}}`
	})
	db := openDB(t)
	s := openSync(t, db, parseAll(t, mergeEnv(crmEnv, tokenEnv), crmConfig(rc.URL, "triggers: {on_create: true}\n"), partnersIn))
	require.NoError(t, s.Start(ctx))
	id := mustCreate(t, s, "res.partner", apisync.Record{"name": "Ada", "customer_rank": 1, "active": true})
	var b binding.Binding
	waitFor(t, 15*time.Second, "the failed push", func() bool {
		var err error
		b, err = db.Bindings().GetByLocal(ctx, "partners-to-crm", "res.partner", id)
		return err == nil && b.Status == binding.StatusFailed
	})
	assert.Contains(t, b.LastError, "422")
	time.Sleep(time.Second) // the test queue retries within 50–200 ms
	assert.Len(t, rc.requests(), 1, "a push refused with 422 was retried")
}
