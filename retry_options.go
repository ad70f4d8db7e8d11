package conc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"time"
)

// Defaults of a retry built without options. Three attempts is what the AWS
// SDKs and failsafe-go default to: enough to ride out a blip, few enough that
// a dependency which is really down is not hammered. There is no elapsed-time
// limit by default because reading the clock before the first attempt would
// cost more than the whole successful call; bound a retry with ctx instead.
const (
	defaultRetryAttempts = 3
	defaultRetryBase     = 100 * time.Millisecond
	defaultRetryMax      = 10 * time.Second
)

// A Jitter chooses how Retry randomises the exponential backoff between
// attempts. The names and formulas are those of the AWS Architecture Blog
// post "Exponential Backoff And Jitter", where exp is
// min(max delay, base delay × 2^(retry−1)):
//
//   - JitterNone waits exactly exp.
//   - JitterFull, the default, waits a uniform draw in [0, exp]. It spreads
//     competing clients best and is the cheapest in total work.
//   - JitterEqual waits exp/2 plus a uniform draw in [0, exp/2]: never less
//     than half the backoff, at the price of more clustering.
//   - JitterDecorrelated waits min(max delay, uniform draw in
//     [base, 3 × previous wait]), the previous wait starting at base. It does
//     not depend on the attempt number, only on the previous delay.
type Jitter uint8

// The jitters a retry can use; see Jitter.
const (
	JitterFull Jitter = iota // the zero value, hence the default
	JitterNone
	JitterEqual
	JitterDecorrelated
	jitterEnd // one past the last valid value, for validation
)

// String returns the Jitter's name, "full" for JitterFull and so on.
func (j Jitter) String() string {
	switch j {
	case JitterFull:
		return "full"
	case JitterNone:
		return "none"
	case JitterEqual:
		return "equal"
	case JitterDecorrelated:
		return "decorrelated"
	}
	return fmt.Sprintf("Jitter(%d)", uint8(j))
}

// A RetryOption configures Retry, RetryValue or NewRetryPolicy. A
// *RetryPolicy is itself a RetryOption: it stands for all of its settings,
// and options after it override them.
type RetryOption interface{ retryOption() }

// Options are small values behind an interface with an unexported method, and
// the package reads them with a type switch rather than by calling a method
// on them. That is what keeps Retry free of allocations: an interface method
// call would make the escape analysis assume the option (and the config it
// writes to) escapes, forcing both onto the heap on every call.

type (
	retryAttempts int
	retryBase     time.Duration
	retryMax      time.Duration
	retryElapsed  time.Duration
	retryJitter   Jitter
	retryIf       func(error) bool
	retryOnRetry  func(attempt int, err error, next time.Duration)
)

func (retryAttempts) retryOption() {}
func (retryBase) retryOption()     {}
func (retryMax) retryOption()      {}
func (retryElapsed) retryOption()  {}
func (retryJitter) retryOption()   {}
func (retryIf) retryOption()       {}
func (retryOnRetry) retryOption()  {}

// The option constructors below do no checking of their own: they must stay
// small enough to be inlined, so that a non-constant argument is boxed on the
// caller's stack. Validation happens once the options are combined, in
// resolve, which is also the only place where cross-option rules (max delay
// not below base delay) can be checked.

// RetryAttempts sets the maximum number of attempts, the first one included:
// RetryAttempts(1) calls fn once and never retries. Zero means no limit, so
// that only ctx, RetryMaxElapsed or the error itself stops the retries. The
// default is 3. A negative n panics when the retry is built.
func RetryAttempts(n int) RetryOption { return retryAttempts(n) }

// RetryBaseDelay sets the backoff before the first retry; each later retry
// doubles it, up to RetryMaxDelay, before jitter is applied. Zero retries at
// once, without sleeping. The default is 100ms. A negative d panics when the
// retry is built.
func RetryBaseDelay(d time.Duration) RetryOption { return retryBase(d) }

// RetryMaxDelay caps every delay between attempts, a server-supplied one
// (RetryAfter) included. The default is 10s, or the base delay when that is
// larger and no max delay was given (a RetryPolicy among the options gives
// one only if it was built with RetryMaxDelay). A negative d, or one below
// the base delay, panics when the retry is built.
func RetryMaxDelay(d time.Duration) RetryOption { return retryMax(d) }

