package conc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the open and half-open states: cooldowns, probes, probe
// timeouts. All of them run in a synctest bubble.

func TestBreakerStateReportsHalfOpenAfterCooldownWithoutTraffic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes []string
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(10*time.Second),
			OnStateChange(func(from, to BreakerState) { changes = append(changes, from.String()+">"+to.String()) }))
		tripBreakerN(t, b, 1)
		time.Sleep(10*time.Second - time.Nanosecond)
		assert.Equal(t, BreakerOpen, b.State())
		time.Sleep(time.Nanosecond)
		assert.Equal(t, BreakerHalfOpen, b.State())
		assert.Equal(t, []string{"closed>open", "open>half-open"}, changes)
	})
}

func TestBreakerHalfOpenAdmitsExactlyTheConfiguredProbes(t *testing.T) {
	for _, probes := range []int{1, 3, 10} {
		t.Run(fmt.Sprint(probes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second),
					HalfOpenProbes(probes), SuccessesToClose(probes), ProbeTimeout(time.Hour))
				tripBreakerN(t, b, 1)
				time.Sleep(time.Second)

				release := make(chan struct{})
				var running, rejected atomic.Int64
				var wg sync.WaitGroup
				for range 100 {
					wg.Go(func() {
						err := b.Execute(t.Context(), func(context.Context) error {
							running.Add(1)
							<-release
							return nil
						})
						if errors.Is(err, ErrOpen) {
							rejected.Add(1)
						}
					})
				}
				synctest.Wait() // every caller is either rejected or blocked in fn
				assert.Equal(t, int64(probes), running.Load())
				assert.Equal(t, int64(100-probes), rejected.Load())
				assert.Equal(t, probes, b.Stats().ProbesInFlight)
				close(release)
				wg.Wait()
				assert.Equal(t, BreakerClosed, b.State(), "all probes succeeded")
				s := b.Stats()
				assert.Equal(t, uint64(probes), s.Probes)
				assert.Equal(t, uint64(probes), s.ProbeSuccesses)
			})
		})
	}
}

func TestBreakerHungProbeIsReplacedAfterProbeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), ProbeTimeout(5*time.Second))
		tripBreakerN(t, b, 1)
		time.Sleep(time.Second)

		hung, err := b.Allow() // a probe whose done is never called in time
		require.NoError(t, err)
		time.Sleep(5*time.Second - time.Nanosecond)
		_, err = b.Allow()
		assert.ErrorIs(t, err, ErrOpen, "the hung probe still holds the only slot")

		time.Sleep(time.Nanosecond)
		done, err := b.Allow()
		require.NoError(t, err, "past the probe timeout the slot is free again")
		hung(errBreakerBoom) // too late: must not reopen the breaker
		assert.Equal(t, BreakerHalfOpen, b.State())
		done(nil)
		assert.Equal(t, BreakerClosed, b.State())
		s := b.Stats()
		assert.Equal(t, uint64(1), s.ProbesAbandoned)
		assert.Equal(t, uint64(0), s.ProbeFailures)
		assert.Equal(t, s.Probes, s.ProbeSuccesses+s.ProbeFailures+s.ProbeCanceled+s.ProbesAbandoned)
	})
}

func TestBreakerExecuteProbeHangingPastTimeoutIsReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), ProbeTimeout(3*time.Second))
		tripBreakerN(t, b, 1)
		time.Sleep(time.Second)
		unblock := make(chan struct{})
		go func() {
			_ = b.Execute(context.Background(), func(context.Context) error { <-unblock; return errBreakerBoom })
		}()
		synctest.Wait()
		time.Sleep(3 * time.Second)
		require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
		assert.Equal(t, BreakerClosed, b.State())
		close(unblock)
		synctest.Wait()
		assert.Equal(t, BreakerClosed, b.State(), "the late failure belongs to an expired probe")
	})
}

func TestBreakerFailedProbeReopensAndSuccessesToCloseAreCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), SuccessesToClose(3))
		tripBreakerN(t, b, 1)
		time.Sleep(time.Second)
		require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
		require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
		assert.Equal(t, BreakerHalfOpen, b.State())
		tripBreakerN(t, b, 1) // a failed probe reopens at once
		assert.Equal(t, BreakerOpen, b.State())
		time.Sleep(time.Second)
		for range 3 {
			require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
		}
		assert.Equal(t, BreakerClosed, b.State())
		s := b.Stats()
		assert.Equal(t, uint64(2), s.Trips)
		assert.Equal(t, uint64(5), s.ProbeSuccesses)
		assert.Equal(t, uint64(1), s.ProbeFailures)
	})
}

