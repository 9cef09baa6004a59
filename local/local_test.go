package local_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connkit/connkit/local"
)

func TestMemory(t *testing.T) {
	ctx := context.Background()
	m := local.NewMemory[string]()
	id, err := m.Create(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "1", id)
	v, err := m.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "a", v)
	require.NoError(t, m.Update(ctx, id, "b"))
	_, err = m.Get(ctx, "9")
	assert.ErrorIs(t, err, local.ErrNotFound)
	assert.ErrorIs(t, m.Update(ctx, "9", "x"), local.ErrNotFound)
	assert.ErrorIs(t, m.Delete(ctx, "9"), local.ErrNotFound)
	require.NoError(t, m.Delete(ctx, id))
	assert.Equal(t, 0, m.Len())
	assert.Equal(t, [2]int{1, 1}, [2]int{m.Creates(), m.Updates()})

	m.Put("10", "seeded")
	id, _ = m.Create(ctx, "next")
	assert.Equal(t, "11", id, "IDs continue after seeded ones")
	assert.Equal(t, []string{"10", "11"}, m.IDs())
	v, err = m.Get(ctx, "10")
	require.NoError(t, err)
	assert.Equal(t, "seeded", v)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = m.Create(cctx, "x")
	assert.ErrorIs(t, err, context.Canceled)
}

func TestMemoryCreateKeyedConcurrent(t *testing.T) {
	ctx := context.Background()
	m := local.NewMemory[int]()
	var wg sync.WaitGroup
	ids := make([]string, 50)
	for i := range ids {
		wg.Go(func() {
			id, _, err := m.CreateKeyed(ctx, fmt.Sprintf("k%d", i%5), i)
			assert.NoError(t, err)
			ids[i] = id
		})
	}
	wg.Wait()
	assert.Equal(t, 5, m.Len())
	assert.Equal(t, 5, m.Creates())
	for i := range ids {
		assert.Equal(t, ids[i%5], ids[i])
	}
	// A deleted record's key creates again.
	require.NoError(t, m.Delete(ctx, ids[0]))
	id, created, err := m.CreateKeyed(ctx, "k0", 0)
	require.NoError(t, err)
	assert.True(t, created)
	assert.NotEqual(t, ids[0], id)
}

func ExampleMemory() {
	ctx := context.Background()
	var store local.Store[string] = local.NewMemory[string]()
	id, _ := store.Create(ctx, "hello")
	_ = store.Update(ctx, id, "hello, world")
	v, _ := store.Get(ctx, id)
	fmt.Println(id, v)
	// Output: 1 hello, world
}

func TestMemoryIDsOrder(t *testing.T) {
	m := local.NewMemory[int]()
	for _, id := range []string{"b", "10", "-3", "9", "a", "007", "7", "ab"} {
		m.Put(id, 0)
	}
	assert.Equal(t, []string{"-3", "007", "7", "9", "10", "a", "ab", "b"}, m.IDs())
}

func TestMemoryExisting(t *testing.T) {
	ctx := context.Background()
	m := local.NewMemory[string]()
	a, _ := m.Create(ctx, "a")
	b, _ := m.Create(ctx, "b")
	require.NoError(t, m.Delete(ctx, a))
	live, err := m.Existing(ctx, []string{a, b, b, "nope", ""})
	require.NoError(t, err)
	assert.Equal(t, map[string]struct{}{b: {}}, live)
	live, err = m.Existing(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, live)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = m.Existing(cctx, []string{b})
	assert.ErrorIs(t, err, context.Canceled)
}

// A batch importer asks the store once per page which bound records still exist.
func ExampleExistenceChecker() {
	ctx := context.Background()
	store := local.NewMemory[string]()
	kept, _ := store.Create(ctx, "kept")
	gone, _ := store.Create(ctx, "deleted by the app")
	_ = store.Delete(ctx, gone)
	var checker local.ExistenceChecker = store
	live, _ := checker.Existing(ctx, []string{kept, gone})
	_, keptLive := live[kept]
	_, goneLive := live[gone]
	fmt.Println(keptLive, goneLive)
	// Output: true false
}

// IDs of every form (the store's own, numbers too large for its array, strings that
// read as numbers but are not written like the store's) are kept apart and found again.
func TestMemoryIDForms(t *testing.T) {
	ctx := context.Background()
	m := local.NewMemory[string]()
	for _, id := range []string{"0", "05", "+5", "5", "-1", " 7", "x", "16777216", "99999999999"} {
		m.Put(id, "v"+id)
	}
	for _, id := range []string{"0", "05", "+5", "5", "-1", " 7", "x", "16777216", "99999999999"} {
		v, err := m.Get(ctx, id)
		require.NoError(t, err, id)
		assert.Equal(t, "v"+id, v)
	}
	_, err := m.Get(ctx, "6")
	assert.ErrorIs(t, err, local.ErrNotFound)
	id, err := m.Create(ctx, "big")
	require.NoError(t, err)
	assert.Equal(t, "100000000000", id, "IDs continue after the largest seeded one")
	id2, created, err := m.CreateKeyed(ctx, "k", "keyed")
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "100000000001", id2)
	assert.Equal(t, 11, m.Len())
	require.NoError(t, m.Update(ctx, "5", "five"))
	require.NoError(t, m.Update(ctx, id, "bigger"))
	require.NoError(t, m.Delete(ctx, "05"))
	require.NoError(t, m.Delete(ctx, "16777216"))
	assert.ErrorIs(t, m.Delete(ctx, "16777216"), local.ErrNotFound)
	assert.ErrorIs(t, m.Update(ctx, "05", "x"), local.ErrNotFound)
	v, err := m.Get(ctx, "5")
	require.NoError(t, err)
	assert.Equal(t, "five", v)
	live, err := m.Existing(ctx, []string{"5", "05", id, id2, "16777216"})
	require.NoError(t, err)
	assert.Equal(t, map[string]struct{}{"5": {}, id: {}, id2: {}}, live)
	assert.Equal(t, []string{"-1", "0", "+5", "5", "99999999999", "100000000000", "100000000001", " 7", "x"}, m.IDs())
	assert.Equal(t, 9, m.Len())
}

// A store's IDs stay in its array until the largest it keeps there, and then go on in
// its map: every ID is found, deleted and recreated alike.
func TestMemoryIDsPastTheArray(t *testing.T) {
	ctx := context.Background()
	m := local.NewMemory[int]()
	m.Put("16777214", 0)
	var ids []string
	for i := range 4 {
		id, created, err := m.CreateKeyed(ctx, fmt.Sprint("k", i), i+1)
		require.NoError(t, err)
		require.True(t, created)
		ids = append(ids, id)
	}
	assert.Equal(t, []string{"16777215", "16777216", "16777217", "16777218"}, ids)
	for i, id := range ids {
		v, err := m.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, i+1, v)
		again, created, err := m.CreateKeyed(ctx, fmt.Sprint("k", i), 0)
		require.NoError(t, err)
		assert.False(t, created)
		assert.Equal(t, id, again)
		require.NoError(t, m.Delete(ctx, id))
		again, created, err = m.CreateKeyed(ctx, fmt.Sprint("k", i), 0)
		require.NoError(t, err)
		assert.True(t, created, "a deleted record's key creates again")
		assert.NotEqual(t, id, again)
	}
	assert.Equal(t, 5, m.Len())
	assert.Equal(t, 8, m.Creates())
}
