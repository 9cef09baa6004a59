package batchhint

import (
	"context"
	"testing"
)

func TestMark(t *testing.T) {
	ctx := context.Background()
	if ResultsUnread(ctx) {
		t.Fatal("an unmarked context reads as marked")
	}
	marked, cancel := context.WithCancel(WithoutResults(ctx))
	defer cancel()
	if !ResultsUnread(marked) || !ResultsUnread(context.WithoutCancel(marked)) {
		t.Fatal("the mark is not seen through derived contexts")
	}
}
