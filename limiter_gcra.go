package conc

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// The GCRA ("generic cell rate algorithm") bucket that Limiter and
// KeyedLimiter share: a configuration turned into integers, and every step
// on a bucket word written once. A Limiter keeps the word in an atomic and
// publishes each step with a compare-and-swap; a KeyedLimiter keeps one per
// key under its shard's lock. Neither knows how the other stores it.

// Mode of a limConfig: a finite positive rate, a zero rate (the bucket never
// refills, so its clock stands still) or Inf (no bucket at all).
const (
	limFinite = iota
	limZero
	limInf
)

const (
	// limSealed marks the bucket word of a state that has been replaced by
	// SetLimit or SetBurst; a reader that sees it reloads the pointer.
	limSealed = math.MinInt64
	// limZeroUnit is what one token is worth in the bucket word while the
	// rate is zero. The clock is then frozen at 0 and the word counts
	// spent tokens in units of 2^-20, fine enough to keep fractional
	// tokens carried over from a finite rate.
	limZeroUnit = 1 << 20
	// limMaxAhead bounds how far (in ns) the bucket may lag behind the
	// clock: the capacity of a bucket is at most 2^61 ns (73 years) of
	// refill, and a reservation that would push the word past limMaxTAT is
	// refused, so no sum in the decision paths can overflow an int64.
	limMaxAhead = 1 << 61
	limMaxTAT   = 1 << 62
)

// limConfig is an immutable limit and burst together with their integer
// form. Rates resolve to a whole number of nanoseconds per token (interval
// rounded, at least 1 ns, at most 2^61 ns): a relative error below 0.05% for
// rates up to a million events a second.
type limConfig struct {
	limit float64 // as reported by Limit: Inf, 0 or the finite rate
	burst int     // as reported by Burst
	mode  uint8
	iv    int64 // bucket-word units per token: ns, or limZeroUnit
	maxN  int64 // largest n ever admitted: burst, clamped so tau fits
	tau   int64 // iv*maxN: how far the word may run ahead of now
}

// limState is one configuration and the bucket word that belongs to it.
type limState struct {
	tat atomic.Int64
	limConfig
}

func newLimConfig(limit float64, burst int) limConfig {
	c := limConfig{limit: limit, burst: burst}
	switch {
	case limit >= Inf: // also +Inf
		c.limit, c.mode = Inf, limInf
		return c
	case limit == 0:
		c.mode, c.iv = limZero, limZeroUnit
	default:
		iv := math.Round(1e9 / limit)
		c.mode, c.iv = limFinite, int64(max(1, min(iv, limMaxAhead)))
	}
	c.maxN = min(int64(burst), limMaxAhead/c.iv)
	c.tau = c.maxN * c.iv
	return c
}

// now is the bucket clock of c: the monotonic time since the limiter's base
// for a finite rate, 0 when the rate is zero (nothing ever refills).
func (c *limConfig) now(base time.Time) int64 {
	if c.mode == limZero {
		return 0
	}
	return int64(time.Since(base))
}

// tokens is how many tokens the bucket word tat holds at bucket time now;
// negative while reservations are waiting.
func (c *limConfig) tokens(tat, now int64) float64 {
	if c.mode == limInf {
		return float64(c.burst)
	}
	return float64(c.tau-max(tat-now, 0)) / float64(c.iv)
}

// tatFor is the bucket word that holds tokens at bucket time now, capped at
// a full bucket. It rounds towards fewer tokens.
func (c *limConfig) tatFor(tokens float64, now int64) int64 {
	if c.mode == limInf {
		return now
	}
	ahead := math.Ceil((float64(c.maxN) - tokens) * float64(c.iv))
	return now + int64(max(0, min(ahead, limMaxTAT)))
}

// step is the GCRA step: the bucket word after n more tokens are taken
// from the word tat at bucket time now, and how long after now the last of
// them is earned. wait <= 0 means they are all there now.
func (c *limConfig) step(tat, now int64, n int) (next, wait int64) {
	next = max(tat, now) + int64(n)*c.iv
	return next, next - now - c.tau
}

// take applies an event of n tokens to the bucket word tat at bucket time now
// and returns the new word and whether the event is admitted.
func (c *limConfig) take(tat, now int64, n int) (int64, bool) {
	if c.mode == limInf {
		return tat, true
	}
	if int64(n) > c.maxN {
		return tat, false
	}
	next, wait := c.step(tat, now, n)
	return next, wait <= 0
}

// Why reserve refused: the caller must tell these apart, because only a
// wait that no deadline could save blocks (rate 0), while n over the burst
// is an error at once whatever the context.
const (
	limGranted = iota
	limLate    // the tokens come after the deadline
	limNever   // the tokens never come (rate 0, or a lag of over a century)
	limTooMany // n is more than the bucket can ever hold (see tooManyErr)
)

// reserve takes n tokens from the word tat at clock reading t (ns since the
// limiter's base) for an event that must act by deadline: the new word, the
// time to act, and why not (nothing is taken then). c must not be Inf.
func (c *limConfig) reserve(tat, t int64, n int, deadline int64) (next, act int64, why int) {
	if int64(n) > c.maxN {
		return tat, 0, limTooMany
	}
	// t is real time (for the time to act), now is bucket time (frozen at
	// 0 while the rate is zero).
	now := c.bucketNow(t)
	next, wait := c.step(tat, now, n)
	act = t
	if wait > 0 {
		if c.mode == limZero || next > limMaxTAT {
			return tat, 0, limNever
		}
		act += wait
		if act > deadline {
			return tat, 0, limLate
		}
	}
	return next, act, limGranted
}

// tooManyErr is the error for a reservation refused as limTooMany: n over
// the burst, or over the most a bucket of this rate can hold.
func (c *limConfig) tooManyErr(n int) error {
	if n > c.burst {
		return limiterBurstErr(n, c.burst)
	}
	return fmt.Errorf("conc: limiter WaitN(n=%d) exceeds the %d tokens a bucket of rate %v can hold", n, c.maxN, c.limit)
}

// giveBack is the bucket word after a reservation of n tokens, acting at act
// (ns since the base) and made at iv ns per token (0 for a zero rate), gives
// its tokens back at bucket time now; false when nothing is to be returned.
//
// x/time/rate returns n minus what was reserved after this reservation,
// measured as the time from this one's time to act to the last one's. In a
// GCRA word the last reservation acts at tat-tau (or at once, when that is
// not in the future), so no second word is needed for it.
func (c *limConfig) giveBack(tat, now int64, n int, act, iv int64) (int64, bool) {
	restore := float64(n)
	if iv > 0 && c.mode == limFinite {
		restore -= float64(max(0, tat-c.tau-act)) / float64(iv)
	}
	if restore <= 0 {
		return tat, false
	}
	return max(max(tat, now)-int64(math.Ceil(restore*float64(c.iv))), now), true
}

// bucketNow converts a clock reading into c's bucket time (frozen at 0 for a
// zero rate).
func (c *limConfig) bucketNow(t int64) int64 {
	if c.mode == limZero {
		return 0
	}
	return t
}
