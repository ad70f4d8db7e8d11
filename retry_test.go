package conc

// Tests of one retry loop: delays, limits, context, error classification.
// Everything that involves time runs in a synctest bubble: no real sleeps.

import (
	"context"
	"errors"
	"fmt"
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

// Under synctest the clock only moves when every goroutine of the bubble is
// blocked, so time.Since measures exactly the delays Retry slept.
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

// The bounds are the AWS blog's formulas; backoff is drawn directly (white
// box) so that thousands of draws cost no time at all.
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

// The hook's delay is the one actually slept: what a caller logs is true.
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

// A delay that would start the next attempt past the limit is pointless, so
// Retry gives up before it rather than after.
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

// Same for ctx's deadline: fail now instead of sleeping into a certain
// DeadlineExceeded. The error matches DeadlineExceeded although ctx is not
// done yet, because the deadline is what ended the call.
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

// Cancellation interrupts the sleep, and the error keeps all three: the
// last attempt's error, context.Canceled and the cause.
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

// With a zero delay nothing waits on ctx between attempts, so a ctx that
// ends in the predicate or the hook must still be seen before the next
// attempt: fn never runs on a done context.
func TestRetryContextCanceledByPredicateOrHookStopsBeforeTheNextAttempt(t *testing.T) {
	errLater := errors.New("later")
	tests := []struct {
		name string
		err  error // what fn returns
		opts func(cancel context.CancelFunc) []RetryOption
	}{
		{"hook, zero base delay", errFlaky, func(cancel context.CancelFunc) []RetryOption {
			return []RetryOption{RetryBaseDelay(0), OnRetry(func(int, error, time.Duration) { cancel() })}
		}},
		{"predicate, zero base delay", errFlaky, func(cancel context.CancelFunc) []RetryOption {
			return []RetryOption{RetryBaseDelay(0), RetryIf(func(error) bool { cancel(); return true })}
		}},
		{"hook, RetryAfter zero", RetryAfter(errLater, 0), func(cancel context.CancelFunc) []RetryOption {
			return []RetryOption{OnRetry(func(int, error, time.Duration) { cancel() })}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var calls atomic.Int32
			fn := func(ctx context.Context) error {
				calls.Add(1)
				if ctx.Err() != nil {
					t.Error("fn called on a done context")
				}
				return tt.err
			}
			err := Retry(ctx, fn, append(tt.opts(cancel), RetryAttempts(5))...)
			assert.Equal(t, int32(1), calls.Load())
			var re *RetryError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, RetryContextDone, re.Reason)
			assert.ErrorIs(t, err, context.Canceled)
			assert.ErrorIs(t, err, tt.err)
		})
	}
}

// The Permanent mark is found anywhere in the tree, as errors.As would, and
// beats even a predicate that retries everything.
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

// An open breaker answers at once; retrying it only hides the outage.
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

// A panic is a bug, not a transient failure: it ends the retry, on the
// first attempt as on a later one.
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