func TestBreakerCooldownGrowsOnRepeatedTripsAndIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), CooldownGrowth(2, 5*time.Second))
		tripBreakerN(t, b, 1)
		for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
			time.Sleep(want - time.Nanosecond)
			require.Equal(t, BreakerOpen, b.State(), "cooldown %v not over yet", want)
			time.Sleep(time.Nanosecond)
			require.Equal(t, BreakerHalfOpen, b.State(), "cooldown %v over", want)
			tripBreakerN(t, b, 1) // the probe fails
		}
		time.Sleep(5 * time.Second)
		require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
		tripBreakerN(t, b, 1) // closed in between: back to the base cooldown
		time.Sleep(time.Second)
		assert.Equal(t, BreakerHalfOpen, b.State())
	})
}

func TestBreakerCooldownJitterStaysInBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const base = 10 * time.Second
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(base), CooldownJitter(0.5))
		seen := map[time.Duration]bool{}
		for range 50 {
			tripBreakerN(t, b, 1)
			start := time.Now()
			time.Sleep(base - time.Nanosecond)
			require.Equal(t, BreakerOpen, b.State(), "jitter never shortens the cooldown")
			for b.State() == BreakerOpen {
				time.Sleep(100 * time.Millisecond)
			}
			d := time.Since(start)
			require.LessOrEqual(t, d, base+base/2)
			seen[d.Round(time.Second)] = true
			require.NoError(t, b.Execute(t.Context(), breakerFn(nil)))
		}
		assert.Greater(t, len(seen), 2, "cooldowns should differ")
	})
}

// TestBreakerStressKeepsProbeAccounting hammers one breaker from many
// goroutines with random outcomes, through both Execute and Allow, and
// checks that the half-open accounting adds up. The model test checks the
// decisions themselves.
func TestBreakerStressKeepsProbeAccounting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const probes = 3
		b := NewBreaker(ConsecutiveFailures(3), Cooldown(time.Millisecond), HalfOpenProbes(probes),
			SuccessesToClose(2), ProbeTimeout(5*time.Millisecond))
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 300 {
					// Rejected calls return at once; without a pause here
					// the fake clock would never move.
					time.Sleep(500 * time.Microsecond)
					fail := (i*7+g)%5 < 2
					fn := func(context.Context) error {
						time.Sleep(time.Duration(i%4) * time.Millisecond)
						if fail {
							return errBreakerBoom
						}
						return nil
					}
					if i%3 == 0 {
						if done, err := b.Allow(); err == nil {
							done(fn(t.Context()))
						}
						continue
					}
					_ = b.Execute(t.Context(), fn)
				}
			})
		}
		wg.Wait()
		s := b.Stats()
		assert.Equal(t, s.Probes, s.ProbeSuccesses+s.ProbeFailures+s.ProbeCanceled+s.ProbesAbandoned+uint64(s.ProbesInFlight))
		assert.Greater(t, s.Trips, uint64(1))
		assert.Greater(t, s.Rejected, uint64(0))
	})
}

// The probe deadline frees a slot for the next caller; it does not judge a
// slow probe. A result reported past the deadline counts while no caller has
// taken the slot, and is ignored once one has.
func TestBreakerLateProbeCountsUnlessItsSlotWasTaken(t *testing.T) {
	for _, taken := range []bool{false, true} {
		t.Run(fmt.Sprintf("slot taken=%v", taken), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), ProbeTimeout(2*time.Second))
				tripBreakerN(t, b, 1)
				time.Sleep(time.Second)
				done, err := b.Allow()
				require.NoError(t, err)
				time.Sleep(2 * time.Second)
				if taken {
					_, err := b.Allow() // takes the expired probe's slot and keeps it
					require.NoError(t, err)
				}
				done(nil)
				s := b.Stats()
				if taken {
					assert.Equal(t, BreakerHalfOpen, s.State, "a replaced probe's result is ignored")
					assert.Equal(t, uint64(1), s.ProbesAbandoned)
					assert.Equal(t, uint64(0), s.ProbeSuccesses)
					assert.Equal(t, 1, s.ProbesInFlight)
				} else {
					assert.Equal(t, BreakerClosed, s.State, "a late probe still holding its slot counts")
					assert.Equal(t, uint64(0), s.ProbesAbandoned)
					assert.Equal(t, uint64(1), s.ProbeSuccesses)
					assert.Equal(t, 0, s.ProbesInFlight)
				}
				assert.Equal(t, s.Probes, s.ProbeSuccesses+s.ProbeFailures+s.ProbeCanceled+s.ProbesAbandoned+uint64(s.ProbesInFlight))
			})
		})
	}
}

