package importer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/local"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/report"
)

type product struct {
	Name string
	SKU  string
}

func mapProduct(_ context.Context, rec gjson.Result, _ bool) (product, error) {
	return product{Name: rec.Get("name").String(), SKU: rec.Get("sku").String()}, nil
}

// source is an in-memory external system for Fetch.
type source struct {
	mu      sync.Mutex
	recs    map[string]string
	fetches int
}

func (s *source) put(id, raw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs == nil {
		s.recs = map[string]string{}
	}
	s.recs[id] = raw
}

func (s *source) fetch(_ context.Context, id string) (gjson.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches++
	raw, ok := s.recs[id]
	if !ok {
		return gjson.Result{}, fmt.Errorf("external record %s: not found", id)
	}
	return gjson.Parse(raw), nil
}

func newProducts(t *testing.T, bs binding.Store, src *source, opts ...importer.Option) (*importer.Importer[product], *local.Memory[product]) {
	t.Helper()
	store := local.NewMemory[product]()
	opts = append([]importer.Option{importer.WithFetch(src.fetch)}, opts...)
	imp, err := importer.New(bs, store, "shop", "product", mapProduct, opts...)
	require.NoError(t, err)
	return imp, store
}

func TestImportCreateSkipUpdate(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	src := &source{}
	src.put("7", `{"id":7,"name":"Mug","sku":"M1","updated_at":"2024-01-01T00:00:00Z"}`)
	imp, store := newProducts(t, bs, src)

	res, err := imp.Import(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	assert.Equal(t, binding.StatusSuccess, res.Binding.Status)
	got, err := store.Get(ctx, res.LocalID)
	require.NoError(t, err)
	assert.Equal(t, product{"Mug", "M1"}, got)

	res, err = imp.Import(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action, "unchanged record is skipped")

	res, err = imp.Import(ctx, "7", importer.Force())
	require.NoError(t, err)
	assert.Equal(t, report.Updated, res.Action, "forced import updates")

	src.put("7", `{"id":7,"name":"Big mug","sku":"M1","updated_at":"2024-01-02T00:00:00Z"}`)
	res, err = imp.Import(ctx, "7")
	require.NoError(t, err)
	assert.Equal(t, report.Updated, res.Action)
	got, _ = store.Get(ctx, res.LocalID)
	assert.Equal(t, "Big mug", got.Name)

	// Older data than what was synced (a stale webhook) is skipped.
	res, err = imp.ImportRecord(ctx, gjson.Parse(`{"id":7,"name":"Old","updated_at":"2023-12-01T00:00:00Z"}`))
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)

	assert.Equal(t, 1, store.Creates())
	assert.Equal(t, 2, store.Updates())
}

func TestImportHashSkipWithoutUpdatedAt(t *testing.T) {
	ctx := context.Background()
	imp, store := newProducts(t, binding.NewMemory(), &source{}, importer.WithUpdatedAtPath(""))
	rec := gjson.Parse(`{"id":"a","name":"A"}`)
	r1, err := imp.ImportRecord(ctx, rec)
	require.NoError(t, err)
	r2, err := imp.ImportRecord(ctx, rec)
	require.NoError(t, err)
	r3, err := imp.ImportRecord(ctx, gjson.Parse(`{"id":"a","name":"B"}`))
	require.NoError(t, err)
	assert.Equal(t, []report.Action{report.Created, report.Skipped, report.Updated}, []report.Action{r1.Action, r2.Action, r3.Action})
	assert.Equal(t, 1, store.Len())
}

func TestImportConcurrentSameIDCreatesOnce(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	src := &source{}
	src.put("1", `{"id":1,"name":"One","updated_at":"2024-01-01T00:00:00Z"}`)
	// A store without keyed creates: only the lease protects against duplicates.
	store := &plainStore{m: local.NewMemory[product]()}
	imp, err := importer.New[product](bs, store, "shop", "product", mapProduct, importer.WithFetch(src.fetch),
		importer.WithClaimer(&binding.Claimer{Store: bs, Backoff: time.Microsecond, MaxBackoff: time.Millisecond}))
	require.NoError(t, err)

	var wg sync.WaitGroup
	actions := make([]report.Action, 16)
	for i := range actions {
		wg.Go(func() {
			res, err := imp.Import(ctx, "1", importer.Force())
			assert.NoError(t, err)
			actions[i] = res.Action
		})
	}
	wg.Wait()
	assert.Equal(t, 1, store.m.Len(), "one local record")
	assert.Equal(t, 1, store.m.Creates())
	created := 0
	for _, a := range actions {
		if a == report.Created {
			created++
		}
	}
	assert.Equal(t, 1, created, "one import created, the others updated: %v", actions)
}

