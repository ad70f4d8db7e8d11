package conc

import (
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
