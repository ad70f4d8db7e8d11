package conc

import (
	"context"
	"errors"
)

// This file holds how a Breaker turns the result of a call into an outcome
// (success, failure or neutral), with the user's IsFailure predicate run
// under recovery, and how a panic of OnStateChange joins a failed call's
// error. None of it is on the healthy closed path: a nil error is a success
// without a call here.

// classify maps the error of a call made by Execute to its outcome. A
// context.Canceled only counts as the caller's when the caller's ctx is
// done; otherwise it is the dependency's own cancellation, and a failure.
func (b *Breaker) classify(ctx context.Context, err error) (breakerOutcome, error) {
	if isPanicErr(err) {
		// Before the Canceled check: a panic with ctx.Err() as its value
		// unwraps to context.Canceled, yet a panic is always a failure.
		return outcomeFailure, nil
	}
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return outcomeNeutral, nil
	}
	return b.classifyError(err)
}

// classifyReported maps the error passed to Allow's done to its outcome.
// done cannot see the caller's context, so any context.Canceled is taken
// to be the caller's.
//
// done has no error result to carry a panic of the IsFailure predicate, so
// such a panic is only counted, as a failure.
func (b *Breaker) classifyReported(err error) breakerOutcome {
	if isPanicErr(err) {
		return outcomeFailure // as in classify: even a panic of context.Canceled
	}
	if err != nil && errors.Is(err, context.Canceled) {
		return outcomeNeutral
	}
	o, _ := b.classifyError(err)
	return o
}

// classifyError applies the user's predicate. nil is a success without
// asking it, which keeps the predicate off the healthy path entirely. A
// panic in the predicate is a failure, reported as the *PanicError perr: it
// must neither escape into the caller (from a deferred finish, or from done)
// nor skip the recording of the outcome, which would leave a half-open
// probe's slot taken until ProbeTimeout.
func (b *Breaker) classifyError(err error) (o breakerOutcome, perr error) {
	if err == nil {
		return outcomeSuccess, nil
	}
	if isPanicErr(err) {
		return outcomeFailure, nil // whatever the predicate says
	}
	if f := b.cfg.isFailure; f != nil {
		var failure bool
		perr := protect(func() error { failure = f(err); return nil })
		if perr != nil || failure {
			return outcomeFailure, perr
		}
		return outcomeSuccess, nil
	}
	return outcomeFailure, nil
}

// isPanicErr reports whether err is a *PanicError: a panic of fn, or one that
// fn or done's caller hands on as its error.
func isPanicErr(err error) bool {
	_, ok := err.(*PanicError)
	return ok
}

// joinCallbackPanic adds to err, the error of a failed call, the *PanicError
// of an OnStateChange callback that panicked while that call delivered the
// state change it caused: errors.Is still finds the call's own error, and
// errors.As finds the panic.
func joinCallbackPanic(err, cbErr error) error {
	if cbErr == nil {
		return err
	}
	return errors.Join(err, cbErr)
}
