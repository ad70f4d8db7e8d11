package conc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errFlaky = errors.New("flaky")

// failing returns a function that fails its first n calls with errFlaky and
// then succeeds, and a pointer to its call count.
func failing(n int) (func(context.Context) error, *atomic.Int32) {
	var calls atomic.Int32
	return func(context.Context) error {
		if int(calls.Add(1)) <= n {
			return errFlaky
		}
		return nil
	}, &calls
}

// policyConfig resolves opts the way Retry does, for white-box tests.
func policyConfig(opts ...RetryOption) *retryConfig {
	return &NewRetryPolicy(opts...).cfg
}

func TestRetryReturnsNilOnceAnAttemptSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, calls := failing(2)
		start := time.Now()
		err := Retry(t.Context(), fn, RetryAttempts(3), RetryBaseDelay(10*time.Millisecond), RetryJitter(JitterNone))
		require.NoError(t, err)
		assert.Equal(t, int32(3), calls.Load())
		// 10ms before the second attempt, 20ms before the third.
		assert.Equal(t, 30*time.Millisecond, time.Since(start))
	})
}

func TestRetryBackoffDelaysStayInsideEachJittersBounds(t *testing.T) {
	const base, maxDelay = 10 * time.Millisecond, 700 * time.Millisecond
	exp := func(n int) time.Duration { return min(maxDelay, base<<(n-1)) }
	tests := []struct {
		jitter Jitter
		lo, hi func(n int, prev time.Duration) time.Duration
	}{
		{JitterNone,
			func(n int, _ time.Duration) time.Duration { return exp(n) },
			func(n int, _ time.Duration) time.Duration { return exp(n) }},
		{JitterFull,
			func(int, time.Duration) time.Duration { return 0 },
			func(n int, _ time.Duration) time.Duration { return exp(n) }},
		{JitterEqual,
			func(n int, _ time.Duration) time.Duration { return exp(n) - exp(n)/2 },
			func(n int, _ time.Duration) time.Duration { return exp(n) }},
		{JitterDecorrelated,
			func(int, time.Duration) time.Duration { return base },
			func(_ int, prev time.Duration) time.Duration { return min(maxDelay, 3*prev) }},
	}
	for _, tt := range tests {
		t.Run(tt.jitter.String(), func(t *testing.T) {
			c := policyConfig(RetryBaseDelay(base), RetryMaxDelay(maxDelay), RetryJitter(tt.jitter))
			seen := map[time.Duration]bool{}
			for range 2000 {
				prev := base
				for n := 1; n <= 12; n++ {
					before := prev
					d := c.backoff(n, &prev)
					lo, hi := tt.lo(n, before), tt.hi(n, before)
					require.GreaterOrEqual(t, d, lo, "retry %d", n)
					require.LessOrEqual(t, d, hi, "retry %d", n)
					seen[d] = true
				}
			}
			if tt.jitter != JitterNone {
				// A jitter that always returned a bound would pass the
				// checks above; make sure the draws actually spread.
				assert.Greater(t, len(seen), 1000)
			}
		})
	}
}

func TestRetryWaitsExactlyTheDelayReportedToTheHook(t *testing.T) {
	for _, j := range []Jitter{JitterNone, JitterFull, JitterEqual, JitterDecorrelated} {
		t.Run(j.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var delays []time.Duration
				var starts []time.Time
				fn := func(context.Context) error {
					starts = append(starts, time.Now())
					return errFlaky
				}
				err := Retry(t.Context(), fn, RetryAttempts(6), RetryJitter(j),
					RetryBaseDelay(time.Second), RetryMaxDelay(5*time.Second),
					OnRetry(func(n int, err error, d time.Duration) {
						assert.Equal(t, len(delays)+1, n)
						assert.ErrorIs(t, err, errFlaky)
						delays = append(delays, d)
					}))
				require.Error(t, err)
				require.Len(t, starts, 6)
				require.Len(t, delays, 5) // no hook for the attempt that ends it
				for i, d := range delays {
					assert.Equal(t, d, starts[i+1].Sub(starts[i]), "delay %d", i+1)
					assert.LessOrEqual(t, d, 5*time.Second)
				}
			})
		})
	}
}

func TestRetryStopsWhenAttemptsAreExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, calls := failing(100)
		err := Retry(t.Context(), fn, RetryAttempts(4))
		assert.Equal(t, int32(4), calls.Load())
		var re *RetryError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, RetryExhausted, re.Reason)
		assert.Equal(t, 4, re.Attempts)
		assert.ErrorIs(t, err, errFlaky)
		assert.NotErrorIs(t, err, context.Canceled)
		assert.EqualError(t, err, "conc: retry: gave up after 4 attempts: flaky")
	})
}

func TestRetryWithZeroAttemptsRetriesUntilSuccess(t *testing.T) {
	fn, calls := failing(50)
	require.NoError(t, Retry(t.Context(), fn, RetryAttempts(0), RetryBaseDelay(0)))
	assert.Equal(t, int32(51), calls.Load())
}

func TestRetryMaxElapsedReturnsWithoutStartingALateSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, calls := failing(100)
		start := time.Now()
		// Attempts at 0s and 1s; the next delay, 2s, would start the third
		// attempt at 3s, past the 2.5s limit, so the call ends at 1s.
		err := Retry(t.Context(), fn, RetryAttempts(0), RetryJitter(JitterNone),
			RetryBaseDelay(time.Second), RetryMaxElapsed(2500*time.Millisecond))
		assert.Equal(t, time.Second, time.Since(start))
		assert.Equal(t, int32(2), calls.Load())
		var re *RetryError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, RetryElapsed, re.Reason)
		assert.ErrorIs(t, err, errFlaky)
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "max elapsed time 2.5s reached after 2 attempts")
	})
}

func TestRetryDoesNotStartASleepThatWouldPassTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel()
		fn, calls := failing(100)
		start := time.Now()
		err := Retry(ctx, fn, RetryAttempts(0), RetryJitter(JitterNone), RetryBaseDelay(time.Second))
		// The 2s delay after the attempt at 1s would end at 3s, past 1.5s.
		assert.Equal(t, time.Second, time.Since(start))
		assert.Equal(t, int32(2), calls.Load())
		assert.NoError(t, ctx.Err(), "returned before the deadline, not at it")
		var re *RetryError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, RetryDeadline, re.Reason)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, errFlaky)
	})
}

func TestRetryDelayEndingExactlyAtTheDeadlineIsNotStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		fn, calls := failing(100)
		err := Retry(ctx, fn, RetryJitter(JitterNone), RetryBaseDelay(time.Second))
		assert.Equal(t, int32(1), calls.Load())
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestRetryContextCanceledDuringDelayReturnsAtOnceKeepingTheCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cause := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(t.Context())
		fn, calls := failing(100)
		time.AfterFunc(300*time.Millisecond, func() { cancel(cause) })
		start := time.Now()
		err := Retry(ctx, fn, RetryJitter(JitterNone), RetryBaseDelay(time.Second))
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
		assert.Equal(t, int32(1), calls.Load())
		var re *RetryError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, RetryContextDone, re.Reason)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, cause)
		assert.ErrorIs(t, err, errFlaky)
		assert.EqualError(t, err, "conc: retry: context canceled (shutting down) after 1 attempt: flaky")
	})
}

func TestRetryContextDeadlineDuringDelayMatchesDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The deadline is only known to ctx's parent: Retry cannot see it
		// coming and must notice it while sleeping.
		parent, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		ctx := hideDeadline{parent}
		fn, _ := failing(100)
		err := Retry(ctx, fn, RetryJitter(JitterNone), RetryBaseDelay(time.Second))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, errFlaky)
	})
}

// hideDeadline is a context whose deadline is not reported, like a context
// cancelled by a timer the caller owns.
type hideDeadline struct{ context.Context }

func (hideDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }

func TestRetryNeverCallsFnWhenTheContextIsAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	fn, calls := failing(0)
	err := Retry(ctx, fn)
	assert.Zero(t, calls.Load())
	assert.ErrorIs(t, err, context.Canceled)
	assert.EqualError(t, err, "conc: retry: context canceled before the first attempt")
}

