package conc

import (
	"context"
	"fmt"
	"time"
)

// Permanent marks err as not worth retrying: Retry stops at once and returns
// err itself, unwrapped, even when the mark is found deeper in the error
// chain (fmt.Errorf("...: %w", Permanent(err))). The RetryIf predicate is not
// consulted. Permanent(nil) is nil, so `return Permanent(err)` is safe on any
// path.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// permanentError is the mark Permanent puts on an error. Its message is the
// wrapped error's, so a marked error logs the same as the original, and it
// unwraps, so that code between fn and Retry can still inspect the error.
// It is unexported: callers only need to make the mark, never to test for
// it, and a type they could construct would invite a nil Err.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// RetryAfter tells Retry to wait d before the next attempt instead of its own
// backoff, as a server does with an HTTP Retry-After header or a gRPC
// retry-pushback. d is capped by the max delay (RetryMaxDelay), so a server
// cannot stall the caller beyond what the policy allows; a negative d counts
// as zero. The error is otherwise handled as usual — the predicate, the
// attempt and time limits still apply — and it unwraps to err and has err's
// message. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, d: max(d, 0)}
}

// retryAfterError carries a server-supplied delay alongside the error. Like
// permanentError it is transparent: same message, unwraps to err, so the
// predicate and the caller see the server's error, not the wrapper.
type retryAfterError struct {
	err error
	d   time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// findErr returns the first error of type E in err's tree, in the pre-order
// errors.As uses. It exists because errors.As takes its target as an `any`,
// which makes the target escape: one allocation per failed attempt, which
// Retry promises not to make.
func findErr[E error](err error) (E, bool) {
	for err != nil {
		if e, ok := err.(E); ok {
			return e, true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if e, ok := findErr[E](inner); ok {
					return e, true
				}
			}
			return *new(E), false
		default:
			return *new(E), false
		}
	}
	return *new(E), false
}

// A RetryReason says why Retry stopped retrying without a success.
type RetryReason uint8

// The reasons a RetryError reports.
const (
	// RetryExhausted: the last allowed attempt (RetryAttempts) failed.
	RetryExhausted RetryReason = iota + 1
	// RetryElapsed: the next attempt would have started after the
	// RetryMaxElapsed limit, so its delay was not waited.
	RetryElapsed
	// RetryDeadline: the next delay would have ended at or after ctx's
	// deadline, so it was not waited. The error matches
	// context.DeadlineExceeded although ctx was not done yet.
	RetryDeadline
	// RetryContextDone: ctx was done after an attempt, during a delay, or
	// before the first attempt. The error matches ctx.Err() and
	// context.Cause(ctx).
	RetryContextDone
)

// String returns a short description of the reason.
func (r RetryReason) String() string {
	switch r {
	case RetryExhausted:
		return "attempts exhausted"
	case RetryElapsed:
		return "max elapsed time reached"
	case RetryDeadline:
		return "context deadline too close"
	case RetryContextDone:
		return "context done"
	}
	return fmt.Sprintf("RetryReason(%d)", uint8(r))
}

// A RetryError is what Retry returns when it stops without a success for one
// of the RetryReasons. It wraps the last attempt's error, so errors.Is and
// errors.As see through it to that error; when the context ended the retry
// they also match the context's error and its cause.
type RetryError struct {
	// Err is the error of the last attempt; nil when ctx was done before
	// the first one.
	Err error
	// Attempts is the number of attempts made.
	Attempts int
	// Reason is why retrying stopped.
	Reason RetryReason

	ctxErr error         // ctxErr(ctx), or DeadlineExceeded for RetryDeadline
	why    string        // RetryContextDone: ctx.Err(), and the cause when it differs
	limit  time.Duration // the limit or delay the message quotes
	errs   []error       // what Unwrap returns, built once
}

// newRetryError records why a retry stopped, capturing the context's error
// and cause at that moment: both are fixed once ctx is done, and for
// RetryDeadline the deadline is what ended the call even though ctx is not
// done yet.
func newRetryError(ctx context.Context, r RetryReason, n int, last error, limit time.Duration) *RetryError {
	e := &RetryError{Err: last, Attempts: n, Reason: r, limit: limit}
	switch r {
	case RetryContextDone:
		e.ctxErr = ctxErr(ctx)
		e.why = ctx.Err().Error()
		if cause := context.Cause(ctx); cause != ctx.Err() {
			e.why += " (" + cause.Error() + ")"
		}
	case RetryDeadline:
		e.ctxErr = context.DeadlineExceeded
	}
	// Built once here, not in Unwrap, which errors.Is and errors.As call on
	// every traversal.
	for _, err := range [...]error{last, e.ctxErr} {
		if err != nil {
			e.errs = append(e.errs, err)
		}
	}
	return e
}

// Error describes why retrying stopped, then the last attempt's error.
func (e *RetryError) Error() string {
	var why string
	switch e.Reason {
	case RetryExhausted:
		why = "gave up"
	case RetryElapsed:
		why = fmt.Sprintf("max elapsed time %v reached", e.limit)
	case RetryDeadline:
		why = fmt.Sprintf("next delay %v would pass the context deadline", e.limit)
	case RetryContextDone:
		why = e.why
	default:
		why = e.Reason.String()
	}
	if e.Attempts == 0 || e.Err == nil {
		return fmt.Sprintf("conc: retry: %s before the first attempt", why)
	}
	plural := "s"
	if e.Attempts == 1 {
		plural = ""
	}
	return fmt.Sprintf("conc: retry: %s after %d attempt%s: %v", why, e.Attempts, plural, e.Err)
}

// Unwrap returns the last attempt's error followed, when the context ended
// the retry, by the context's error and its cause. The multi-error form is
// what lets one errors.Is answer both "was it the 503?" and "was it the
// deadline?" — a single chain would force Retry to choose, and whichever it
// dropped is the one some caller branches on. The last error comes first,
// so errors.As finds the attempt's own error types before the context's.
func (e *RetryError) Unwrap() []error {
	if e.errs == nil && e.Err != nil {
		// A RetryError built by hand, not by Retry.
		return []error{e.Err}
	}
	return e.errs
}
