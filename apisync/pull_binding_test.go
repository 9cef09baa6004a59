package apisync_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/report"
)

// A pulled record is found again through its binding: when the remote record's
// identifier field changes between pulls, the record bound to it is updated (matching by
// the identifier line alone created a second record); when the bound local record was
// deleted, it is created again and the binding follows it.
func TestPullFindsRecordsThroughTheirBinding(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	listing := []map[string]any{{"id": 7, "name": "order 7", "mail": "old@x.io"}, {"id": 8, "name": "order 8", "mail": "o8@x.io"}}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(listing)
	}))
	t.Cleanup(api.Close)
	db := openDB(t)
	s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, "")))
	counts, err := s.Push(ctx, "pull_orders")
	require.NoError(t, err)
	require.Equal(t, report.Counts{Created: 2}, counts)
	b7, err := db.Bindings().GetByExternal(ctx, "pull_orders", "order", "7")
	require.NoError(t, err)

	mu.Lock()
	listing[0]["mail"] = "new@x.io" // the identifier line's field changed remotely
	mu.Unlock()
	counts, err = s.Push(ctx, "pull_orders")
	require.NoError(t, err)
	assert.Equal(t, report.Counts{Updated: 2}, counts)
	assert.Equal(t, 2, countRecords(t, s, "order"), "no second record for order 7")
	st, err := s.Records("order")
	require.NoError(t, err)
	v, err := st.Get(ctx, b7.LocalID)
	require.NoError(t, err)
	assert.Equal(t, "new@x.io", v["email"])

	require.NoError(t, s.Delete(ctx, "order", b7.LocalID)) // deleted locally
	counts, err = s.Push(ctx, "pull_orders")
	require.NoError(t, err)
	assert.Equal(t, report.Counts{Created: 1, Updated: 1}, counts)
	again, err := db.Bindings().GetByExternal(ctx, "pull_orders", "order", "7")
	require.NoError(t, err)
	assert.Equal(t, b7.ID, again.ID, "the same binding, moved to the new record")
	assert.NotEqual(t, b7.LocalID, again.LocalID)
	v, err = st.Get(ctx, again.LocalID)
	require.NoError(t, err)
	assert.Equal(t, "order 7", v["name"])
}
