package bindingtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
)

// The model check: random operations run against the store under test and against
// refModel, a deliberately naive reference that applies the documented rules of
// binding.Store one item at a time to a map, the lease rule included (writes naming a
// lease they do not hold, or none over someone's lease, are refused). After every operation the outcomes must
// agree (results, error sentinel, failing batch index) and so must everything the store
// can be asked: List, Get, GetByExternal, GetByLocal, GetManyByExternal, Counts.

// Environment variables that tune the model check for long runs.
const (
	// envModelBatches sets the number of rounds (one UpsertBatch and a few single
	// operations each); the default keeps the case to a few seconds on Postgres.
	envModelBatches = "CONNKIT_MODEL_BATCHES"
	// envModelSeed sets the random seed: a number, or "random" for a new one each run.
	envModelSeed = "CONNKIT_MODEL_SEED"
)

const (
	defaultModelRounds = 100
	defaultModelSeed   = 20260301
	// modelLeaseTTL outlives any run, so a lease only ends by Release or Delete and the
	// model need not know the store's clock.
	modelLeaseTTL = 24 * time.Hour
	// modelSweepEvery is how often (in rounds) every key of the key space is looked up,
	// not only the keys an operation touched.
	modelSweepEvery = 50
)

func init() {
	register("UpsertBatchMatchesModel", func(t *testing.T, e *env) {
		opts, err := modelOptionsFromEnv(os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		if e.cfg.advance != nil {
			// Distinct times per operation make a rollback that forgets UpdatedAt, or a
			// ChangedSince filter off by one write, visible.
			opts.tick = func() { e.cfg.advance(e.store, time.Second) }
		}
		runModel(e.ctx, t, e.store, opts)
	})
}

// modelOptions drive one model run.
type modelOptions struct {
	seed   uint64
	rounds int
	tick   func() // moves the store's clock between operations; nil with a real clock
}

// modelOptionsFromEnv reads envModelBatches and envModelSeed through getenv.
func modelOptionsFromEnv(getenv func(string) string) (modelOptions, error) {
	o := modelOptions{seed: defaultModelSeed, rounds: defaultModelRounds}
	if v := strings.TrimSpace(getenv(envModelBatches)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return o, fmt.Errorf("bindingtest: %s=%q: want a positive number of rounds", envModelBatches, v)
		}
		o.rounds = n
	}
	switch v := strings.TrimSpace(getenv(envModelSeed)); v {
	case "":
	case "random":
		o.seed = rand.Uint64()
	default:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return o, fmt.Errorf("bindingtest: %s=%q: want an unsigned integer or \"random\"", envModelSeed, v)
		}
		o.seed = n
	}
	return o, nil
}

// failer is the part of *testing.T the model check uses, so that its own tests can run
// it against broken stores and see it fail.
type failer interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// The key space: three scopes, keys E0…E39 and L0…L39.
var modelScopes = [...][2]string{{backendA, modelP}, {backendA, modelC}, {backendB, modelP}}

const modelMaxKeys = 40

// modelTimes are the caller-set times the generator picks from: zero, whole
// milliseconds, nanoseconds the stores truncate, and a zone other than UTC.
var modelTimes = [...]time.Time{
	{},
	time.Date(2025, 3, 4, 5, 6, 7, 8_000_000, time.UTC),
	time.Date(2024, 2, 29, 23, 59, 58, 123_456_789, time.FixedZone("UTC+5:30", 5*3600+1800)),
	time.Date(1999, 12, 31, 23, 0, 0, 987_000_000, time.UTC),
}

var modelStatuses = [...]binding.Status{"", binding.StatusPending, binding.StatusInProgress,
	binding.StatusSuccess, binding.StatusFailed, binding.StatusSkipped}

// modelRun is one run: the store, the model, the generator and the failure context.
type modelRun struct {
	f     failer
	ctx   context.Context
	s     binding.Store
	opts  modelOptions
	r     *rand.Rand
	m     *refModel
	round int
	n     int      // key space size of this round
	ops   []string // the last operations, for failure messages
	// deleted remembers IDs the store deleted, to write to them again.
	deleted []int64
	// latest is the latest store-assigned time seen: the store's "now" is no earlier.
	latest time.Time
	// outcomes counts "operation: outcome", logged at the end to show what was covered.
	outcomes map[string]int
}

func runModel(ctx context.Context, f failer, s binding.Store, opts modelOptions) {
	f.Helper()
	run := &modelRun{f: f, ctx: ctx, s: s, opts: opts, m: newRefModel(), outcomes: map[string]int{},
		r: rand.New(rand.NewPCG(opts.seed, opts.seed^0x9e3779b97f4a7c15))}
	for run.round = range opts.rounds {
		// Small key spaces make items collide (repeated keys, moves, conflicts); larger
		// ones make long runs of fresh inserts, the SQL stores' multi-row path.
		run.n = [...]int{4, 12, modelMaxKeys}[run.round%3]
		run.step(run.opBatch)
		for range 1 + run.r.IntN(3) {
			run.step(run.singleOp())
		}
		run.checkCounts()
		run.checkFilteredList()
		if run.round%modelSweepEvery == modelSweepEvery-1 {
			run.sweep()
		}
	}
	run.sweep()
	f.Logf("model check, seed %d, %d rounds: %v", opts.seed, opts.rounds, run.outcomes)
}

// fail stops the run with the seed, the round and the last operations.
func (run *modelRun) fail(format string, args ...any) {
	run.f.Helper()
	run.f.Fatalf("model check, seed %d (rerun with %s=%d), round %d: %s\nlast operations, oldest first:\n  %s",
		run.opts.seed, envModelSeed, run.opts.seed, run.round, fmt.Sprintf(format, args...), strings.Join(run.ops, "\n  "))
}

func (run *modelRun) logOp(format string, args ...any) {
	const keep = 6
	if len(run.ops) == keep {
		run.ops = append(run.ops[:0], run.ops[1:]...)
	}
	run.ops = append(run.ops, fmt.Sprintf(format, args...))
}

// step runs one operation, then checks the whole store against the model and looks up
// every ID and key the operation named or changed.
func (run *modelRun) step(op func() (keys []modelKey, ids []int64)) {
	run.f.Helper()
	if run.opts.tick != nil {
		run.opts.tick()
	}
	before := maps.Clone(run.m.rows)
	keys, ids := op()
	for id, b := range before {
		if a, ok := run.m.rows[id]; !ok || a != b {
			keys = append(keys, keysOf(b)...)
			ids = append(ids, id)
		}
	}
	for id, a := range run.m.rows {
		if b, ok := before[id]; !ok || a != b {
			keys = append(keys, keysOf(a)...)
			ids = append(ids, id)
		}
	}
	run.checkList()
	run.checkLookups(keys, ids)
}

