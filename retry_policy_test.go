package conc

// Tests of RetryValue, of RetryPolicy (sharing, zero value, composition with
// options), of construction checks and of the allocation promises. The
// behaviour of a single retry loop is in retry_test.go.

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// One policy, 100 concurrent calls with different failure counts: under
// -race this shows the policy holds no per-call state, and the counts show
// no call saw another's attempts.
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
	assert.Equal(t, defaultRetryConfig, *p.config())
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

	// Also when the base comes after a policy that gave no max delay: the
	// policy's max is the default, not a choice of the caller's.
	plain := NewRetryPolicy(RetryAttempts(3))
	c = policyConfig(plain, RetryBaseDelay(time.Minute))
	assert.Equal(t, time.Minute, c.max)
	raised := NewRetryPolicy(RetryBaseDelay(time.Minute))
	c = policyConfig(raised, RetryBaseDelay(time.Second))
	assert.Equal(t, defaultRetryMax, c.max, "the default again, not the policy's raised base")

	// A max delay the caller did give still binds.
	capped := NewRetryPolicy(RetryMaxDelay(time.Second))
	assert.PanicsWithValue(t, "conc: retry max delay 1s is less than base delay 1m0s", func() {
		policyConfig(capped, RetryBaseDelay(time.Minute))
	})
}

// foreignOption satisfies RetryOption by embedding it, the only way code
// outside the package can make an option resolve does not know.
type foreignOption struct{ RetryOption }

// Every programmer error panics before fn runs, with the same message
// whichever entry point resolved the options.
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
		{"nil option", []RetryOption{nil}, "conc: Retry option 0 must not be nil"},
		{"nil policy", []RetryOption{(*RetryPolicy)(nil)}, "conc: Retry option 0 must not be nil"},
		{"foreign option", []RetryOption{foreignOption{}}, "conc: unknown retry option type conc.foreignOption"},
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
	assert.PanicsWithValue(t, "conc: retry policy must not be nil", func() {
		_ = (*RetryPolicy)(nil).Do(t.Context(), func(context.Context) error { return nil })
	})
}

// The success path allocates nothing even with every option, a
// non-constant duration and capturing closures: the options are read
// with a type switch and never escape.
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

// Zero delays: no timer at all, so any allocation would be per attempt
// (or the one RetryError at the end, which both counts share).
func TestRetryAllocatesNothingPerAttempt(t *testing.T) {
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
