package bindingtest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// recorder is a failer that stops the run at the first failure and keeps its message.
type recorder struct{ failed string }

var errStopped = errors.New("model run stopped")

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(errStopped)
}

// runRecorded runs the model check on s and returns its failure message ("" if none).
func runRecorded(t *testing.T, s binding.Store, opts modelOptions) string {
	t.Helper()
	rec := &recorder{}
	func() {
		defer func() {
			if p := recover(); p != nil && p != errStopped {
				panic(p)
			}
		}()
		runModel(t.Context(), rec, s, opts)
	}()
	return rec.failed
}

func TestModelPassesMemoryStore(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		if msg := runRecorded(t, binding.NewMemory(), modelOptions{seed: seed, rounds: 60}); msg != "" {
			t.Fatalf("seed %d: the model check fails a correct store: %s", seed, msg)
		}
	}
}

// Each broken store below has one bug the model check must report. The memory store's
// own rollback bugs are checked by breaking its code by hand (see the package history);
// these wrappers keep the check honest about every other operation.

// nonAtomicBatch writes batch items one by one and leaves the earlier ones on failure.
type nonAtomicBatch struct{ binding.Store }

func (s nonAtomicBatch) UpsertBatch(ctx context.Context, bs []binding.Binding) ([]binding.Binding, error) {
	out := make([]binding.Binding, len(bs))
	for i, b := range bs {
		got, err := s.Upsert(ctx, b)
		if err != nil {
			return nil, &binding.BatchError{Index: i, Err: err}
		}
		out[i] = got
	}
	return out, nil
}

// batchIndexOffByOne names the item after the failing one.
type batchIndexOffByOne struct{ binding.Store }

func (s batchIndexOffByOne) UpsertBatch(ctx context.Context, bs []binding.Binding) ([]binding.Binding, error) {
	out, err := s.Store.UpsertBatch(ctx, bs)
	var be *binding.BatchError
	if errors.As(err, &be) && be.Index+1 < len(bs) {
		return nil, &binding.BatchError{Index: be.Index + 1, Err: be.Err}
	}
	return out, err
}

// ensureWrites overwrites the binding it finds, as Upsert would.
type ensureWrites struct{ binding.Store }

func (s ensureWrites) Ensure(ctx context.Context, b binding.Binding) (binding.Binding, bool, error) {
	got, created, err := s.Store.Ensure(ctx, b)
	if err != nil || created {
		return got, created, err
	}
	b.ID = got.ID
	got, err = s.Upsert(ctx, b)
	return got, false, err
}

// upsertDropsLease loses the lease of the binding it writes.
type upsertDropsLease struct{ binding.Store }

func (s upsertDropsLease) Upsert(ctx context.Context, b binding.Binding) (binding.Binding, error) {
	got, err := s.Store.Upsert(ctx, b)
	if err == nil && got.LeaseOwner != "" {
		if err := s.Release(ctx, got.ID, got.LeaseOwner); err != nil {
			return binding.Binding{}, err
		}
		got.LeaseOwner, got.LeaseExpiresAt = "", time.Time{}
	}
	return got, err
}

// staleMarkFailed returns the binding as it was before the failure was counted.
type staleMarkFailed struct{ binding.Store }

func (s staleMarkFailed) MarkFailed(ctx context.Context, id int64, f binding.Failure) (binding.Binding, error) {
	got, err := s.Store.MarkFailed(ctx, id, f)
	got.RetryCount--
	return got, err
}

// holderOf returns the lease owner of binding id ("" when there is none or no binding).
func holderOf(ctx context.Context, s binding.Store, id int64) string {
	b, _ := s.Get(ctx, id)
	return b.LeaseOwner
}

// markSuccessIgnoresLease writes whoever holds the lease, as stores did before the lease
// rule.
type markSuccessIgnoresLease struct{ binding.Store }

func (s markSuccessIgnoresLease) MarkSuccess(ctx context.Context, id int64, sc binding.Success) (binding.Binding, error) {
	sc.Owner = holderOf(ctx, s.Store, id)
	return s.Store.MarkSuccess(ctx, id, sc)
}

// batchIgnoresLease writes every item whoever holds the lease.
type batchIgnoresLease struct{ binding.Store }

func (s batchIgnoresLease) UpsertBatch(ctx context.Context, bs []binding.Binding) ([]binding.Binding, error) {
	bs = slices.Clone(bs)
	for i := range bs {
		var cur binding.Binding
		if bs[i].ID != 0 {
			cur, _ = s.Get(ctx, bs[i].ID)
		} else if c, err := s.GetByExternal(ctx, bs[i].Backend, bs[i].Model, bs[i].ExternalID); err == nil {
			cur = c
		} else {
			cur, _ = s.GetByLocal(ctx, bs[i].Backend, bs[i].Model, bs[i].LocalID)
		}
		bs[i].LeaseOwner = cur.LeaseOwner
	}
	return s.Store.UpsertBatch(ctx, bs)
}

// renewRetakes renews by claiming, which takes a released or lost lease back.
type renewRetakes struct{ binding.Store }

func (s renewRetakes) Renew(ctx context.Context, id int64, owner string, ttl time.Duration) (binding.Binding, error) {
	return s.Claim(ctx, id, owner, ttl)
}

// lostIsLocked reports a lost lease as ErrLocked, the sentinel of a lease never held.
type lostIsLocked struct{ binding.Store }