// --- generators ---

func (run *modelRun) key(prefix string) string {
	if run.r.IntN(4) == 0 {
		return ""
	}
	return fmt.Sprint(prefix, run.r.IntN(run.n))
}

// pickID returns a live binding's ID, or now and then one the store deleted or never had.
func (run *modelRun) pickID() int64 {
	live := slices.Sorted(maps.Keys(run.m.rows))
	switch k := run.r.IntN(10); {
	case k == 0 && len(run.deleted) > 0:
		return run.deleted[run.r.IntN(len(run.deleted))]
	case k == 1:
		return []int64{1 << 40, -1}[run.r.IntN(2)]
	case len(live) == 0:
		return 1 << 40
	default:
		return live[run.r.IntN(len(live))]
	}
}

// item makes a binding to upsert or ensure: random scope, keys and fields, now and then
// an ID, fields the store must ignore, or something invalid.
func (run *modelRun) item(tag string) binding.Binding {
	r := run.r
	sc := modelScopes[r.IntN(len(modelScopes))]
	b := binding.Binding{
		Backend: sc[0], Model: sc[1], ExternalID: run.key("E"), LocalID: run.key("L"),
		Status: modelStatuses[r.IntN(len(modelStatuses))], RetryCount: r.IntN(3),
		SyncedAt: modelTimes[r.IntN(len(modelTimes))], ExternalUpdatedAt: modelTimes[r.IntN(len(modelTimes))],
		Hash: tag, NoExport: r.IntN(5) == 0,
	}
	if live := run.m.sorted(); len(live) > 0 && r.IntN(2) == 0 {
		// Most syncs write a record again under the keys it has, or moves one of them.
		cur := live[r.IntN(len(live))]
		b.Backend, b.Model, b.ExternalID, b.LocalID = cur.Backend, cur.Model, cur.ExternalID, cur.LocalID
		switch r.IntN(8) {
		case 0:
			b.ExternalID = run.key("E")
		case 1:
			b.LocalID = run.key("L")
		}
	}
	if r.IntN(3) == 0 {
		b.LastError = "HTTP 502 " + tag
	}
	if b.ExternalID == "" && b.LocalID == "" && r.IntN(10) != 0 {
		b.ExternalID = fmt.Sprint("E", r.IntN(run.n)) // mostly keyed; the rest is invalid without an ID
	}
	if r.IntN(8) == 0 {
		b.ID = run.pickID()
		if cur, ok := run.m.rows[b.ID]; ok {
			switch r.IntN(3) {
			case 0: // the same IDs, maybe in another scope: a move the indexes must follow
				b.ExternalID, b.LocalID = cur.ExternalID, cur.LocalID
			case 1: // empty IDs keep the stored ones, wherever the binding goes
				b.ExternalID, b.LocalID = "", ""
			}
		}
	}
	// The writer's lease: mostly the one the target binding has (its holder writes, or no
	// one when it is not leased), now and then another.
	b.LeaseOwner = run.writer(run.target(b))
	if r.IntN(8) == 0 { // the store owns these
		b.CreatedAt, b.UpdatedAt = modelTimes[1], modelTimes[3]
		b.LeaseExpiresAt = modelTimes[2]
	}
	if r.IntN(150) == 0 {
		switch r.IntN(4) {
		case 0:
			b.Backend = ""
		case 1:
			b.Model = ""
		case 2:
			b.Status = "bogus"
		case 3:
			b.RetryCount = -1
		}
	}
	return b
}

// modelOwners are the lease owners of a run; "intruder" never claims.
var modelOwners = [...]string{"", "w1", "w2", "intruder"}

// target is the live binding an upsert of b would write, if the model can tell (zero
// otherwise).
func (run *modelRun) target(b binding.Binding) binding.Binding {
	if b.ID != 0 {
		return run.m.rows[b.ID]
	}
	if id := run.m.owner(b.Backend, b.Model, false, b.ExternalID); id != 0 {
		return run.m.rows[id]
	}
	if id := run.m.owner(b.Backend, b.Model, true, b.LocalID); id != 0 {
		return run.m.rows[id]
	}
	return binding.Binding{}
}

// writer picks the lease a write on cur names: mostly cur's holder, else any owner.
func (run *modelRun) writer(cur binding.Binding) string {
	if run.r.IntN(6) == 0 {
		return modelOwners[run.r.IntN(len(modelOwners))]
	}
	return cur.LeaseOwner
}

