package importer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/internal/fakeapi"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/state"
)

// failingBindings fails GetManyByExternal: the binding store is down.
type failingBindings struct{ binding.Store }

var errStoreDown = errors.New("binding store is down")

func (failingBindings) GetManyByExternal(context.Context, string, string, []string) (map[string]binding.Binding, error) {
	return nil, errStoreDown
}

// A binding store that cannot be read stops the run with its error, before any local
// record is written: nothing is imported without being bound.
func TestBatchBindingStoreDownStopsRun(t *testing.T) {
	ctx := context.Background()
	s := fakeapi.New(fakeapi.WithClock(tick()))
	defer s.Close()
	seedProducts(s, 30)
	store := local.NewMemory[product]()
	imp, err := importer.New(failingBindings{binding.NewMemory()}, store, "shop", "product", mapProduct)
	require.NoError(t, err)
	st := state.NewMemory()
	batch, err := importer.NewBatch(imp, httpList(s.URL, "products", 10), importer.WithWatermark(st, "wm", 0))
	require.NoError(t, err)
	sum, err := batch.Run(ctx)
	require.ErrorIs(t, err, errStoreDown)
	assert.Contains(t, err.Error(), "reading the bindings of a page")
	assert.Equal(t, 0, sum.Total())
	assert.Equal(t, 0, store.Creates())
	wm, err := batch.Watermark(ctx)
	require.NoError(t, err)
	assert.True(t, wm.IsZero(), "the watermark did not move")
}

// failingState fails every Put from the nth on: the watermark cannot be saved.
type failingState struct {
	state.Store
	puts, failFrom int
}

var errStateDown = errors.New("state store is down")

func (f *failingState) Put(ctx context.Context, backend, name string, v []byte) error {
	f.puts++
	if f.puts >= f.failFrom {
		return errStateDown
	}
	return f.Store.Put(ctx, backend, name, v)
}

// A watermark that cannot be saved stops the run with the store's error — also when it
// is the last page's (that path once waited forever for a commit it had already seen).
func TestBatchWatermarkSaveFails(t *testing.T) {
	for _, failFrom := range []int{1, 2, 3} {
		ctx := context.Background()
		s := fakeapi.New(fakeapi.WithClock(tick()))
		seedProducts(s, 30)
		imp, _ := newProducts(t, binding.NewMemory(), &source{})
		st := &failingState{Store: state.NewMemory(), failFrom: failFrom}
		batch, err := importer.NewBatch(imp, httpList(s.URL, "products", 10), importer.WithCommitSize(10), importer.WithWatermark(st, "wm", 0))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			sum, err := batch.Run(ctx)
			assert.ErrorIs(t, err, errStateDown)
			assert.Equal(t, failFrom, sum.Pages, "pages tallied before the failing save")
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("Run with the watermark save failing at page %d did not return", failFrom)
		}
		s.Close()
	}
}
