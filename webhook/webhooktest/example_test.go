package webhooktest_test

import (
	"testing"

	"github.com/connkit/connkit/webhook"
	"github.com/connkit/connkit/webhook/webhooktest"
)

// A store package runs the suite from its own tests, with a fresh store per subtest.
func ExampleRun() {
	_ = func(t *testing.T) { // func TestWebhookStore(t *testing.T) in your package
		webhooktest.Run(t, func(t *testing.T) webhook.Store { return webhook.NewMemory() })
	}
}

// Store benchmarks measure a whole delivery (read, verify, store, notify) on the store
// against a bare handler ("x-baseline").
func ExampleBench() {
	_ = func(b *testing.B) { // func BenchmarkReceive(b *testing.B) in your package
		webhooktest.Bench(b, func(b *testing.B) webhook.Store { return webhook.NewMemory() })
	}
}
