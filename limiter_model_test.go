package conc

import (
	"fmt"
	"math/rand/v2"
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
//   - a second Cancel before any event is admitted again: x/time/rate keeps
//     the last reservation's time to act (lastEvent) apart and moves it back
//     only when that very reservation is cancelled; a one-word GCRA state
//     infers it from the bucket word, which every Cancel moves back. Until the
//     next admitted event the two may then differ on how much a further Cancel
//     returns (both return at most what was reserved, never more);
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
	cancelled := false // a Cancel since the last admitted event

	for step := range steps {
		where := fmt.Sprintf("step %d (limit %v, burst %d)", step, limit, burst)
		op := rng.IntN(100)
		lastOp = op
		switch {
		case op < 35: // AllowN, sometimes above the burst
			n := rng.IntN(burst + 3)
			ok := ours.AllowN(n)
			require.Equal(t, ref.AllowN(time.Now(), n), ok, "%s: AllowN(%d)", where, n)
			cancelled = cancelled && !ok

		case op < 55: // ReserveN
			n := rng.IntN(burst + 3)
			if limit == 0 && ref.Tokens() < float64(n) {
				r := ours.ReserveN(n)
				require.False(t, r.OK(), "%s: ReserveN(%d) at rate 0 without tokens", where, n)
				break
			}
			mr := modelReservation{ours: ours.ReserveN(n), ref: ref.ReserveN(time.Now(), n), gen: gen}
			require.Equal(t, mr.ref.OK(), mr.ours.OK(), "%s: ReserveN(%d).OK", where, n)
			require.Equal(t, mr.ref.Delay(), mr.ours.Delay(), "%s: ReserveN(%d).Delay", where, n)
			if mr.ours.OK() {
				open = append(open, mr)
				cancelled = false
			}

		case op < 65: // Cancel one reservation of this configuration
			if len(open) == 0 {
				break
			}
			i := rng.IntN(len(open))
			mr := open[i]
			open = append(open[:i], open[i+1:]...)
			if mr.gen == gen && !cancelled {
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
