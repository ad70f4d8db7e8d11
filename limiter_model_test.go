package conc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// The differential test drives a Limiter and an x/time/rate Limiter with the
// same random program inside a synctest bubble, where both read the same
// fake clock, and requires every decision, delay and token count to match.
//
// Where the two differ on purpose the program steers clear, and each
// exclusion is a documented difference of Limiter:
//   - rates are powers of two from 1/8 to 8 a second and time moves in steps
//     of 1/8 s, so that x/time/rate's float64 token arithmetic is exact and
//     every token count it reaches, at any of these rates, is a whole number
//     of nanoseconds of refill. Limiter keeps the bucket in whole nanoseconds
//     (rounding towards fewer tokens); with other rates the two differ by
//     under a nanosecond's worth of tokens, which changes a decision only
//     exactly at a boundary;
//   - ReserveN at rate 0 without enough tokens: x/time/rate grants it for
//     time.Now()+InfDuration and drives the bucket negative, Limiter refuses it
//     (the test requires the refusal);
//   - Cancel is applied only to reservations made under the current limit and
//     burst: after SetLimit/SetBurst x/time/rate still measures "reserved
//     after this one" with its old lastEvent, Limiter with the new config;
//   - Cancel after an earlier Cancel, or of a reservation that acts after
//     the latest one: x/time/rate gives back n minus what was reserved after
//     the reservation, measured from lastEvent, the time to act of the latest
//     reservation, which it keeps apart and moves back only when that very
//     reservation is cancelled; a one-word GCRA state infers it from the
//     bucket word, which every Cancel moves back. After one Cancel a newer
//     reservation can act before an older one, and x/time/rate then returns
//     more tokens than the older one took (found by FuzzLimiterMatchesXTimeRate);
//     Limiter never returns more than n. The program cancels only while no
//     Cancel happened since the latest admitted event, and only reservations
//     that act no later than it;
//   - leaving Inf in the very instant of the previous SetLimit/SetBurst:
//     x/time/rate then restores the token count from before Inf (no time
//     passed to refill it), Limiter always comes back full.

// modelQuantum is 1/512 s: every rate in modelRates turns it into an exact
// binary fraction of a token.
var modelTrace = false

const modelQuantum = time.Second / 8

var modelRates = []float64{0, 0.125, 0.5, 1, 2, 4, 8, Inf}

type modelReservation struct {
	ours Reservation
	ref  *rate.Reservation
	gen  int
	act  time.Time
}

func TestLimiterMatchesXTimeRate(t *testing.T) {
	const programs, steps = 200, 400
	for seed := range uint64(programs) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				runModelProgram(t, rand.New(rand.NewPCG(seed, 71360)), steps)
			})
		})
	}
}

