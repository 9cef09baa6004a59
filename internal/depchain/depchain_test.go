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
		{b, "import", "orde", "r\x001", false}, // the separator keeps parts apart
	} {
		if got := Has(tc.ctx, tc.kind, "b", tc.model, tc.id); got != tc.want {
			t.Errorf("Has(%s, %s, %q) = %v, want %v", tc.kind, tc.model, tc.id, got, tc.want)
		}
	}
}
