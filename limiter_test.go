package conc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func TestNewLimiterPanicsOnBadInput(t *testing.T) {
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		want      string
	}{
		{"nan rate", math.NaN(), 1, "NaN"},
		{"negative rate", -1, 1, "-1"},
		{"negative burst", 1, -3, "-3"},
		{"burst 0 with finite rate", 5, 0, "burst must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				assert.True(t, strings.HasPrefix(msg, "conc: "), msg)
				assert.Contains(t, msg, tt.want)
			}()
			NewLimiter(tt.perSecond, tt.burst)
			t.Fatal("NewLimiter did not panic")
		})
	}
	assert.PanicsWithValue(t, "conc: NewLimiter option 1 must not be nil", func() { NewLimiter(1, 1, LimiterCounts(), nil) })
}

func TestLimiterSettersPanicOnBadInput(t *testing.T) {
	l := NewLimiter(1, 1)
	assert.PanicsWithValue(t, "conc: limiter rate must be a non-negative number, got NaN", func() { l.SetLimit(math.NaN()) })
	assert.PanicsWithValue(t, "conc: limiter burst must not be negative, got -1", func() { l.SetBurst(-1) })
	assert.NotPanics(t, func() { l.SetBurst(0) }, "SetBurst(0) shuts the limiter off at run time")
	assert.False(t, l.Allow())
}

func TestLimiterAcceptsTheEdgeCasesOfXTimeRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inf := NewLimiter(Inf, 0)
		assert.True(t, inf.AllowN(1000), "Inf ignores the burst")
		assert.Equal(t, Inf, NewLimiter(math.Inf(1), 0).Limit(), "+Inf is Inf")

		budget := NewLimiter(0, 3) // rate 0: a budget that never refills
		assert.True(t, budget.AllowN(3))
		time.Sleep(time.Hour)
		assert.False(t, budget.Allow())
		assert.Equal(t, 0.0, budget.Tokens())

		assert.Equal(t, 2.0, Every(500*time.Millisecond))
		assert.Equal(t, Inf, Every(0))
	})
}

func TestLimiterZeroValueDeniesUntilGivenABudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l Limiter
		assert.False(t, l.Allow())
		assert.True(t, l.AllowN(0))
		assert.False(t, l.Reserve().OK())
		assert.Equal(t, 0.0, l.Tokens())
		assert.Equal(t, 0.0, l.Limit())
		assert.Equal(t, 0, l.Burst())
		require.Error(t, l.Wait(context.Background()), "burst 0: Wait fails at once")

		l.SetLimit(10)
		l.SetBurst(1)
		assert.Equal(t, 0.0, l.Tokens(), "the bucket of the zero value starts empty, as in x/time/rate")
		time.Sleep(100 * time.Millisecond)
		assert.True(t, l.Allow())
		assert.False(t, l.Allow())
	})
}

func TestLimiterAllowRefillsAtTheRateUpToTheBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(10, 5)
		for range 5 {
			require.True(t, l.Allow())
		}
		require.False(t, l.Allow())
		time.Sleep(100 * time.Millisecond)
		require.True(t, l.Allow())
		require.False(t, l.Allow())
		time.Sleep(time.Hour)
		assert.Equal(t, 5.0, l.Tokens(), "the bucket holds at most burst tokens")
		assert.False(t, l.AllowN(6), "n above the burst is never admitted")
		assert.True(t, l.AllowN(5))
	})
}

func TestLimiterWaitFailsAtOnceWhenTheDeadlineIsTooSoon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1, 1)
		require.True(t, l.Allow())
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := l.Wait(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, time.Since(start), "Wait must not sleep until the deadline")
		assert.Equal(t, 0.0, l.Tokens(), "a refused wait takes nothing")
		require.NoError(t, ctx.Err())

		ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
		defer cancel2()
		require.NoError(t, l.Wait(ctx2), "a token due exactly at the deadline is in time")
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestLimiterWaitSleepsUntilTheTokenArrives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(2, 1)
		start := time.Now()
		for range 4 {
			require.NoError(t, l.Wait(context.Background()))
		}
		assert.Equal(t, 1500*time.Millisecond, time.Since(start))
	})
}

func TestLimiterCancelledWaitReturnsItsTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1, 3)
		require.True(t, l.AllowN(3))
		cause := errors.New("client went away")
		ctx, cancel := context.WithCancelCause(context.Background())
		done := make(chan error)
		go func() { done <- l.WaitN(ctx, 2) }()
		synctest.Wait()
		assert.InDelta(t, -2.0, l.Tokens(), 1e-9, "the waiter holds a reservation")
		time.Sleep(100 * time.Millisecond)
		cancel(cause)
		err := <-done
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, cause, "the cause is kept")
		assert.InDelta(t, 0.1, l.Tokens(), 1e-9, "the tokens came back")
	})
}

func TestLimiterWaitNAboveTheBurstFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(10, 3)
		err := l.WaitN(context.Background(), 4)
		require.Error(t, err)
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "burst 3")
		assert.Equal(t, 3.0, l.Tokens())
		require.NoError(t, NewLimiter(Inf, 0).WaitN(context.Background(), 100), "Inf ignores the burst")
	})
}

// waitNever runs wait on a cancellable context and returns its error, once
// it has either returned by itself or blocked for good (then the context is
// cancelled to end it, and the error is the context's).
func waitNever(t *testing.T, wait func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- wait(ctx) }()
	synctest.Wait()
	cancel()
	return <-done
}

func TestLimiterWaitNAfterABurstCutFailsInsteadOfBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(10, 10)
		// WaitN checks n against the state it loaded, and the reservation
		// checks it again against the state it reserves from, so a
		// SetBurst in between cannot turn "over the burst" into a wait.
		// The API cannot force that interleaving; this covers the result.
		l.SetBurst(2)
		err := waitNever(t, func(ctx context.Context) error { return l.WaitN(ctx, 5) })
		require.Error(t, err)
		assert.NotErrorIs(t, err, context.Canceled, "must not wait for ctx like a zero rate")
		assert.Contains(t, err.Error(), "burst 2")
		assert.Equal(t, 2.0, l.Tokens(), "nothing taken")
		_, why := l.reserveN(5, math.MaxInt64)
		assert.Equal(t, limTooMany, why, "the reservation checks the burst of its own state")
	})
}

func TestLimiterWaitNBeyondWhatTheBucketCanHoldFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One token per ~32 years: a bucket holds at most 73 years of
		// refill, so 2 tokens, although the burst says 10.
		l := NewLimiter(1e-9, 10)
		err := waitNever(t, func(ctx context.Context) error { return l.WaitN(ctx, 5) })
		require.Error(t, err)
		assert.NotErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "can hold")

		k := NewKeyedLimiter[string](1e-9, 10)
		err = waitNever(t, func(ctx context.Context) error { return k.WaitN(ctx, "a", 5) })
		require.Error(t, err)
		assert.NotErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "can hold")
	})
}

func TestLimiterSetBurstZeroRefusesAtOnceLikeXTimeRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(10, 3)
		l.SetBurst(0)
		ref := rate.NewLimiter(10, 0)
		assert.Equal(t, ref.Allow(), l.Allow())
		assert.Equal(t, ref.Reserve().OK(), l.Reserve().OK())
		// No wait until the burst is raised: an error at once, as
		// x/time/rate gives, even with a context that never ends.
		refErr := ref.Wait(context.Background())
		err := waitNever(t, func(ctx context.Context) error { return l.Wait(ctx) })
		require.Error(t, refErr)
		require.Error(t, err)
		assert.NotErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "burst 0")

		l.SetBurst(1)
		time.Sleep(100 * time.Millisecond) // synctest time: one token earned
		assert.True(t, l.Allow(), "raised again, the limiter admits")
	})
}

func TestLimiterStatsIsOneConsistentSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var zero Limiter
		assert.Equal(t, LimiterStats{}, zero.Stats())

		l := NewLimiter(10, 5, LimiterCounts())
		require.True(t, l.AllowN(3))
		assert.Equal(t, LimiterStats{Limit: 10, Burst: 5, Tokens: 2, Allowed: 1}, l.Stats())
		r := l.ReserveN(4) // two tokens short: waits 200 ms
		require.True(t, r.OK())
		assert.Equal(t, LimiterStats{Limit: 10, Burst: 5, Tokens: -2, Allowed: 2}, l.Stats())
		time.Sleep(time.Second)
		l.SetBurst(2)
		require.False(t, l.AllowN(3))
		assert.Equal(t, LimiterStats{Limit: 10, Burst: 2, Tokens: 2, Allowed: 2, Denied: 1}, l.Stats())
		assert.Equal(t, Inf, NewLimiter(Inf, 0).Stats().Limit)
		assert.Zero(t, testing.AllocsPerRun(100, func() { _ = l.Stats() }))
	})
}

func TestLimiterWaitOnADoneContextTakesNothing(t *testing.T) {
	l := NewLimiter(10, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, l.Wait(ctx), context.Canceled)
	assert.InDelta(t, 3.0, l.Tokens(), 1e-6)
}

