package conc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// This file holds the or-channel family: Or and OrContext (one signal out of
// many), OrDone (a channel bounded by a context) and Race (first success
// wins).
//
// The or-channel of the tutorials is recursive: each goroutine selects on
// three inputs plus the result of a recursive call on the rest, so N inputs
// cost about N/2 goroutines and as many channels, and a fired signal has to
// ripple through all of them. Or keeps one goroutine for up to 65534 inputs
// (one more per further 65534, the limit of one select):
//
//   - up to orSmall inputs, one select statement with a fixed number of
//     cases, unused ones padded with nil channels (a nil case is skipped by
//     the runtime before it locks anything, so the padding is nearly free);
//   - above that, reflect.Select over cases built once. A single goroutine
//     cannot wait on more than a fixed number of channels any other way:
//     a select statement's cases are fixed at compile time.
//
// Before it waits, Or polls every input without blocking: a non-blocking
// receive on an empty open channel reads two words and takes no lock, about
// 5 ns, while a select that finds a ready case still sorts and locks every
// channel it names, and building reflect.Select cases allocates. With up to
// orSmall inputs Or polls them itself, so that an Or whose input has
// already fired needs no goroutine; with more, the goroutine polls them, so
// that one starting after an input fired (the usual case when the signal
// comes soon) skips building and running the big select.

// orSmall is the largest number of inputs waited on by a select statement
// rather than by reflect.Select.
const orSmall = 16

// orMaxCases is how many channels one reflect.Select can wait on: the
// runtime numbers select cases with uint16. Two cases are kept in reserve for
// the done channel and for the chained remainder (see orStart).
const orMaxCases = 1<<16 - 2

var (
	// orNever is what Or returns without inputs: nothing ever closes it.
	orNever = make(chan struct{})

	// orClosed is what Or returns when an input had already fired when it
	// was called. It is closed once, here, and shared: a receive-only
	// channel cannot be closed by the caller.
	orClosed = func() chan struct{} {
		c := make(chan struct{})
		close(c)
		return c
	}()
)

// Or returns a channel that is closed as soon as any of chans yields a value
// or is closed. The value that fired it is received and discarded. Or never
// blocks; Or is safe for concurrent use and keeps no reference to the
// chans slice after it returns, so the caller may reuse it.
//
// Or starts at most one goroutine for up to 65534 inputs (see below for
// more), and that goroutine exits as soon as the result is closed. Special
// cases start none:
//
//   - Or() returns a channel that is never closed.
//   - Or(c) with c of type <-chan struct{} returns c itself. That is exact for
//     a done channel, which is only ever closed (ctx.Done(), a channel closed
//     to broadcast). If values are also sent on c, each value wakes a single
//     receiver of the result instead of closing it for every receiver; to
//     get a fresh channel closed by a value too, write Or(c, nil) (a nil
//     input never fires, but two inputs need the goroutine).
//   - With up to 16 inputs, if one is already closed or holds a value when
//     Or is called, Or receives from it and returns a closed channel. (With
//     more, polling them all would cost more than the goroutine it might
//     save; the goroutine polls them instead, before it builds its select.)
//
// If no input ever fires, the goroutine waits forever: it is not a leak in
// the sense that it belongs to the returned channel, but it is never freed.
// When the inputs may all stay silent, use OrContext and give the wait an
// owner. A nil channel among chans is never ready, as in a select statement.
// More than 65534 inputs (the limit of one select) cost one more goroutine
// per further 65534.
func Or[T any](chans ...<-chan T) <-chan struct{} {
	return orStart(nil, chans)
}

// OrContext is like Or, but its result is also closed when ctx is done, and
// its goroutine, if any, exits then: nothing of it outlives ctx. Callers
// tell the two outcomes apart with ctx.Err(). With no inputs it returns
// ctx.Done() itself; with a ctx that is never done it is exactly Or.
func OrContext[T any](ctx context.Context, chans ...<-chan T) <-chan struct{} {
	checkCtx(ctx)
	done := ctx.Done()
	if done == nil {
		return orStart(nil, chans)
	}
	if len(chans) == 0 {
		return done
	}
	select {
	case <-done:
		return orClosed
	default:
	}
	return orStart(done, chans)
}

