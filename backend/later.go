package backend

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/connkit/connkit/adapter"
	"github.com/connkit/connkit/mapper"
	"github.com/connkit/connkit/queue"
	"github.com/connkit/connkit/report"
)

// The built-in job kinds. Their arguments name the backend, so a job enqueued by one
// backend is never worked by another that shares the queue's tables.
type (
	// importJob imports external records of a model (Backend.Import).
	importJob struct {
		Backend string   `json:"backend"`
		Model   string   `json:"model"`
		IDs     []string `json:"ids"`
	}
	// exportJob exports local records of a model (Backend.Export).
	exportJob struct {
		Backend string   `json:"backend"`
		Model   string   `json:"model"`
		IDs     []string `json:"ids"`
	}
	// syncJob runs an operation (Backend.Sync), "retry_<model>" included.
	syncJob struct {
		Backend   string `json:"backend"`
		Operation string `json:"operation"`
	}
)

func (importJob) Kind() string { return "connkit.import" }
func (exportJob) Kind() string { return "connkit.export" }
func (syncJob) Kind() string   { return "connkit.sync" }

// buildQueue registers the built-in job kinds and makes the queue.
func (b *Backend) buildQueue() error {
	b.workers = &queue.Workers{}
	if err := b.workers.SetQueue(queueName(b.cfg.Name)); err != nil {
		return fmt.Errorf("backend %q: %w", b.cfg.Name, err)
	}
	queue.AddWorker(b.workers, func(ctx context.Context, j *queue.Job[importJob]) error {
		if err := b.ownJob(j.Args.Backend); err != nil {
			return err
		}
		_, err := b.Import(ctx, j.Args.Model, j.Args.IDs...)
		return JobError(err)
	})
	queue.AddWorker(b.workers, func(ctx context.Context, j *queue.Job[exportJob]) error {
		if err := b.ownJob(j.Args.Backend); err != nil {
			return err
		}
		_, err := b.Export(ctx, j.Args.Model, j.Args.IDs...)
		return JobError(err)
	})
	queue.AddWorker(b.workers, func(ctx context.Context, j *queue.Job[syncJob]) error {
		if err := b.ownJob(j.Args.Backend); err != nil {
			return err
		}
		_, err := b.Sync(ctx, j.Args.Operation)
		return JobError(err)
	})
	b.addWebhookWorker()
	if b.newQueue == nil {
		b.queue = queue.NewPool(b.workers, queue.WithLogger(b.logger))
		return nil
	}
	q, err := b.newQueue(context.Background(), b.workers)
	if err != nil {
		return fmt.Errorf("backend %q: making the queue: %w", b.cfg.Name, err)
	}
	if q == nil {
		return fmt.Errorf("backend %q: WithQueue returned no queue", b.cfg.Name)
	}
	b.queue = q
	return nil
}

// queueName is the queue a backend's jobs go to: its own, so backends that share one
// River database never take each other's jobs. Names River cannot take as they are
// (upper case, dots, spaces, too long) are folded and made unique with a hash of the name.
func queueName(backend string) string {
	var sb strings.Builder
	dash := false
	for _, r := range strings.ToLower(backend) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			sb.WriteRune(r)
			dash = false
		} else if !dash && sb.Len() > 0 {
			sb.WriteByte('-')
			dash = true
		}
	}
	folded := strings.TrimSuffix(sb.String(), "-")
	if folded == backend && len(folded) <= 48 {
		return "connkit-" + folded
	}
	sum := sha256.Sum256([]byte(backend))
	if len(folded) > 38 {
		folded = strings.TrimSuffix(folded[:38], "-")
	}
	if folded == "" {
		return "connkit-" + hex.EncodeToString(sum[:6])
	}
	return "connkit-" + folded + "-" + hex.EncodeToString(sum[:6])
}

func (b *Backend) ownJob(backend string) error {
	if backend != b.cfg.Name {
		return queue.Permanent(fmt.Errorf("job of backend %q reached backend %q: give each backend its own queue", backend, b.cfg.Name))
	}
	return nil
}

