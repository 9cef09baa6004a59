package depchain

import (
	"context"
	"testing"
)

func TestChain(t *testing.T) {
	ctx := context.Background()
	if Has(ctx, "import", "b", "m", "1") {
		t.Fatal("empty context has a chain")
	}
	a := With(ctx, "import", "b", "order", "1")
	b := With(a, "import", "b", "customer", "7")
	for _, tc := range []struct {
		ctx             context.Context
		kind, model, id string
		want            bool
	}{
		{b, "import", "order", "1", true},
		{b, "import", "customer", "7", true},
		{a, "import", "customer", "7", false}, // the parent does not see the child
		{b, "export", "order", "1", false},    // other kind
		{b, "import", "order", "7", false},
		{b, "import", "orde", "r\x001", false}, // parts are compared apart, not joined
	} {
		if got := Has(tc.ctx, tc.kind, "b", tc.model, tc.id); got != tc.want {
			t.Errorf("Has(%s, %s, %q) = %v, want %v", tc.kind, tc.model, tc.id, got, tc.want)
		}
	}
}

func TestContextThroughLink(t *testing.T) {
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), other{}, "v"))
	var l Link
	ctx := l.With(parent, Import, "b", "m", "1")
	if ctx.Value(other{}) != "v" {
		t.Error("the parent's values are not seen through a link")
	}
	child, stop := context.WithCancel(ctx)
	defer stop()
	cancel()
	<-child.Done() // the parent's cancellation reaches contexts derived from the link
	if ctx.Err() == nil || !Has(child, Import, "b", "m", "1") || Has(child, Export, "b", "m", "1") {
		t.Error("the link lost its parent's cancellation or its record")
	}
	if Has(ctx, "custom", "b", "m", "1") || !Has(With(ctx, "custom", "b", "m", "2"), "custom", "b", "m", "2") {
		t.Error("a kind other than import and export")
	}
}

func TestWithAllocatesOnce(t *testing.T) {
	ctx := With(context.Background(), Import, "b", "order", "1")
	if n := testing.AllocsPerRun(100, func() { _ = With(ctx, Import, "b", "customer", "7") }); n > 1 {
		t.Errorf("With allocates %v times, want 1", n)
	}
	var l Link
	if n := testing.AllocsPerRun(100, func() { _ = l.With(ctx, Import, "b", "customer", "7") }); n != 0 {
		t.Errorf("Link.With allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Has(ctx, Import, "b", "customer", "7") }); n != 0 {
		t.Errorf("Has allocates %v times, want 0", n)
	}
}
