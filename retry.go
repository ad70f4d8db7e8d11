package conc

import (
	"context"
	"errors"
	"time"
)

// Retry calls fn until it succeeds, then returns nil. Between failed attempts
// it waits an exponential backoff with jitter (see Jitter and the Retry*
// options); with no options it makes at most 3 attempts, 100ms base delay,
// 10s max delay, full jitter.
//
// Retrying stops early, and Retry returns at once, when:
//
//   - fn returns nil: Retry returns nil.
//   - fn's error wraps a Permanent error: Retry returns the error that was
//     given to Permanent, unwrapped.
//   - fn panics: Retry returns the *PanicError, without retrying. A panic is
//     a bug, not a transient failure; running the same code again would only
//     repeat it and bury the first stack trace under copies.
//   - the RetryIf predicate rejects the error (by default, an error matching
//     ErrOpen): Retry returns the error as it is.
//   - the attempts run out, the next attempt would start after the
//     RetryMaxElapsed limit, ctx is done, or the next delay would end past
//     ctx's deadline (such a sleep is never started): Retry returns a
//     *RetryError that wraps the last attempt's error and says which of
//     these ended it. When ctx ended it, errors.Is matches ctx.Err()
//     (context.DeadlineExceeded for a delay that would pass the deadline)
//     and context.Cause(ctx) as well as the last error.
//
// fn receives ctx unchanged and is never called once ctx is done, not even
// the first time. Every attempt runs on the caller's goroutine, one after the
// other; Retry starts no goroutine. At most one timer is created per call, on
// the first delay, and reused; apart from that, the *RetryError and what fn
// itself allocates, Retry allocates nothing, and nothing at all when the first
// attempt succeeds.
//
// The options are validated on every call, which costs a few nanoseconds per
// option; a *RetryPolicy built once with NewRetryPolicy and passed as the
// only option skips that. Invalid options panic with a "conc: " message
// before fn is called, as does a nil fn.
func Retry(ctx context.Context, fn func(context.Context) error, opts ...RetryOption) error {
	checkFunc("retry function", fn == nil)
	checkCtx(ctx)
	// local is zeroed on every call, the preset ones included; that is
	// cheaper than the extra call a separate function for the resolving
	// path would cost (measured both ways).
	var local retryConfig
	c := presetConfig(opts)
	if c == nil {
		resolve(&local, opts)
		c = &local
	}
	return c.run(ctx, fn, opts)
}

// RetryValue is Retry for a function that returns a value with its error. It
// returns the value of the first successful attempt, or the zero T with the
// error Retry would have returned.
func RetryValue[T any](ctx context.Context, fn func(context.Context) (T, error), opts ...RetryOption) (T, error) {
	checkFunc("retry function", fn == nil)
	checkCtx(ctx)
	var local retryConfig
	c := presetConfig(opts)
	if c == nil {
		resolve(&local, opts)
		c = &local
	}
	// The first attempt is made here, with fn called directly: the success
	// path must not pay for the adapter below. This repeats the few lines
	// of run before its first attempt.
	var start time.Time
	if c.elapsed > 0 {
		start = time.Now()
	}
	if ctx.Err() != nil {
		var zero T
		return zero, newRetryError(ctx, RetryContextDone, 0, nil, 0)
	}
	v, err := attemptValue(ctx, fn)
	if err == nil {
		return v, nil
	}
	// The retry loop is written once, for func(ctx) error; this closure
	// adapts fn to it. It does not escape, so it lives on this stack frame
	// and costs one indirect call per retry, nothing on the heap.
	err = c.retry(ctx, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	}, opts, err, start)
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// A RetryPolicy is a validated, reusable set of retry options. Build it once
// with NewRetryPolicy and run calls through Do, or pass it to Retry or
// RetryValue as their only option, which then skip validating options.
//
// A RetryPolicy is immutable once built, so any number of goroutines may use
// one at the same time: everything that changes during a call (attempt count,
// previous delay, timer) lives on that call's stack. The zero RetryPolicy is
// ready to use and behaves like NewRetryPolicy() with no options. A
// RetryPolicy may be copied.
type RetryPolicy struct {
	cfg retryConfig
	ok  bool // set by NewRetryPolicy; false means "the defaults"
}