func (run *modelRun) singleOp() func() ([]modelKey, []int64) {
	ops := [...]struct {
		weight int
		op     func() ([]modelKey, []int64)
	}{
		{3, run.opUpsert}, {2, run.opEnsure}, {2, run.opMarkSuccess}, {1, run.opMarkFailed},
		{1, run.opSetStatus}, {2, run.opClaim}, {2, run.opRenew}, {1, run.opRelease}, {1, run.opDelete},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	k := run.r.IntN(total)
	for _, o := range ops {
		if k < o.weight {
			return o.op
		}
		k -= o.weight
	}
	panic("unreachable")
}

// --- operations ---

func (run *modelRun) opBatch() ([]modelKey, []int64) {
	run.f.Helper()
	var bs []binding.Binding
	if run.r.IntN(40) != 0 { // now and then an empty batch
		// Long batches over few keys nearly always conflict somewhere.
		bs = make([]binding.Binding, 1+run.r.IntN(min(30, run.n*3/4)))
		for i := range bs {
			bs[i] = run.item(fmt.Sprintf("r%di%d", run.round, i))
		}
	}
	run.logOp("UpsertBatch(%s)", fmtBindings(bs))
	got, err := run.s.UpsertBatch(run.ctx, slices.Clone(bs))
	what := fmt.Sprintf("UpsertBatch(%d items)", len(bs))
	if err == nil && len(got) != len(bs) {
		run.fail("%s returned %d bindings", what, len(got))
	}

	// Dry run on a copy, with the store's IDs for inserts when it has any, to learn the
	// expected outcome; then compare outcomes before comparing results.
	dry := run.m.clone()
	failAt, failErr := -1, error(nil)
	for i, b := range bs {
		next, _, e := dry.upsert(b, run.newID(got, i))
		if e != nil {
			failAt, failErr = i, e
			break
		}
		dry.rows[next.ID] = next
	}
	if failAt >= 0 {
		// Items invalid on their own are reported first, even after an item that would
		// conflict (Store.UpsertBatch).
		if firstInvalid := slices.IndexFunc(bs, func(b binding.Binding) bool { return !valid(b, b.ID == 0) }); firstInvalid >= 0 {
			failAt, failErr = firstInvalid, binding.ErrInvalid
		}
		run.checkBatchErr(what, err, failAt, failErr)
		return keysOfAll(bs), idsOf(bs)
	}
	run.checkErr(what, err, nil)
	for i, b := range bs {
		next, inserted, e := run.m.upsert(b, run.newID(got, i))
		if e != nil {
			run.fail("%s: item %d failed on the second model pass: %v", what, i, e)
		}
		run.adoptWrite(fmt.Sprintf("%s: item %d", what, i), &next, got[i], inserted)
		run.m.rows[next.ID] = next
	}
	return keysOfAll(bs), idsOf(bs)
}

// newID hands out the store's ID for item i when the model inserts it; 0 when the batch
// failed (the model then uses a provisional ID, rolled back anyway).
func (run *modelRun) newID(got []binding.Binding, i int) func() int64 {
	return func() int64 {
		if i < len(got) {
			return got[i].ID
		}
		return 0
	}
}

// checkBatchErr wants a *BatchError naming item failAt with cause want.
func (run *modelRun) checkBatchErr(what string, err error, failAt int, want error) {
	run.f.Helper()
	var be *binding.BatchError
	if !errors.As(err, &be) {
		run.fail("%s: the model fails at item %d with %v, the store returned %v, not a *binding.BatchError", what, failAt, want, err)
	}
	if be.Index != failAt {
		run.fail("%s: the model fails at item %d with %v, the store's error names item %d: %v", what, failAt, want, be.Index, err)
	}
	run.checkErr(fmt.Sprintf("%s, item %d", what, failAt), err, want)
}

func (run *modelRun) opUpsert() ([]modelKey, []int64) {
	run.f.Helper()
	b := run.item(fmt.Sprintf("r%d-single", run.round))
	run.logOp("Upsert(%s)", fmtBinding(b))
	prev := run.target(b)
	got, err := run.s.Upsert(run.ctx, b)
	next, inserted, want := run.m.upsert(b, func() int64 { return got.ID })
	what := "Upsert(" + fmtBinding(b) + ")"
	run.checkLeaseErr(what, err, want, prev, b.LeaseOwner)
	if run.checkErr(what, err, want) {
		run.adoptWrite(what, &next, got, inserted)
		run.m.rows[next.ID] = next
	}
	return keysOfAll([]binding.Binding{b}), []int64{b.ID}
}

func (run *modelRun) opEnsure() ([]modelKey, []int64) {
	run.f.Helper()
	b := run.item(fmt.Sprintf("r%d-ensure", run.round))
	run.logOp("Ensure(%s)", fmtBinding(b))
	got, created, err := run.s.Ensure(run.ctx, b)
	what := "Ensure(" + fmtBinding(b) + ")"
	next, inserted, want := run.m.ensure(b, func() int64 { return got.ID })
	if !run.checkErr(what, err, want) {
		return keysOfAll([]binding.Binding{b}), nil
	}
	if created != inserted {
		run.fail("%s: created = %t, the model says %t (found %s)", what, created, inserted, fmtBinding(next))
	}
	if inserted {
		run.adoptWrite(what, &next, got, true)
		run.m.rows[next.ID] = next
	} else {
		run.same(what+" (existing binding, unchanged)", next, got)
	}
	return keysOfAll([]binding.Binding{b}), nil
}

func (run *modelRun) opMarkSuccess() ([]modelKey, []int64) {
	run.f.Helper()
	id := run.pickID()
	sc := binding.Success{Owner: run.writer(run.m.rows[id]),
		ExternalUpdatedAt: modelTimes[run.r.IntN(len(modelTimes))], At: modelTimes[run.r.IntN(len(modelTimes))]}
	if run.r.IntN(3) == 0 { // an export learns its external ID, an import its local ID
		sc.ExternalID = run.key("E")
	}
	if run.r.IntN(3) == 0 {
		sc.LocalID = run.key("L")
	}
	if run.r.IntN(2) == 0 {
		sc.Hash = fmt.Sprintf("r%d-success", run.round)
	}
	what := fmt.Sprintf("MarkSuccess(%d, %+v)", id, sc)
	run.logOp("%s", what)
	got, err := run.s.MarkSuccess(run.ctx, id, sc)
	prev := run.m.rows[id]
	next, want := run.m.markSuccess(id, sc)
	run.checkLeaseErr(what, err, want, prev, sc.Owner)
	if run.checkErr(what, err, want) {
		if sc.At.IsZero() { // "now": between the previous write and this one
			if !run.timeOK(got.SyncedAt) || got.SyncedAt.Before(prev.UpdatedAt.Add(-time.Millisecond)) ||
				got.SyncedAt.After(got.UpdatedAt.Add(time.Millisecond)) {
				run.fail("%s: SyncedAt %v without At, want the store's now (after %v, by %v)", what, got.SyncedAt, prev.UpdatedAt, got.UpdatedAt)
			}
			next.SyncedAt = got.SyncedAt
		}
		run.adoptWrite(what, &next, got, false)
		run.m.rows[id] = next
	}
	var keys []modelKey
	if prev.ID != 0 { // the keys it asked for, in the binding's scope
		keys = keysOf(binding.Binding{Backend: prev.Backend, Model: prev.Model, ExternalID: sc.ExternalID, LocalID: sc.LocalID})
	}
	return keys, []int64{id}
}

func (run *modelRun) opMarkFailed() ([]modelKey, []int64) {
	run.f.Helper()
	id := run.pickID()
	f := binding.Failure{Owner: run.writer(run.m.rows[id]), Error: fmt.Sprintf("HTTP 500 in round %d", run.round)}
	what := fmt.Sprintf("MarkFailed(%d, %+v)", id, f)
	run.logOp("%s", what)
	got, err := run.s.MarkFailed(run.ctx, id, f)
	next, want := run.m.markFailed(id, f)
	run.checkLeaseErr(what, err, want, run.m.rows[id], f.Owner)
	if run.checkErr(what, err, want) {
		run.adoptWrite(what, &next, got, false)
		run.m.rows[id] = next
	}
	return nil, []int64{id}
}

func (run *modelRun) opSetStatus() ([]modelKey, []int64) {
	run.f.Helper()
	id := run.pickID()
	st := modelStatuses[1+run.r.IntN(len(modelStatuses)-1)]
	if run.r.IntN(10) == 0 {
		st = []binding.Status{"", "bogus"}[run.r.IntN(2)]
	}
	owner := run.writer(run.m.rows[id])
	what := fmt.Sprintf("SetStatus(%d, %q, %q)", id, owner, st)
	run.logOp("%s", what)
	err := run.s.SetStatus(run.ctx, id, owner, st)
	prev := run.m.rows[id]
	want := run.m.setStatus(id, owner, st)
	run.checkLeaseErr(what, err, want, prev, owner)
	if run.checkErr(what, err, want) {
		run.m.loose[id] = true // no binding returned: UpdatedAt is learnt from List
	}
	return nil, []int64{id}
}

func (run *modelRun) opClaim() ([]modelKey, []int64) {
	run.f.Helper()
	id := run.pickID()
	owner, ttl := []string{"w1", "w2"}[run.r.IntN(2)], modelLeaseTTL
	if run.r.IntN(12) == 0 {
		if run.r.IntN(2) == 0 {
			owner = ""
		} else {
			ttl = -time.Duration(run.r.IntN(2)) * time.Second
		}
	}
	what := fmt.Sprintf("Claim(%d, %q, %s)", id, owner, ttl)
	run.logOp("%s", what)
	got, err := run.s.Claim(run.ctx, id, owner, ttl)
	prev := run.m.rows[id]
	next, want := run.m.claim(id, owner, ttl)
	if !run.checkErr(what, err, want) {
		if errors.Is(want, binding.ErrLocked) {
			var le *binding.LockedError
			if !errors.As(err, &le) || le.ID != id || le.Owner != prev.LeaseOwner || !sameInstant(le.Expires, prev.LeaseExpiresAt) {
				run.fail("%s: error %#v, want a *binding.LockedError naming %d, %q until %v", what, err, id, prev.LeaseOwner, prev.LeaseExpiresAt)
			}
		}
		return nil, []int64{id}
	}
	// The lease runs ttl from the store's now, which is no earlier than any time seen.
	if !run.timeOK(got.LeaseExpiresAt) || got.LeaseExpiresAt.Before(run.latest.Add(ttl-time.Millisecond)) {
		run.fail("%s: LeaseExpiresAt %v, want the store's now (at or after %v) + %s", what, got.LeaseExpiresAt, run.latest, ttl)
	}
	if prev.LeaseOwner == owner && got.LeaseExpiresAt.Before(prev.LeaseExpiresAt.Add(-time.Millisecond)) {
		run.fail("%s: extending %q's lease moved it back from %v to %v", what, owner, prev.LeaseExpiresAt, got.LeaseExpiresAt)
	}
	next.LeaseExpiresAt = got.LeaseExpiresAt
	// The contract leaves open whether a claim is an update.
	run.adoptUpdated(what, &next, got.UpdatedAt)
	run.same(what, next, got)
	run.m.rows[id] = next
	return nil, []int64{id}
}

func (run *modelRun) opRenew() ([]modelKey, []int64) {
	run.f.Helper()
	id := run.pickID()
	// Half the time the holder renews; otherwise a worker whose lease was lost, or none.
	owner, ttl := run.m.rows[id].LeaseOwner, modelLeaseTTL
	if owner == "" || run.r.IntN(2) == 0 {
		owner = modelOwners[1+run.r.IntN(len(modelOwners)-1)]
	}
	if run.r.IntN(20) == 0 {
		owner = ""
	}
	if run.r.IntN(12) == 0 {
		ttl = -time.Duration(run.r.IntN(2)) * time.Second
	}
	what := fmt.Sprintf("Renew(%d, %q, %s)", id, owner, ttl)
	run.logOp("%s", what)
	got, err := run.s.Renew(run.ctx, id, owner, ttl)
	prev := run.m.rows[id]
	next, want := run.m.renew(id, owner, ttl)
	run.checkLeaseErr(what, err, want, prev, owner)
	if !run.checkErr(what, err, want) {
		return nil, []int64{id}
	}
	if !run.timeOK(got.LeaseExpiresAt) || got.LeaseExpiresAt.Before(run.latest.Add(ttl-time.Millisecond)) {
		run.fail("%s: LeaseExpiresAt %v, want the store's now (at or after %v) + %s", what, got.LeaseExpiresAt, run.latest, ttl)
	}
	next.LeaseExpiresAt = got.LeaseExpiresAt
	run.adoptUpdated(what, &next, got.UpdatedAt)
	run.same(what, next, got)
	run.m.rows[id] = next
	return nil, []int64{id}
}

// checkLeaseErr checks the typed error of a write the model refuses for its lease: a
// *LeaseLostError naming the writer's owner and the holder, or a *LockedError naming the
// holder.
func (run *modelRun) checkLeaseErr(what string, err, want error, prev binding.Binding, owner string) {
	run.f.Helper()
	switch {
	case errors.Is(want, binding.ErrLeaseLost):
		var lost *binding.LeaseLostError
		if !errors.As(err, &lost) || lost.ID != prev.ID || lost.Owner != owner || lost.Holder != prev.LeaseOwner ||
			(lost.Holder != "" && !sameInstant(lost.Expires, prev.LeaseExpiresAt)) {
			run.fail("%s: error %#v, want a *binding.LeaseLostError naming %d, owner %q, holder %q until %v",
				what, err, prev.ID, owner, prev.LeaseOwner, prev.LeaseExpiresAt)
		}
	case errors.Is(want, binding.ErrLocked):
		var le *binding.LockedError
		if !errors.As(err, &le) || le.ID != prev.ID || le.Owner != prev.LeaseOwner || !sameInstant(le.Expires, prev.LeaseExpiresAt) {
			run.fail("%s: error %#v, want a *binding.LockedError naming %d, %q until %v", what, err, prev.ID, prev.LeaseOwner, prev.LeaseExpiresAt)
		}
	}
}

func (run *modelRun) opRelease() ([]modelKey, []int64) {
	run.f.Helper()
	id := run.pickID()
	owner := []string{"w1", "w2", ""}[run.r.IntN(3)]
	what := fmt.Sprintf("Release(%d, %q)", id, owner)
	run.logOp("%s", what)
	err := run.s.Release(run.ctx, id, owner)
	run.checkErr(what, err, nil)
	if b, ok := run.m.rows[id]; ok && owner != "" && b.LeaseOwner == owner {
		b.LeaseOwner, b.LeaseExpiresAt = "", time.Time{}
		run.m.rows[id] = b
		run.m.loose[id] = true
	}
	return nil, []int64{id}
}

func (run *modelRun) opDelete() ([]modelKey, []int64) {
	run.f.Helper()
	id := run.pickID()
	what := fmt.Sprintf("Delete(%d)", id)
	run.logOp("%s", what)
	err := run.s.Delete(run.ctx, id)
	var want error
	if _, ok := run.m.rows[id]; !ok {
		want = binding.ErrNotFound
	}
	if run.checkErr(what, err, want) {
		delete(run.m.rows, id)
		delete(run.m.loose, id)
		run.deleted = append(run.deleted, id)
	}
	return nil, []int64{id}
}

// --- comparisons ---

var modelSentinels = [...]error{binding.ErrConflict, binding.ErrNotFound, binding.ErrInvalid, binding.ErrLocked, binding.ErrLeaseLost}

// checkErr fails unless err matches the model's want (nil, or one sentinel and no other).
// It reports whether both succeeded.
func (run *modelRun) checkErr(what string, err, want error) bool {
	run.f.Helper()
	op, _, _ := strings.Cut(what, "(")
	if want == nil {
		run.outcomes[op+": ok"]++
	} else {
		run.outcomes[op+": "+strings.TrimPrefix(want.Error(), "binding: ")]++
	}
	if want == nil {
		if err != nil {
			run.fail("%s: the model succeeds, the store fails with %v", what, err)
		}
		return true
	}
	if err == nil {
		run.fail("%s: the model fails with %v, the store succeeds", what, want)
	}
	for _, s := range modelSentinels {
		if errors.Is(err, s) != (s == want) {
			run.fail("%s: the model fails with %v, the store with %v", what, want, err)
		}
	}
	return false
}

// timeOK reports whether a store-set time is set and in UTC.
func (run *modelRun) timeOK(t time.Time) bool { return !t.IsZero() && t.Location() == time.UTC }

// adoptUpdated checks the store's new UpdatedAt (set, UTC, not before the previous one)
// and takes it into next.
func (run *modelRun) adoptUpdated(what string, next *binding.Binding, updated time.Time) {
	run.f.Helper()
	if !run.timeOK(updated) || updated.Before(next.UpdatedAt.Add(-time.Millisecond)) ||
		updated.Before(next.CreatedAt.Add(-time.Millisecond)) {
		run.fail("%s: UpdatedAt %v, want a UTC time at or after %v (the previous update) and %v (creation)",
			what, updated, next.UpdatedAt, next.CreatedAt)
	}
	next.UpdatedAt = updated
	if updated.After(run.latest) {
		run.latest = updated
	}
}

// adoptWrite checks the binding a write returned against the model's next and takes the
// times only the store knows: CreatedAt of an insert, UpdatedAt of every write.
func (run *modelRun) adoptWrite(what string, next *binding.Binding, got binding.Binding, inserted bool) {
	run.f.Helper()
	if inserted {
		if got.ID != next.ID {
			run.fail("%s: the model inserts a new binding, the store returned binding %d, not a new ID\nstore %s",
				what, got.ID, fmtFull(got))
		}
		if !run.timeOK(got.CreatedAt) {
			run.fail("%s: inserted binding has CreatedAt %v, want a UTC time", what, got.CreatedAt)
		}
		next.CreatedAt = got.CreatedAt
	}
	run.adoptUpdated(what, next, got.UpdatedAt)
	run.same(what, *next, got)
}

// same fails unless got equals want in every field, times within the millisecond every
// store keeps and in UTC.
func (run *modelRun) same(what string, want, got binding.Binding) {
	run.f.Helper()
	for _, tp := range [...]struct {
		name string
		w, g time.Time
	}{
		{"SyncedAt", want.SyncedAt, got.SyncedAt}, {"ExternalUpdatedAt", want.ExternalUpdatedAt, got.ExternalUpdatedAt},
		{"CreatedAt", want.CreatedAt, got.CreatedAt}, {"UpdatedAt", want.UpdatedAt, got.UpdatedAt},
		{"LeaseExpiresAt", want.LeaseExpiresAt, got.LeaseExpiresAt},
	} {
		if !sameInstant(tp.g, tp.w) || !tp.g.IsZero() && tp.g.Location() != time.UTC {
			run.fail("%s: %s = %v, the model has %v\nstore %s\nmodel %s", what, tp.name, tp.g, tp.w, fmtFull(got), fmtFull(want))
		}
	}
	w, g := want, got
	for _, b := range []*binding.Binding{&w, &g} {
		b.SyncedAt, b.ExternalUpdatedAt, b.CreatedAt, b.UpdatedAt, b.LeaseExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	}
	if w != g {
		var diff []string
		for _, f := range [...]struct {
			name string
			w, g any
		}{
			{"ID", w.ID, g.ID}, {"Backend", w.Backend, g.Backend}, {"Model", w.Model, g.Model},
			{"LocalID", w.LocalID, g.LocalID}, {"ExternalID", w.ExternalID, g.ExternalID},
			{"Status", w.Status, g.Status}, {"LastError", w.LastError, g.LastError},
			{"RetryCount", w.RetryCount, g.RetryCount}, {"Hash", w.Hash, g.Hash},
			{"NoExport", w.NoExport, g.NoExport}, {"LeaseOwner", w.LeaseOwner, g.LeaseOwner},
		} {
			if f.w != f.g {
				diff = append(diff, fmt.Sprintf("%s = %#v, the model has %#v", f.name, f.g, f.w))
			}
		}
		run.fail("%s: %s\nstore %s\nmodel %s", what, strings.Join(diff, "; "), fmtFull(got), fmtFull(want))
	}
}

// sameInstant reports whether a and b are both zero, or both set within a millisecond.
func sameInstant(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	d := a.Sub(b)
	return d >= -time.Millisecond && d <= time.Millisecond
}

// checkList compares List with the model, in ID order. Rows whose UpdatedAt the model
// cannot know (after SetStatus or Release) take the listed one, if it did not go back.
func (run *modelRun) checkList() {
	run.f.Helper()
	var got []binding.Binding
	for b, err := range run.s.List(run.ctx, binding.Filter{}) {
		if err != nil {
			run.fail("List: %v", err)
		}
		got = append(got, b)
	}
	want := run.m.sorted()
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			run.fail("List: binding %s is missing (the store lists %d, the model has %d)", fmtFull(want[i]), len(got), len(want))
		case i >= len(want):
			run.fail("List: extra binding %s (the store lists %d, the model has %d)", fmtFull(got[i]), len(got), len(want))
		case got[i].ID != want[i].ID:
			run.fail("List: item %d is binding %d, the model's is %d\nstore %s\nmodel %s", i, got[i].ID, want[i].ID, fmtFull(got[i]), fmtFull(want[i]))
		}
		w := want[i]
		if run.m.loose[w.ID] {
			run.adoptUpdated(fmt.Sprintf("List: binding %d", w.ID), &w, got[i].UpdatedAt)
			run.m.rows[w.ID] = w
			delete(run.m.loose, w.ID)
		}
		run.same(fmt.Sprintf("List: binding %d", w.ID), w, got[i])
	}
}

