package conc

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
)

// ErrClosed is returned by every operation attempted on a primitive after its
// Close (or Stop, or Seal) has been called. Callers branch on it with errors.Is.
var ErrClosed = errors.New("conc: closed")

// ErrOpen is returned by a Breaker, without calling the protected function,
// while the breaker is open or while half-open has no probe slot free. Retry
// does not retry it by default: hammering an open breaker only delays the
// moment the caller learns the dependency is down.
var ErrOpen = errors.New("conc: circuit breaker is open")

// PanicError is the error a primitive reports when user code it ran panicked.
// It is delivered exactly where that call's error would have gone, so a panic
// does not crash the process, never leaves Wait or Close hanging, and cancels
// sibling work the way an ordinary error does. The few callbacks that have
// no error to go to (FromSeq's seq, PerKey, a Locker given to LockAll, and
// counted-only callbacks) are listed in the package documentation.
//
// Find it with errors.As:
//
//	var pe *conc.PanicError
//	if errors.As(err, &pe) {
//		log.Printf("panic: %v\n%s", pe.Value, pe.Stack)
//	}
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the stack trace of the panicking goroutine, captured inside
	// the deferred recover, so it still shows the frame that panicked.
	Stack []byte
}

// Error returns a one-line description of the panic value. The stack trace is
// kept out of the message so that logs stay readable; it is in Stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("conc: panic: %v", e.Value)
}

// Unwrap returns Value when it is an error (a panic(err) keeps err reachable
// through errors.Is and errors.As) and nil otherwise.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// newPanicError captures the current stack. It must be called from the
// deferred function that recovered, before that function returns.
func newPanicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// recoverTo is the one place where the package turns a panic into an error.
// It is meant to be deferred directly — defer recoverTo(&err) — because
// recover only stops a panic when it is called by the deferred function
// itself. Deferring a named function rather than a closure keeps the happy
// path free of allocations.
func recoverTo(err *error) {
	if r := recover(); r != nil {
		*err = newPanicError(r)
	}
}

// protect runs fn and reports a panic in it as a *PanicError. It is the
// helper for user callbacks of any shape; primitives with a hot path use the
// typed forms below, which avoid the closure.
func protect(fn func() error) (err error) {
	defer recoverTo(&err)
	return fn()
}

// call runs fn(ctx, v) and reports a panic in it as a *PanicError.
func call[C, T, U any](fn func(C, T) (U, error), c C, v T) (u U, err error) {
	defer recoverTo(&err)
	return fn(c, v)
}

// ctxErr is the error every primitive returns when ctx ends a blocking
// call: ctx.Err(), so errors.Is matches context.Canceled or
// DeadlineExceeded, joined with context.Cause(ctx) when the cause is a
// different error, so that errors.Is matches the cause too (contract 1 in
// docs/ARCHITECTURE.md).
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// errGoexit is what a primitive reports for a call of user code that ended
// with runtime.Goexit (t.FailNow, log.Fatal's cousins in tests): the call
// neither returned nor panicked, yet it must not be lost silently.
var errGoexit = errors.New("conc: user function called runtime.Goexit")

// checkPositive panics with a conc: message when n < 1; it guards the
// constructors against programmer errors (contract 6 in
// docs/ARCHITECTURE.md).
func checkPositive(what string, n int) {
	if n < 1 {
		panic(fmt.Sprintf("conc: %s must be at least 1, got %d", what, n))
	}
}

// checkNonNegative panics with a conc: message when n < 0.
func checkNonNegative(what string, n int) {
	if n < 0 {
		panic(fmt.Sprintf("conc: %s must not be negative, got %d", what, n))
	}
}

// checkAtMost panics with a conc: message that names the limit when n >
// limit. Sizes that the package would allocate, or pack into a narrower
// word, are bounded this way, so that a huge value is refused at
// construction rather than truncated or met by a fatal out-of-memory,
// which no recover can catch.
func checkAtMost(what string, n, limit int) {
	if n > limit {
		panic(fmt.Sprintf("conc: %s must be at most %d, got %d", what, limit, n))
	}
}

// maxBuffer bounds every channel buffer an option asks for (ResultBuffer,
// MergeBuffer, StageBuffer, SubBuffer): Go allocates a channel's buffer in
// full when it is made, so a huge one would be a fatal out-of-memory.
const maxBuffer = 1 << 20

// checkBuffer panics with a conc: message when a buffer size is negative or
// above maxBuffer.
func checkBuffer(what string, n int) {
	checkNonNegative(what, n)
	checkAtMost(what, n, maxBuffer)
}

