package webhook_test

import (
	"testing"

	"github.com/connkit/connkit/webhook"
	"github.com/connkit/connkit/webhook/webhooktest"
)

func TestMemoryConformance(t *testing.T) {
	webhooktest.Run(t, func(*testing.T) webhook.Store { return webhook.NewMemory() })
}

func BenchmarkReceiveMemory(b *testing.B) {
	webhooktest.Bench(b, func(*testing.B) webhook.Store { return webhook.NewMemory() })
}