// orStart is Or and OrContext once done has been settled: done is nil or a
// context's Done channel, and closes the result like any input.
func orStart[T any](done <-chan struct{}, chans []<-chan T) <-chan struct{} {
	switch len(chans) {
	case 0:
		return orNever // OrContext handled its own empty case
	case 1:
		// The assertion succeeds exactly when T is struct{}: a done channel
		// can be handed back as it is. Any other T needs a goroutine to turn
		// "a value arrived" into "closed".
		if c, ok := any(chans[0]).(<-chan struct{}); ok && done == nil {
			return c
		}
	}
	if len(chans) <= orSmall {
		// Only a few inputs: polling them costs less than the goroutine
		// it may save. For many, the goroutine's own poll (orWaitMany) is
		// enough: by the time it runs, an input has often fired anyway.
		for _, c := range chans {
			select {
			case <-c:
				return orClosed
			default:
			}
		}
	}

	out := make(chan struct{})
	if len(chans) > orMaxCases {
		// A select cannot name more cases: chain a second Or over the rest
		// and wait on its result as one more input. The second one's done is
		// our out, so whichever fires first, both goroutines end.
		rest := orStart((<-chan struct{})(out), chans[orMaxCases:])
		go orWaitMany(out, done, rest, append([]<-chan T(nil), chans[:orMaxCases]...))
		return out
	}
	if len(chans) == 2 {
		go orWait2(out, done, chans[0], chans[1])
		return out
	}
	if len(chans) <= 4 {
		var a [4]<-chan T
		copy(a[:], chans)
		go orWait4(out, done, a)
		return out
	}
	if len(chans) <= orSmall {
		var a [orSmall]<-chan T
		copy(a[:], chans)
		go orWait16(out, done, a)
		return out
	}
	// Copy: with Or(s...) the slice is the caller's, who may reuse it.
	go orWaitMany(out, done, nil, append([]<-chan T(nil), chans...))
	return out
}

// orWait2 waits for either of two inputs, the most common Or.
func orWait2[T any](out chan<- struct{}, done <-chan struct{}, a, b <-chan T) {
	select {
	case <-done:
	case <-a:
	case <-b:
	}
	close(out)
}

// orWait4 waits for any of up to four inputs; missing ones are nil. The
// array travels by value, copied with the other arguments into the one
// allocation the go statement makes, rather than in a second one.
func orWait4[T any](out chan<- struct{}, done <-chan struct{}, c [4]<-chan T) {
	select {
	case <-done:
	case <-c[0]:
	case <-c[1]:
	case <-c[2]:
	case <-c[3]:
	}
	close(out)
}

// orWait16 waits for any of up to sixteen inputs; missing ones are nil.
// Like orWait4 it takes the array by value. One select of seventeen cases
// covers 5 to 16 inputs: a tier per size would add code, not speed, since the
// runtime drops nil cases before it sorts or locks anything.
func orWait16[T any](out chan<- struct{}, done <-chan struct{}, c [orSmall]<-chan T) {
	select {
	case <-done:
	case <-c[0]:
	case <-c[1]:
	case <-c[2]:
	case <-c[3]:
	case <-c[4]:
	case <-c[5]:
	case <-c[6]:
	case <-c[7]:
	case <-c[8]:
	case <-c[9]:
	case <-c[10]:
	case <-c[11]:
	case <-c[12]:
	case <-c[13]:
	case <-c[14]:
	case <-c[15]:
	}
	close(out)
}

// orWaitMany waits for any of chans, or for done or extra (both may be nil),
// with one reflect.Select. The cases are built only after a second poll has
// found nothing ready, because by the time this goroutine runs an input has
// often fired already.
func orWaitMany[T any](out chan<- struct{}, done, extra <-chan struct{}, chans []<-chan T) {
	defer close(out)
	for _, c := range chans {
		select {
		case <-c:
			return
		default:
		}
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+2)
	for _, c := range [...]<-chan struct{}{done, extra} {
		if c != nil {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
		}
	}
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	reflect.Select(cases)
}

// OrDone returns a channel that yields in's items, in order, until in is
// closed or ctx is done, and is then closed. It lets a consumer range over a
// channel it does not own without hanging when the producer stops without
// closing it:
//
//	for v := range conc.OrDone(ctx, in) { ... }
//
// The result is unbuffered, so the producer keeps its backpressure. OrDone's
// goroutine exits when in is closed or ctx is done, even if nobody reads the
// result any more. An item already taken from in when ctx ends is dropped:
// the consumer asked to stop, and there is nobody to give it to. When
// ctx.Done() is nil (context.Background()), OrDone returns in itself.
func OrDone[T any](ctx context.Context, in <-chan T) <-chan T {
	checkCtx(ctx)
	done := ctx.Done()
	if done == nil {
		return in
	}
	out := make(chan T)
	go orForward(out, done, in)
	return out
}