func TestRetryPermanentStopsAndReturnsTheUnwrappedError(t *testing.T) {
	inner := errors.New("bad request")
	for name, wrap := range map[string]func(error) error{
		"direct":  Permanent,
		"wrapped": func(err error) error { return fmt.Errorf("call: %w", Permanent(err)) },
		"joined":  func(err error) error { return errors.Join(errFlaky, Permanent(err)) },
	} {
		t.Run(name, func(t *testing.T) {
			calls := 0
			err := Retry(t.Context(), func(context.Context) error {
				calls++
				return wrap(inner)
			}, RetryAttempts(5), RetryBaseDelay(0), RetryIf(func(error) bool { return true }))
			assert.Equal(t, 1, calls)
			assert.Same(t, inner, err)
		})
	}
	assert.NoError(t, Permanent(nil))
	assert.EqualError(t, Permanent(inner), "bad request")
}

func TestRetryAfterReplacesTheBackoffCappedByMaxDelay(t *testing.T) {
	tests := []struct {
		name      string
		serverSay time.Duration
		want      time.Duration
	}{
		{"shorter than backoff", 200 * time.Millisecond, 200 * time.Millisecond},
		{"longer than backoff", 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"capped by max delay", time.Minute, 2 * time.Second},
		{"negative is zero", -time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				start := time.Now()
				err := Retry(t.Context(), func(context.Context) error {
					if calls++; calls == 1 {
						return RetryAfter(errFlaky, tt.serverSay)
					}
					return nil
				}, RetryBaseDelay(time.Second), RetryMaxDelay(2*time.Second), RetryJitter(JitterNone))
				require.NoError(t, err)
				assert.Equal(t, tt.want, time.Since(start))
			})
		})
	}
	assert.NoError(t, RetryAfter(nil, time.Second))
	wrapped := RetryAfter(errFlaky, time.Second)
	assert.ErrorIs(t, wrapped, errFlaky)
	assert.EqualError(t, wrapped, "flaky")
}

func TestRetryDoesNotRetryErrOpenByDefault(t *testing.T) {
	calls := 0
	open := fmt.Errorf("payments: %w", ErrOpen)
	err := Retry(t.Context(), func(context.Context) error { calls++; return open }, RetryBaseDelay(0))
	assert.Equal(t, 1, calls)
	assert.Same(t, open, err, "a rejected error is returned as it is")
}

func TestRetryIfPredicateDecidesAndCanRetryErrOpen(t *testing.T) {
	calls := 0
	err := Retry(t.Context(), func(context.Context) error { calls++; return ErrOpen },
		RetryAttempts(3), RetryBaseDelay(0), RetryIf(func(err error) bool { return errors.Is(err, ErrOpen) }))
	assert.Equal(t, 3, calls)
	assert.ErrorIs(t, err, ErrOpen)

	calls = 0
	err = Retry(t.Context(), func(context.Context) error { calls++; return errFlaky },
		RetryAttempts(3), RetryBaseDelay(0), RetryIf(func(err error) bool { return !errors.Is(err, errFlaky) }))
	assert.Equal(t, 1, calls)
	assert.Same(t, errFlaky, err)
}

func TestRetryPanicInFnIsReturnedAsPanicErrorWithoutRetrying(t *testing.T) {
	for _, failFirst := range []int{0, 2} {
		t.Run(fmt.Sprint("after ", failFirst, " failures"), func(t *testing.T) {
			calls := 0
			err := Retry(t.Context(), func(context.Context) error {
				if calls++; calls > failFirst {
					panic("boom")
				}
				return errFlaky
			}, RetryAttempts(10), RetryBaseDelay(0))
			assert.Equal(t, failFirst+1, calls)
			var pe *PanicError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "boom", pe.Value)
		})
	}
}

func TestRetryPanicsInPredicateAndHookBecomePanicErrors(t *testing.T) {
	fn, _ := failing(100)
	err := Retry(t.Context(), fn, RetryBaseDelay(0), RetryIf(func(error) bool { panic("pred") }))
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "pred", pe.Value)

	err = Retry(t.Context(), fn, RetryBaseDelay(0), OnRetry(func(int, error, time.Duration) { panic("hook") }))
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "hook", pe.Value)
}