// RetryMaxElapsed bounds the time, measured from the start of the call,
// at which a new attempt may begin: a retry whose delay would end past it is
// not started and the call returns at once. It never interrupts a running
// attempt; give fn a context deadline for that. Zero, the default, means no
// limit. A limit costs one clock read per call, on the success path too.
// A negative d panics when the retry is built.
func RetryMaxElapsed(d time.Duration) RetryOption { return retryElapsed(d) }

// RetryJitter selects how delays are randomised; the default is JitterFull.
// A value outside the Jitter constants panics when the retry is built.
func RetryJitter(j Jitter) RetryOption { return retryJitter(j) }

// RetryIf sets the predicate that decides whether an attempt's error is worth
// another attempt. An error it rejects is returned as it is, at once. The
// default retries every error except those matching ErrOpen (errors.Is): an
// open circuit breaker answers instantly, and retrying it only delays the
// moment the caller learns the dependency is down. A predicate replaces that
// default, so it decides about ErrOpen too. Errors wrapped by Permanent and
// panics are never retried, whatever the predicate says. pred must be
// safe for concurrent use when the option is shared; nil panics when the
// retry is built.
func RetryIf(pred func(err error) bool) RetryOption { return retryIf(pred) }

// OnRetry sets a hook called after a failed attempt that will be retried,
// just before the delay: attempt is the number of the attempt that failed
// (1 for the first), err its error and next the delay about to be waited.
// It is not called for the attempt that ends the retry. It runs on the
// caller's goroutine and must be safe for concurrent use when the option is
// shared; a panic in it ends the retry with a *PanicError. nil panics when
// the retry is built.
func OnRetry(hook func(attempt int, err error, next time.Duration)) RetryOption {
	return retryOnRetry(hook)
}

// retryConfig is a resolved, validated set of options. A RetryPolicy keeps
// one that it never modifies after construction; Retry builds one on its
// stack for the options it was given.
type retryConfig struct {
	attempts int
	base     time.Duration
	max      time.Duration
	elapsed  time.Duration
	jitter   Jitter
	maxGiven bool // max came from RetryMaxDelay, not from the default
	retryIf  func(error) bool
	onRetry  func(int, error, time.Duration)
}

// defaultRetryConfig is what an option-less Retry uses; it is read, never
// written, so sharing it between goroutines needs no synchronisation.
var defaultRetryConfig = retryConfig{
	attempts: defaultRetryAttempts,
	base:     defaultRetryBase,
	max:      defaultRetryMax,
}

// resolve folds opts over the defaults into c and validates the result. It
// sets the numeric fields only; the two functions are found by funcsOf, and
// only on the failure path.
//
// That split is what keeps Retry's options on the caller's stack. A store
// through a pointer counts as an escape to the heap, so storing the
// predicate or hook into *c would make every caller heap-allocate the
// closures it passes, and the boxed values of all its options with them.
// Numbers carry no pointers and escape nothing. (Returning the whole config
// by value avoids the escape too, but the compiler moves a struct this size
// through a stack temporary, a word at a time in and 16 bytes at a time out,
// which stalls on store forwarding: measured at 4 ns of a 15 ns call.)
//
// c must be the zero retryConfig: zeroing it again here, with the write
// barrier check its function fields bring, would be paid twice per call.
func resolve(c *retryConfig, opts []RetryOption) {
	c.attempts, c.base, c.max = defaultRetryAttempts, defaultRetryBase, defaultRetryMax
	var nilPred, nilHook bool
	for i, o := range opts {
		switch o := o.(type) {
		case retryAttempts:
			c.attempts = int(o)
		case retryBase:
			c.base = time.Duration(o)
		case retryMax:
			c.max, c.maxGiven = time.Duration(o), true
		case retryElapsed:
			c.elapsed = time.Duration(o)
		case retryJitter:
			c.jitter = Jitter(o)
		case retryIf:
			nilPred = o == nil
		case retryOnRetry:
			nilHook = o == nil
		case *RetryPolicy:
			checkOption("Retry", i, o == nil)
			p := o.config()
			c.attempts, c.base, c.max, c.elapsed, c.jitter = p.attempts, p.base, p.max, p.elapsed, p.jitter
			c.maxGiven = p.maxGiven
			if !c.maxGiven {
				// The policy's max is the default, perhaps raised to its
				// base: start from the default again, so that a base
				// given after the policy raises it in turn rather than
				// running into it.
				c.max = defaultRetryMax
			}
			nilPred, nilHook = false, false
		default:
			// nil, or a foreign type that embeds RetryOption. Only the
			// type goes out: passing o itself would let it escape, and
			// every caller's options with it.
			badRetryOption(i, reflect.TypeOf(o))
		}
	}
	if !c.maxGiven && c.max < c.base {
		// Only a base delay was given and it exceeds the default cap: the
		// caller clearly wants the larger delay, not a panic.
		c.max = c.base
	}
	// One combined test on the hot path; the messages are built out of line,
	// so that this function carries none of fmt's call setup.
	if c.attempts < 0 || c.base < 0 || c.max < c.base || c.elapsed < 0 ||
		c.jitter >= jitterEnd || nilPred || nilHook {
		badRetryConfig(c, nilPred, nilHook)
	}
}

