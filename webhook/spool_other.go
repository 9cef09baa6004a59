//go:build !unix

package webhook

import (
	"errors"
	"os"
)

// lockFile is not available without flock: WithSpool fails at construction.
func lockFile(*os.File) error { return errors.ErrUnsupported }
