package importer_test

import (
	"context"
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/report"
)

// cancellingStore cancels the import's context inside Create, after the record is written:
// the moment between the local write and the binding.
type cancellingStore struct {
	plainStore
	cancel context.CancelFunc
}

func (c *cancellingStore) Create(ctx context.Context, v product) (string, error) {
	id, err := c.plainStore.Create(ctx, v)
	c.cancel()
	return id, err
}

func TestImportBindsWhenCancelledAfterLocalWrite(t *testing.T) {
	bs := binding.NewMemory()
	mem := local.NewMemory[product]()
	ctx, cancel := context.WithCancel(context.Background())
	store := &cancellingStore{plainStore: plainStore{mem}, cancel: cancel}
	imp, err := importer.New(bs, store, "shop", "product", mapProduct)
	require.NoError(t, err)
	res, err := imp.ImportRecord(ctx, gjson.Parse(`{"id":1,"name":"Mug","updated_at":"2024-01-01T00:00:00Z"}`))
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	b, err := bs.GetByExternal(context.Background(), "shop", "product", "1")
	require.NoError(t, err)
	assert.Equal(t, binding.StatusSuccess, b.Status)
	assert.Equal(t, res.LocalID, b.LocalID, "the written record is bound although ctx ended")

	// The next run finds the binding and creates nothing (this store has no keyed creates).
	imp2, err := importer.New(bs, &plainStore{mem}, "shop", "product", mapProduct)
	require.NoError(t, err)
	_, err = imp2.ImportRecord(context.Background(), gjson.Parse(`{"id":1,"name":"Mug 2","updated_at":"2024-01-02T00:00:00Z"}`))
	require.NoError(t, err)
	assert.Equal(t, 1, mem.Creates())
}

func TestImportCancelledIsNotAFailure(t *testing.T) {
	for _, mode := range []string{"record", "batch"} {
		t.Run(mode, func(t *testing.T) {
			bs := binding.NewMemory()
			var cancel context.CancelFunc
			imp, err := importer.New(bs, local.NewMemory[product](), "shop", "product",
				func(ctx context.Context, rec gjson.Result, create bool) (product, error) {
					if rec.Get("name").String() == "B" {
						cancel() // shutdown while this record is being mapped
						return product{}, ctx.Err()
					}
					return mapProduct(ctx, rec, create)
				}, importer.WithMaxRetries(1))
			require.NoError(t, err)
			_, err = imp.ImportRecord(context.Background(), gjson.Parse(`{"id":2,"name":"A","updated_at":"2024-01-01T00:00:00Z"}`))
			require.NoError(t, err)

			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			rec := gjson.Parse(`{"id":2,"name":"B","updated_at":"2024-01-02T00:00:00Z"}`)
			if mode == "record" {
				_, err = imp.ImportRecord(ctx, rec)
			} else {
				batch, berr := importer.NewBatch(imp, func(context.Context, time.Time) iter.Seq2[gjson.Result, error] {
					return func(yield func(gjson.Result, error) bool) { yield(rec, nil) }
				})
				require.NoError(t, berr)
				_, err = batch.Run(ctx)
			}
			require.ErrorIs(t, err, context.Canceled)
			after, err := bs.GetByExternal(context.Background(), "shop", "product", "2")
			require.NoError(t, err)
			assert.Equal(t, 0, after.RetryCount, "a cancelled import is not counted as a failure")
			assert.Equal(t, binding.StatusSuccess, after.Status, "the binding keeps its last sync")
			// With WithMaxRetries(1), a counted failure would block the next run.
			res, err := imp.ImportRecord(context.Background(), gjson.Parse(`{"id":2,"name":"C","updated_at":"2024-01-03T00:00:00Z"}`))
			require.NoError(t, err)
			assert.Equal(t, report.Updated, res.Action)
		})
	}
}

func TestImportEqualUpdatedAtChangedContent(t *testing.T) {
	ctx := context.Background()
	imp, store := newProducts(t, binding.NewMemory(), &source{})
	_, err := imp.ImportRecord(ctx, gjson.Parse(`{"id":1,"name":"Mug","updated_at":"2024-01-01T10:00:00Z"}`))
	require.NoError(t, err)
	// A second edit within the same second: same updated_at, new content.
	res, err := imp.ImportRecord(ctx, gjson.Parse(`{"id":1,"name":"Mug (red)","updated_at":"2024-01-01T10:00:00Z"}`))
	require.NoError(t, err)
	assert.Equal(t, report.Updated, res.Action)
	got, err := store.Get(ctx, res.LocalID)
	require.NoError(t, err)
	assert.Equal(t, "Mug (red)", got.Name)
	// The same content again is skipped; an older copy is skipped whatever it holds.
	res, err = imp.ImportRecord(ctx, gjson.Parse(`{"id":1,"name":"Mug (red)","updated_at":"2024-01-01T10:00:00Z"}`))
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)
	res, err = imp.ImportRecord(ctx, gjson.Parse(`{"id":1,"name":"Mug (old)","updated_at":"2024-01-01T09:00:00Z"}`))
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)
}

func TestImportEpochUnits(t *testing.T) {
	want := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []string{`1704067200`, `1704067200.0`, `1704067200000`, `1704067200000000`, `1704067200000000000`, `"1704067200"`, `"1704067200000"`, `"2024-01-01T00:00:00Z"`} {
		imp, _ := newProducts(t, binding.NewMemory(), &source{})
		res, err := imp.ImportRecord(context.Background(), gjson.Parse(`{"id":1,"name":"Mug","updated_at":`+v+`}`))
		require.NoError(t, err, v)
		assert.True(t, want.Equal(res.Binding.ExternalUpdatedAt), "updated_at %s read as %s", v, res.Binding.ExternalUpdatedAt)
	}
	for _, v := range []string{`1e300`, `"soon"`, `true`, `{}`} {
		imp, _ := newProducts(t, binding.NewMemory(), &source{})
		_, err := imp.ImportRecord(context.Background(), gjson.Parse(`{"id":1,"name":"Mug","updated_at":`+v+`}`))
		require.ErrorIs(t, err, importer.ErrBadUpdatedAt, v)
	}
}

func TestImportIDMustBeScalar(t *testing.T) {
	for _, id := range []string{`{"value":1}`, `[1]`, `true`, `null`, `""`} {
		imp, store := newProducts(t, binding.NewMemory(), &source{})
		_, err := imp.ImportRecord(context.Background(), gjson.Parse(`{"id":`+id+`,"name":"Mug"}`))
		require.ErrorIs(t, err, report.ErrNoExternalID, id)
		var re *report.RecordError
		require.True(t, errors.As(err, &re))
		assert.Equal(t, 0, store.Creates(), id)
	}
}
