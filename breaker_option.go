package conc

import (
	"fmt"
	"math"
	"time"
)

// A BreakerOption configures a Breaker built by NewBreaker. Options are
// applied in order; when two options set the same knob the later one wins
// (in particular ConsecutiveFailures and FailureRate replace each other).
type BreakerOption interface {
	applyBreaker(*breakerConfig)
}

// breakerOptionFunc adapts a function to BreakerOption. The interface has an
// unexported method (as goleak's options do) so that only this package can
// add knobs, and a later option type cannot be passed to the wrong
// constructor by accident.
type breakerOptionFunc func(*breakerConfig)

func (f breakerOptionFunc) applyBreaker(c *breakerConfig) { f(c) }

// tripPolicy selects how a closed breaker decides to open.
type tripPolicy uint8

const (
	tripConsecutive tripPolicy = iota // N failures in a row
	tripCountWindow                   // failure rate over the last N calls
	tripTimeWindow                    // failure rate over the last duration
)

// breakerConfig is the immutable configuration of one Breaker. It is read
// on every call without a lock, so nothing in it may change after NewBreaker
// returns.
type breakerConfig struct {
	policy    tripPolicy
	threshold int     // consecutive failures that trip (tripConsecutive)
	rate      float64 // failure rate that trips, in (0, 1] (windows)
	minCalls  int     // calls the window must hold before the rate counts
	calls     int     // size of the count window
	span      time.Duration
	buckets   int // time window resolution

	cooldown    time.Duration
	jitter      float64       // cooldown is drawn from [c, c*(1+jitter))
	growth      float64       // cooldown multiplier per trip in a row; 1 = fixed
	maxCooldown time.Duration // cap for growth

	probes       int           // concurrent half-open probes
	successes    int           // probe successes needed to close
	probeTimeout time.Duration // after this an unreported probe frees its slot

	isFailure func(error) bool
	onChange  func(from, to BreakerState)
}

// Defaults, chosen to match what users of gobreaker and failsafe-go expect
// from a breaker they did not tune: five failures in a row trip it, and a
// single probe at a time decides whether the dependency is back.
const (
	defaultBreakerThreshold = 5
	defaultBreakerCooldown  = 30 * time.Second
	// defaultBreakerProbeTimeoutFloor is the shortest default ProbeTimeout.
	defaultBreakerProbeTimeoutFloor = 10 * time.Second
)

// maxBreakerThreshold bounds the consecutive-failure threshold and the
// successes to close, so that either count fits in its bits of the
// breaker's state word.
const maxBreakerThreshold = 1<<30 - 1

func newBreakerConfig(opts []BreakerOption) breakerConfig {
	c := breakerConfig{
		policy:    tripConsecutive,
		threshold: defaultBreakerThreshold,
		cooldown:  defaultBreakerCooldown,
		growth:    1,
		probes:    1,
		successes: 1,
	}
	for i, o := range opts {
		checkOption("NewBreaker", i, o == nil)
		o.applyBreaker(&c)
	}
	// The default must outlast the dependency's slowest healthy call, or
	// slow probes are replaced before they can report and the breaker
	// never closes. The cooldown alone says nothing about call latency (a
	// short one is common in tests and with fast retries), so it only
	// counts when it is longer than a floor that covers ordinary client
	// timeouts: a probe that hangs for a whole long cooldown is as good as
	// lost.
	if c.probeTimeout == 0 {
		c.probeTimeout = max(c.cooldown, defaultBreakerProbeTimeoutFloor)
	}
	if c.policy == tripCountWindow && c.calls < c.minCalls {
		panic(fmt.Sprintf("conc: breaker window of %d calls is smaller than its minimum of %d calls", c.calls, c.minCalls))
	}
	if c.growth > 1 && c.maxCooldown < c.cooldown {
		panic(fmt.Sprintf("conc: breaker max cooldown %v is below its cooldown %v", c.maxCooldown, c.cooldown))
	}
	return c
}

// ConsecutiveFailures makes the breaker open after n failures in a row
// while closed; a success resets the count. It is the default policy, with
// n = 5. It replaces a FailureRate given earlier. It panics if n < 1.
//
// This policy keeps no history beyond one counter, so a call through a
// closed breaker costs a few atomic loads and no clock read.
func ConsecutiveFailures(n int) BreakerOption {
	checkPositive("breaker failure threshold", n)
	if n > maxBreakerThreshold {
		panic(fmt.Sprintf("conc: breaker failure threshold must be at most %d, got %d", maxBreakerThreshold, n))
	}
	return breakerOptionFunc(func(c *breakerConfig) {
		c.policy, c.threshold = tripConsecutive, n
	})
}

