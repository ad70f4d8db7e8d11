package conc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errBreakerBoom = errors.New("boom")

func breakerFn(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

// tripBreakerN makes n failing calls through b.
func tripBreakerN(t *testing.T, b *Breaker, n int) {
	t.Helper()
	for range n {
		require.ErrorIs(t, b.Execute(t.Context(), breakerFn(errBreakerBoom)), errBreakerBoom)
	}
}

func TestBreakerTripsAtExactlyTheThreshold(t *testing.T) {
	for _, threshold := range []int{1, 2, 5, 17} {
		t.Run(fmt.Sprint(threshold), func(t *testing.T) {
			b := NewBreaker(ConsecutiveFailures(threshold))
			tripBreakerN(t, b, threshold-1)
			assert.Equal(t, BreakerClosed, b.State(), "one failure short of the threshold")
			assert.Equal(t, threshold-1, b.Stats().ConsecutiveFailures)
			tripBreakerN(t, b, 1)
			assert.Equal(t, BreakerOpen, b.State())
			assert.Equal(t, uint64(1), b.Stats().Trips)
		})
	}
}

func TestBreakerSuccessResetsTheFailureRun(t *testing.T) {
	b := NewBreaker(ConsecutiveFailures(3))
	for range 10 {
		tripBreakerN(t, b, 2)
		require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
	}
	assert.Equal(t, BreakerClosed, b.State())
	assert.Equal(t, uint64(20), b.Stats().Failures)
}

func TestBreakerOpenRejectsWithoutCallingFn(t *testing.T) {
	b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Hour))
	tripBreakerN(t, b, 1)
	called := false
	fn := func(context.Context) error { called = true; return nil }
	for range 3 {
		assert.ErrorIs(t, b.Execute(t.Context(), fn), ErrOpen)
	}
	v, err := ExecuteValue(t.Context(), b, func(context.Context) (int, error) { called = true; return 1, nil })
	assert.ErrorIs(t, err, ErrOpen)
	assert.Zero(t, v)
	done, err := b.Allow()
	assert.ErrorIs(t, err, ErrOpen)
	assert.Nil(t, done)
	assert.False(t, called, "fn must not run while open")
	assert.Equal(t, uint64(5), b.Stats().Rejected)
}

func TestBreakerLateResultFromPreviousGenerationIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(2), Cooldown(time.Second))
		old := make([]func(error), 4)
		for i := range old {
			var err error
			old[i], err = b.Allow()
			require.NoError(t, err)
		}
		tripBreakerN(t, b, 2) // generation 0 ends
		old[0](nil)           // a success from gen 0 must not close an open breaker
		assert.Equal(t, BreakerOpen, b.State())

		time.Sleep(time.Second)
		require.NoError(t, b.Execute(t.Context(), breakerFn(nil))) // probe closes: new generation
		require.Equal(t, BreakerClosed, b.State())
		tripBreakerN(t, b, 1)
		old[1](errBreakerBoom) // would be the second failure in a row, but of gen 0
		old[2](errBreakerBoom)
		assert.Equal(t, BreakerClosed, b.State())
		assert.Equal(t, 1, b.Stats().ConsecutiveFailures)
		old[3](nil) // nor may it reset the current run
		assert.Equal(t, 1, b.Stats().ConsecutiveFailures)
	})
}

func TestBreakerOnStateChangeMayCallBackIntoTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type change struct {
			from, to, seen BreakerState
		}
		var changes []change
		var b *Breaker
		b = NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), OnStateChange(func(from, to BreakerState) {
			changes = append(changes, change{from, to, b.State()})
			_ = b.Stats()
			if to == BreakerHalfOpen {
				// A probe from inside the callback closes the breaker
				// again; that change is reported after this call returns.
				assert.NoError(t, b.Execute(context.Background(), breakerFn(nil)))
			}
		}))
		tripBreakerN(t, b, 1)
		time.Sleep(time.Second)
		assert.Equal(t, BreakerClosed, b.State())
		assert.Equal(t, []change{
			{BreakerClosed, BreakerOpen, BreakerOpen},
			{BreakerOpen, BreakerHalfOpen, BreakerHalfOpen},
			{BreakerHalfOpen, BreakerClosed, BreakerClosed},
		}, changes)
	})
}

