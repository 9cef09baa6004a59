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
