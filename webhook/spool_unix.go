//go:build unix

package webhook

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f without waiting; it fails when another open file
// holds one (in this process or another). The lock goes with f's close or the process.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