// NewRetryPolicy returns a policy made of opts over the defaults. Later
// options override earlier ones; a *RetryPolicy among them contributes all of
// its settings at that position. Invalid options panic with a "conc: "
// message here, once, rather than on each call.
func NewRetryPolicy(opts ...RetryOption) *RetryPolicy {
	p := &RetryPolicy{ok: true}
	resolve(&p.cfg, opts)
	p.cfg.retryIf, p.cfg.onRetry = funcsOf(opts)
	return p
}

// Do calls fn until it succeeds or the policy gives up, exactly as
// Retry(ctx, fn, p) does. Like a nil policy passed as an option, a nil p
// panics with a "conc: " message.
func (p *RetryPolicy) Do(ctx context.Context, fn func(context.Context) error) error {
	checkFunc("retry policy", p == nil)
	checkFunc("retry function", fn == nil)
	checkCtx(ctx)
	return p.config().run(ctx, fn, nil)
}

// retryOption makes a *RetryPolicy usable wherever a RetryOption is.
func (*RetryPolicy) retryOption() {}

// config returns the policy's settings, the defaults for a zero policy.
// Both are read-only once the policy is built.
func (p *RetryPolicy) config() *retryConfig {
	if !p.ok {
		return &defaultRetryConfig
	}
	return &p.cfg
}

// presetConfig returns a config that needs no resolving — the defaults when
// there are no options, a policy's own when it is the only option — or nil.
// Both are read-only, so handing out a pointer to them is safe.
func presetConfig(opts []RetryOption) *retryConfig {
	switch len(opts) {
	case 0:
		return &defaultRetryConfig
	case 1:
		if p, ok := opts[0].(*RetryPolicy); ok && p != nil {
			return p.config()
		}
	}
	return nil
}

// run makes the first attempt. It is kept apart from retry, the loop that
// handles failures, so that the success path is a short straight line: no
// clock read unless a max elapsed time needs a start, no timer, and fn called
// from this frame, under a defer that only recovers when fn did not return.
func (c *retryConfig) run(ctx context.Context, fn func(context.Context) error, opts []RetryOption) (err error) {
	var start time.Time
	if c.elapsed > 0 {
		start = time.Now()
	}
	// ctx.Err is one atomic load on the standard contexts, cheap enough to
	// honour "fn is never called once ctx is done" on every call.
	if ctx.Err() != nil {
		return newRetryError(ctx, RetryContextDone, 0, nil, 0)
	}
	// catch checks the flag before it calls recover, which spares the
	// successful return that call: a measurable part of a call that does
	// nothing else.
	returned := false
	defer catch(&err, &returned)
	err = fn(ctx)
	returned = true
	if err == nil {
		return nil
	}
	return c.retry(ctx, fn, opts, err, start)
}

// retry decides, after attempt n failed with err, whether and when to try
// again, and loops until an attempt succeeds or retrying stops. Each check
// runs in the order documented on Retry: what the error says about itself
// (panic, Permanent) first, then ctx, the predicate, the attempt budget,
// and last the time budget, which needs the delay.
//
// Nothing here allocates per attempt: the error chain is walked with type
// assertions rather than errors.As (whose target argument escapes), and the
// one timer is created on the first real delay and then Reset.
func (c *retryConfig) retry(ctx context.Context, fn func(context.Context) error, opts []RetryOption, err error, start time.Time) error {
	// A config built by resolve has no functions (see resolve); Retry and
	// RetryValue pass their opts, from which funcsOf recovers them whatever
	// the config's origin. Do passes nil: its policy's config has them.
	pred, hook := c.retryIf, c.onRetry
	if opts != nil {
		pred, hook = funcsOf(opts)
	}
	var timer *time.Timer
	defer stopTimer(&timer)
	prev := c.base // the previous delay, for JitterDecorrelated
	for n := 1; ; n++ {
		if out := c.giveUp(ctx, n, err, pred); out != nil {
			return out
		}
		d, out := c.delay(ctx, n, err, &prev, start)
		if out != nil {
			return out
		}
		if hook != nil {
			if perr := protect(func() error { hook(n, err, d); return nil }); perr != nil {
				return perr
			}
		}
		// fn must never run on a done context. ctx may have ended since
		// giveUp: in the predicate or the hook (which may cancel it), or
		// just as the timer fired, when select may pick either case. With
		// a zero delay nothing else would notice; one atomic load settles
		// it.
		if !sleep(ctx, &timer, d) || ctx.Err() != nil {
			return newRetryError(ctx, RetryContextDone, n, err, 0)
		}
		if err = attempt(ctx, fn); err == nil {
			return nil
		}
	}
}