// orForward is OrDone's goroutine.
func orForward[T any](out chan<- T, done <-chan struct{}, in <-chan T) {
	defer close(out)
	for {
		var v T
		var ok bool
		select {
		case <-done:
			return
		case v, ok = <-in:
			if !ok {
				return
			}
		}
		// Try the hand-off without the done case first: a select with one
		// case and a default compiles to a plain non-blocking send, which is
		// several times cheaper than a two-case select when a reader waits.
		select {
		case out <- v:
			continue
		default:
		}
		select {
		case out <- v:
		case <-done:
			return
		}
	}
}

// errRaceWon is the cause with which Race cancels the losers' context, so
// that a loser can tell "another function won" from its caller giving up.
var errRaceWon = errors.New("conc: race won by another function")

// errRaceEmpty is what Race returns when it is given no function: there is
// no value to return, and a nil error would claim a success.
var errRaceEmpty = errors.New("conc: race with no functions")

// Race runs every fn concurrently and returns the value of the first one to
// succeed. As soon as one succeeds, the context passed to the others is
// cancelled (context.Cause reports that another function won), and Race
// waits for all of them to return before it returns: no goroutine outlives
// the call. The losers' results, errors and panics are discarded.
//
// If every fn fails, Race returns the zero value and all their errors
// joined in fns order, each naming its index; when ctx is done, the error
// also matches ctx.Err() and carries context.Cause(ctx). A panic in fn
// becomes a *PanicError like any other failure. If ctx is already done,
// Race starts nothing. A single fn runs on the caller's goroutine.
//
// Race blocks until a function succeeds or all have returned, so a function
// that ignores its context delays Race by as long as it runs. Race panics
// if a fn is nil, and returns an error if there is none. A fn that calls
// runtime.Goexit (t.FailNow in a test) counts as a failure with an error
// saying so when it runs on a goroutine of Race's own; the lone fn of a single-function Race runs on the
// caller's goroutine, so there Goexit ends the caller, as a direct call would.
func Race[T any](ctx context.Context, fns ...func(context.Context) (T, error)) (T, error) {
	checkCtx(ctx)
	var zero T
	for i, fn := range fns {
		if fn == nil {
			checkFunc(fmt.Sprintf("Race fns[%d]", i), true)
		}
	}
	if len(fns) == 0 {
		return zero, errRaceEmpty
	}
	if ctx.Err() != nil {
		return zero, ctxErr(ctx)
	}
	if len(fns) == 1 {
		var v T
		err := protect(func() (err error) { v, err = fns[0](ctx); return err })
		if err != nil {
			return zero, raceFailed(ctx, []error{err})
		}
		return v, nil
	}

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errRaceWon)
	// Buffered for every runner, so that none ever blocks on its send, even
	// after Race has stopped reading.
	results := make(chan raceResult[T], len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() {
			// The send is deferred, with errGoexit as the default error, so
			// that a fn ending in runtime.Goexit (neither returning nor
			// panicking) still reports: otherwise Race would wait forever
			// for a result that never comes.
			r := raceResult[T]{i: i, err: errGoexit}
			defer func() { results <- r }()
			r.err = protect(func() (err error) { r.v, err = fn(rctx); return err })
		})
	}
	errs := make([]error, len(fns))
	for range fns {
		r := <-results
		if r.err == nil {
			cancel(errRaceWon)
			wg.Wait()
			return r.v, nil
		}
		errs[r.i] = r.err
	}
	// Every runner has sent, so each is returning; Wait only makes sure
	// they are gone.
	wg.Wait()
	return zero, raceFailed(ctx, errs)
}

// raceResult is one runner's outcome, tagged with its index in fns so that
// the joined error keeps fns order whatever order the failures came in.
type raceResult[T any] struct {
	i   int
	v   T
	err error
}

// raceFailed joins the failures of every fn, each named by its index, and,
// when ctx is done, puts ctx's error first: the functions may have returned
// something that does not wrap it, but the caller branches on it.
func raceFailed(ctx context.Context, errs []error) error {
	all := make([]error, 0, len(errs)+1)
	if ctx.Err() != nil {
		all = append(all, ctxErr(ctx))
	}
	for i, err := range errs {
		all = append(all, fmt.Errorf("conc: race fns[%d]: %w", i, err))
	}
	return errors.Join(all...)
}
