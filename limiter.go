package conc

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Inf is the rate of a Limiter that admits every event: with it the burst is
// ignored and no clock is read. It equals x/time/rate's rate.Inf, and
// math.Inf(1) passed as a rate means the same.
const Inf = math.MaxFloat64

// Every converts the minimum time between events into a rate, as
// x/time/rate's rate.Every does; an interval of zero or less gives Inf.
func Every(interval time.Duration) float64 {
	if interval <= 0 {
		return Inf
	}
	return 1 / interval.Seconds()
}

// A Limiter controls how often events may happen. It is a token bucket: the
// bucket holds at most burst tokens, starts full and refills at perSecond
// tokens a second; every event takes one token (AllowN, WaitN and ReserveN
// take n). Its meaning of rate, burst, Inf and a zero rate follows
// golang.org/x/time/rate, and Allow, Wait, WaitN, Limit, Burst, Tokens,
// SetLimit and SetBurst behave like theirs. It is not a drop-in
// replacement: rates are float64 rather than rate.Limit, AllowN and
// ReserveN read the clock themselves instead of taking a time, Reserve and
// ReserveN return a Reservation value with OK, Delay and Cancel only (no
// DelayFrom or CancelAt), and TokensAt, SetLimitAt, SetBurstAt and
// Sometimes have no counterpart (see NewLimiter for the deliberate
// differences).
//
// A decision is never made with a clock reading older than the state it
// updates, so the bucket never moves backwards under contention (the flaw
// of x/time/rate reported as golang/go#71360). Allow, AllowN and Reserve
// take no lock and do not allocate.
//
// The zero value is a limiter with rate 0 and burst 0, like x/time/rate's
// zero Limiter: it denies every event until SetLimit or SetBurst give it a
// budget (its bucket starts empty). A Limiter is safe for concurrent use by
// multiple goroutines and must not be copied after first use. No goroutine
// is started, ever. Waiters are not queued: each WaitN reserves its tokens
// when called, so reservations are served in the order they were made.
type Limiter struct {

	// The state is one atomic word, the GCRA "theoretical arrival time":
	// the moment at which the bucket will be full again, in nanoseconds of
	// the monotonic clock since the limiter was made. A decision loads that
	// word, then reads the clock, then publishes the new word with one
	// compare-and-swap (x/time/rate reads the clock before taking its lock,
	// which is how its state can move backwards).
	//
	// st points at the current configuration together with its bucket
	// word. A configuration change seals the old state and publishes a new
	// one, so a racing decision that read the old configuration can never
	// commit against the new one (its CAS on the sealed word fails).
	st atomic.Pointer[limState]

	// mu serialises SetLimit, SetBurst and the lazy start of a zero-value
	// Limiter; the decision paths never take it.
	mu sync.Mutex

	// base is the monotonic origin of the bucket's clock, written once
	// before st is first published and read only after st was loaded
	// non-nil, so the atomic pointer orders it. time.Since(base) costs
	// about half of time.Now() because it reads only the monotonic clock.
	base time.Time

	// counts are the Allowed and Denied totals, nil until counting is
	// turned on (LimiterCounts, Monitor.Watch). They are spread over slots
	// picked by the caller's stack address, so that concurrent callers
	// mostly write lines of their own. Counting is off by default because
	// even an uncontended slot costs an atomic add, about 6 ns or 16% of
	// an admitted Allow (bench_limiter_test.go); off, it costs one load.
	counts atomic.Pointer[[limSlots]limSlot]
}

// checkLimiterRate panics unless perSecond is a rate: not NaN, not negative.
func checkLimiterRate(perSecond float64) {
	if math.IsNaN(perSecond) || perSecond < 0 {
		panic(fmt.Sprintf("conc: limiter rate must be a non-negative number, got %v", perSecond))
	}
}

