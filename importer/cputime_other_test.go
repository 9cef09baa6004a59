//go:build !unix

package importer_test

import "time"

// cpuTime is not measured on this platform: the CPU metrics are left out.
func cpuTime() time.Duration { return 0 }