func TestBreakerCanceledCallsAreNeutral(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(2), Cooldown(time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		canceled := func(ctx context.Context) error { return ctx.Err() }

		tripBreakerN(t, b, 1)
		for range 5 {
			assert.ErrorIs(t, b.Execute(ctx, canceled), context.Canceled)
		}
		assert.Equal(t, BreakerClosed, b.State())
		assert.Equal(t, 1, b.Stats().ConsecutiveFailures, "a canceled call neither fails nor resets the run")
		assert.Equal(t, uint64(5), b.Stats().Canceled)

		// A Canceled that is not the caller's (ctx is live) is a failure.
		assert.ErrorIs(t, b.Execute(t.Context(), breakerFn(context.Canceled)), context.Canceled)
		require.Equal(t, BreakerOpen, b.State())

		time.Sleep(time.Second)
		assert.ErrorIs(t, b.Execute(ctx, canceled), context.Canceled)
		assert.Equal(t, BreakerHalfOpen, b.State(), "a canceled probe frees its slot and decides nothing")
		done, err := b.Allow()
		require.NoError(t, err)
		done(fmt.Errorf("wrapped: %w", context.Canceled))
		assert.Equal(t, BreakerHalfOpen, b.State())
		require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
		assert.Equal(t, BreakerClosed, b.State())
		assert.Equal(t, uint64(2), b.Stats().ProbeCanceled)
	})
}

func TestBreakerPanicCountsAsFailureAndReturnsPanicError(t *testing.T) {
	b := NewBreaker(ConsecutiveFailures(2))
	err := b.Execute(t.Context(), func(context.Context) error { panic("kaput") })
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "kaput", pe.Value)
	_, err = ExecuteValue(t.Context(), b, func(context.Context) (string, error) { panic(errBreakerBoom) })
	assert.ErrorIs(t, err, errBreakerBoom)
	assert.ErrorAs(t, err, &pe)
	assert.Equal(t, BreakerOpen, b.State())
}

func TestBreakerGoexitInFnCountsAsFailure(t *testing.T) {
	b := NewBreaker(ConsecutiveFailures(1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Execute(context.Background(), func(context.Context) error { runtime.Goexit(); return nil })
	}()
	<-done
	assert.Equal(t, BreakerOpen, b.State())
}

func TestBreakerIsFailureDecidesWhatCounts(t *testing.T) {
	errNotFound := errors.New("not found")
	b := NewBreaker(ConsecutiveFailures(1), IsFailure(func(err error) bool { return !errors.Is(err, errNotFound) }))
	for range 10 {
		assert.ErrorIs(t, b.Execute(t.Context(), breakerFn(errNotFound)), errNotFound)
	}
	assert.Equal(t, BreakerClosed, b.State())
	done, err := b.Allow()
	require.NoError(t, err)
	done(&PanicError{Value: errNotFound}) // a panic is a failure whatever the predicate says
	assert.Equal(t, BreakerOpen, b.State())
}

// A panic in the IsFailure predicate must not escape from the deferred
// finish or from done, and must still record a failure: for a probe, that is
// what frees its slot instead of wedging half-open until ProbeTimeout.
func TestBreakerPanicInIsFailureCountsAsFailureAndIsReturned(t *testing.T) {
	errTrigger := errors.New("trigger")
	calls := map[string]func(b *Breaker) error{
		"execute": func(b *Breaker) error { return b.Execute(context.Background(), breakerFn(errTrigger)) },
		"execute value": func(b *Breaker) error {
			_, err := ExecuteValue(context.Background(), b, func(context.Context) (int, error) { return 0, errTrigger })
			return err
		},
		"allow": func(b *Breaker) error {
			done, err := b.Allow()
			if err != nil {
				return err
			}
			done(errTrigger)
			return nil
		},
	}
	for name, call := range calls {
		for _, halfOpen := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/half-open=%v", name, halfOpen), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), ProbeTimeout(time.Hour),
						IsFailure(func(err error) bool {
							if err == errTrigger {
								panic("predicate bug")
							}
							return true
						}))
					if halfOpen {
						tripBreakerN(t, b, 1)
						time.Sleep(time.Second)
						require.Equal(t, BreakerHalfOpen, b.State())
					}
					var err error
					require.NotPanics(t, func() { err = call(b) })
					if name != "allow" {
						var pe *PanicError
						require.ErrorAs(t, err, &pe)
						assert.Equal(t, "predicate bug", pe.Value)
					}
					assert.Equal(t, BreakerOpen, b.State(), "the call counted as a failure")
					s := b.Stats()
					assert.Equal(t, 0, s.ProbesInFlight, "a probe's slot is released")
					if halfOpen {
						assert.Equal(t, uint64(1), s.ProbeFailures)
					}
				})
			})
		}
	}
}

func TestExecuteValueReturnsTheValue(t *testing.T) {
	b := NewBreaker()
	v, err := ExecuteValue(t.Context(), b, func(context.Context) (int, error) { return 42, nil })
	require.NoError(t, err)
	assert.Equal(t, 42, v)
	v, err = ExecuteValue(t.Context(), b, func(context.Context) (int, error) { return 7, errBreakerBoom })
	assert.ErrorIs(t, err, errBreakerBoom)
	assert.Equal(t, 7, v, "the value comes back with the error, as fn returned it")
}

