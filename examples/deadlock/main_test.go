package main

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concpatterns/conc"
)

// TestMain checks that the fixed forms leave no goroutine behind. The
// naive forms are not run here: they hang by design and would leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFixedFormsFinishAndSayHow(t *testing.T) {
	want := map[string]string{
		"lock-order inversion":                "20000 critical sections",
		"send with no receiver":               "Send gave up: context deadline exceeded",
		"range over a channel nobody closes":  "Recv got 3 values, then: context canceled",
		"worker waiting on its own full pool": "follow-up refused: context deadline exceeded; jobs [1 2] done",
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			var outcome string
			// Generous: the fixed forms take at most giveUp, but -race on
			// busy cores is slow. A failure here leaks the goroutine, which
			// goleak then reports too.
			if !finishes(func() { outcome = s.fixed() }, 30*time.Second) {
				t.Fatal("the fixed form hung")
			}
			assert.Contains(t, outcome, want[s.name])
		})
	}
}

// With -serve, the page flags the naive forms as stalled and says what each
// waits on. In a synctest bubble: the seconds are virtual, and nothing is
// asserted about time.
func TestServedPageFlagsTheHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := conc.NewMonitor(conc.StallAfter(stallAfter))
		stop := hang(m)
		defer stop()
		synctest.Wait() // every naive form is blocked now
		m.Snapshot()
		time.Sleep(stallAfter + time.Second)
		s := m.Snapshot()
		require.Len(t, s.Pools, 1)
		assert.True(t, s.Pools[0].Stalled)
		assert.Equal(t, "full queue", s.Pools[0].WaitsOn)
		waits := map[string]string{}
		for _, p := range s.Pipelines {
			for _, n := range p.Nodes {
				if n.Stalled {
					waits[n.Name] = n.WaitsOn
				}
			}
		}
		assert.Equal(t, map[string]string{"produce results": "output", "send result": "function"}, waits)
	})
}
