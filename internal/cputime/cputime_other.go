//go:build !unix

// Package cputime reads the CPU time the process has used, for benchmarks that report a
// ratio in CPU time beside the wall-clock one (a busy machine distorts it less).
package cputime

import "time"

// Process returns 0: this system has no getrusage.
func Process() time.Duration { return 0 }
