package conc

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// Regression tests found by the second review (limiter, breaker, retry,
// or-channel, deadlock, shutdown and merge files).

// A ProbeTimeout too long for the slot word's 40 bits of milliseconds (about
// 34 years; math.MaxInt64 is the natural way to say "never") wrapped the
// probe's deadline into the past, so every caller found the one probe slot
// expired and took it: HalfOpenProbes(1) admitted any number of probes.
func TestBreakerHugeProbeTimeoutStillBoundsProbes(t *testing.T) {
	for _, d := range []time.Duration{1 << 40 * time.Millisecond, 2 << 40 * time.Millisecond, math.MaxInt64} {
		t.Run(d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), ProbeTimeout(d))
				tripBreakerN(t, b, 1)
				time.Sleep(time.Second)
				done, err := b.Allow()
				require.NoError(t, err)
				defer done(nil)
				_, err = b.Allow()
				require.ErrorIs(t, err, ErrOpen, "a second probe was admitted while the first holds the only slot")
				st := b.Stats()
				require.Equal(t, uint64(1), st.Probes)
				require.Equal(t, uint64(0), st.ProbesAbandoned)
			})
		})
	}
}

// MaxKeys(100) split its cap over 64 shards of 100/64 = 1 key each: the
// limiter kept at most 64 keys, and two throttled keys that hashed to the
// same shard were enough to refuse the second (Allow false, Wait
// ErrTooManyKeys) while the limiter held one key of its 100. A small cap
// now gets few enough shards for its share to be meaningful, and the
// shares add up to the cap exactly.
func TestKeyedLimiterSmallMaxKeysHoldsThatManyKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxKeys = 100
		l := NewKeyedLimiter[int](1, 1, MaxKeys(maxKeys))
		for i := range maxKeys {
			require.True(t, l.Allow(i), "key %d of %d refused", i, maxKeys)
		}
		require.Equal(t, maxKeys, l.Len())
		require.False(t, l.Allow(maxKeys), "one more key than the cap")
		st := l.Stats()
		require.Equal(t, KeyedLimiterStats{Keys: maxKeys, Allowed: maxKeys, Refused: 1}, st)
	})
}

func TestKeyedLimiterShardSharesAddUpToMaxKeys(t *testing.T) {
	for _, maxKeys := range []int{1, 3, 100, 1000, 4097, 1<<17 + 5} {
		l := NewKeyedLimiter[int](1, 1, MaxKeys(maxKeys))
		sum := 0
		for i := range l.shards {
			require.Positive(t, l.shards[i].max)
			sum += l.shards[i].max
		}
		require.Equal(t, maxKeys, sum, "MaxKeys(%d) over %d shards", maxKeys, len(l.shards))
	}
}

// Run's doc: "A phase that fails after its deadline is reported as timed
// out (its error matches context.DeadlineExceeded too)". Only the phase's
// own error was wrapped, so a phase that failed late with an error of its
// own (not ctx.Err()) did not match context.DeadlineExceeded.
func TestShutdownPhaseFailingLateMatchesDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errFlush := errors.New("flush failed")
		s := NewShutdown()
		require.NoError(t, s.Add("flush", time.Second, func(ctx context.Context) error {
			<-ctx.Done()
			return errFlush // its own error, not ctx.Err()
		}))
		s.Trigger()
		err := s.Run(t.Context())
		require.ErrorIs(t, err, errFlush)
		require.ErrorIs(t, err, context.DeadlineExceeded, "reported as timed out")
		var pe *PhaseError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, "flush", pe.Phase)
	})
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
		require.Equal(t, Open, b.State())
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
		require.Equal(t, Open, b.State())
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
