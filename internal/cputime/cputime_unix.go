//go:build unix

// Package cputime reads the CPU time the process has used, for benchmarks that report a
// ratio in CPU time beside the wall-clock one (a busy machine distorts it less).
package cputime

import (
	"syscall"
	"time"
)

// Process returns the user and system CPU time the process has used so far (0 when the
// system cannot say).
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}
