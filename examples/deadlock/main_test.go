package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
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
