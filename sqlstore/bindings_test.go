package sqlstore_test

import (
	"sync"
	"testing"
	"time"

	"github.com/connkit/connkit/binding"
	"github.com/connkit/connkit/bindingtest"
	"github.com/connkit/connkit/sqlstore"
)

func TestBindingConformance(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			var clocks sync.Map // *sqlstore.BindingStore → *fakeClock
			bindingtest.Run(t, func(t *testing.T) binding.Store {
				clk := newClock()
				s := e.open(t, sqlstore.WithClock(clk.Now)).Bindings()
				clocks.Store(s, clk)
				return s
			}, bindingtest.WithAdvance(func(s binding.Store, d time.Duration) {
				clk, _ := clocks.Load(s)
				clk.(*fakeClock).Advance(d)
			}))
		})
	}
}