func (s lostIsLocked) SetStatus(ctx context.Context, id int64, owner string, st binding.Status) error {
	err := s.Store.SetStatus(ctx, id, owner, st)
	var lost *binding.LeaseLostError
	if errors.As(err, &lost) {
		return &binding.LockedError{ID: id, Owner: lost.Holder, Expires: lost.Expires}
	}
	return err
}

// getManyDropsOne leaves one binding out of a result of several.
type getManyDropsOne struct{ binding.Store }

func (s getManyDropsOne) GetManyByExternal(ctx context.Context, backend, model string, ids []string) (map[string]binding.Binding, error) {
	got, err := s.Store.GetManyByExternal(ctx, backend, model, ids)
	if len(got) > 1 {
		delete(got, slices.Sorted(maps.Keys(got))[0])
	}
	return got, err
}

// listIgnoresLimit lists every match whatever Filter.Limit says.
type listIgnoresLimit struct{ binding.Store }

func (s listIgnoresLimit) List(ctx context.Context, f binding.Filter) iter.Seq2[binding.Binding, error] {
	f.Limit = 0
	return s.Store.List(ctx, f)
}

// localTimes returns lookups by local ID with times in a zone other than UTC.
type localTimes struct{ binding.Store }

func (s localTimes) GetByLocal(ctx context.Context, backend, model, id string) (binding.Binding, error) {
	got, err := s.Store.GetByLocal(ctx, backend, model, id)
	zone := time.FixedZone("UTC+1", 3600)
	got.CreatedAt, got.UpdatedAt = got.CreatedAt.In(zone), got.UpdatedAt.In(zone)
	return got, err
}

// countsSkipFailed leaves failed bindings out of Counts.
type countsSkipFailed struct{ binding.Store }

func (s countsSkipFailed) Counts(ctx context.Context, backend, model string) (map[binding.Status]int, error) {
	got, err := s.Store.Counts(ctx, backend, model)
	delete(got, binding.StatusFailed)
	return got, err
}

func TestModelCatchesBrokenStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    func(binding.Store) binding.Store
	}{
		{"batch not atomic", func(m binding.Store) binding.Store { return nonAtomicBatch{m} }},
		{"batch error names the wrong item", func(m binding.Store) binding.Store { return batchIndexOffByOne{m} }},
		{"Ensure writes an existing binding", func(m binding.Store) binding.Store { return ensureWrites{m} }},
		{"Upsert drops the lease", func(m binding.Store) binding.Store { return upsertDropsLease{m} }},
		{"MarkFailed returns a stale binding", func(m binding.Store) binding.Store { return staleMarkFailed{m} }},
		{"GetManyByExternal drops a binding", func(m binding.Store) binding.Store { return getManyDropsOne{m} }},
		{"List ignores Limit", func(m binding.Store) binding.Store { return listIgnoresLimit{m} }},
		{"GetByLocal returns local times", func(m binding.Store) binding.Store { return localTimes{m} }},
		{"Counts skips failed bindings", func(m binding.Store) binding.Store { return countsSkipFailed{m} }},
		{"MarkSuccess ignores the lease", func(m binding.Store) binding.Store { return markSuccessIgnoresLease{m} }},
		{"UpsertBatch ignores the lease", func(m binding.Store) binding.Store { return batchIgnoresLease{m} }},
		{"Renew retakes a lost lease", func(m binding.Store) binding.Store { return renewRetakes{m} }},
		{"a lost lease reported as locked", func(m binding.Store) binding.Store { return lostIsLocked{m} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const seed = 42
			msg := runRecorded(t, tc.s(binding.NewMemory()), modelOptions{seed: seed, rounds: 60})
			if msg == "" {
				t.Fatal("the model check passed a broken store")
			}
			if want := fmt.Sprintf("%s=%d", envModelSeed, seed); !strings.Contains(msg, want) {
				t.Fatalf("failure message does not say how to rerun (%s): %s", want, msg)
			}
			t.Logf("reported: %.300s", msg)
		})
	}
}

func TestModelOptionsFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	o, err := modelOptionsFromEnv(env())
	if err != nil || o.seed != defaultModelSeed || o.rounds != defaultModelRounds {
		t.Fatalf("defaults = %+v, %v; want seed %d, %d rounds", o, err, defaultModelSeed, defaultModelRounds)
	}
	o, err = modelOptionsFromEnv(env(envModelBatches, " 5000 ", envModelSeed, "7"))
	if err != nil || o.seed != 7 || o.rounds != 5000 {
		t.Fatalf("set = %+v, %v; want seed 7, 5000 rounds", o, err)
	}
	a, errA := modelOptionsFromEnv(env(envModelSeed, "random"))
	b, errB := modelOptionsFromEnv(env(envModelSeed, "random"))
	if errA != nil || errB != nil || a.seed == b.seed {
		t.Fatalf("random seeds: %d (%v), %d (%v); want two different seeds", a.seed, errA, b.seed, errB)
	}
	for _, bad := range [][2]string{
		{envModelBatches, "0"}, {envModelBatches, "-3"}, {envModelBatches, "many"},
		{envModelSeed, "-1"}, {envModelSeed, "0x10"}, {envModelSeed, "seed"},
	} {
		_, err := modelOptionsFromEnv(env(bad[0], bad[1]))
		if err == nil || !strings.Contains(err.Error(), bad[0]) || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad[1])) {
			t.Fatalf("%s=%q: error %v, want one naming the variable and its value", bad[0], bad[1], err)
		}
	}
}
