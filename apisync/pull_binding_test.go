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

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
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

// listingAPI serves a JSON array the test can change between pulls.
type listingAPI struct {
	*httptest.Server
	mu      sync.Mutex
	listing []map[string]any
}

func newListingAPI(t *testing.T, listing ...map[string]any) *listingAPI {
	api := &listingAPI{listing: listing}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.mu.Lock()
		defer api.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(api.listing)
	}))
	t.Cleanup(api.Close)
	return api
}

func (api *listingAPI) set(listing ...map[string]any) {
	api.mu.Lock()
	api.listing = listing
	api.mu.Unlock()
}

// A remote record whose identifier matches a local record bound to another remote record
// is refused, visibly, instead of overwriting that record and moving its binding: an
// identifier reused by a new record listed before the old one's change, two remote records
// sharing one identifier, and a record whose bound local record was deleted.
func TestPullNeverTakesAnotherRecordsLocalRecord(t *testing.T) {
	ctx := context.Background()
	rec := func(id int, name, mail string) map[string]any {
		return map[string]any{"id": id, "name": name, "mail": mail}
	}
	bindingOf := func(t *testing.T, db *sqlstore.DB, ext string) binding.Binding {
		t.Helper()
		b, err := db.Bindings().GetByExternal(ctx, "pull_orders", "order", ext)
		require.NoError(t, err)
		return b
	}

	t.Run("identifier reused", func(t *testing.T) {
		api := newListingAPI(t, rec(1, "A", "x@x.io"))
		db := openDB(t)
		s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, "")))
		_, err := s.Push(ctx, "pull_orders")
		require.NoError(t, err)
		a := bindingOf(t, db, "1")
		api.set(rec(2, "B", "x@x.io"), rec(1, "A", "y@x.io")) // B takes A's old address
		counts, err := s.Push(ctx, "pull_orders")
		requirePartial(t, err)
		assert.ErrorContains(t, err, "bound to external record \"1\"")
		assert.Equal(t, report.Counts{Updated: 1, Failed: 1}, counts)
		st, _ := s.Records("order")
		v, err := st.Get(ctx, a.LocalID)
		require.NoError(t, err)
		assert.Equal(t, "A", v["name"], "A's local record still holds A")
		assert.Equal(t, "y@x.io", v["email"])
		a2 := bindingOf(t, db, "1")
		assert.Equal(t, [3]any{a.ID, a.LocalID, a.ExternalID}, [3]any{a2.ID, a2.LocalID, a2.ExternalID}, "A's binding still binds A")
		counts, err = s.Push(ctx, "pull_orders") // the address is free now
		require.NoError(t, err)
		assert.Equal(t, report.Counts{Created: 1, Updated: 1}, counts)
		assert.NotEqual(t, a.LocalID, bindingOf(t, db, "2").LocalID)
	})
	t.Run("shared identifier", func(t *testing.T) {
		api := newListingAPI(t, rec(1, "A", "x@x.io"), rec(2, "B", "x@x.io"))
		db := openDB(t)
		s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, "")))
		counts, err := s.Push(ctx, "pull_orders")
		requirePartial(t, err)
		assert.Equal(t, report.Counts{Created: 1, Failed: 1}, counts)
		counts, err = s.Push(ctx, "pull_orders")
		requirePartial(t, err) // reported on every pull, not silently flipped
		assert.Equal(t, report.Counts{Updated: 1, Failed: 1}, counts)
		assert.Equal(t, "1", bindingOf(t, db, "1").ExternalID)
	})
	t.Run("bound record deleted", func(t *testing.T) {
		api := newListingAPI(t, rec(1, "A", "a@x.io"), rec(2, "B", "b@x.io"))
		db := openDB(t)
		s := openSync(t, db, parseAll(t, nil, pullConfig(api.URL, "")))
		_, err := s.Push(ctx, "pull_orders")
		require.NoError(t, err)
		a, b := bindingOf(t, db, "1"), bindingOf(t, db, "2")
		require.NoError(t, s.Delete(ctx, "order", a.LocalID))
		api.set(rec(2, "B", "b@x.io"), rec(1, "A", "b@x.io")) // A now has B's address
		counts, err := s.Push(ctx, "pull_orders")
		requirePartial(t, err)
		assert.Equal(t, report.Counts{Updated: 1, Failed: 1}, counts)
		st, _ := s.Records("order")
		v, err := st.Get(ctx, b.LocalID)
		require.NoError(t, err)
		assert.Equal(t, "B", v["name"], "B's record was not overwritten with A")
	})
}

// requirePartial: err reports failed records.
func requirePartial(t *testing.T, err error) {
	t.Helper()
	var pe *report.PartialError
	require.ErrorAs(t, err, &pe)
}