func TestRetryValueReturnsTheFirstSuccessfulValue(t *testing.T) {
	calls := 0
	v, err := RetryValue(t.Context(), func(context.Context) (string, error) {
		if calls++; calls < 3 {
			return "partial", errFlaky
		}
		return "done", nil
	}, RetryBaseDelay(0))
	require.NoError(t, err)
	assert.Equal(t, "done", v)

	v, err = RetryValue(t.Context(), func(context.Context) (string, error) { return "partial", errFlaky },
		RetryBaseDelay(0), RetryAttempts(2))
	assert.ErrorIs(t, err, errFlaky)
	assert.Empty(t, v, "the zero value comes with an error")

	_, err = RetryValue(t.Context(), func(context.Context) (int, error) { panic("v") })
	var pe *PanicError
	assert.ErrorAs(t, err, &pe)
}

func TestRetryPolicySharedBy100GoroutinesKeepsCallsApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var retries atomic.Int64
		p := NewRetryPolicy(RetryAttempts(8), RetryBaseDelay(time.Millisecond), RetryJitter(JitterDecorrelated),
			OnRetry(func(int, error, time.Duration) { retries.Add(1) }))
		var (
			wg       sync.WaitGroup
			attempts atomic.Int64
			failures int64
		)
		for g := range 100 {
			failures += int64(g % 8) // 0..7 failures: always within 8 attempts
			wg.Go(func() {
				fn, calls := failing(g % 8)
				var err error
				if g%2 == 0 {
					err = p.Do(t.Context(), fn)
				} else {
					err = Retry(t.Context(), fn, p)
				}
				assert.NoError(t, err)
				assert.Equal(t, int32(g%8+1), calls.Load())
				attempts.Add(int64(calls.Load()))
			})
		}
		wg.Wait()
		assert.Equal(t, failures, retries.Load(), "one hook call per failed attempt")
		assert.Equal(t, failures+100, attempts.Load())
	})
}

func TestRetryZeroPolicyUsesTheDefaults(t *testing.T) {
	var p RetryPolicy
	assert.Equal(t, defaultRetryConfig, p.config())
	fn, calls := failing(100)
	synctest.Test(t, func(t *testing.T) {
		err := p.Do(t.Context(), fn)
		assert.Equal(t, int32(defaultRetryAttempts), calls.Load())
		assert.ErrorIs(t, err, errFlaky)
	})
}

func TestRetryOptionsAfterAPolicyOverrideIt(t *testing.T) {
	var hooked atomic.Int32
	p := NewRetryPolicy(RetryAttempts(5), RetryBaseDelay(0), OnRetry(func(int, error, time.Duration) { hooked.Add(1) }))
	fn, calls := failing(100)
	err := Retry(t.Context(), fn, p, RetryAttempts(2))
	assert.ErrorIs(t, err, errFlaky)
	assert.Equal(t, int32(2), calls.Load())
	assert.Equal(t, int32(1), hooked.Load(), "the policy's hook is kept")

	c := policyConfig(RetryMaxDelay(time.Minute), p)
	assert.Equal(t, 5, c.attempts)
	assert.Equal(t, defaultRetryMax, c.max, "a policy replaces earlier options")
}

func TestRetryBaseDelayAboveTheDefaultMaxRaisesTheMax(t *testing.T) {
	c := policyConfig(RetryBaseDelay(time.Minute))
	assert.Equal(t, time.Minute, c.max)
}

