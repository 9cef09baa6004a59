//go:build !unix

package webhooktest

import "time"

// processCPU is not measured on this platform: Bench reports no CPU ratio.
func processCPU() time.Duration { return 0 }