func TestBreakerClosedPathDoesNotAllocate(t *testing.T) {
	for _, opt := range []BreakerOption{ConsecutiveFailures(5), FailureRate(0.5, 10, LastCalls(10))} {
		b := NewBreaker(opt)
		ctx := context.Background()
		fn := breakerFn(nil)
		assert.Zero(t, testing.AllocsPerRun(100, func() { _ = b.Execute(ctx, fn) }))
		assert.Zero(t, testing.AllocsPerRun(100, func() {
			done, _ := b.Allow()
			done(nil)
		}))
		assert.Zero(t, testing.AllocsPerRun(100, func() {
			_, _ = ExecuteValue(ctx, b, func(context.Context) (int, error) { return 1, nil })
		}))
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[BreakerState]string{BreakerClosed: "closed", BreakerOpen: "open", BreakerHalfOpen: "half-open", 7: "BreakerState(7)"} {
		assert.Equal(t, want, s.String())
	}
}

func TestNewBreakerPanicsOnBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func()
		want string
	}{
		{"threshold", func() { NewBreaker(ConsecutiveFailures(0)) }, "conc: breaker failure threshold must be at least 1, got 0"},
		{"rate", func() { NewBreaker(FailureRate(0, 1, LastCalls(1))) }, "conc: breaker failure rate must be in (0, 1], got 0"},
		{"min calls", func() { NewBreaker(FailureRate(0.5, 0, LastCalls(1))) }, "conc: breaker minimum calls must be at least 1, got 0"},
		{"window", func() { NewBreaker(FailureRate(0.5, 10, LastCalls(5))) }, "conc: breaker window of 5 calls is smaller than its minimum of 10 calls"},
		{"no window", func() { NewBreaker(FailureRate(0.5, 1, Window{})) }, "conc: breaker window must come from LastCalls or LastDuration"},
		{"calls", func() { LastCalls(0) }, "conc: breaker window calls must be at least 1, got 0"},
		{"duration", func() { LastDuration(-time.Second, 1) }, "conc: breaker window duration must be positive, got -1s"},
		{"buckets", func() { LastDuration(time.Second, 0) }, "conc: breaker window buckets must be at least 1, got 0"},
		{"cooldown", func() { Cooldown(-1) }, "conc: breaker cooldown must not be negative, got -1ns"},
		{"jitter", func() { CooldownJitter(1.5) }, "conc: breaker cooldown jitter must be in [0, 1], got 1.5"},
		{"growth", func() { CooldownGrowth(0.5, time.Second) }, "conc: breaker cooldown growth must be a finite number >= 1, got 0.5"},
		{"max cooldown", func() { NewBreaker(Cooldown(time.Minute), CooldownGrowth(2, time.Second)) }, "conc: breaker max cooldown 1s is below its cooldown 1m0s"},
		{"max cooldown zero", func() { CooldownGrowth(2, 0) }, "conc: breaker max cooldown must be positive, got 0s"},
		{"nil fn", func() { _ = NewBreaker().Execute(context.Background(), nil) }, "conc: Breaker.Execute fn must not be nil"},
		{"nil value fn", func() { _, _ = ExecuteValue[int](context.Background(), NewBreaker(), nil) }, "conc: ExecuteValue fn must not be nil"},
		{"probes", func() { HalfOpenProbes(0) }, "conc: breaker half-open probes must be at least 1, got 0"},
		{"successes", func() { SuccessesToClose(-1) }, "conc: breaker successes to close must be at least 1, got -1"},
		{"probe timeout", func() { ProbeTimeout(0) }, "conc: breaker probe timeout must be positive, got 0s"},
		{"predicate", func() { IsFailure(nil) }, "conc: breaker IsFailure predicate must not be nil"},
		{"callback", func() { OnStateChange(nil) }, "conc: breaker OnStateChange callback must not be nil"},
		{"nil option", func() { NewBreaker(nil) }, "conc: NewBreaker option 0 must not be nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tc.want, tc.new)
		})
	}
}

// TestBreakerConcurrentFailuresTripOnceAndEveryCallIsCounted runs failing
// calls from many goroutines at once: the breaker must trip exactly once,
// and every call must be either a counted failure or a counted rejection.
func TestBreakerConcurrentFailuresTripOnceAndEveryCallIsCounted(t *testing.T) {
	const goroutines, calls = 8, 2000
	b := NewBreaker(ConsecutiveFailures(50), Cooldown(time.Hour))
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				_ = b.Execute(context.Background(), breakerFn(errBreakerBoom))
			}
		})
	}
	wg.Wait()
	s := b.Stats()
	assert.Equal(t, BreakerOpen, s.State)
	assert.Equal(t, uint64(1), s.Trips)
	assert.Equal(t, uint64(goroutines*calls), s.Failures+s.Rejected)
	assert.GreaterOrEqual(t, s.Failures, uint64(50))
}

