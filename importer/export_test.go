package importer

import (
	"context"
	"iter"
	"time"

	"github.com/tidwall/gjson"
)

// WithClock sets the clock of sync times and lease checks (default time.Now), for tests.
// The lease waits follow the Claimer's clock.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// ListFunc is NewBatch's listing function, named for the tests.
type ListFunc = func(ctx context.Context, since time.Time) iter.Seq2[gjson.Result, error]
