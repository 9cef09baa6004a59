package sqlstore_test

import (
	"testing"

	"github.com/connkit/connkit/state"
	"github.com/connkit/connkit/state/statetest"
)

func TestStateConformance(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			statetest.Run(t, func(t *testing.T) state.Store { return e.open(t).State() })
		})
	}
}
