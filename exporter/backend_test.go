package exporter_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/backend"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/exporter"
	"github.com/connkit/connkit/state"
)

// A Batch is a backend.Exporter: backend export routing reaches it by model, counts its
// records, and surfaces failed records as a *backend.PartialError.
func TestBatchIsBackendExporter(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	exp, err := exporter.New(newClient(t, e.srv.URL), e.bs, e.store, "shop", "product", "/products",
		func(ctx context.Context, p product, b binding.Binding, create bool) (any, error) {
			if p.Name == "broken" {
				return nil, errors.New("cannot map")
			}
			return mapProduct(ctx, p, b, create)
		}, exporter.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	batch, err := exporter.NewBatch(exp, exporter.WithChunkSize(2))
	require.NoError(t, err)
	be, err := backend.New(backend.Config{Name: "shop", BaseURL: e.srv.URL},
		backend.WithExporter("product", batch), backend.WithStateStore(state.NewMemory()),
		backend.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)

	for id, name := range map[string]string{"1": "Mug", "2": "Cup", "3": "broken"} {
		e.store.Put(id, product{Name: name, Price: 3})
	}
	res, err := be.ExportRecords(ctx, "product", []string{"1", "2", "3"})
	assert.Equal(t, backend.Result{Created: 2, Failed: 1}, res)
	var pe *backend.PartialError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 1, pe.Failed)
	var re *exporter.RecordError
	require.ErrorAs(t, err, &re, "the record's own error is reachable through the PartialError")
	assert.Equal(t, "3", re.LocalID)
	assert.Equal(t, "map", re.Step)
	assert.Equal(t, 2, e.srv.Count("products"))

	// Unchanged records are skipped; nothing failed, so no error.
	res, err = be.ExportRecords(ctx, "product", []string{"1", "2"})
	require.NoError(t, err)
	assert.Equal(t, backend.Result{Skipped: 2}, res)

	stats, err := be.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, backend.Result{Created: 2, Skipped: 2, Failed: 1}, stats.Exports)

	// A cancelled run returns ctx's error, not a PartialError.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = batch.ExportRecords(cctx, []string{"1"})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.As(err, &pe))
}