// checkLookups looks up keys and ids one by one and the external keys of each scope at
// once; each must give the model's binding or ErrNotFound.
func (run *modelRun) checkLookups(keys []modelKey, ids []int64) {
	run.f.Helper()
	slices.SortFunc(keys, modelKey.compare)
	keys = slices.Compact(keys)
	many := map[[2]string][]string{}
	for _, k := range keys {
		if k.id == "" {
			continue
		}
		var got binding.Binding
		var err error
		side := "GetByLocal"
		if k.local {
			got, err = run.s.GetByLocal(run.ctx, k.backend, k.model, k.id)
		} else {
			side = "GetByExternal"
			got, err = run.s.GetByExternal(run.ctx, k.backend, k.model, k.id)
			sc := [2]string{k.backend, k.model}
			many[sc] = append(many[sc], k.id)
		}
		what := fmt.Sprintf("%s(%s, %s, %q)", side, k.backend, k.model, k.id)
		if owner := run.m.owner(k.backend, k.model, k.local, k.id); owner != 0 {
			if run.checkErr(what, err, nil) {
				run.same(what, run.m.rows[owner], got)
			}
		} else {
			run.checkErr(what, err, binding.ErrNotFound)
		}
	}
	for sc, exts := range many {
		// With an empty ID and a repeat, both allowed.
		exts = append(exts, "", exts[0])
		got, err := run.s.GetManyByExternal(run.ctx, sc[0], sc[1], exts)
		what := fmt.Sprintf("GetManyByExternal(%s, %s, %q)", sc[0], sc[1], exts)
		run.checkErr(what, err, nil)
		n := 0
		for _, id := range exts {
			owner := run.m.owner(sc[0], sc[1], false, id)
			b, ok := got[id]
			switch {
			case owner == 0 && ok:
				run.fail("%s: %q gives %s, the model has no binding for it", what, id, fmtFull(b))
			case owner != 0 && !ok:
				run.fail("%s: %q is missing, the model has %s", what, id, fmtFull(run.m.rows[owner]))
			case ok:
				run.same(fmt.Sprintf("%s[%q]", what, id), run.m.rows[owner], b)
			}
		}
		for _, id := range slices.Compact(slices.Sorted(slices.Values(exts))) {
			if run.m.owner(sc[0], sc[1], false, id) != 0 {
				n++
			}
		}
		if len(got) != n {
			run.fail("%s: %d bindings, the model has %d", what, len(got), n)
		}
	}
	for _, id := range ids {
		if id == 0 {
			continue
		}
		got, err := run.s.Get(run.ctx, id)
		what := fmt.Sprintf("Get(%d)", id)
		if want, ok := run.m.rows[id]; ok {
			if run.checkErr(what, err, nil) {
				run.same(what, want, got)
			}
		} else {
			run.checkErr(what, err, binding.ErrNotFound)
		}
	}
}

