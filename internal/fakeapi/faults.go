package fakeapi

import "time"

// FaultKind says what an injected fault does to a request.
type FaultKind int

// Fault kinds.
const (
	// FaultStatus answers with Fault.Status (default 503) without doing anything.
	FaultStatus FaultKind = iota + 1
	// FaultRateLimit answers 429 with a Retry-After of Fault.RetryAfter rounded up to
	// whole seconds (0 allowed, so tests need not wait).
	FaultRateLimit
	// FaultSlow waits Fault.Delay (or until the client gives up) before serving normally.
	FaultSlow
	// FaultReset closes the connection before doing anything (the client sees a reset or
	// EOF).
	FaultReset
	// FaultResetAfterWrite performs a create/update/delete, then closes the connection
	// without answering: the write happened but the client cannot know. Retrying a create
	// safely needs an idempotency key.
	FaultResetAfterWrite
	// FaultRepeatRecord makes a list page start with the last record of the previous page,
	// as APIs do when records shift under offset pagination.
	FaultRepeatRecord
)

// Fault describes one injected fault and which requests it hits. Matching requests are
// counted from zero; the first After pass untouched; then, if Every is 0, the next Burst
// (default 1) requests are hit, and if Every > 0, the first Burst of every Every requests
// are. Times, when > 0, caps the total number of hits.
type Fault struct {
	Kind FaultKind
	// Method and Resource restrict the fault ("" matches any).
	Method   string
	Resource string

	After int
	Burst int
	Every int
	Times int

	Status     int
	RetryAfter time.Duration
	Delay      time.Duration
}

type faultState struct {
	Fault
	seen, hits int
}

// Inject adds a fault. Faults are checked in the order they were added; the first that
// hits a request applies.
func (s *Server) Inject(f Fault) {
	if f.Burst <= 0 {
		f.Burst = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &faultState{Fault: f})
	s.mu.Unlock()
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

func (s *Server) matchFaultLocked(method, resource string) *Fault {
	var hit *Fault
	for _, f := range s.faults {
		if (f.Method != "" && f.Method != method) || (f.Resource != "" && f.Resource != resource) {
			continue
		}
		if f.Kind == FaultRepeatRecord && method != "GET" {
			continue
		}
		if f.Kind == FaultResetAfterWrite && method == "GET" {
			continue
		}
		n := f.seen - f.After
		f.seen++
		if hit != nil || n < 0 || (f.Times > 0 && f.hits >= f.Times) {
			continue
		}
		if (f.Every == 0 && n < f.Burst) || (f.Every > 0 && n%f.Every < f.Burst) {
			f.hits++
			s.stats.Faults++
			cp := f.Fault
			hit = &cp
		}
	}
	return hit
}