// JobError is what a queue job running a backend call returns for the call's error err:
// err made permanent (queue.Permanent) when no retry can fix it, so the job ends at once
// instead of being retried with backoff until its attempts run out — a model or operation
// that does not exist, an invalid config, records that all failed for reasons a retry
// cannot change (an API answer 4xx other than 408 and 429, data that does not map, too
// many failures already); otherwise err. Other record failures are retried: each attempt
// marks the records' bindings failed with the latest error, so a job that fails for good
// leaves them visible as failed, for retry_<model> or a later edit to pick up. The
// backend's own jobs use it; use it in workers of your own that call the backend.
func JobError(err error) error {
	if errors.Is(err, ErrUnknownModel) || errors.Is(err, ErrNotSupported) || errors.Is(err, ErrUnknownOperation) || errors.Is(err, ErrInvalidConfig) {
		return queue.Permanent(err)
	}
	var partial *report.PartialError
	if errors.As(err, &partial) && partial.Failed > 0 && partial.Failed == len(partial.Errors) &&
		!slices.ContainsFunc(partial.Errors, func(e error) bool { return !permanentRecordError(e) }) {
		return queue.Permanent(err)
	}
	return err
}

// permanentRecordError reports whether a record failed for a reason the same request
// would meet again: the API refused it with a 4xx other than 408 and 429 (validation,
// conflict, not found, credentials), its data does not map (a required value missing, a
// value that does not convert), or it failed too many times already.
func permanentRecordError(err error) bool {
	if errors.Is(err, report.ErrTooManyRetries) || errors.Is(err, mapper.ErrRequired) || errors.Is(err, mapper.ErrConvert) {
		return true
	}
	var apiErr *adapter.Error
	if errors.As(err, &apiErr) {
		s := apiErr.Status
		return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
	}
	return false
}

// Later defers work to the backend's queue: the with_delay of the Odoo original. Each call
// enqueues one job of a built-in kind and returns it; the job runs on a worker once the
// backend is started (Start), in this process or, with a durable queue, in any process of
// the connector.
//
// A job gets an identity key derived from what it does (kind, model, sorted IDs), so the
// same work queued twice while the first is still waiting runs once; the returned JobInfo
// then has Duplicate set. An import or export queued while its twin is already running is
// never dropped, since the running job may have read the records before the change being
// queued: it gets one follow-up job, which waits for the running one (through the records'
// leases) and dedups further requests in turn. An operation (Sync) queued while it runs is
// a duplicate: runs of one operation never overlap. Enqueue options (priority, delay, max
// attempts, another identity key) apply after that default key.
//
// ExportTx sets no default key: inside a transaction the twin found may start, and read
// the record, before the transaction commits. A second export of an unchanged record is
// cheap (the exporter skips it), a lost one is not.
type Later struct {
	b    *Backend
	opts []queue.EnqueueOption
}

// Later returns a Later whose jobs get opts.
func (b *Backend) Later(opts ...queue.EnqueueOption) *Later {
	return &Later{b: b, opts: opts}
}

// Import enqueues the import of external records of model (fetched one by one).
func (l *Later) Import(ctx context.Context, model string, externalIDs ...string) (queue.JobInfo, error) {
	m, err := l.b.model(model)
	if err != nil {
		return queue.JobInfo{}, err
	}
	if !m.fetcher() {
		return queue.JobInfo{}, fmt.Errorf("backend %q: deferring an import of %s: %w (set Import.Fetch)", l.b.cfg.Name, model, ErrNotSupported)
	}
	if len(externalIDs) == 0 {
		return queue.JobInfo{}, errors.New("backend: Later().Import needs at least one external ID")
	}
	return l.enqueue(ctx, nil, importJob{l.b.cfg.Name, model, externalIDs}, "import", model, externalIDs)
}

// Export enqueues the export of local records of model.
func (l *Later) Export(ctx context.Context, model string, localIDs ...string) (queue.JobInfo, error) {
	return l.export(ctx, nil, model, localIDs)
}

// ExportTx enqueues the export inside the app's database transaction tx, in which the app
// also writes the records: the outbox. Both commit or neither does, so a crash can neither
// lose the export of a committed change nor export a change that was rolled back. It
// needs a queue that enqueues in transactions (River on the app's database); other
// queues return an error matching ErrNotSupported.
func (l *Later) ExportTx(ctx context.Context, tx *sql.Tx, model string, localIDs ...string) (queue.JobInfo, error) {
	if tx == nil {
		return queue.JobInfo{}, errors.New("backend: Later().ExportTx needs a transaction")
	}
	return l.export(ctx, tx, model, localIDs)
}

