package ctxerr

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestInterrupted(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	expired, cancel2 := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel2()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"cancelled, wrapped", cancelled, fmt.Errorf("step: %w", context.Canceled), true},
		{"deadline", expired, context.DeadlineExceeded, true},
		{"cancelled but another error", cancelled, boom, false},
		{"live ctx, canceled error from elsewhere", live, context.Canceled, false},
		{"cancelled ctx, deadline error", cancelled, context.DeadlineExceeded, false},
	} {
		if got := Interrupted(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: Interrupted = %v, want %v", tc.name, got, tc.want)
		}
	}
}