// checkCtx panics with a conc: message when ctx is nil. Every function that
// takes a context calls it first, so a nil one fails where it is passed,
// not on whichever slow path first needs it. The message is a constant so
// that checkCtx inlines: a hot path pays one comparison.
func checkCtx(ctx context.Context) {
	if ctx == nil {
		panic("conc: context must not be nil")
	}
}

// checkFunc panics with a conc: message when a required function is nil.
func checkFunc(what string, isNil bool) {
	if isNil {
		panic(fmt.Sprintf("conc: %s must not be nil", what))
	}
}

// ---------------------------------------------------------------------------
// Bounded parallelism: ForEach, ForEachAll, MapN, MapAll.
//
// They run on their own workers rather than on errgroup: a goroutine and a
// semaphore round trip per item (errgroup with SetLimit) costs a few hundred
// nanoseconds, while workers that claim runs of indexes with one atomic add
// (MapN) or receive items in small batches (ForEach) spend a few nanoseconds
// per item on coordination. The error policy is errgroup's: the first error
// cancels the context passed to the calls still running and is what the
// call returns. The machinery is in pool_parallel.go.

// ItemError is the error MapAll and ForEachAll report for one failed item:
// Index is its position in the input (the n-th value the sequence yielded,
// from 0 for ForEachAll) and Err what fn returned (or a *PanicError).
type ItemError struct {
	Index int
	Err   error
}

// Error returns "conc: item <index>: <err>".
func (e *ItemError) Error() string { return fmt.Sprintf("conc: item %d: %v", e.Index, e.Err) }

// Unwrap returns Err, so errors.Is and errors.As see through the index.
func (e *ItemError) Unwrap() error { return e.Err }

// MapN calls fn on every item with at most limit calls running at once and
// returns the results in input order: out[i] belongs to items[i]. It blocks
// until every call it started has returned.
//
// The first error (a panic in fn counts, as a *PanicError) cancels the
// context passed to the calls still running, no item starts after it, and
// MapN returns that error itself, never the context.Canceled it caused, with
// the results gathered so far (the slots of items not run hold the zero
// value). If ctx ends first, items not yet started are skipped and MapN
// returns ctx's error. Use MapAll to run every item and collect every error.
//
// It panics with a conc: message when ctx or fn is nil or limit < 1.
func MapN[T, U any](ctx context.Context, items []T, limit int, fn func(context.Context, T) (U, error)) ([]U, error) {
	return mapRun(ctx, items, limit, fn, false)
}

// MapAll is MapN without fail-fast: an error does not stop the other items.
// It returns every successful result in its slot (failed slots hold the zero
// value) and errors.Join of one *ItemError per failed item, in index order.
// If ctx ends, items not yet started are skipped and ctx's error is joined
// to the others.
func MapAll[T, U any](ctx context.Context, items []T, limit int, fn func(context.Context, T) (U, error)) ([]U, error) {
	return mapRun(ctx, items, limit, fn, true)
}

// ForEach calls fn on every item the sequence yields, with at most limit
// calls running at once, and blocks until every call it started has
// returned. The sequence is read from the calling goroutine, one item at a
// time, and is stopped (its loop broken) once the result is decided.
//
// Errors follow MapN: the first error or panic cancels the context of the
// running calls, no further item starts, the sequence is not read further,
// and that first error is returned. If ctx ends first, ForEach returns ctx's
// error. A panic in the sequence itself is reported the same way, as a
// *PanicError, as Collect and All report one in their input; a sequence
// that calls runtime.Goexit ends the calling goroutine, as in a plain loop,
// once the running calls have returned. Use ForEachAll to collect every
// error.
//
// While every worker is busy, items read from the sequence are gathered
// into small batches (up to 32) for the next free worker. If the sequence
// then pauses before its next item, a worker that becomes free meanwhile
// waits for that item (or the sequence's end) to receive the batch. A slice
// or a computation never pauses; for a slow, bursty source whose every item
// must start at once, feed a Pool or a Stage with Workers from a channel.
//
// It panics with a conc: message when ctx, items or fn is nil, or limit < 1.
func ForEach[T any](ctx context.Context, items iter.Seq[T], limit int, fn func(context.Context, T) error) error {
	return forEachRun(ctx, items, limit, fn, false)
}

// ForEachAll is ForEach without fail-fast: it runs fn on every item and
// returns errors.Join of one *ItemError per failed item (Index counts the
// values the sequence yielded), in index order, joined with ctx's error if
// ctx ended before the sequence was exhausted. A panic in the sequence ends
// the input: the items yielded before it still run, and its *PanicError is
// joined to the others.
func ForEachAll[T any](ctx context.Context, items iter.Seq[T], limit int, fn func(context.Context, T) error) error {
	return forEachRun(ctx, items, limit, fn, true)
}
