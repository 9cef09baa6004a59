package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connkit/connkit/apisync"
	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/report"
	"github.com/connkit/connkit/sqlstore"
	"github.com/connkit/connkit/synclog"
)

const retryUsage = `Usage:
  connkit bindings retry --config FILE [--name NAME] [--id N]… [--json]
  connkit bindings retry --model M [--backend B] [--id N]… [--json]

Retry failed records.

With --config, push again now the records whose push through that outbound apisync
config failed (its bindings: backend = the config's name, status failed), and report like
'connkit push'; an outbound GET config is pulled again. The exit status is 1 when a
record fails again.

Without --config, reset the retry count of the model's failed bindings, so a connector
that stops trying a record after too many failures (a retry limit: exporter or importer
WithMaxRetries, backend MaxRetries) tries it again on its next run. The bindings stay
failed, so retry operations (retry_<model>) still find them. A binding another worker
holds is left alone and reported. (apisync pushes have no retry limit: every push
already sends failed records again; use --config to send them now.)

--id limits the retry to these binding IDs (repeat it, or separate IDs by commas).
--json writes one JSON object: with --config the push summary (see 'connkit push
--help'); otherwise {"reset": [IDs], "locked": [IDs]}.
`

// idList is a repeatable --id flag.
type idList []int64

func (l *idList) String() string {
	parts := make([]string, len(*l))
	for i, id := range *l {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

func (l *idList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%q is not a binding ID (a positive integer)", p)
		}
		*l = append(*l, id)
	}
	return nil
}

func bindingsRetry(ctx context.Context, e *env, args []string) (err error) {
	f := newFlags("bindings retry", retryUsage)
	dsn := f.dbFlag()
	config := f.String("config", "", "push again the failed records of this outbound apisync config (file or directory)")
	name := f.String("name", "", "the outbound config, when --config holds several")
	model := f.String("model", "", "the model whose failed bindings to reset (required without --config)")
	backend := f.String("backend", "", "only bindings of this backend")
	var ids idList
	f.Var(&ids, "id", "only this binding ID (repeatable)")
	asJSON := f.jsonFlag("write the result as one JSON object")
	if err := f.parseNoArgs(e.stdout, args); err != nil {
		return err
	}
	if *config == "" {
		if *name != "" {
			return usagef(f.cmd, "--name picks a config of --config")
		}
		if *model == "" {
			return usagef(f.cmd, "--model is required (or --config to push an apisync config's failed records)")
		}
		return resetRetries(ctx, e, *dsn, *backend, *model, ids, *asJSON)
	}

	cfgs, err := apisync.Load(*config)
	if err != nil {
		return reportProblems(e.stderr, configProblems(err))
	}
	cfg, err := pickOut(f, cfgs, *name, *config)
	if err != nil {
		return err
	}
	if *model != "" && *model != cfg.Model {
		return usagef(f.cmd, "--model %q: config %q pushes model %q", *model, cfg.Name, cfg.Model)
	}
	if *backend != "" && *backend != cfg.Name {
		return usagef(f.cmd, "--backend %q: the bindings of config %q have backend %q", *backend, cfg.Name, cfg.Name)
	}
	db, err := openDB(ctx, *dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)
	prog := newProgress(e.stderr, cfg.Name, 100)
	s, err := apisync.Open(ctx, db, cfgs, apisync.WithRecorder(synclog.Multi(db.Log(), prog)))
	if err != nil {
		return err
	}
	res := pushResult{Config: cfg.Name}
	if cfg.Methods[0] == http.MethodGet {
		counts, err := s.Push(ctx, cfg.Name)
		prog.finish()
		return reportPush(e, res, counts, err, *asJSON)
	}
	counts, err := retryPush(ctx, s, db, cfg, ids)
	prog.finish()
	if err == nil && counts.Total() == 0 {
		fmt.Fprintf(e.stderr, "connkit: config %q has no failed records to retry\n", cfg.Name)
	}
	return reportPush(e, res, counts, err, *asJSON)
}

