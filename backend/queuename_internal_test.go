package backend

import (
	"testing"

	"github.com/connkit/connkit/queue"
)

func TestQueueNameIsValidAndDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, name := range []string{"shop", "shop-eu", "Shop-EU", "shop.eu", "shop eu", "shop_eu", "ÉCOLE", "---",
		"a-very-long-backend-name-that-goes-on-and-on-past-what-river-accepts-as-a-queue-name"} {
		q := queueName(name)
		var w queue.Workers
		if err := w.SetQueue(q); err != nil {
			t.Errorf("queueName(%q) = %q: %v", name, q, err)
		}
		if other, dup := seen[q]; dup {
			t.Errorf("queueName(%q) = queueName(%q) = %q", name, other, q)
		}
		seen[q] = name
	}
	if got := queueName("shop-eu"); got != "connkit-shop-eu" {
		t.Errorf("a name River takes as it is keeps its spelling: got %q", got)
	}
}