// sweep looks up every key of the key space and every ID ever seen.
func (run *modelRun) sweep() {
	run.f.Helper()
	var keys []modelKey
	for _, sc := range modelScopes {
		for i := range modelMaxKeys {
			keys = append(keys, modelKey{sc[0], sc[1], false, fmt.Sprint("E", i)}, modelKey{sc[0], sc[1], true, fmt.Sprint("L", i)})
		}
	}
	ids := append(slices.Collect(maps.Keys(run.m.rows)), run.deleted...)
	run.checkLookups(keys, ids)
}

func (run *modelRun) checkCounts() {
	run.f.Helper()
	backend := []string{"", backendA, backendB}[run.r.IntN(3)]
	model := []string{"", modelP, modelC}[run.r.IntN(3)]
	got, err := run.s.Counts(run.ctx, backend, model)
	what := fmt.Sprintf("Counts(%q, %q)", backend, model)
	run.checkErr(what, err, nil)
	want := map[binding.Status]int{}
	for _, b := range run.m.rows {
		if (backend == "" || b.Backend == backend) && (model == "" || b.Model == model) {
			want[b.Status]++
		}
	}
	maps.DeleteFunc(got, func(_ binding.Status, n int) bool { return n == 0 }) // absent or zero: both allowed
	if !maps.Equal(got, want) {
		run.fail("%s = %v, the model has %v", what, got, want)
	}
}

