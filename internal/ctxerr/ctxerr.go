// Package ctxerr tells an operation cut short by its context from one that failed, so the
// importer and exporter do not count a shutdown as a record's failure.
package ctxerr

import (
	"context"
	"errors"
)

// Interrupted reports whether err is ctx ending (cancelled or past its deadline) rather
// than the operation failing on its own.
func Interrupted(ctx context.Context, err error) bool {
	cerr := ctx.Err()
	return cerr != nil && errors.Is(err, cerr)
}