func TestLimiterWaitAtRateZeroBlocksUntilTheContextIsDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(0, 1)
		require.True(t, l.Allow())

		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		require.ErrorIs(t, l.Wait(ctx), context.DeadlineExceeded, "with a deadline: at once")

		ctx2, cancel2 := context.WithCancel(context.Background())
		go func() {
			time.Sleep(time.Minute)
			cancel2()
		}()
		start := time.Now()
		require.ErrorIs(t, l.Wait(ctx2), context.Canceled)
		assert.Equal(t, time.Minute, time.Since(start))
	})
}

func TestLimiterReservationDelayAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1, 1)
		r1 := l.Reserve()
		require.True(t, r1.OK())
		assert.Zero(t, r1.Delay())
		r2 := l.Reserve()
		require.True(t, r2.OK())
		assert.Equal(t, time.Second, r2.Delay())
		assert.InDelta(t, -1.0, l.Tokens(), 1e-9)

		r2.Cancel()
		assert.InDelta(t, 0.0, l.Tokens(), 1e-9)
		r2.Cancel()
		assert.InDelta(t, 0.0, l.Tokens(), 1e-9, "a second Cancel gives nothing back")

		r1.Cancel()
		assert.InDelta(t, 1.0, l.Tokens(), 1e-9, "cancel in the instant of reserving returns the token")

		r3 := l.Reserve()
		time.Sleep(time.Millisecond)
		r3.Cancel()
		assert.InDelta(t, 0.001, l.Tokens(), 1e-9, "a reservation whose time has come is spent")

		bad := l.ReserveN(2)
		assert.False(t, bad.OK())
		assert.Equal(t, time.Duration(math.MaxInt64), bad.Delay())
		bad.Cancel() // harmless
		assert.False(t, NewLimiter(0, 1).ReserveN(2).OK())
	})
}

func TestLimiterSetLimitKeepsTheTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1, 10)
		require.True(t, l.AllowN(10))
		time.Sleep(2 * time.Second)
		l.SetLimit(10)
		assert.InDelta(t, 2.0, l.Tokens(), 1e-9)
		assert.Equal(t, 10.0, l.Limit())
		time.Sleep(100 * time.Millisecond)
		assert.InDelta(t, 3.0, l.Tokens(), 1e-9)

		l.SetLimit(Inf)
		assert.True(t, l.AllowN(1000))
		time.Sleep(time.Millisecond)
		l.SetLimit(1)
		assert.InDelta(t, 10.0, l.Tokens(), 1e-9, "leaving Inf, the bucket is full")
	})
}

func TestLimiterSetBurstCutsButNeverAddsTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1, 10)
		l.SetBurst(4)
		assert.InDelta(t, 4.0, l.Tokens(), 1e-9)
		l.SetBurst(8)
		assert.InDelta(t, 4.0, l.Tokens(), 1e-9)
		assert.Equal(t, 8, l.Burst())
		time.Sleep(time.Hour)
		assert.InDelta(t, 8.0, l.Tokens(), 1e-9)
	})
}

func TestLimiterHotPathsDoNotAllocate(t *testing.T) {
	l := NewLimiter(1e9, 1<<30)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { l.Allow() }), "Allow")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { l.AllowN(3) }), "AllowN")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { r := l.Reserve(); r.Cancel() }), "Reserve")
}

// admissionSpan brackets one admitted call: the limiter decided at some
// instant between from and to (ns since the limiter's base).
type admissionSpan struct{ from, to int64 }

// checkAdmissionBound fails t if some interval [A, B] fully contains more
// admitted calls than burst + rate*(B-A). Only calls whose whole span lies
// inside the interval are counted, so the check never blames the limiter
// for the time a goroutine spent before or after the decision.
func checkAdmissionBound(t *testing.T, spans []admissionSpan, rate float64, burst int) {
	t.Helper()
	slices.SortFunc(spans, func(a, b admissionSpan) int { return int(a.from - b.from) })
	ends := make([]int64, 0, len(spans))
	for i := range spans {
		ends = append(ends[:0], 0)[:0]
		for _, s := range spans[i:] {
			ends = append(ends, s.to)
		}
		slices.Sort(ends)
		for m, end := range ends {
			allowed := float64(burst) + rate*float64(end-spans[i].from)/1e9
			if float64(m+1) > allowed+1e-6 {
				t.Fatalf("%d admissions within %v, the bound is %.3f", m+1, time.Duration(end-spans[i].from), allowed)
			}
		}
	}
}