// A Window is the sliding window over which FailureRate measures failures:
// LastCalls or LastDuration.
type Window struct {
	calls   int
	span    time.Duration
	buckets int
}

// maxWindowCalls bounds LastCalls: the window keeps one bit per call
// (2 MiB at the limit), allocated when the breaker is built and again each
// time it closes, and positions are taken modulo 2^32.
const maxWindowCalls = 1 << 24

// LastCalls is a Window over the outcomes of the last n calls. It costs one
// shared atomic increment per call and no clock read, and holds one bit per
// call. It panics if n < 1 or n > 2^24 (16777216).
func LastCalls(n int) Window {
	checkPositive("breaker window calls", n)
	checkAtMost("breaker window calls", n, maxWindowCalls)
	return Window{calls: n}
}

// maxWindowBuckets bounds LastDuration's buckets: a failure sums them all.
const maxWindowBuckets = 4096

// LastDuration is a Window over the calls that finished in the last d,
// kept as buckets counters of d/buckets each, so a bucket's worth of old
// calls leave the window at once. It reads the clock on every call, and the
// first call of each bucket interval takes a short lock to reset it. It
// panics if d is not positive, if buckets < 1 or > 4096, or if d/buckets
// would be shorter than a nanosecond.
func LastDuration(d time.Duration, buckets int) Window {
	if d <= 0 {
		panic(fmt.Sprintf("conc: breaker window duration must be positive, got %v", d))
	}
	checkPositive("breaker window buckets", buckets)
	checkAtMost("breaker window buckets", buckets, maxWindowBuckets)
	if d/time.Duration(buckets) < 1 {
		panic(fmt.Sprintf("conc: breaker window %v is too short for %d buckets", d, buckets))
	}
	return Window{span: d, buckets: buckets}
}

// FailureRate makes the breaker open when, at a failure, the window holds
// at least minCalls outcomes and at least the fraction rate of them are
// failures. Successes never trip the breaker, so the rate is only checked
// when a failure is recorded. It replaces ConsecutiveFailures. It panics if
// rate is not in (0, 1], if minCalls < 1, or, for LastCalls(n), if n <
// minCalls (such a window could never trip).
func FailureRate(rate float64, minCalls int, w Window) BreakerOption {
	if !(rate > 0 && rate <= 1) {
		panic(fmt.Sprintf("conc: breaker failure rate must be in (0, 1], got %v", rate))
	}
	checkPositive("breaker minimum calls", minCalls)
	if w.calls == 0 && w.span == 0 {
		panic("conc: breaker window must come from LastCalls or LastDuration")
	}
	return breakerOptionFunc(func(c *breakerConfig) {
		c.rate, c.minCalls = rate, minCalls
		c.calls, c.span, c.buckets = w.calls, w.span, w.buckets
		c.policy = tripTimeWindow
		if w.calls > 0 {
			c.policy = tripCountWindow
		}
	})
}

// Cooldown sets how long the breaker stays open before it lets probes
// through (half-open). The default is 30s. It panics if d < 0.
func Cooldown(d time.Duration) BreakerOption {
	checkBreakerDuration("breaker cooldown", d)
	return breakerOptionFunc(func(c *breakerConfig) { c.cooldown = d })
}

// CooldownJitter spreads the cooldown so that many breakers tripped by the
// same outage do not probe the dependency in the same instant: each cooldown
// is drawn uniformly from [c, c·(1+frac)), never shorter than configured. It
// panics unless 0 <= frac <= 1.
func CooldownJitter(frac float64) BreakerOption {
	if !(frac >= 0 && frac <= 1) {
		panic(fmt.Sprintf("conc: breaker cooldown jitter must be in [0, 1], got %v", frac))
	}
	return breakerOptionFunc(func(c *breakerConfig) { c.jitter = frac })
}

// CooldownGrowth makes the cooldown grow by factor each time the breaker
// trips again without having closed in between (a failed probe), up to max;
// closing resets it. The default is no growth. It panics if factor < 1 or
// max <= 0, and NewBreaker panics if max is below the cooldown.
func CooldownGrowth(factor float64, max time.Duration) BreakerOption {
	if !(factor >= 1) || math.IsInf(factor, 1) {
		panic(fmt.Sprintf("conc: breaker cooldown growth must be a finite number >= 1, got %v", factor))
	}
	if max <= 0 {
		panic(fmt.Sprintf("conc: breaker max cooldown must be positive, got %v", max))
	}
	return breakerOptionFunc(func(c *breakerConfig) { c.growth, c.maxCooldown = factor, max })
}