// checkFilteredList lists with a random filter; filterMatch is the reference.
func (run *modelRun) checkFilteredList() {
	run.f.Helper()
	r := run.r
	f := binding.Filter{
		Backend: []string{"", backendA, backendB}[r.IntN(3)],
		Model:   []string{"", modelP, modelC}[r.IntN(3)],
	}
	for _, st := range modelStatuses[1:] {
		if r.IntN(4) == 0 {
			f.Statuses = append(f.Statuses, st)
		}
	}
	if r.IntN(3) == 0 {
		f.RetryableBelow = 1 + r.IntN(3)
	}
	rows := run.m.sorted()
	if r.IntN(2) == 0 && len(rows) > 0 {
		f.ChangedSince = rows[r.IntN(len(rows))].UpdatedAt
	}
	if r.IntN(3) == 0 {
		f.Limit = 1 + r.IntN(5)
	}
	var want []binding.Binding
	for _, b := range rows {
		if filterMatch(&f, &b) && (f.Limit == 0 || len(want) < f.Limit) {
			want = append(want, b)
		}
	}
	what := fmt.Sprintf("List(%+v)", f)
	i := 0
	for b, err := range run.s.List(run.ctx, f) {
		if err != nil {
			run.fail("%s: %v", what, err)
		}
		if i >= len(want) {
			run.fail("%s: extra binding %s after the model's %d", what, fmtFull(b), len(want))
		}
		run.same(fmt.Sprintf("%s: item %d", what, i), want[i], b)
		i++
	}
	if i != len(want) {
		run.fail("%s: %d bindings, the model has %d; first missing %s", what, i, len(want), fmtFull(want[i]))
	}
}