// A panicking OnStateChange is recovered: the call that delivered the
// change keeps its own result (a failed Execute gets the *PanicError joined
// to its error; anything else drops it), the breaker goes on working and
// reporting later changes, and every panic is counted.
func TestBreakerPanicInOnStateChangeIsRecoveredAndCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes []BreakerState
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), OnStateChange(func(_, to BreakerState) {
			changes = append(changes, to)
			panic("callback bug " + to.String())
		}))
		var err error
		require.NotPanics(t, func() { err = b.Execute(t.Context(), breakerFn(errBreakerBoom)) })
		assert.ErrorIs(t, err, errBreakerBoom, "the call keeps its own error")
		var pe *PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "callback bug open", pe.Value)
		assert.Equal(t, BreakerOpen, b.State())

		time.Sleep(time.Second)
		var st BreakerState
		require.NotPanics(t, func() { st = b.State() }) // delivers open>half-open
		assert.Equal(t, BreakerHalfOpen, st)
		require.NotPanics(t, func() { err = b.Execute(t.Context(), breakerFn(nil)) })
		assert.NoError(t, err, "a successful call stays successful")
		assert.Equal(t, BreakerClosed, b.State())

		done, err := b.Allow()
		require.NoError(t, err)
		require.NotPanics(t, func() { done(errBreakerBoom) })
		assert.Equal(t, BreakerOpen, b.State())
		assert.Equal(t, []BreakerState{BreakerOpen, BreakerHalfOpen, BreakerClosed, BreakerOpen}, changes)
		assert.Equal(t, uint64(4), b.Stats().CallbackPanics)
	})
}

// runtime.Goexit in the callback cannot be stopped, but must not leave the
// breaker unable to deliver later changes.
func TestBreakerGoexitInOnStateChangeDoesNotStopLaterDeliveries(t *testing.T) {
	var changes []BreakerState
	b := NewBreaker(ConsecutiveFailures(1), Cooldown(0), OnStateChange(func(_, to BreakerState) {
		changes = append(changes, to)
		if len(changes) == 1 {
			runtime.Goexit()
		}
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Execute(context.Background(), breakerFn(errBreakerBoom))
	}()
	<-done
	require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
	assert.Equal(t, []BreakerState{BreakerOpen, BreakerHalfOpen, BreakerClosed}, changes)
}

// "A panic is always a failure" (IsFailure, Execute): a panic whose value is
// context.Canceled unwraps to it, and the Canceled check ran first, so a
// closed breaker counted it as the caller giving up instead of a failure.
// Through Execute it depends on the caller's ctx; through Allow's done,
// which takes any Canceled for the caller's, always.
func TestBreakerPanicOfContextCanceledIsAFailure(t *testing.T) {
	t.Run("Allow", func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(1))
		done, err := b.Allow()
		require.NoError(t, err)
		done(&PanicError{Value: context.Canceled})
		require.Equal(t, BreakerOpen, b.State())
		st := b.Stats()
		require.Equal(t, uint64(1), st.Failures)
		require.Equal(t, uint64(0), st.Canceled)
	})
	t.Run("Execute", func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(1))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		// fn returns a *PanicError it got from a callee that panicked
		// with ctx.Err(), while the caller's ctx is done.
		err := b.Execute(ctx, func(ctx context.Context) error {
			return &PanicError{Value: ctx.Err()}
		})
		var pe *PanicError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, BreakerOpen, b.State())
		require.Equal(t, uint64(1), b.Stats().Failures)
	})
}

// The half-open success count shares the state word's 30 count bits with
// the closed failure run, but SuccessesToClose, unlike ConsecutiveFailures,
// took any n: with n above 2^30-1 the count overflowed into the generation
// bits, which silently started a new half-open generation with a zero count
// (no state change reported, in-flight probes orphaned) and the breaker
// could never close. Such an n is now refused at construction.
func TestBreakerSuccessesToCloseBeyondTheCountBitsPanics(t *testing.T) {
	require.NotPanics(t, func() { SuccessesToClose(maxBreakerThreshold) })
	defer func() {
		r := recover()
		require.NotNil(t, r, "SuccessesToClose(%d) was accepted", maxBreakerThreshold+1)
		require.Contains(t, r, "conc: breaker successes to close must be at most")
	}()
	SuccessesToClose(maxBreakerThreshold + 1)
}