// giveUp applies the checks that end retrying before any delay, after
// attempt n failed with err, in the order documented on Retry: what the
// error says about itself (panic, Permanent), then ctx, the predicate and
// the attempt budget. It returns what Retry returns then, or nil to go on.
func (c *retryConfig) giveUp(ctx context.Context, n int, err error, pred func(error) bool) error {
	if _, ok := err.(*PanicError); ok {
		return err
	}
	if p, ok := findErr[*permanentError](err); ok {
		return p.err
	}
	if ctx.Err() != nil {
		return newRetryError(ctx, RetryContextDone, n, err, 0)
	}
	retry, perr := retryable(pred, err)
	if perr != nil {
		return perr
	}
	if !retry {
		return err
	}
	if c.attempts > 0 && n >= c.attempts {
		return newRetryError(ctx, RetryExhausted, n, err, 0)
	}
	return nil
}

// delay returns the wait before attempt n+1, or the error that ends
// retrying because the time budget cannot cover it. prev is the previous
// delay, for JitterDecorrelated.
func (c *retryConfig) delay(ctx context.Context, n int, err error, prev *time.Duration, start time.Time) (time.Duration, error) {
	var d time.Duration
	if ra, ok := findErr[*retryAfterError](err); ok {
		// The server knows better than our backoff, within our cap.
		// Feeding its delay to the decorrelated state makes the next
		// backoff continue from there.
		d = min(ra.d, c.max)
		*prev = d
	} else {
		d = c.backoff(n, prev)
	}
	// The time checks read the clock only when there is a limit to check
	// against. Both are decided before sleeping: a delay that cannot be
	// followed by an attempt is not worth waiting for.
	dl, hasDL := ctx.Deadline()
	if c.elapsed > 0 || hasDL {
		now := time.Now()
		if c.elapsed > 0 && d > c.elapsed-now.Sub(start) {
			return d, newRetryError(ctx, RetryElapsed, n, err, c.elapsed)
		}
		// At the deadline itself ctx is done, so an attempt can only
		// start strictly before it.
		if hasDL && d >= dl.Sub(now) {
			return d, newRetryError(ctx, RetryDeadline, n, err, d)
		}
	}
	return d, nil
}

// sleep waits d on the call's one timer, made on the first real delay and
// then Reset; false when ctx ended the wait.
func sleep(ctx context.Context, timer **time.Timer, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	if *timer == nil {
		*timer = time.NewTimer(d)
	} else {
		// Since Go 1.23 Reset needs no Stop-and-drain dance: the channel
		// holds no stale tick once the timer is reset.
		(*timer).Reset(d)
	}
	select {
	case <-(*timer).C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryable applies the predicate, turning a panic in it into an error.
func retryable(pred func(error) bool, err error) (ok bool, perr error) {
	if pred == nil {
		return !isOpen(err), nil
	}
	perr = protect(func() error { ok = pred(err); return nil })
	return ok, perr
}

// isOpen reports whether err matches ErrOpen. It is a separate function so
// that the default predicate reads as what it is.
func isOpen(err error) bool { return errors.Is(err, ErrOpen) }

// attempt calls fn once, turning a panic into a *PanicError; it is the
// retries' version of the first attempt in run, with the same flag.
func attempt(ctx context.Context, fn func(context.Context) error) (err error) {
	returned := false
	defer catch(&err, &returned)
	err = fn(ctx)
	returned = true
	return err
}

// attemptValue is attempt for RetryValue's first attempt.
func attemptValue[T any](ctx context.Context, fn func(context.Context) (T, error)) (v T, err error) {
	returned := false
	defer catch(&err, &returned)
	v, err = fn(ctx)
	returned = true
	return v, err
}

// stopTimer stops the call's timer, if it ever made one, when retry returns.
func stopTimer(t **time.Timer) {
	if *t != nil {
		(*t).Stop()
	}
}