func runModelProgram(t *testing.T, rng *rand.Rand, steps int) {
	limit := modelRates[rng.IntN(len(modelRates))]
	burst := 1 + rng.IntN(8)
	ours := NewLimiter(limit, burst)
	ref := rate.NewLimiter(rate.Limit(limit), burst)
	var open []modelReservation
	gen := 0
	lastSet := time.Now()
	var lastOp int
	cancelled := false     // a Cancel since the last admitted event
	lastAct := time.Time{} // the time to act of the last admitted event

	for step := range steps {
		where := fmt.Sprintf("step %d (limit %v, burst %d)", step, limit, burst)
		op := rng.IntN(100)
		lastOp = op
		switch {
		case op < 35: // AllowN, sometimes above the burst
			n := rng.IntN(burst + 3)
			ok := ours.AllowN(n)
			require.Equal(t, ref.AllowN(time.Now(), n), ok, "%s: AllowN(%d)", where, n)
			if ok {
				cancelled, lastAct = false, time.Now()
			}

		case op < 55: // ReserveN
			n := rng.IntN(burst + 3)
			if limit == 0 && ref.Tokens() < float64(n) {
				r := ours.ReserveN(n)
				require.False(t, r.OK(), "%s: ReserveN(%d) at rate 0 without tokens", where, n)
				break
			}
			mr := modelReservation{ours: ours.ReserveN(n), ref: ref.ReserveN(time.Now(), n), gen: gen}
			mr.act = time.Now().Add(mr.ref.Delay())
			require.Equal(t, mr.ref.OK(), mr.ours.OK(), "%s: ReserveN(%d).OK", where, n)
			require.Equal(t, mr.ref.Delay(), mr.ours.Delay(), "%s: ReserveN(%d).Delay", where, n)
			if mr.ours.OK() {
				open = append(open, mr)
				cancelled, lastAct = false, mr.act
			}

		case op < 65: // Cancel one reservation of this configuration
			if len(open) == 0 {
				break
			}
			i := rng.IntN(len(open))
			mr := open[i]
			open = append(open[:i], open[i+1:]...)
			if mr.gen == gen && !cancelled && !mr.act.After(lastAct) {
				mr.ref.Cancel()
				mr.ours.Cancel()
				cancelled = true
			}

		case op < 70: // SetLimit
			next := modelRates[rng.IntN(len(modelRates))]
			if limit == Inf && next != Inf && time.Now().Equal(lastSet) {
				time.Sleep(modelQuantum)
			}
			limit = next
			if modelTrace {
				t.Logf("SetLimit(%v) tat %d", next, ours.st.Load().tat.Load())
			}
			ours.SetLimit(limit)
			ref.SetLimit(rate.Limit(limit))
			gen++
			lastSet = time.Now()
			if modelTrace {
				t.Logf("after tat %d iv %d now %d", ours.st.Load().tat.Load(), ours.st.Load().iv, time.Since(ours.base))
			}

		case op < 75: // SetBurst, zero included
			burst = rng.IntN(9)
			ours.SetBurst(burst)
			ref.SetBurst(burst)
			gen++
			lastSet = time.Now()

		default: // let time pass, mostly a little
			k := rng.IntN(8)
			if rng.IntN(10) == 0 {
				k = rng.IntN(80)
			}
			time.Sleep(time.Duration(k) * modelQuantum)
		}

		if modelTrace {
			t.Logf("%s: op %d ref %v ours %v", where, lastOp, ref.Tokens(), ours.Tokens())
		}
		if limit != Inf {
			require.InDelta(t, ref.Tokens(), ours.Tokens(), 1e-9, "%s: Tokens", where)
		}
		require.Equal(t, float64(ref.Limit()), ours.Limit(), where)
		require.Equal(t, ref.Burst(), ours.Burst(), where)
	}
}

// FuzzLimiterMatchesXTimeRate runs the differential program from seeds the
// fuzzer picks (make fuzz); go test runs the seed corpus only.
func FuzzLimiterMatchesXTimeRate(f *testing.F) {
	f.Add(uint64(0), uint64(71360))
	f.Add(uint64(32), uint64(71360))
	f.Add(uint64(424), uint64(71397)) // x/time/rate returning more than n on Cancel
	f.Fuzz(func(t *testing.T, a, b uint64) {
		synctest.Test(t, func(t *testing.T) {
			runModelProgram(t, rand.New(rand.NewPCG(a, b)), 200)
		})
	})
}

// FuzzLimiterParameters feeds arbitrary rates, bursts and counts: NewLimiter
// either panics with a conc: message or builds a limiter that never admits
// more than its burst in one instant, never holds more tokens than its burst
// and refills no faster than its rate.
func FuzzLimiterParameters(f *testing.F) {
	f.Add(1.0, 1, 1)
	f.Add(0.0, 0, 0)
	f.Add(1e300, 1<<62, 5)
	f.Add(1e-300, 3, 2)
	f.Add(3.0, 7, -4)
	f.Add(math.Inf(1), 0, 1<<40)
	f.Fuzz(func(t *testing.T, perSecond float64, burst, n int) {
		var l *Limiter
		func() {
			defer func() {
				if r := recover(); r != nil {
					require.True(t, strings.HasPrefix(fmt.Sprint(r), "conc: "), r)
				}
			}()
			l = NewLimiter(perSecond, burst)
		}()
		if l == nil {
			return
		}
		synctest.Test(t, func(t *testing.T) {
			finite := l.Limit() < Inf
			admitted := 0.0
			for range 20 {
				if l.AllowN(n) {
					admitted += float64(max(n, 0))
				}
			}
			if finite {
				require.LessOrEqual(t, admitted, float64(burst), "in one instant")
			}
			require.LessOrEqual(t, l.Tokens(), float64(burst)+1e-9)
			r := l.ReserveN(n)
			if r.OK() {
				require.GreaterOrEqual(t, r.Delay(), time.Duration(0))
				r.Cancel()
			}
			time.Sleep(time.Hour)
			require.LessOrEqual(t, l.Tokens(), float64(burst)+1e-9)
			if finite && n > 0 {
				before := l.Tokens()
				got := 0.0
				for range 20 {
					if l.AllowN(n) {
						got += float64(n)
					}
				}
				require.LessOrEqual(t, got, math.Max(before, 0)+1e-9)
			}
		})
	})
}
