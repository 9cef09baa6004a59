package importer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/importer"
	"github.com/connkit/connkit/local"
)

// flakyStore fails the first create of some records with a server error.
type flakyStore struct {
	*local.Memory[product]
	mu    sync.Mutex
	flaky map[string]bool // name -> fail the next create
}

func (s *flakyStore) CreateKeyed(ctx context.Context, key string, v product) (string, bool, error) {
	s.mu.Lock()
	fail := s.flaky[v.Name]
	delete(s.flaky, v.Name)
	s.mu.Unlock()
	if fail {
		return "", false, fmt.Errorf("creating %s: %w", v.Name, adapter.ErrServer)
	}
	return s.Memory.CreateKeyed(ctx, key, v)
}

type version struct {
	id, minute int
	name       string
}

// genListing lists ids records in updated-at order, then repeats some: the same copy a
// little later (offset paging shifting under the walk), a newer version at the end (a
// record edited during the walk), or an older copy later (a stale page).
func genListing(rng *rand.Rand, ids, minute0 int) []version {
	var l []version
	minute0 += 10 // stale copies stay after midnight
	for i := 1; i <= ids; i++ {
		l = append(l, version{id: i, minute: minute0 + i, name: fmt.Sprintf("P%d@%d", i, minute0+i)})
	}
	for range rng.IntN(ids + 1) {
		v := l[rng.IntN(len(l))]
		switch rng.IntN(3) {
		case 0:
			at := min(len(l), slicesIndex(l, v)+1+rng.IntN(4))
			l = append(l[:at], append([]version{v}, l[at:]...)...)
		case 1:
			v.minute += 100 + rng.IntN(50)
			v.name = fmt.Sprintf("P%d@%d", v.id, v.minute)
			l = append(l, v)
		default:
			v.minute -= 1 + rng.IntN(3)
			v.name = fmt.Sprintf("P%d@%d-stale", v.id, v.minute)
			l = append(l, v)
		}
	}
	return l
}

func copies(l []version, id int) int {
	n := 0
	for _, v := range l {
		if v.id == id {
			n++
		}
	}
	return n
}

func slicesIndex(l []version, v version) int {
	for i := range l {
		if l[i] == v {
			return i
		}
	}
	return -1
}

func raws(l []version) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = fmt.Sprintf(`{"id":%d,"name":%q,"updated_at":"2024-01-01T%02d:%02d:00Z"}`, v.id, v.name, v.minute/60, v.minute%60)
	}
	return out
}

// newest adds l to m, per ID the version a sync must end with: the newest by updated-at,
// then by position, over every run.
func newest(m map[int]version, l []version) map[int]version {
	for _, v := range l {
		if w, ok := m[v.id]; !ok || v.minute >= w.minute {
			m[v.id] = v
		}
	}
	return m
}

// Defect 8, as a property: over many commit sizes, concurrencies, modes, repeats, bad
// records and transient failures, every listed record lands in exactly one count, each
// record ends at its newest version, and no record is created twice.
func TestBatchCountsAddUp(t *testing.T) {
	ctx := context.Background()
	cases := 0
	for seed := range uint64(40) {
		for _, commit := range []int{1, 2, 3, 5, 8, 13, 64} {
			for _, mode := range []string{"bulk", "per-record", "enqueue"} {
				cases++
				rng := rand.New(rand.NewPCG(seed, uint64(commit)))
				conc := 1 + rng.IntN(4)
				name := fmt.Sprintf("seed=%d/commit=%d/%s/conc=%d", seed, commit, mode, conc)
				bs := binding.NewMemory()
				store := &flakyStore{Memory: local.NewMemory[product](), flaky: map[string]bool{}}
				ids := 1 + rng.IntN(30)
				bad := map[int]bool{}
				for range rng.IntN(3) {
					bad[1+rng.IntN(ids)] = true
				}
				imp, err := importer.New(bs, store, "shop", "product", func(ctx context.Context, r gjson.Result, create bool) (product, error) {
					if bad[int(r.Get("id").Int())] {
						return product{}, errors.New("sku is invalid")
					}
					return mapProduct(ctx, r, create)
				})
				require.NoError(t, err, name)
				var mu sync.Mutex
				var queued []string
				opts := []importer.BatchOption{importer.WithCommitSize(commit), importer.WithConcurrency(conc)}
				switch mode {
				case "per-record":
					opts = append(opts, importer.PerRecord())
				case "enqueue":
					opts = append(opts, importer.WithEnqueue(func(_ context.Context, r gjson.Result) error {
						mu.Lock()
						defer mu.Unlock()
						if bad[int(r.Get("id").Int())] {
							return errors.New("queue refused it")
						}
						queued = append(queued, r.Get("name").String())
						return nil
					}))
				}
				want := map[int]version{}
				for run := range 2 {
					l := genListing(rng, ids, run*200)
					if run == 1 { // the app deleted some local records meanwhile
						for b, err := range bs.List(ctx, binding.Filter{Statuses: []binding.Status{binding.StatusSuccess}}) {
							require.NoError(t, err, name)
							if rng.IntN(4) == 0 {
								require.NoError(t, store.Delete(ctx, b.LocalID), name)
								// Recreated from what this run lists, even a copy older
								// than the last one synced.
								var id int
								fmt.Sscan(b.ExternalID, &id)
								delete(want, id)
							}
						}
					}
					for range rng.IntN(3) { // transient store failures, of records listed once
						v := l[rng.IntN(len(l))]
						if copies(l, v.id) > 1 {
							continue
						}
						store.mu.Lock()
						store.flaky[v.name] = true
						store.mu.Unlock()
					}
					batch, err := importer.NewBatch(imp, sliceList(raws(l)...), opts...)
					require.NoError(t, err, name)
					sum, err := batch.Run(ctx)
					require.NoError(t, err, name)
					require.Equal(t, len(l), sum.Total(), "%s run %d: counts %+v do not add up to the %d records listed", name, run, sum.Counts, len(l))
					if mode == "enqueue" {
						require.Equal(t, sum.Enqueued+sum.Failed+sum.Duplicates, len(l), name)
						continue
					}
					require.Equal(t, sum.Failed, len(sum.Errors), name)
					for id, want := range newest(want, l) {
						b, err := bs.GetByExternal(ctx, "shop", "product", fmt.Sprint(id))
						require.NoError(t, err, "%s run %d: binding of %d", name, run, id)
						if b.Status != binding.StatusSuccess {
							require.Equal(t, binding.StatusFailed, b.Status, name)
							continue
						}
						got, err := store.Get(ctx, b.LocalID)
						require.NoError(t, err, "%s run %d: local record of %d", name, run, id)
						require.Equal(t, want.name, got.Name, "%s run %d: record %d ends at its newest version", name, run, id)
					}
					require.LessOrEqual(t, store.Len(), ids, "%s: no record created twice", name)
				}
			}
		}
	}
	t.Logf("%d cases", cases)
}