// NewLimiter returns a Limiter that admits perSecond events a second on
// average and bursts of up to burst events; its bucket starts full.
//
// As in x/time/rate, perSecond may be Inf (every event admitted, burst
// ignored) or 0 (the burst is a budget that never refills). It panics with a
// conc: message when perSecond is NaN or negative, when burst is negative, and
// when burst is 0 with a finite non-zero rate: x/time/rate accepts the last
// one and builds a limiter that denies everything, which is nearly always a
// confusion of "burst 0" with "no bursts" (use burst 1). SetBurst(0) stays
// allowed as a deliberate way to shut a limiter off at run time.
//
// Deliberate differences from x/time/rate: the methods read the clock
// themselves (there is no AllowN(t, n) form: taking the time inside the
// decision is what keeps the bucket from moving backwards); a negative n
// counts as 0, where x/time/rate adds tokens to the bucket; a reservation
// that could never be served (rate 0, not enough tokens) is refused rather
// than granted at time.Now()+InfDuration; Cancel never gives back more
// tokens than the reservation took (x/time/rate can, after an earlier
// Cancel). The rate is kept as a whole number of nanoseconds per token
// (rates above 1e9 a second act as 1e9), and a bucket holds at most 73
// years' worth of refill, which only matters for absurd burst-to-rate
// ratios.
func NewLimiter(perSecond float64, burst int, opts ...LimiterOption) *Limiter {
	checkLimiterRate(perSecond)
	checkNonNegative("limiter burst", burst)
	if burst == 0 && perSecond > 0 && perSecond < Inf {
		panic(fmt.Sprintf("conc: limiter burst must be at least 1 with a finite rate, got 0 (rate %v)", perSecond))
	}
	l := &Limiter{base: time.Now()}
	for i, o := range opts {
		checkOption("NewLimiter", i, o == nil)
		o.applyLimiter(l)
	}
	s := &limState{limConfig: newLimConfig(perSecond, burst)}
	// A word of 0 is a full bucket at the limiter's birth (bucket time 0).
	l.st.Store(s)
	return l
}

// Limit returns the current rate in events a second (Inf when unlimited).
func (l *Limiter) Limit() float64 {
	if s := l.st.Load(); s != nil {
		return s.limit
	}
	return 0
}

// Burst returns the current bucket size.
func (l *Limiter) Burst() int {
	if s := l.st.Load(); s != nil {
		return s.burst
	}
	return 0
}

// Tokens returns the number of tokens in the bucket now; it is negative while
// reservations are waiting for tokens that have not arrived yet.
func (l *Limiter) Tokens() float64 {
	return l.Stats().Tokens
}

// LimiterStats is a snapshot of a Limiter: its configuration and its bucket,
// read together from one state, and how many calls it has allowed and
// denied since counting was turned on.
//
// Counting is off unless the Limiter was made with LimiterCounts or is
// watched by a Monitor (Watch turns it on, from then on); while it is off,
// Allowed and Denied stay 0. Every call of Allow, AllowN, Reserve, ReserveN, Wait and WaitN counts once
// (an AllowN(5) counts one, as in KeyedLimiterStats), so Allowed + Denied is
// the number of calls that have returned. A Reserve counts as allowed when
// its reservation is OK, and stays so when it is cancelled; a WaitN counts as
// allowed when it returns nil and as denied when it returns an error.
type LimiterStats struct {
	Limit  float64 // events a second (Inf when unlimited)
	Burst  int     // bucket size
	Tokens float64 // tokens now; negative while reservations wait for theirs

	Allowed uint64 // calls that got their tokens
	Denied  uint64 // calls refused: too few tokens, n over the burst, a deadline or ctx
}

// Stats returns the limiter's rate, burst and tokens as of one moment: unlike
// calling Limit, Burst and Tokens in turn, a SetLimit or SetBurst in between
// cannot mix two configurations. Allowed and Denied are summed after that
// moment, so while calls are being made they may include a few later calls;
// at rest they are exact. It does not block or allocate.
func (l *Limiter) Stats() LimiterStats {
	var st LimiterStats
	if s, tat := l.load(); s != nil {
		st = LimiterStats{Limit: s.limit, Burst: s.burst, Tokens: s.tokens(tat, s.now(l.base))}
	}
	if c := l.counts.Load(); c != nil {
		for i := range c {
			st.Allowed += c[i].allowed.Load()
			st.Denied += c[i].denied.Load()
		}
	}
	return st
}

