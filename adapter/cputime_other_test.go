//go:build !unix

package adapter

import "time"

// processCPU is not measured on this platform: the x-baseline-cpu metric is left out.
func processCPU() time.Duration { return 0 }
