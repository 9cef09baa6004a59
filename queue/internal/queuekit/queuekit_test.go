package queuekit

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
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

type stringer interface{ String() string }

type customNum int

func (c *customNum) UnmarshalJSON([]byte) error { return errors.New("never") }

type node struct {
	Name     string
	Children []*node
}

type withTime struct{ At time.Time }

type inner struct{ X int }

type embedsCustom struct {
	customNum
	N int
}

// plainJSON says "skip the decode check" only for types that cannot refuse their own
// JSON; anything with a custom (un)marshaler or a non-empty interface is checked.
func TestPlainJSON(t *testing.T) {
	for _, tc := range []struct {
		v     any
		plain bool
	}{
		{struct {
			Backend, Endpoint string
			IDs               []string
			N                 int64
			F                 float64
			B                 bool
			M                 map[string]any
			K                 map[int][]uint8
			P                 *struct{ X [3]int }
		}{}, true},
		{node{}, true},
		{withTime{}, false},
		{struct{ S stringer }{}, false},
		{struct{ C customNum }{}, false},
		{embedsCustom{}, false},
		{struct{ M map[float64]string }{}, false},
		{struct{ R json.RawMessage }{}, false},
		{struct{ unexported withTime }{}, true}, // not encoded at all
		{struct{ *inner }{}, false},             // json cannot set an embedded pointer to an unexported struct
	} {
		if got := plainJSON(reflect.TypeOf(tc.v)); got != tc.plain {
			t.Errorf("plainJSON(%T) = %v, want %v", tc.v, got, tc.plain)
		}
	}
}

type plainArgs struct{ IDs []string }

func (plainArgs) Kind() string { return "plain" }

type refusingArgs struct{ N customNum }

func (refusingArgs) Kind() string { return "refusing" }

// Args whose JSON their own type refuses are refused at Enqueue; plain args pass without
// the decode check.
func TestEncodeArgsDecodeCheck(t *testing.T) {
	raw, err := EncodeArgs(plainArgs{IDs: []string{"a", "b"}})
	if err != nil || string(raw) != `{"IDs":["a","b"]}` {
		t.Fatalf("plain args: %s, %v", raw, err)
	}
	if _, err := EncodeArgs(refusingArgs{N: 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("args that do not decode back: %v, want ErrInvalid", err)
	}
	if _, err := EncodeArgs(embeddingArgs{&inner{X: 1}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("args embedding a pointer to an unexported struct: %v, want ErrInvalid", err)
	}
}

type embeddingArgs struct{ *inner }

func (embeddingArgs) Kind() string { return "embedding" }