// A LimiterOption configures a Limiter at construction. The only one is
// LimiterCounts.
type LimiterOption interface {
	applyLimiter(*Limiter)
}

type limiterOptionFunc func(*Limiter)

func (f limiterOptionFunc) applyLimiter(l *Limiter) { f(l) }

// LimiterCounts makes the Limiter count the calls it allows and denies, for
// LimiterStats.Allowed and Denied. It costs every call an atomic add on a
// cache line that concurrent callers mostly do not share.
func LimiterCounts() LimiterOption {
	return limiterOptionFunc(func(l *Limiter) { l.countCalls() })
}

// countCalls turns counting on; calls made before are not counted. It is
// safe to call at any time, and more than once.
func (l *Limiter) countCalls() {
	if l.counts.Load() == nil {
		l.counts.CompareAndSwap(nil, new([limSlots]limSlot))
	}
}

// limSlots is how many slots a Limiter spreads its counts over.
const limSlots = 8

// limSlot is one slot of counts, alone on its cache line.
type limSlot struct {
	allowed, denied atomic.Uint64
	_               [48]byte
}

// count adds one call to the allowed or denied count of the caller's slot,
// when counting is on, and returns ok. The slot is picked by the address of a local variable:
// goroutines run on stacks of their own (8 KiB apart at least), so
// concurrent callers mostly land on different slots, at the price of one
// shift. A shared counter would add a second contended cache line to every
// decision; a slot's line stays in its writer's cache.
func (l *Limiter) count(ok bool) bool {
	cs := l.counts.Load()
	if cs == nil {
		return ok
	}
	var here byte
	c := &cs[uintptr(unsafe.Pointer(&here))>>13%limSlots]
	if ok {
		c.allowed.Add(1)
	} else {
		c.denied.Add(1)
	}
	return ok
}

// load returns the current state and its bucket word, waiting out a
// configuration change that has sealed the word but not yet published the
// state that replaces it (see replace). s is nil for a zero-value Limiter
// that was never configured; tat is 0 when s is nil or Inf, which have no
// bucket. Every decision starts here: the word is loaded before the clock
// is read.
func (l *Limiter) load() (s *limState, tat int64) {
	for {
		s = l.st.Load()
		if s == nil || s.mode == limInf {
			return s, 0
		}
		if tat = s.tat.Load(); tat != limSealed {
			return s, tat
		}
		runtime.Gosched()
	}
}

// Allow reports whether one event may happen now, and takes its token if so.
// It never blocks and does not allocate. Use it to drop or reject events
// that exceed the rate; use Wait to slow them down instead.
func (l *Limiter) Allow() bool {
	// AllowN(1) spelled out in one function (no call but the clock's):
	// this is the hottest path of the package. For n = 1 the burst check is
	// implied by the tau check (burst 0 means tau 0), so an admission is a
	// load, a clock reading and one CAS.
	//
	// The clock is read after the first load of the word. When the CAS
	// loses to another decision, the word is reloaded but the clock is not
	// read again: a reading older than the word's last writer is harmless
	// in GCRA, because max(tat, now) then picks tat, so the stale reading
	// can only make the check stricter, never credit refill time twice.
	// (Every admission raises the word by at least one interval past its
	// own clock reading, which is all the admissions ≤ burst + rate·T bound
	// needs.) Saving the second reading halves the cost of a contended
	// retry. A denial after a lost race is confirmed with a fresh reading,
	// so staleness never denies an event that a fresh clock would admit.
	for {
		s, tat := l.load()
		if s == nil {
			return l.count(false)
		}
		if s.mode == limInf {
			return l.count(true)
		}
		now := s.now(l.base)
		for lost := false; ; lost = true {
			next, wait := s.step(tat, now, 1)
			if wait > 0 {
				if !lost {
					return l.count(false)
				}
				break // confirm with a fresh reading
			}
			if s.tat.CompareAndSwap(tat, next) {
				return l.count(true)
			}
			if tat = s.tat.Load(); tat == limSealed {
				break // load waits for the new state
			}
		}
	}
}