// badRetryOption panics for an option resolve does not know: nil, or a type
// outside this package that embeds RetryOption to satisfy it.
//
//go:noinline
func badRetryOption(i int, t reflect.Type) {
	checkOption("Retry", i, t == nil)
	panic(fmt.Sprintf("conc: unknown retry option type %v", t))
}

// badRetryConfig panics with the message for the first problem in c. It is
// only called when resolve found one.
//
//go:noinline
func badRetryConfig(c *retryConfig, nilPred, nilHook bool) {
	checkNonNegative("retry attempts", c.attempts)
	checkDuration("retry base delay", c.base)
	checkDuration("retry max delay", c.max)
	checkDuration("retry max elapsed", c.elapsed)
	if c.max < c.base {
		panic(fmt.Sprintf("conc: retry max delay %v is less than base delay %v", c.max, c.base))
	}
	if c.jitter >= jitterEnd {
		panic(fmt.Sprintf("conc: retry jitter %d is not one of the Jitter constants", uint8(c.jitter)))
	}
	checkFunc("retry-if predicate", nilPred)
	checkFunc("on-retry hook", nilHook)
}

// funcsOf returns the predicate and hook that opts set, the last one of each
// winning, as resolve lets the last numeric option win. It runs once per
// failed call, after resolve has rejected nil functions.
func funcsOf(opts []RetryOption) (pred func(error) bool, hook func(int, error, time.Duration)) {
	for _, o := range opts {
		switch o := o.(type) {
		case retryIf:
			pred = o
		case retryOnRetry:
			hook = o
		case *RetryPolicy:
			p := o.config()
			pred, hook = p.retryIf, p.onRetry
		}
	}
	return pred, hook
}

// checkDuration panics with a conc: message when d < 0.
func checkDuration(what string, d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("conc: %s must not be negative, got %v", what, d))
	}
}

// backoff returns the delay before retry number n (1 for the first retry).
// prev carries the previous delay for JitterDecorrelated; it lives in the
// caller's loop, which is what lets one config serve many calls at once.
func (c *retryConfig) backoff(n int, prev *time.Duration) time.Duration {
	if c.jitter == JitterDecorrelated {
		// min(cap, uniform[base, 3*prev]); a saturating multiply keeps a
		// long run of retries from wrapping around to a negative delay.
		hi := *prev
		if hi > math.MaxInt64/3 {
			hi = math.MaxInt64
		} else {
			hi *= 3
		}
		d := min(c.max, between(c.base, hi))
		*prev = d
		return d
	}
	exp := c.max
	// base << (n-1), saturating at max: the shift is only safe while the
	// result cannot pass max, which is what the comparison checks.
	if s := n - 1; s < 63 && c.base <= c.max>>s {
		exp = c.base << s
	}
	switch c.jitter {
	case JitterNone:
		return exp
	case JitterEqual:
		half := exp / 2
		return exp - half + between(0, half)
	}
	return between(0, exp) // JitterFull
}

// between returns a uniform draw in [lo, hi], or lo when hi <= lo. The
// top-level math/rand/v2 functions are safe for concurrent use and do not
// allocate, so no per-policy source is needed.
func between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	span := hi - lo
	if span == math.MaxInt64 {
		return lo + time.Duration(rand.Int64())
	}
	return lo + time.Duration(rand.Int64N(int64(span)+1))
}
