package apisync_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/binding"
)

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

// update_method: PATCH makes a POST config's updates PATCH url/{id} (HubSpot's way); the
// create is still a POST.
func TestPushUpdateMethodPatch(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t, func(_ int, r received) (int, string) {
		if r.Method == "POST" {
			return 201, `{"id":"crm-1"}`
		}
		return 200, `{"id":"crm-1"}`
	})
	s := openSync(t, nil, parseAll(t, mergeEnv(crmEnv, tokenEnv),
		crmConfig(rc.URL, "update_method: PATCH\ntriggers: {on_create: true, on_update: true}\n"), partnersIn))
	require.NoError(t, s.Start(ctx))
	id := mustCreate(t, s, "res.partner", apisync.Record{"name": "Ada", "customer_rank": 1, "active": true})
	waitFor(t, 15*time.Second, "the create push", func() bool { return len(rc.requests()) == 1 })
	require.NoError(t, s.Update(ctx, "res.partner", id, apisync.Record{"name": "Ada L.", "customer_rank": 1, "active": true}))
	waitFor(t, 15*time.Second, "the update push", func() bool { return len(rc.requests()) == 2 })
	assert.Equal(t, []string{"POST /api/customers", "PATCH /api/customers/crm-1"}, methodsSeen(rc))
}