// maxProbes bounds HalfOpenProbes: each probe has a slot, allocated with
// the breaker and scanned by callers while half-open.
const maxProbes = 1024

// HalfOpenProbes sets how many calls may be in flight at once while the
// breaker is half-open (default 1). Other callers get ErrOpen. It panics if
// n < 1 or n > 1024.
func HalfOpenProbes(n int) BreakerOption {
	checkPositive("breaker half-open probes", n)
	checkAtMost("breaker half-open probes", n, maxProbes)
	return breakerOptionFunc(func(c *breakerConfig) { c.probes = n })
}

// SuccessesToClose sets how many probes must succeed, without a failure in
// between, before a half-open breaker closes (default 1). It panics if n < 1
// or n > 2^30-1 (the count shares the state word with the generation).
func SuccessesToClose(n int) BreakerOption {
	checkPositive("breaker successes to close", n)
	if n > maxBreakerThreshold {
		panic(fmt.Sprintf("conc: breaker successes to close must be at most %d, got %d", maxBreakerThreshold, n))
	}
	return breakerOptionFunc(func(c *breakerConfig) { c.successes = n })
}

// ProbeTimeout bounds how long a half-open probe may hold its slot against
// other callers. A probe that has not reported by then (its done never
// called, its function hanging) may lose its slot to the next caller that
// wants one; it is then abandoned and its result, if it ever comes, is
// ignored. A late result that finds its slot still untaken counts as usual.
// Deadlines are kept in whole milliseconds, rounded up, so a slot may stay
// taken up to 1ms longer, never shorter. Set it above the slowest healthy
// call, or probes are replaced before they can report. The default is the
// cooldown, but at least 10s. It panics if d <= 0.
func ProbeTimeout(d time.Duration) BreakerOption {
	if d <= 0 {
		panic(fmt.Sprintf("conc: breaker probe timeout must be positive, got %v", d))
	}
	return breakerOptionFunc(func(c *breakerConfig) { c.probeTimeout = d })
}

// IsFailure sets the predicate that decides whether a non-nil error counts
// as a failure; an error it rejects counts as a success (a "not found" from
// a healthy server, say). The default counts every non-nil error. It is
// never called with nil, with a *PanicError (a panic is always a failure),
// or with a context.Canceled that the caller's own context caused (that
// call counts as neither). A panic in fn counts the call as a failure:
// Execute and ExecuteValue then return that panic as a *PanicError instead of
// the call's error, and Allow's done, which has no result, only counts it. It
// panics if fn is nil.
func IsFailure(fn func(err error) bool) BreakerOption {
	checkFunc("breaker IsFailure predicate", fn == nil)
	return breakerOptionFunc(func(c *breakerConfig) { c.isFailure = fn })
}

// OnStateChange registers fn to be called after every state change, with no
// lock of the breaker held, so fn may call State, Stats, Execute or Allow on
// the same breaker. Calls of fn are serialised and come in the order of the
// changes; a change made while fn runs is reported when it returns, possibly
// from another goroutine than the one that made it. By then the breaker may
// have moved on, so fn should not assume that State() == to.
//
// A panic in fn is recovered and counted in BreakerStats.CallbackPanics; the
// breaker stays consistent and the changes still queued are delivered. It
// never changes the outcome of the call that was delivering the change: if
// that call is an Execute or ExecuteValue that failed (and so opened the
// breaker), the *PanicError is joined to the error it returns, where
// errors.As finds it and errors.Is still finds the call's own error;
// otherwise (a successful call, State, Stats, Allow or done) the panic is
// dropped, since a result that already succeeded must not be turned into a
// failure the caller might retry. It panics if fn is nil.
func OnStateChange(fn func(from, to BreakerState)) BreakerOption {
	checkFunc("breaker OnStateChange callback", fn == nil)
	return breakerOptionFunc(func(c *breakerConfig) { c.onChange = fn })
}

// checkBreakerDuration panics with a conc: message when d is negative.
func checkBreakerDuration(what string, d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("conc: %s must not be negative, got %v", what, d))
	}
}