// With a short cooldown and no ProbeTimeout, calls slower than the cooldown
// must still be able to close the breaker under steady traffic: the default
// probe timeout does not shrink with the cooldown, so the probe is not
// replaced before it reports.
func TestBreakerShortCooldownSlowCallsCanClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(200*time.Millisecond))
		tripBreakerN(t, b, 1)
		time.Sleep(200 * time.Millisecond)
		slow := func(context.Context) error { time.Sleep(300 * time.Millisecond); return nil }
		var wg sync.WaitGroup
		// A caller every 70ms for 2.1s. A probe timeout of 200ms would
		// let the caller at t=410ms replace the probe, which reports at
		// t=500ms.
		for range 30 {
			wg.Go(func() { _ = b.Execute(t.Context(), slow) })
			time.Sleep(70 * time.Millisecond)
		}
		wg.Wait()
		assert.Equal(t, BreakerClosed, b.State())
		assert.Equal(t, uint64(0), b.Stats().ProbesAbandoned)
	})
}

func TestBreakerDefaultProbeTimeoutIsTheCooldownButAtLeast10s(t *testing.T) {
	tests := []struct {
		name string
		opts []BreakerOption
		want time.Duration
	}{
		{"default cooldown", nil, 30 * time.Second},
		{"short cooldown", []BreakerOption{Cooldown(200 * time.Millisecond)}, 10 * time.Second},
		{"zero cooldown", []BreakerOption{Cooldown(0)}, 10 * time.Second},
		{"long cooldown", []BreakerOption{Cooldown(time.Minute)}, time.Minute},
		{"explicit", []BreakerOption{Cooldown(time.Minute), ProbeTimeout(time.Second)}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, NewBreaker(tt.opts...).cfg.probeTimeout)
		})
	}
}

// TestBreakerProbeSlotsBoundConcurrencyUnderContention keeps a breaker
// half-open (its probes succeed, but never enough to close it) while 16
// goroutines call it as fast as they can, on real threads: no more than the
// configured number of probes may ever run at once.
func TestBreakerProbeSlotsBoundConcurrencyUnderContention(t *testing.T) {
	const probes = 3
	b := NewBreaker(ConsecutiveFailures(1), Cooldown(0), HalfOpenProbes(probes),
		SuccessesToClose(1<<20), ProbeTimeout(time.Hour))
	tripBreakerN(t, b, 1)
	require.Equal(t, BreakerHalfOpen, b.State())
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 2000 {
				_ = b.Execute(context.Background(), func(context.Context) error {
					n := running.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					runtime.Gosched()
					running.Add(-1)
					return nil
				})
			}
		})
	}
	wg.Wait()
	s := b.Stats()
	assert.LessOrEqual(t, peak.Load(), int64(probes))
	assert.Equal(t, BreakerHalfOpen, s.State)
	assert.Equal(t, s.Probes, s.ProbeSuccesses)
	assert.Equal(t, uint64(16*2000), s.Probes+s.Rejected)
}

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

// A probe keeps its slot until its result has been applied: a caller
// arriving while the deciding success closes the breaker (or a failure
// reopens it) is rejected or admitted under the new state, never admitted
// as a probe of the ending half-open state only to be abandoned by it.
// Without a probe timeout no probe can expire, so nothing may be abandoned.
func TestBreakerProbeHoldsItsSlotWhileItsResultIsApplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(ConsecutiveFailures(1), Cooldown(time.Second), ProbeTimeout(time.Duration(math.MaxInt64)))
		fail := errors.New("probe failed")
		for round := range 300 {
			if b.State() == BreakerClosed {
				tripBreakerN(t, b, 1)
			}
			time.Sleep(time.Second)
			require.Equal(t, BreakerHalfOpen, b.State())
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					_ = b.Execute(t.Context(), func(context.Context) error {
						if round%3 == 2 {
							return fail
						}
						return nil
					})
				})
			}
			wg.Wait()
		}
		s := b.Stats()
		require.Equal(t, uint64(0), s.ProbesAbandoned)
		require.Equal(t, 0, s.ProbesInFlight)
		require.Equal(t, s.Probes, s.ProbeSuccesses+s.ProbeFailures+s.ProbeCanceled)
		require.GreaterOrEqual(t, s.Probes, uint64(300))
	})
}
