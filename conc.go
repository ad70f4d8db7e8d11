package conc

import (
	"context"
	"errors"
	"fmt"
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

// recovered is the error for a call of user code that did not return:
// a *PanicError when it panicked with v, errGoexit when it called
// runtime.Goexit (v is nil). It is the one place that says what such a call
// becomes. recover stops a panic only when the deferred function itself
// calls it, so every deferred function that guards user code either is
// catch or calls recover and hands the value here: a worker that must
// replace itself, or a run that records its failure, acts on the outcome
// in its own deferred function.
func recovered(v any) error {
	if v != nil {
		return newPanicError(v)
	}
	return errGoexit
}

// catch is deferred directly, defer catch(&err, &returned), by a function
// that sets returned once the user's code has returned; otherwise it
// stores the outcome in err. The flag spares the successful return a call
// of recover, and a named function rather than a closure keeps the defer
// free of allocations.
func catch(err *error, returned *bool) {
	if !*returned {
		*err = recovered(recover())
	}
}

// protect runs fn and reports a panic in it as a *PanicError. It is the
// wrapper for a user callback of any shape: the caller's closure stores
// the callback's other results.
func protect(fn func() error) (err error) {
	returned := false
	defer catch(&err, &returned)
	err = fn()
	returned = true
	return err
}

// ctxErr is the error every primitive returns when ctx ends a blocking
// call, and the only place that builds one: ctx.Err(), so errors.Is
// matches context.Canceled or DeadlineExceeded, joined with
// context.Cause(ctx) when the cause is a different error, so that errors.Is
// matches the cause too (contract 1 in docs/ARCHITECTURE.md). A cause that
// already wraps ctx.Err() is returned as it is. It is nil while ctx is not
// done.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	cause := context.Cause(ctx)
	if err == nil || cause == nil || errors.Is(cause, err) {
		return cause
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// ctxGaveUp reports whether err is ctx giving up rather than a failure of
// its own: ctx is done and err matches context.Canceled or
// DeadlineExceeded, but is not a *PanicError. A panic whose value is a
// context error unwraps to it, yet it is a panic, with its stack, and is
// never rewritten (contract 2 in docs/ARCHITECTURE.md). The runs use it to
// replace a bare context.Canceled by ctxErr(ctx), which carries the cause.
func ctxGaveUp(ctx context.Context, err error) bool {
	if ctx.Err() == nil || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return false
	}
	var pe *PanicError
	return !errors.As(err, &pe)
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

// maxWorkers bounds the goroutines a constructor starts at once (NewPool's
// workers, a stage's Workers): they are started eagerly, so a huge count
// would be a fatal out-of-memory rather than a slow start.
const maxWorkers = 1 << 16

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

// checkOption panics with a conc: message when the i-th option (counting
// from 0) given to what is nil: a variable never set is a programmer error,
// named where it is passed rather than found as a nil dereference later.
// It inlines to one comparison; the message is built out of line.
func checkOption(what string, i int, isNil bool) {
	if isNil {
		panicNilOption(what, i)
	}
}

//go:noinline
func panicNilOption(what string, i int) {
	panic(fmt.Sprintf("conc: %s option %d must not be nil", what, i))
}

// checkFunc panics with a conc: message when a required function is nil.
func checkFunc(what string, isNil bool) {
	if isNil {
		panic(fmt.Sprintf("conc: %s must not be nil", what))
	}
}