// AllowN reports whether n events may happen now, and takes n tokens if so
// (all or nothing). It never blocks and does not allocate; n greater than the
// burst is never admitted unless the rate is Inf. AllowN(0) reports whether
// the bucket is not in debt to waiting reservations; a negative n counts as 0.
func (l *Limiter) AllowN(n int) bool {
	for {
		// Load the word first, read the clock second: the clock reading is
		// then at least as late as every decision that produced tat, so
		// max(tat, now) never credits refill time twice.
		s, tat := l.load()
		if s == nil {
			return l.count(n <= 0)
		}
		if s.mode == limInf {
			return l.count(true)
		}
		if int64(n) > s.maxN {
			return l.count(false)
		}
		n = max(n, 0)
		next, wait := s.step(tat, s.now(l.base), n)
		if wait > 0 {
			// Not enough tokens. Nothing is written: a denial costs no
			// cache-line transfer, which keeps a flood of denied callers
			// from slowing the admitted ones (the count goes to a
			// slot of the caller's own, see count).
			return l.count(false)
		}
		if n == 0 {
			// Nothing to take: admitted unless reservations are waiting
			// (negative tokens), as in x/time/rate; no write to the word.
			return l.count(true)
		}
		if s.tat.CompareAndSwap(tat, next) {
			return l.count(true)
		}
		// Another decision (or a configuration change) got in between;
		// retry with the new word and a fresh clock reading.
	}
}

// SetLimit changes the rate. The tokens in the bucket at the moment of the
// change are kept (as in x/time/rate), only the refill speed changes;
// reservations already made keep their time to act. It panics with a conc:
// message when perSecond is NaN or negative. SetLimit on a zero-value
// Limiter starts it with burst 0 and an empty bucket.
func (l *Limiter) SetLimit(perSecond float64) {
	checkLimiterRate(perSecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.start()
	l.replace(s, newLimConfig(perSecond, s.burst))
}

// SetBurst changes the bucket size. The tokens in the bucket at the moment
// of the change are kept, or cut to the new size when it is smaller (as in
// x/time/rate). SetBurst(0) with a finite rate shuts the limiter off until
// the burst is raised again, as in x/time/rate: Allow and AllowN(n > 0)
// report false, Reserve is not OK, and WaitN(n > 0) fails at once with the
// exceeds-the-burst error (it does not wait). It panics with a conc:
// message when burst is negative.
func (l *Limiter) SetBurst(burst int) {
	checkNonNegative("limiter burst", burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.start()
	l.replace(s, newLimConfig(s.limit, burst))
}

// start returns the current state, first giving a zero-value Limiter its
// clock origin and an empty rate-0, burst-0 bucket. l.mu must be held.
func (l *Limiter) start() *limState {
	if s := l.st.Load(); s != nil {
		return s
	}
	l.base = time.Now()
	s := &limState{limConfig: newLimConfig(0, 0)}
	l.st.Store(s)
	return s
}

// replace swaps in configuration c, carrying the tokens of old over. It
// seals old's word with a CAS from the exact value the tokens were computed
// from, so no decision can commit between the reading and the switch; the
// new state is published right after, and readers that meet the seal in
// that gap yield and reload. l.mu must be held.
func (l *Limiter) replace(old *limState, c limConfig) {
	ns := &limState{limConfig: c}
	for {
		tat := old.tat.Load()
		tokens := old.tokens(tat, old.now(l.base))
		ns.tat.Store(c.tatFor(tokens, c.now(l.base)))
		if old.tat.CompareAndSwap(tat, limSealed) {
			l.st.Store(ns)
			return
		}
	}
}