func (l *Later) export(ctx context.Context, tx *sql.Tx, model string, localIDs []string) (queue.JobInfo, error) {
	m, err := l.b.model(model)
	if err != nil {
		return queue.JobInfo{}, err
	}
	if !m.exporter() {
		return queue.JobInfo{}, fmt.Errorf("backend %q: deferring an export of %s: %w (declare Export)", l.b.cfg.Name, model, ErrNotSupported)
	}
	if len(localIDs) == 0 {
		return queue.JobInfo{}, errors.New("backend: Later().Export needs at least one local ID")
	}
	return l.enqueue(ctx, tx, exportJob{l.b.cfg.Name, model, localIDs}, "export", model, localIDs)
}

// Sync enqueues an operation: a model's "import_<model>" or "retry_<model>", or one
// registered with WithOperation.
func (l *Later) Sync(ctx context.Context, operation string) (queue.JobInfo, error) {
	if _, err := l.b.operation(operation); err != nil {
		return queue.JobInfo{}, err
	}
	return l.enqueue(ctx, nil, syncJob{l.b.cfg.Name, operation}, "sync", operation, nil)
}

func (l *Later) enqueue(ctx context.Context, tx *sql.Tx, args queue.Args, what, target string, ids []string) (queue.JobInfo, error) {
	if tx != nil {
		txq, ok := l.b.queue.(queue.TxEnqueuer)
		if !ok {
			return queue.JobInfo{}, fmt.Errorf("backend %q: deferring %s of %s: %w: the backend's queue cannot enqueue inside a transaction (use a River queue on the app's database)",
				l.b.cfg.Name, what, target, ErrNotSupported)
		}
		job, err := txq.EnqueueTx(ctx, tx, args, l.opts...)
		if err != nil {
			return job, fmt.Errorf("backend %q: deferring %s of %s: %w", l.b.cfg.Name, what, target, err)
		}
		return job, nil
	}
	key := identityKey(l.b.cfg.Name, what, target, ids)
	// Operations (ids == nil) are not followed up: a run never overlaps the previous one
	// (schedules rely on it), and the next run picks up what this one missed.
	job, err := l.b.enqueueKeyed(ctx, args, key, ids != nil, l.opts...)
	if err != nil {
		return job, fmt.Errorf("backend %q: deferring %s of %s: %w", l.b.cfg.Name, what, target, err)
	}
	return job, nil
}

// enqueueKeyed enqueues args with identity key key. When followUp is set and the key
// belongs to a job that is running — which may already have read what this job is about —
// it queues a follow-up instead, keyed by the running job, so one follow-up serves every
// request made while that job runs. Each turn needs a different running job, so this ends.
func (b *Backend) enqueueKeyed(ctx context.Context, args queue.Args, key string, followUp bool, opts ...queue.EnqueueOption) (queue.JobInfo, error) {
	opts = append([]queue.EnqueueOption{queue.WithIdentityKey(key)}, opts...)
	job, err := b.queue.Enqueue(ctx, args, opts...)
	for range 8 {
		if err != nil || !followUp || !job.Duplicate || job.State != queue.StateRunning {
			break
		}
		job, err = b.queue.Enqueue(ctx, args, append(opts, queue.WithIdentityKey(key+"/after/"+strconv.FormatInt(job.ID, 10)))...)
	}
	return job, err
}

// identityKey names a job by what it does; long ID lists are hashed to keep keys short.
func identityKey(backend, what, target string, ids []string) string {
	key := backend + "/" + what + "/" + target
	if len(ids) == 0 {
		return key
	}
	var joined string
	if len(ids) == 1 { // a webhook delivery, one record: what the general case gives, cheaper
		raw, _ := json.Marshal(ids[0])
		joined = "[" + string(raw) + "]"
	} else {
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		sorted = slices.Compact(sorted)
		raw, _ := json.Marshal(sorted) // unambiguous: ["a,b"] is not ["a","b"]
		joined = string(raw)
	}
	if len(joined) > 64 {
		sum := sha256.Sum256([]byte(joined))
		joined = "sha256:" + hex.EncodeToString(sum[:16])
	}
	return key + "/" + joined
}