func TestRetryBadInputPanicsWithAConcMessage(t *testing.T) {
	tests := []struct {
		name string
		opts []RetryOption
		want string
	}{
		{"negative attempts", []RetryOption{RetryAttempts(-1)}, "conc: retry attempts must not be negative, got -1"},
		{"negative base", []RetryOption{RetryBaseDelay(-time.Second)}, "conc: retry base delay must not be negative, got -1s"},
		{"negative max", []RetryOption{RetryMaxDelay(-time.Second)}, "conc: retry max delay must not be negative, got -1s"},
		{"negative elapsed", []RetryOption{RetryMaxElapsed(-time.Second)}, "conc: retry max elapsed must not be negative, got -1s"},
		{"max below base", []RetryOption{RetryBaseDelay(time.Second), RetryMaxDelay(time.Millisecond)},
			"conc: retry max delay 1ms is less than base delay 1s"},
		{"unknown jitter", []RetryOption{RetryJitter(9)}, "conc: retry jitter 9 is not one of the Jitter constants"},
		{"nil predicate", []RetryOption{RetryIf(nil)}, "conc: retry-if predicate must not be nil"},
		{"nil hook", []RetryOption{OnRetry(nil)}, "conc: on-retry hook must not be nil"},
		{"nil option", []RetryOption{nil}, "conc: retry option must not be nil"},
		{"nil policy", []RetryOption{(*RetryPolicy)(nil)}, "conc: retry policy must not be nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, func() { NewRetryPolicy(tt.opts...) })
			called := false
			assert.PanicsWithValue(t, tt.want, func() {
				_ = Retry(t.Context(), func(context.Context) error { called = true; return nil }, tt.opts...)
			})
			assert.False(t, called, "options are checked before the first attempt")
			assert.PanicsWithValue(t, tt.want, func() {
				_, _ = RetryValue(t.Context(), func(context.Context) (int, error) { return 0, nil }, tt.opts...)
			})
		})
	}
	const nilFn = "conc: retry function must not be nil"
	assert.PanicsWithValue(t, nilFn, func() { _ = Retry(t.Context(), nil) })
	assert.PanicsWithValue(t, nilFn, func() { _ = NewRetryPolicy().Do(t.Context(), nil) })
	assert.PanicsWithValue(t, nilFn, func() { _, _ = RetryValue[int](t.Context(), nil) })
}

func TestRetryFirstSuccessDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	base := 10 * time.Millisecond // not a constant: its boxing must stay on the stack
	var seen error
	p := NewRetryPolicy(RetryAttempts(5))
	tests := map[string]func(){
		"no options": func() { _ = Retry(ctx, ok) },
		"options": func() {
			_ = Retry(ctx, ok, RetryAttempts(5), RetryBaseDelay(base), RetryMaxDelay(time.Second),
				RetryJitter(JitterEqual), RetryMaxElapsed(time.Minute),
				RetryIf(func(err error) bool { return err != seen }), // captures: a closure
				OnRetry(func(int, error, time.Duration) { seen = nil }))
		},
		"policy":        func() { _ = p.Do(ctx, ok) },
		"policy option": func() { _ = Retry(ctx, ok, p) },
		"value": func() {
			_, _ = RetryValue(ctx, func(context.Context) (int, error) { return 1, nil }, RetryBaseDelay(base))
		},
	}
	for name, call := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(100, call))
		})
	}
}

func TestRetryAllocatesNothingPerAttempt(t *testing.T) {
	// Zero delays: no timer at all, so any allocation would be per attempt
	// (or the one RetryError at the end, which both counts share).
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(50, func() {
			fn, _ := failing(1 << 30)
			_ = Retry(context.Background(), fn, RetryAttempts(n), RetryBaseDelay(0))
		})
	}
	assert.Equal(t, allocs(2), allocs(40))
}

func TestRetryUsesOneTimerPerCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Real delays: the timer is made on the first sleep and reused, so
		// 40 attempts allocate what 3 do.
		allocs := func(n int) float64 {
			return testing.AllocsPerRun(20, func() {
				fn, _ := failing(1 << 30)
				_ = Retry(context.Background(), fn, RetryAttempts(n), RetryBaseDelay(time.Millisecond),
					RetryMaxDelay(time.Millisecond))
			})
		}
		assert.Equal(t, allocs(3), allocs(40))
	})
}

func TestRetryErrorUnwrapsWhenBuiltByHand(t *testing.T) {
	err := &RetryError{Err: errFlaky, Attempts: 2, Reason: RetryExhausted}
	assert.ErrorIs(t, err, errFlaky)
	assert.EqualError(t, err, "conc: retry: gave up after 2 attempts: flaky")
}

func TestJitterAndRetryReasonHaveNames(t *testing.T) {
	names := []string{}
	for _, j := range []Jitter{JitterFull, JitterNone, JitterEqual, JitterDecorrelated, 9} {
		names = append(names, j.String())
	}
	assert.Equal(t, "full none equal decorrelated Jitter(9)", strings.Join(names, " "))
	names = names[:0]
	for _, r := range []RetryReason{RetryExhausted, RetryElapsed, RetryDeadline, RetryContextDone, 0} {
		names = append(names, r.String())
	}
	assert.Equal(t, "attempts exhausted, max elapsed time reached, context deadline too close, "+
		"context done, RetryReason(0)", strings.Join(names, ", "))
}