// plainStore hides Memory's CreateKeyed.
type plainStore struct{ m *local.Memory[product] }

func (p *plainStore) Get(ctx context.Context, id string) (product, error) { return p.m.Get(ctx, id) }
func (p *plainStore) Create(ctx context.Context, v product) (string, error) {
	return p.m.Create(ctx, v)
}
func (p *plainStore) Update(ctx context.Context, id string, v product) error {
	return p.m.Update(ctx, id, v)
}
func (p *plainStore) Delete(ctx context.Context, id string) error { return p.m.Delete(ctx, id) }

func TestImportBusyAfterMaxWait(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sleeps := 0
	sleep := func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
		sleeps++
		return nil
	}
	imp, store := newProducts(t, bs, &source{}, importer.WithClock(clock),
		importer.WithClaimer(&binding.Claimer{Store: bs, Now: clock, Sleep: sleep, TTL: time.Hour, MaxWait: 10 * time.Second}))

	b, _, err := bs.Ensure(ctx, binding.Binding{Backend: "shop", Model: "product", ExternalID: "9"})
	require.NoError(t, err)
	_, err = bs.Claim(ctx, b.ID, "someone-else", time.Hour)
	require.NoError(t, err)

	_, err = imp.ImportRecord(ctx, gjson.Parse(`{"id":9,"name":"N"}`))
	require.ErrorIs(t, err, binding.ErrLocked)
	var re *report.RecordError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "9", re.ExternalID)
	assert.Greater(t, sleeps, 3, "waited with backoff")
	assert.Equal(t, 0, store.Len(), "nothing written")
	got, _ := bs.Get(ctx, b.ID)
	assert.Equal(t, 0, got.RetryCount, "a busy record is not a failure")
}

func TestImportFailureCountsRetries(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	fail := true
	store := local.NewMemory[product]()
	imp, err := importer.New(bs, store, "shop", "product", func(ctx context.Context, rec gjson.Result, create bool) (product, error) {
		if fail {
			return product{}, errors.New("price is not a number")
		}
		return mapProduct(ctx, rec, create)
	}, importer.WithMaxRetries(2))
	require.NoError(t, err)
	rec := gjson.Parse(`{"id":3,"name":"X","updated_at":"2024-01-01T00:00:00Z"}`)

	res, err := imp.ImportRecord(ctx, rec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "price is not a number")
	assert.Contains(t, err.Error(), `"3"`)
	assert.Equal(t, binding.StatusFailed, res.Binding.Status)
	assert.Equal(t, 1, res.Binding.RetryCount)

	res, err = imp.ImportRecord(ctx, rec)
	require.Error(t, err)
	assert.Equal(t, 2, res.Binding.RetryCount)

	_, err = imp.ImportRecord(ctx, rec)
	require.ErrorIs(t, err, report.ErrTooManyRetries)

	fail = false
	res, err = imp.ImportRecord(ctx, rec, importer.Force())
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	assert.Equal(t, 0, res.Binding.RetryCount)
	assert.Empty(t, res.Binding.LastError)
}

func TestImportFetchErrorMarksFailed(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	src := &source{}
	src.put("5", `{"id":5,"name":"F"}`)
	imp, _ := newProducts(t, bs, src)
	_, err := imp.Import(ctx, "5")
	require.NoError(t, err)
	src.mu.Lock()
	delete(src.recs, "5")
	src.mu.Unlock()
	res, err := imp.Import(ctx, "5")
	require.Error(t, err)
	assert.Equal(t, 1, res.Binding.RetryCount)
	assert.Equal(t, binding.StatusFailed, res.Binding.Status)
}

func TestImportSkipFromMapper(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	store := local.NewMemory[product]()
	imp, err := importer.New(bs, store, "shop", "product", func(context.Context, gjson.Result, bool) (product, error) {
		return product{}, fmt.Errorf("archived product: %w", report.ErrSkip)
	})
	require.NoError(t, err)
	res, err := imp.ImportRecord(ctx, gjson.Parse(`{"id":1}`))
	require.NoError(t, err)
	assert.Equal(t, report.Skipped, res.Action)
	b, err := bs.GetByExternal(ctx, "shop", "product", "1")
	require.NoError(t, err)
	assert.Equal(t, binding.StatusSkipped, b.Status)
	assert.Equal(t, 0, store.Len())
}