// --- the reference model ---

// refModel is the reference store: bindings by ID and linear scans for keys. Times the
// store sets (CreatedAt, UpdatedAt, lease expiry, MarkSuccess's "now") are taken from the
// store's results after checking they are plausible; everything else is predicted.
type refModel struct {
	rows map[int64]binding.Binding
	// loose marks bindings changed by a call that returns no binding (SetStatus,
	// Release): their UpdatedAt is learnt from the next List.
	loose map[int64]bool
	// provisional counts down the IDs of inserts the store gave no usable ID for.
	provisional int64
}

func newRefModel() *refModel {
	return &refModel{rows: map[int64]binding.Binding{}, loose: map[int64]bool{}, provisional: -1 << 62}
}

func (m *refModel) clone() *refModel {
	return &refModel{rows: maps.Clone(m.rows), loose: maps.Clone(m.loose), provisional: m.provisional}
}

func (m *refModel) sorted() []binding.Binding {
	out := make([]binding.Binding, 0, len(m.rows))
	for _, id := range slices.Sorted(maps.Keys(m.rows)) {
		out = append(out, m.rows[id])
	}
	return out
}

// owner returns the ID of the binding holding id on one side of a scope, 0 for none.
func (m *refModel) owner(backend, model string, local bool, id string) int64 {
	if id == "" {
		return 0
	}
	for _, b := range m.rows {
		if b.Backend == backend && b.Model == model && (local && b.LocalID == id || !local && b.ExternalID == id) {
			return b.ID
		}
	}
	return 0
}

// taken returns ErrConflict when b's IDs are bound to a binding other than b.ID.
func (m *refModel) taken(b binding.Binding) error {
	for _, local := range []bool{false, true} {
		id := b.ExternalID
		if local {
			id = b.LocalID
		}
		if o := m.owner(b.Backend, b.Model, local, id); o != 0 && o != b.ID {
			return binding.ErrConflict
		}
	}
	return nil
}

// valid applies the rules of binding.Binding's doc, plus "some ID" when keyed is set.
func valid(b binding.Binding, keyed bool) bool {
	return b.Backend != "" && b.Model != "" && (b.Status == "" || b.Status.Valid()) && b.RetryCount >= 0 &&
		(!keyed || b.ExternalID != "" || b.LocalID != "")
}

