package queuekit

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExponentialBackoff(t *testing.T) {
	b := ExponentialBackoff(time.Second, 10*time.Second)
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		for range 20 {
			if got := b(attempt); got < want/2 || got > want {
				t.Errorf("attempt %d: %s, want in [%s, %s]", attempt, got, want/2, want)
			}
		}
	}
}

// A backoff without a practical cap doubles until it would overflow; it
// must stay within [cap/2, cap] instead of going negative (rand.N panics).
func TestExponentialBackoffDoesNotOverflow(t *testing.T) {
	b := ExponentialBackoff(time.Hour, math.MaxInt64)
	for _, attempt := range []int{30, 40, 63, 64, 100, 1000} {
		if got := b(attempt); got < math.MaxInt64/2 {
			t.Errorf("attempt %d: %d, want at least MaxInt64/2", attempt, got)
		}
	}
}

// The hand-written check keeps River's rule, the regexp it replaced.
func FuzzValidQueueName(f *testing.F) {
	re := regexp.MustCompile(`^[a-z0-9]+(?:[_-][a-z0-9]+)*$`)
	for _, s := range []string{"", "a", "default", "connkit-shop", "a_b-c", "-a", "a-", "a--b", "a_-b", "A", "a b", "é", strings.Repeat("a", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := len(name) > 0 && len(name) <= 64 && re.MatchString(name)
		if got := ValidQueueName(name) == nil; got != want {
			t.Fatalf("ValidQueueName(%q) accepts: %v, River's rule: %v", name, got, want)
		}
	})
}
