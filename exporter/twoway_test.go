package exporter_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/report"
)

// In a two-way sync the importer must see what the exporter just wrote as already synced:
// the export stores the response's updated_at, so importing the record right after is a
// skip, not an echo that would update the local record and so call for another export.
func TestTwoWaySyncNoEcho(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	imp, err := importer.New(e.bs, e.store, "shop", "product",
		func(_ context.Context, rec gjson.Result, _ bool) (product, error) {
			return product{Name: rec.Get("name").String(), Price: int(rec.Get("price").Int())}, nil
		},
		importer.WithFetch(importer.FetchFrom(newClient(t, e.srv.URL), "/products/%s", "")), importer.WithLogger(quietLogger()))
	require.NoError(t, err)

	e.store.Put("1", product{Name: "Mug", Price: 5})
	res, err := e.exp.Export(ctx, "1")
	require.NoError(t, err)
	assert.False(t, res.Binding.ExternalUpdatedAt.IsZero())
	in, err := imp.Import(ctx, res.ExternalID)
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, in.Action, "the create's echo")

	e.store.Put("1", product{Name: "Mug", Price: 6})
	res, err = e.exp.Export(ctx, "1")
	require.NoError(t, err)
	require.Equal(t, report.Updated, res.Action)
	in, err = imp.Import(ctx, res.ExternalID)
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, in.Action, "the update's echo")
	assert.Zero(t, e.store.Updates(), "the importer wrote nothing locally")

	// A real remote change still comes in.
	id, _ := strconv.ParseInt(res.ExternalID, 10, 64)
	require.True(t, e.srv.Touch("products", id, map[string]any{"price": 7}))
	in, err = imp.Import(ctx, res.ExternalID)
	require.NoError(t, err)
	assert.Equal(t, report.Updated, in.Action)
	v, err := e.store.Get(ctx, "1")
	require.NoError(t, err)
	assert.Equal(t, 7, v.Price)

	// Then the two directions settle: the binding's one Hash last held the import's, so
	// the next export sends once more; after that nothing moves either way.
	puts := e.srv.Stats().Updates
	for range 3 {
		_, err = e.exp.Export(ctx, "1")
		require.NoError(t, err)
		in, err = imp.Import(ctx, res.ExternalID)
		require.NoError(t, err)
		assert.Equal(t, report.Skipped, in.Action)
	}
	assert.LessOrEqual(t, e.srv.Stats().Updates-puts, 1)
}

// Turned off, or with a response lacking a readable time, the stored time is left alone.
func TestUpdatedAtPathOffOrUnreadable(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"", "name", "missing"} {
		e := setup(t, exporter.WithUpdatedAtPath(path))
		e.store.Put("1", product{Name: "Mug", Price: 5})
		res, err := e.exp.Export(ctx, "1")
		require.NoError(t, err, path)
		assert.True(t, res.Binding.ExternalUpdatedAt.IsZero(), "path %q", path)
		b, err := e.bs.GetByLocal(ctx, "shop", "product", "1")
		require.NoError(t, err)
		assert.Equal(t, binding.StatusSuccess, b.Status)
	}
}
