package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/connkit/connkit/internal/ctxerr"
	"github.com/connkit/connkit/report"
)

// Summary is the outcome of a batch export.
type Summary struct {
	// Counts has one entry per local ID asked for. Skipped counts records that sent nothing
	// (no-export, unchanged, report.ErrSkip); Failed counts records whose export returned
	// an error.
	report.Counts
	// Errors holds the per-record errors (the first MaxErrors of them), each a
	// *report.RecordError.
	Errors []error
	// Elapsed is the run's duration.
	Elapsed time.Duration
}

type batchConfig struct {
	chunk       int
	concurrency int
	maxErrors   int
	progress    func(done, total int)
}

// BatchOption configures a Batch exporter.
type BatchOption func(*batchConfig)

// WithChunkSize sets how many records are exported per chunk (default 100).
func WithChunkSize(n int) BatchOption { return func(c *batchConfig) { c.chunk = n } }

// WithConcurrency sets how many records of a chunk are exported at once (default 4).
func WithConcurrency(n int) BatchOption { return func(c *batchConfig) { c.concurrency = n } }

// WithMaxErrors caps how many per-record errors the Summary keeps (default 1000).
func WithMaxErrors(n int) BatchOption { return func(c *batchConfig) { c.maxErrors = n } }

// WithProgress sets a callback called after each chunk with the records done so far.
func WithProgress(f func(done, total int)) BatchOption {
	return func(c *batchConfig) { c.progress = f }
}

// Batch exports many records of one model through an Exporter.
type Batch[T any] struct {
	rec *Exporter[T]
	cfg batchConfig
}

// NewBatch returns a Batch exporter over rec.
func NewBatch[T any](rec *Exporter[T], opts ...BatchOption) (*Batch[T], error) {
	if rec == nil {
		return nil, errors.New("exporter: NewBatch needs an Exporter")
	}
	c := batchConfig{chunk: 100, concurrency: 4, maxErrors: 1000}
	for _, o := range opts {
		o(&c)
	}
	if c.chunk <= 0 || c.concurrency <= 0 || c.maxErrors < 0 {
		return nil, fmt.Errorf("exporter: chunk size (%d) and concurrency (%d) must be positive, max errors (%d) not negative", c.chunk, c.concurrency, c.maxErrors)
	}
	return &Batch[T]{rec: rec, cfg: c}, nil
}

// Export exports the given local records, chunk by chunk, with up to WithConcurrency
// records of a chunk at once. Record errors are counted in the Summary and do not stop the
// run; only ctx does: no record starts once ctx is done, and the error is ctx's. Records
// that ctx cut short are in no count (and their bindings are not marked failed), so the
// Summary tells what the run finished.
func (b *Batch[T]) Export(ctx context.Context, localIDs []string, opts ...ExportOption) (Summary, error) {
	start := time.Now()
	var sum Summary
	var mu sync.Mutex
	for lo := 0; lo < len(localIDs) && ctx.Err() == nil; lo += b.cfg.chunk {
		chunk := localIDs[lo:min(lo+b.cfg.chunk, len(localIDs))]
		sem := make(chan struct{}, b.cfg.concurrency)
		var wg sync.WaitGroup
		for _, id := range chunk {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Go(func() {
				defer func() { <-sem }()
				res, err := b.rec.Export(ctx, id, opts...)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if ctxerr.Interrupted(ctx, err) {
						return
					}
					sum.Failed++
					if len(sum.Errors) < b.cfg.maxErrors {
						sum.Errors = append(sum.Errors, err)
					}
					return
				}
				switch res.Action {
				case report.Created:
					sum.Created++
				case report.Updated:
					sum.Updated++
				default:
					sum.Skipped++
				}
			})
		}
		wg.Wait()
		if b.cfg.progress != nil && ctx.Err() == nil {
			b.cfg.progress(lo+len(chunk), len(localIDs))
		}
	}
	sum.Elapsed = time.Since(start)
	return sum, ctx.Err()
}