// fresh is b as a new binding: no lease, default status, times normalised. ID and
// CreatedAt/UpdatedAt are filled by the caller.
func fresh(b binding.Binding, id int64) binding.Binding {
	b.ID = id
	b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	b.LeaseOwner, b.LeaseExpiresAt = "", time.Time{}
	if b.Status == "" {
		b.Status = binding.StatusPending
	}
	b.SyncedAt, b.ExternalUpdatedAt = utc(b.SyncedAt), utc(b.ExternalUpdatedAt)
	return b
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// upsert applies Upsert's rules and returns the binding as stored (the caller stores it),
// whether it is new, or the sentinel the store must fail with. Arguments are checked
// before lookups, as both Validate's doc and every store do.
func (m *refModel) upsert(b binding.Binding, newID func() int64) (binding.Binding, bool, error) {
	if !valid(b, b.ID == 0) {
		return binding.Binding{}, false, binding.ErrInvalid
	}
	var cur binding.Binding
	if b.ID != 0 {
		var ok bool
		if cur, ok = m.rows[b.ID]; !ok {
			return binding.Binding{}, false, binding.ErrNotFound
		}
	} else {
		ext, local := m.owner(b.Backend, b.Model, false, b.ExternalID), m.owner(b.Backend, b.Model, true, b.LocalID)
		if ext != 0 && local != 0 && ext != local {
			return binding.Binding{}, false, binding.ErrConflict
		}
		id := ext // when both are set they are the same binding
		if id == 0 {
			id = local
		}
		if id != 0 {
			cur = m.rows[id]
		}
	}
	if cur.ID != 0 {
		if err := m.lease(cur, b.LeaseOwner); err != nil {
			return binding.Binding{}, false, err
		}
	}
	next := fresh(b, cur.ID)
	next.CreatedAt, next.UpdatedAt = cur.CreatedAt, cur.UpdatedAt
	next.LeaseOwner, next.LeaseExpiresAt = cur.LeaseOwner, cur.LeaseExpiresAt
	if next.LocalID == "" {
		next.LocalID = cur.LocalID
	}
	if next.ExternalID == "" {
		next.ExternalID = cur.ExternalID
	}
	if err := m.taken(next); err != nil {
		return binding.Binding{}, false, err
	}
	if cur.ID != 0 {
		return next, false, nil
	}
	next.ID = m.insertID(newID())
	return next, true, nil
}

// ensure applies Ensure's rules: the binding of b's external ID (else its local ID), or b
// inserted.
func (m *refModel) ensure(b binding.Binding, newID func() int64) (binding.Binding, bool, error) {
	if !valid(b, true) {
		return binding.Binding{}, false, binding.ErrInvalid
	}
	id := m.owner(b.Backend, b.Model, false, b.ExternalID)
	if b.ExternalID == "" {
		id = m.owner(b.Backend, b.Model, true, b.LocalID)
	}
	if id != 0 {
		return m.rows[id], false, nil
	}
	next := fresh(b, 0)
	if err := m.taken(next); err != nil {
		return binding.Binding{}, false, err
	}
	next.ID = m.insertID(newID())
	return next, true, nil
}

// insertID is the ID of a binding the model inserts: the store's (id), unless the store
// has none (it failed) or gave one that is not new; then a provisional ID below any real
// one, which the comparison with the store's result reports.
func (m *refModel) insertID(id int64) int64 {
	if _, live := m.rows[id]; id > 0 && !live {
		return id
	}
	m.provisional--
	return m.provisional
}

// lease applies the lease rule to a write naming owner on cur; leases never expire within
// a run (see modelLeaseTTL).
func (m *refModel) lease(cur binding.Binding, owner string) error {
	switch {
	case owner != "" && cur.LeaseOwner != owner:
		return binding.ErrLeaseLost
	case owner == "" && cur.LeaseOwner != "":
		return binding.ErrLocked
	}
	return nil
}

func (m *refModel) markSuccess(id int64, sc binding.Success) (binding.Binding, error) {
	next, ok := m.rows[id]
	if !ok {
		return binding.Binding{}, binding.ErrNotFound
	}
	if err := m.lease(next, sc.Owner); err != nil {
		return binding.Binding{}, err
	}
	if sc.LocalID != "" {
		next.LocalID = sc.LocalID
	}
	if sc.ExternalID != "" {
		next.ExternalID = sc.ExternalID
	}
	if err := m.taken(next); err != nil {
		return binding.Binding{}, err
	}
	if sc.Hash != "" {
		next.Hash = sc.Hash
	}
	if !sc.ExternalUpdatedAt.IsZero() {
		next.ExternalUpdatedAt = sc.ExternalUpdatedAt.UTC()
	}
	next.SyncedAt = utc(sc.At) // zero: the caller takes the store's now
	next.Status, next.LastError, next.RetryCount = binding.StatusSuccess, "", 0
	return next, nil
}

func (m *refModel) markFailed(id int64, f binding.Failure) (binding.Binding, error) {
	next, ok := m.rows[id]
	if !ok {
		return binding.Binding{}, binding.ErrNotFound
	}
	if err := m.lease(next, f.Owner); err != nil {
		return binding.Binding{}, err
	}
	next.Status, next.LastError = binding.StatusFailed, f.Error
	next.RetryCount++
	return next, nil
}

func (m *refModel) setStatus(id int64, owner string, st binding.Status) error {
	if !st.Valid() {
		return binding.ErrInvalid
	}
	b, ok := m.rows[id]
	if !ok {
		return binding.ErrNotFound
	}
	if err := m.lease(b, owner); err != nil {
		return err
	}
	b.Status = st
	m.rows[id] = b
	return nil
}

// claim applies Claim's rules; leases never expire within a run (see modelLeaseTTL).
func (m *refModel) claim(id int64, owner string, ttl time.Duration) (binding.Binding, error) {
	if owner == "" || ttl <= 0 {
		return binding.Binding{}, binding.ErrInvalid
	}
	b, ok := m.rows[id]
	switch {
	case !ok:
		return binding.Binding{}, binding.ErrNotFound
	case b.LeaseOwner != "" && b.LeaseOwner != owner:
		return binding.Binding{}, binding.ErrLocked
	}
	b.LeaseOwner = owner
	return b, nil
}

// renew applies Renew's rules: only the holder extends its lease (the caller sets the
// expiry from the store's result).
func (m *refModel) renew(id int64, owner string, ttl time.Duration) (binding.Binding, error) {
	if owner == "" || ttl <= 0 {
		return binding.Binding{}, binding.ErrInvalid
	}
	b, ok := m.rows[id]
	switch {
	case !ok:
		return binding.Binding{}, binding.ErrNotFound
	case b.LeaseOwner != owner:
		return binding.Binding{}, binding.ErrLeaseLost
	}
	return b, nil
}

// --- keys and formatting ---

// modelKey is one unique key: an external or local ID in a scope.
type modelKey struct {
	backend, model string
	local          bool
	id             string
}

func (k modelKey) compare(o modelKey) int {
	if c := strings.Compare(k.backend+"\x00"+k.model+"\x00"+k.id, o.backend+"\x00"+o.model+"\x00"+o.id); c != 0 {
		return c
	}
	switch {
	case k.local == o.local:
		return 0
	case k.local:
		return 1
	}
	return -1
}

func keysOf(b binding.Binding) []modelKey {
	return []modelKey{{b.Backend, b.Model, false, b.ExternalID}, {b.Backend, b.Model, true, b.LocalID}}
}

func keysOfAll(bs []binding.Binding) []modelKey {
	var out []modelKey
	for _, b := range bs {
		out = append(out, keysOf(b)...)
	}
	return out
}

func idsOf(bs []binding.Binding) []int64 {
	var out []int64
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

// fmtBinding shows what a generated binding asks for.
func fmtBinding(b binding.Binding) string {
	var sb strings.Builder
	if b.ID != 0 {
		fmt.Fprintf(&sb, "id=%d ", b.ID)
	}
	fmt.Fprintf(&sb, "%s/%s ext=%q local=%q", b.Backend, b.Model, b.ExternalID, b.LocalID)
	if b.LeaseOwner != "" {
		fmt.Fprintf(&sb, " lease=%q", b.LeaseOwner)
	}
	if !valid(b, b.ID == 0) {
		fmt.Fprintf(&sb, " status=%q retries=%d", b.Status, b.RetryCount)
	}
	return "{" + sb.String() + "}"
}

func fmtBindings(bs []binding.Binding) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%d:%s", i, fmtBinding(b))
	}
	return strings.Join(parts, " ")
}

// fmtFull shows every field, times in RFC 3339 with microseconds.
func fmtFull(b binding.Binding) string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return t.Format("2006-01-02T15:04:05.000000Z07:00")
	}
	return fmt.Sprintf("{ID:%d %s/%s ext=%q local=%q status=%q lastError=%q retries=%d synced=%s extUpdated=%s hash=%q noExport=%t lease=%q until %s created=%s updated=%s}",
		b.ID, b.Backend, b.Model, b.ExternalID, b.LocalID, b.Status, b.LastError, b.RetryCount, ts(b.SyncedAt),
		ts(b.ExternalUpdatedAt), b.Hash, b.NoExport, b.LeaseOwner, ts(b.LeaseExpiresAt), ts(b.CreatedAt), ts(b.UpdatedAt))
}

// filterMatch is the model's reading of binding.Filter's field docs, written apart from
// the stores' own filters so that the memory store is not checked against itself: every
// set field must match; Statuses matches any of them; RetryableBelow keeps failed bindings
// whose RetryCount is below it; ChangedSince keeps bindings updated at or after it.
func filterMatch(f *binding.Filter, b *binding.Binding) bool {
	return (f.Backend == "" || b.Backend == f.Backend) &&
		(f.Model == "" || b.Model == f.Model) &&
		(len(f.Statuses) == 0 || slices.Contains(f.Statuses, b.Status)) &&
		(f.RetryableBelow <= 0 || (b.Status == binding.StatusFailed && b.RetryCount < f.RetryableBelow)) &&
		(f.ChangedSince.IsZero() || !b.UpdatedAt.Before(f.ChangedSince))
}
