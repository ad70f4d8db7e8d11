package conc

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the FailureRate policy and its two windows.

func TestBreakerCountWindowTripsOnRate(t *testing.T) {
	b := NewBreaker(FailureRate(0.5, 4, LastCalls(6)))
	ok, bad := breakerFn(nil), breakerFn(errBreakerBoom)
	run := func(fns ...func(context.Context) error) {
		for _, fn := range fns {
			_ = b.Execute(t.Context(), fn)
		}
	}
	run(bad, bad, bad) // 3 failures, but fewer than minCalls
	assert.Equal(t, BreakerClosed, b.State())
	run(ok, ok, ok, ok, ok, ok) // the failures slide out of the window
	s := b.Stats()
	assert.Equal(t, 6, s.WindowCalls)
	assert.Equal(t, 0, s.WindowFailures)
	run(bad, bad) // 2 of 6
	assert.Equal(t, BreakerClosed, b.State())
	run(bad) // 3 of 6 = 50%
	assert.Equal(t, BreakerOpen, b.State())
}

func TestBreakerTimeWindowForgetsOldFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(FailureRate(0.5, 4, LastDuration(10*time.Second, 10)))
		ok, bad := breakerFn(nil), breakerFn(errBreakerBoom)
		for range 3 {
			_ = b.Execute(t.Context(), bad)
		}
		_ = b.Execute(t.Context(), ok)
		_ = b.Execute(t.Context(), ok)
		assert.Equal(t, BreakerClosed, b.State(), "3 of 5 after minCalls came from a success")
		time.Sleep(10 * time.Second) // everything ages out
		assert.Equal(t, 0, b.Stats().WindowCalls)
		_ = b.Execute(t.Context(), ok)
		_ = b.Execute(t.Context(), ok)
		time.Sleep(5 * time.Second)
		_ = b.Execute(t.Context(), bad)
		_ = b.Execute(t.Context(), ok)
		assert.Equal(t, BreakerClosed, b.State(), "1 of 4")
		time.Sleep(5 * time.Second) // the first two successes leave
		_ = b.Execute(t.Context(), bad)
		assert.Equal(t, BreakerClosed, b.State(), "2 of 3, fewer than minCalls")
		s := b.Stats()
		assert.Equal(t, 3, s.WindowCalls)
		assert.Equal(t, 2, s.WindowFailures)
		_ = b.Execute(t.Context(), bad)
		assert.Equal(t, BreakerOpen, b.State(), "3 of 4")
	})
}

func TestBreakerClosingStartsAnEmptyWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(FailureRate(1, 2, LastCalls(2)), Cooldown(time.Second))
		tripBreakerN(t, b, 2)
		time.Sleep(time.Second)
		require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
		assert.Equal(t, 0, b.Stats().WindowCalls)
		tripBreakerN(t, b, 1)
		assert.Equal(t, BreakerClosed, b.State())
	})
}

// TestCountWindowFailureCountMatchesItsBits records outcomes from many
// goroutines into a small window, so that calls a whole window apart race
// for the same bit, and checks that the running failure count still equals
// the number of set bits.
func TestCountWindowFailureCountMatchesItsBits(t *testing.T) {
	w := newCountWindow(70)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				w.record((i+g)%3 == 0)
			}
		})
	}
	wg.Wait()
	set := 0
	for i := range w.bits {
		set += bits.OnesCount64(w.bits[i].Load())
	}
	calls, failures := w.counts()
	assert.Equal(t, 70, calls)
	assert.Equal(t, set, failures)
}

// TestLastCallsRefusesWindowsItCannotHold: a count window is one bit per
// call with positions taken modulo 2^32. Before the limit, LastCalls(1<<32)
// was stored truncated to 0 and the breaker never tripped, and larger
// windows were allocated in full or died of a fatal out-of-memory.
func TestLastCallsRefusesWindowsItCannotHold(t *testing.T) {
	for _, n := range []int{1<<24 + 1, 1 << 32, 1<<32 + 10, math.MaxInt} {
		assert.PanicsWithValue(t, fmt.Sprintf("conc: breaker window calls must be at most 16777216, got %d", n),
			func() { LastCalls(n) })
	}
	// The largest window works: it trips on its minCalls'th failure.
	b := NewBreaker(FailureRate(0.5, 10, LastCalls(1<<24)))
	for range 10 {
		_ = b.Execute(t.Context(), breakerFn(errBreakerBoom))
	}
	assert.Equal(t, BreakerOpen, b.State())
}
