package exporter_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
)

// Issue 9 defect 5: create v1, its response is lost, the record is edited to v2, the
// retry reuses the key and the server replays the v1 create. The remote must end at v2
// (no stale remote) and hold one record (no duplicate), and later exports must see it as
// in sync.
func TestRetriedCreateAfterEditLeavesNoStaleRemote(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "v1", Price: 1})
	doer := &lossyDoer{Doer: newClient(t, srv.URL), lose: 1}
	exp, err := exporter.New(doer, bs, store, "shop", "product", "/products", mapProduct)
	require.NoError(t, err)
	_, err = exp.Export(ctx, "1")
	require.Error(t, err, "the create's response was lost")

	store.Put("1", product{Name: "v2", Price: 2})
	res, err := exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	assert.Equal(t, 1, srv.Stats().Replays, "the server replayed the v1 create")
	assert.Equal(t, 1, srv.Count("products"), "no duplicate")
	id, _ := strconv.ParseInt(res.ExternalID, 10, 64)
	remote, ok := srv.Record("products", id)
	require.True(t, ok)
	assert.Equal(t, "v2", remote.Get("name").String(), "the remote holds the version sent last, not the replayed one")

	res, err = exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action, "in sync now")
	assert.Equal(t, 1, srv.Count("products"))
}

// A retried create whose body did not change needs no follow-up update; one whose body
// changed twice (v1 sent, v2 never arrived, back to v1… ) is still corrected.
func TestRetriedCreateSameBodyNoExtraUpdate(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	store.Put("1", product{Name: "v1", Price: 1})
	doer := &lossyDoer{Doer: newClient(t, srv.URL), lose: 1}
	exp, err := exporter.New(doer, bs, store, "shop", "product", "/products", mapProduct)
	require.NoError(t, err)
	_, err = exp.Export(ctx, "1")
	require.Error(t, err)
	res, err := exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	assert.Equal(t, 1, srv.Count("products"))
	assert.Equal(t, 0, srv.Stats().Updates, "the replay already holds this body")
}

// The server replays the first create that reached it, which need not be the first one
// sent: v1's create never arrives, v2's arrives and its answer is lost, then the record is
// back at v1. The retry with v1 gets v2's create replayed; the remote must still end at v1.
func TestRetriedCreateReplaysNotTheFirstAttempt(t *testing.T) {
	ctx := context.Background()
	srv := fakeapi.New()
	defer srv.Close()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	doer := &scriptedDoer{Doer: newClient(t, srv.URL), script: []string{"drop", "lose"}}
	exp, err := exporter.New(doer, bs, store, "shop", "product", "/products", mapProduct)
	require.NoError(t, err)
	for _, v := range []string{"v1", "v2"} {
		store.Put("1", product{Name: v})
		_, err = exp.Export(ctx, "1")
		require.Error(t, err)
	}
	store.Put("1", product{Name: "v1"})
	res, err := exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, 1, srv.Stats().Replays)
	id, _ := strconv.ParseInt(res.ExternalID, 10, 64)
	remote, _ := srv.Record("products", id)
	assert.Equal(t, "v1", remote.Get("name").String())
	assert.Equal(t, 1, srv.Count("products"))
}

// scriptedDoer plays one step per POST: "drop" fails without sending, "lose" sends and
// loses the answer; past the script, POSTs go through.
type scriptedDoer struct {
	adapter.Doer
	mu     sync.Mutex
	script []string
}

func (d *scriptedDoer) Do(ctx context.Context, req *adapter.Request) (*adapter.Response, error) {
	step := ""
	d.mu.Lock()
	if req.Method == "POST" && len(d.script) > 0 {
		step, d.script = d.script[0], d.script[1:]
	}
	d.mu.Unlock()
	if step == "drop" {
		return nil, errors.New("connection refused")
	}
	resp, err := d.Doer.Do(ctx, req)
	if err == nil && step == "lose" {
		return nil, errors.New("connection lost after the request was sent")
	}
	return resp, err
}