func TestLimiterAdmitsAtMostBurstPlusRateTimesTUnderContention(t *testing.T) {
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("procs=", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			const rate, burst, goroutines, calls = 50_000.0, 10, 8, 2000
			l := NewLimiter(rate, burst)
			spans := make([][]admissionSpan, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for range calls {
						from := int64(time.Since(l.base))
						if l.Allow() {
							spans[g] = append(spans[g], admissionSpan{from, int64(time.Since(l.base))})
						}
					}
				})
			}
			wg.Wait()
			all := slices.Concat(spans...)
			require.NotEmpty(t, all)
			checkAdmissionBound(t, all, rate, burst)
		})
	}
}

func TestLimiterChangesUnderLoadAreRaceFreeAndBounded(t *testing.T) {
	// Allow, Reserve/Cancel and Tokens race with SetLimit and SetBurst. The
	// admissions must still respect the largest burst and rate in use.
	const maxRate, maxBurst = 40_000.0, 8
	l := NewLimiter(maxRate, maxBurst)
	stop := make(chan struct{})
	var changer sync.WaitGroup
	changer.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			l.SetLimit(maxRate / float64(1+i%4))
			l.SetBurst(1 + i%maxBurst)
			runtime.Gosched()
		}
	})
	spans := make([][]admissionSpan, 4)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1500 {
				from := int64(time.Since(l.base))
				if i%10 == 0 {
					r := l.Reserve()
					r.Cancel()
					_ = l.Tokens()
					continue
				}
				if l.Allow() {
					spans[g] = append(spans[g], admissionSpan{from, int64(time.Since(l.base))})
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	changer.Wait()
	checkAdmissionBound(t, slices.Concat(spans...), maxRate, maxBurst)
}

// TestLimiterCountsEveryCallExactlyOnce runs Allow, AllowN, Reserve, Wait
// and WaitN from many goroutines at once, with the bucket often empty, a
// SetBurst now and then and some waits whose deadline is too soon or whose
// context ends mid-wait, and checks that the counts, read at rest, equal
// what the calls returned: allowed + denied = calls.
func TestLimiterCountsEveryCallExactlyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(1000, 8, LimiterCounts())
		const goroutines, calls = 8, 400
		var mu sync.Mutex
		var allowed, denied uint64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				var a, d uint64
				tally := func(ok bool) {
					if ok {
						a++
					} else {
						d++
					}
				}
				for i := range calls {
					switch (g + i) % 6 {
					case 0:
						tally(l.Allow())
					case 1:
						tally(l.AllowN(i % 12)) // some over the burst
					case 2:
						tally(l.Reserve().OK())
					case 3:
						ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%4)*time.Millisecond)
						tally(l.Wait(ctx) == nil)
						cancel()
					case 4:
						ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
						tally(l.WaitN(ctx, 1+i%9) == nil) // some over the burst
						cancel()
					case 5:
						if i%50 == 5 {
							l.SetBurst(4 + i%8)
						}
						time.Sleep(time.Millisecond)
					}
				}
				mu.Lock()
				allowed, denied = allowed+a, denied+d
				mu.Unlock()
			})
		}
		wg.Wait()
		st := l.Stats()
		require.NotZero(t, allowed)
		require.NotZero(t, denied)
		assert.Equal(t, allowed, st.Allowed)
		assert.Equal(t, denied, st.Denied)
		calls5 := uint64(0) // the calls of case 5 are not limiter calls
		for g := range goroutines {
			for i := range calls {
				if (g+i)%6 == 5 {
					calls5++
				}
			}
		}
		assert.Equal(t, uint64(goroutines*calls)-calls5, st.Allowed+st.Denied)

		// Inf and the zero value count too; counting starts when it is
		// turned on, and without it nothing is counted.
		inf, zero, off := NewLimiter(Inf, 0, LimiterCounts()), new(Limiter), NewLimiter(10, 1)
		require.False(t, zero.Allow()) // not counted yet
		zero.countCalls()
		require.True(t, off.Allow())
		require.False(t, off.Allow())
		assert.Equal(t, LimiterStats{Limit: 10, Burst: 1}, off.Stats())
		require.True(t, inf.Allow())
		require.True(t, inf.AllowN(1000))
		require.False(t, zero.Allow())
		require.True(t, zero.AllowN(0))
		assert.Equal(t, LimiterStats{Limit: Inf, Allowed: 2}, inf.Stats())
		assert.Equal(t, LimiterStats{Allowed: 1, Denied: 1}, zero.Stats())
	})
}