// retryChunk is how many records one Push call of a retry is given.
const retryChunk = 500

// retryPush pushes the records of cfg's failed bindings again, a chunk at a time.
func retryPush(ctx context.Context, s *apisync.Sync, db *sqlstore.DB, cfg apisync.Config, only idList) (report.Counts, error) {
	var total report.Counts
	var errs []error
	failed := 0
	chunk := make([]string, 0, retryChunk)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		c, err := s.Push(ctx, cfg.Name, chunk...)
		chunk = chunk[:0]
		total = total.Add(c)
		var pe *report.PartialError
		if errors.As(err, &pe) {
			failed += pe.Failed
			errs = append(errs, pe.Errors...)
			return nil
		}
		return err
	}
	filter := binding.Filter{Backend: cfg.Name, Model: cfg.Model, Statuses: []binding.Status{binding.StatusFailed}}
	for b, err := range db.Bindings().List(ctx, filter) {
		if err != nil {
			return total, fmt.Errorf("list the failed bindings of config %q: %w", cfg.Name, err)
		}
		if b.LocalID == "" || len(only) > 0 && !slices.Contains(only, b.ID) {
			continue
		}
		// Push re-marks the binding as it goes, which can move it in the listing:
		// collect a chunk, then push it.
		chunk = append(chunk, b.LocalID)
		if len(chunk) == retryChunk {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := flush(); err != nil {
		return total, err
	}
	return total, report.Partial(failed, errs)
}

// resetRetries resets the retry count of failed bindings, each under its lease so no
// sync running at the same time is overwritten.
func resetRetries(ctx context.Context, e *env, dsn, backend, model string, only idList, asJSON bool) (err error) {
	db, err := openDB(ctx, dsn)
	if err != nil {
		return err
	}
	defer closeStore(db, &err)
	store := db.Bindings()
	owner := "connkit-cli-" + strconv.Itoa(os.Getpid())
	reset, locked := []int64{}, []int64{}
	filter := binding.Filter{Backend: backend, Model: model, Statuses: []binding.Status{binding.StatusFailed}}
	for b, err := range store.List(ctx, filter) {
		if err != nil {
			return fmt.Errorf("list the failed bindings of model %q: %w", model, err)
		}
		if len(only) > 0 && !slices.Contains(only, b.ID) {
			continue
		}
		ok, err := resetOne(ctx, store, b.ID, owner)
		if errors.Is(err, binding.ErrLocked) {
			locked = append(locked, b.ID)
			fmt.Fprintf(e.stderr, "connkit: binding %d is being synced (%s): left alone\n", b.ID, clean(err.Error()))
			continue
		}
		if err != nil {
			return fmt.Errorf("reset binding %d: %w (bindings reset so far: %v)", b.ID, err, reset)
		}
		if ok {
			reset = append(reset, b.ID)
		}
	}
	if asJSON {
		out := struct {
			Reset  []int64 `json:"reset"`
			Locked []int64 `json:"locked"`
		}{reset, locked}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "reset the retry count of %d failed binding(s) of model %q: the next sync retries them\n", len(reset), model)
	}
	if len(locked) > 0 {
		return fmt.Errorf("%d binding(s) were being synced and were left alone: run the retry again later", len(locked))
	}
	return nil
}

// resetOne claims binding id, sets its RetryCount to 0 if it is still failed, and
// releases it. ok reports a reset.
func resetOne(ctx context.Context, store binding.Store, id int64, owner string) (ok bool, err error) {
	b, err := store.Claim(ctx, id, owner, time.Minute)
	if errors.Is(err, binding.ErrNotFound) {
		return false, nil // deleted meanwhile
	}
	if err != nil {
		return false, err
	}
	defer func() {
		if rerr := store.Release(context.WithoutCancel(ctx), id, owner); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if b.Status != binding.StatusFailed { // synced meanwhile
		return false, nil
	}
	b.RetryCount = 0
	b.LeaseOwner = owner
	if _, err := store.Upsert(ctx, b); err != nil {
		return false, err
	}
	return true, nil
}