func TestImportBadInput(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	imp, store := newProducts(t, bs, &source{})
	for name, raw := range map[string]string{
		"no id":          `{"name":"x"}`,
		"not an object":  `[1,2]`,
		"bad updated_at": `{"id":1,"updated_at":"yesterday"}`,
		"bool time":      `{"id":1,"updated_at":true}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := imp.ImportRecord(ctx, gjson.Parse(raw))
			require.Error(t, err)
			var re *report.RecordError
			require.ErrorAs(t, err, &re)
		})
	}
	_, err := imp.Import(ctx, "")
	require.ErrorIs(t, err, report.ErrNoExternalID)
	assert.Equal(t, 0, store.Len())
	var got []binding.Binding
	for b, err := range bs.List(ctx, binding.Filter{}) {
		require.NoError(t, err)
		got = append(got, b)
	}
	// Only the record with an ID but an unreadable updated-at shows, as a failed binding.
	require.Len(t, got, 1)
	assert.Equal(t, "1", got[0].ExternalID)
	assert.Equal(t, binding.StatusFailed, got[0].Status)
	assert.Contains(t, got[0].LastError, "unreadable updated-at")

	noFetch, err := importer.New(bs, store, "shop", "p", mapProduct)
	require.NoError(t, err)
	_, err = noFetch.Import(ctx, "1")
	require.ErrorContains(t, err, "WithFetch")

	_, err = importer.New[product](nil, store, "shop", "p", mapProduct)
	require.Error(t, err)
	_, err = importer.New(bs, store, "", "p", mapProduct)
	require.Error(t, err)
}

func TestImportRecreatesDeletedLocal(t *testing.T) {
	ctx := context.Background()
	imp, store := newProducts(t, binding.NewMemory(), &source{})
	r1, err := imp.ImportRecord(ctx, gjson.Parse(`{"id":1,"name":"A","updated_at":"2024-01-01T00:00:00Z"}`))
	require.NoError(t, err)
	require.NoError(t, store.Delete(ctx, r1.LocalID))
	r2, err := imp.ImportRecord(ctx, gjson.Parse(`{"id":1,"name":"A2","updated_at":"2024-01-02T00:00:00Z"}`))
	require.NoError(t, err)
	assert.Equal(t, report.Created, r2.Action)
	assert.NotEqual(t, r1.LocalID, r2.LocalID)
	assert.Equal(t, r2.LocalID, r2.Binding.LocalID)
}

type order struct {
	Customer string   `mapper:"customer"`
	Lines    []string `mapper:"lines"`
}

// The records an import refers to are imported first through the mapper's relation rules:
// mapper.WithImportMissing calls the related model's importer, so a relation is declared
// once, in the mapping.
func TestImportRelatedRecordsFirst(t *testing.T) {
	ctx := context.Background()
	bs := binding.NewMemory()
	binder := binding.NewBinder(bs, "shop")
	src := &source{}
	src.put("c1", `{"id":"c1","name":"Ann"}`)
	src.put("p1", `{"id":"p1","name":"Pen"}`)
	src.put("p2", `{"id":"p2","name":"Ink"}`)
	products, prodStore := newProducts(t, bs, src)
	customers, err := importer.New(bs, local.NewMemory[product](), "shop", "customer", mapProduct, importer.WithFetch(src.fetch))
	require.NoError(t, err)
	byModel := map[string]*importer.Importer[product]{"customer": customers, "product": products}

	m, err := mapper.NewImport("order", []mapper.Rule{
		mapper.Relation("customer_id", "customer", "customer", mapper.Required()),
		mapper.Relation("product_ids", "lines", "product"),
	}, mapper.WithResolver(binder), mapper.WithImportMissing(func(ctx context.Context, model, id string) error {
		_, err := byModel[model].Import(ctx, id)
		return err
	}))
	require.NoError(t, err)
	orders, err := importer.New(bs, local.NewMemory[order](), "shop", "order", mapper.ImportFunc[order](m))
	require.NoError(t, err)
	_, err = products.Import(ctx, "p1") // already bound: not fetched again
	require.NoError(t, err)
	fetchesBefore := src.fetches

	res, err := orders.ImportRecord(ctx, gjson.Parse(`{"id":"o1","customer_id":"c1","product_ids":["p1","p2"]}`))
	require.NoError(t, err)
	assert.Equal(t, report.Created, res.Action)
	assert.Equal(t, 2, src.fetches-fetchesBefore, "fetched c1 and p2 only")
	assert.Equal(t, 2, prodStore.Len())

	// A related record that cannot be imported fails the order and names it.
	res, err = orders.ImportRecord(ctx, gjson.Parse(`{"id":"o2","customer_id":"c404"}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `c404`)
	assert.Equal(t, binding.StatusFailed, res.Binding.Status)
}
