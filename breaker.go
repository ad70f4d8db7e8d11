package conc

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A Breaker is a circuit breaker: it stops calling a failing dependency for
// a while, then lets a few probe calls decide whether it has recovered.
//
// A Breaker starts closed. It opens when its trip policy says so (by
// default five failures in a row; see ConsecutiveFailures and FailureRate),
// rejects calls with ErrOpen during the cooldown, then becomes half-open
// and admits up to HalfOpenProbes calls at a time. SuccessesToClose
// successful probes close it; a failed probe opens it again.
//
// A closed breaker allocates nothing and, with the consecutive-failure or
// LastCalls policies, takes no lock and reads no clock: while the dependency
// is healthy a call costs a few atomic loads and writes nothing shared, so
// callers on different cores do not slow each other down. A LastDuration
// window reads the clock on every call and takes a short lock of its own
// once per bucket width, when the first call of a new interval resets a
// bucket. Open and half-open read the clock and claim probe slots with
// atomic operations; only state changes take the breaker's mutex.
//
// A Breaker is safe for concurrent use by any number of goroutines. No
// method blocks: Execute only runs fn on the caller's goroutine, and a
// rejected call returns at once. It holds no goroutine and needs no Close. Its zero value is not usable: create one
// with NewBreaker. It must not be copied after first use.
type Breaker struct {
	// Read by every call; written only on failures and state changes.
	word      atomic.Uint64
	epoch     atomic.Pointer[closedEpoch] // the current closed generation
	openUntil atomic.Int64                // end of the cooldown, in ns since base
	cfg       breakerConfig
	base      time.Time // monotonic origin of every time stamp
	_         [breakerPad]byte

	// Counters of the exceptional paths. A closed breaker's successes are
	// deliberately not counted: see BreakerStats.
	failures atomic.Uint64
	canceled atomic.Uint64
	rejected atomic.Uint64

	// Half-open probe slots: 0 is free, anything else is a probe in
	// flight (see slotValue). Claimed and released with compare-and-swap.
	slots    []atomic.Uint64
	probeSeq atomic.Uint64
	probes   probeCounters

	// mu serialises state changes and guards the queue of changes waiting
	// for OnStateChange. No call takes it while the breaker is closed, and
	// a half-open probe only when its outcome changes the state.
	mu         sync.Mutex
	tripsInRow int // trips since the breaker last closed; grows the cooldown
	trips      uint64
	pending    []breakerChange
	notifying  bool // a goroutine is delivering pending

	callbackPanics atomic.Uint64 // OnStateChange calls that panicked
}

// A closedEpoch is what one closed generation needs on its fast path. It is
// immutable once published, so Allow can hand out its done function and
// Execute can use its window without any lock; a new closed generation
// gets a new epoch, which resets the window for free.
type closedEpoch struct {
	gen   uint32
	done  func(error) // built once per generation, so Allow does not allocate
	count *countWindow
	timed *timeWindow
}

// A breakerTicket is an admitted call: either a call through the closed epoch e,
// or the half-open probe of generation gen that holds slot with value probe.
type breakerTicket struct {
	e     *closedEpoch
	gen   uint32
	slot  int
	probe uint64
}

type breakerChange struct{ from, to BreakerState }

type breakerOutcome uint8

const (
	outcomeSuccess breakerOutcome = iota
	outcomeFailure
	outcomeNeutral // canceled by the caller: says nothing about the dependency
)

// NewBreaker returns a closed Breaker configured by opts. Without options it
// opens after 5 consecutive failures, stays open for 30s, then admits one
// probe at a time and closes after one successful probe. It panics with a
// "conc: " message on an invalid configuration.
func NewBreaker(opts ...BreakerOption) *Breaker {
	b := &Breaker{cfg: newBreakerConfig(opts), base: time.Now()}
	b.slots = make([]atomic.Uint64, b.cfg.probes)
	b.epoch.Store(b.newEpoch(0))
	return b
}

func (b *Breaker) newEpoch(gen uint32) *closedEpoch {
	e := &closedEpoch{gen: gen}
	// done has no result: a panic of OnStateChange it delivers is dropped
	// (and counted in Stats).
	e.done = func(err error) { _ = b.record(breakerTicket{e: e}, b.classifyReported(err)) }
	switch b.cfg.policy {
	case tripCountWindow:
		e.count = newCountWindow(b.cfg.calls)
	case tripTimeWindow:
		e.timed = newTimeWindow(int64(b.cfg.span), b.cfg.buckets)
	}
	return e
}

// now is the breaker's clock: monotonic nanoseconds since NewBreaker.
func (b *Breaker) now() int64 { return int64(time.Since(b.base)) }

// Execute calls fn(ctx) if the breaker admits the call and records its
// outcome; otherwise it returns ErrOpen at once without calling fn. It
// returns fn's error unchanged, or a *PanicError if fn panicked (which
// counts as a failure). A context.Canceled returned while ctx is done counts
// as neither success nor failure: the caller gave up, which says nothing
// about the dependency. Execute does not check ctx itself before calling fn.
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) (err error) {
	if fn == nil {
		panic("conc: Breaker.Execute fn must not be nil")
	}
	checkCtx(ctx)
	var t breakerTicket
	if t.e = b.closedEpoch(); t.e == nil {
		if t, err = b.admitSlow(); err != nil {
			return err
		}
	}
	// returned tells finish how fn ended: normally, by panic or by
	// runtime.Goexit. The deferred call is open-coded by the compiler, so
	// it costs a few instructions, not an allocation.
	returned := false
	defer b.finish(ctx, t, &err, &returned)
	err = fn(ctx)
	returned = true
	return err
}

// ExecuteValue is Execute for a function that returns a value. On ErrOpen or
// a panic it returns the zero T.
func ExecuteValue[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (v T, err error) {
	if fn == nil {
		panic("conc: ExecuteValue fn must not be nil")
	}
	checkCtx(ctx)
	t, err := b.admit()
	if err != nil {
		return v, err
	}
	returned := false
	defer b.finish(ctx, t, &err, &returned)
	v, err = fn(ctx)
	returned = true
	return v, err
}

// Allow is the two-step form of Execute, for calls that cannot be wrapped
// in a function. If the breaker admits a call, Allow returns a done
// function that the caller must call exactly once with the call's error;
// otherwise it returns ErrOpen. A done called for a probe that outlived
// ProbeTimeout and lost its slot to another caller, or for a generation that
// has ended, is ignored by the state machine. done classifies any context.Canceled as neutral, since it cannot
// see the caller's context; pass a *PanicError to record a panic. In the
// closed state neither Allow nor done allocates.
func (b *Breaker) Allow() (done func(err error), err error) {
	t, err := b.admit()
	if err != nil {
		return nil, err
	}
	if t.e != nil {
		return t.e.done, nil
	}
	// A probe needs its own ticket in the closure; probes are rare enough
	// for this allocation not to matter.
	return func(err error) { _ = b.record(t, b.classifyReported(err)) }, nil
}

// admit is the fast path shared by Execute and Allow: one load of the state
// word and one of the epoch while closed.
func (b *Breaker) admit() (breakerTicket, error) {
	if e := b.closedEpoch(); e != nil {
		return breakerTicket{e: e}, nil
	}
	return b.admitSlow()
}

// closedEpoch returns the current epoch if the breaker is closed, nil
// otherwise. The word is loaded first: the epoch is published before the
// word when the breaker closes, so a closed word with a mismatched epoch
// only means that a state change is under way, and the slow path waits for
// it.
func (b *Breaker) closedEpoch() *closedEpoch {
	w := b.word.Load()
	if e := b.epoch.Load(); bwState(w) == BreakerClosed && e.gen == bwGen(w) {
		return e
	}
	return nil
}

func (b *Breaker) admitSlow() (breakerTicket, error) {
	for {
		w := b.word.Load()
		switch bwState(w) {
		case BreakerClosed:
			if e := b.epoch.Load(); e.gen == bwGen(w) {
				return breakerTicket{e: e}, nil
			}
			// The goroutine closing the breaker holds mu until both are
			// published; taking it waits for that without spinning.
			b.mu.Lock()
			b.mu.Unlock()
		case BreakerOpen:
			if b.now() < b.openUntil.Load() {
				b.rejected.Add(1)
				return breakerTicket{}, ErrOpen
			}
			// A panic of OnStateChange is dropped (and counted): the
			// call itself is yet to be decided and must not fail for it.
			_ = b.toHalfOpen(w)
		case BreakerHalfOpen:
			if t, ok, err := b.admitProbe(w); ok || err != nil {
				return t, err
			}
		}
	}
}

// finish is deferred by Execute: it turns a panic (or runtime.Goexit) of fn
// into a failure and records the outcome. recover works here because finish
// itself is the deferred call. Everything but the healthy closed success is
// left to finishAbnormal and finishFailed, kept out of line so that finish
// stays small: it runs on every call.
func (b *Breaker) finish(ctx context.Context, t breakerTicket, err *error, returned *bool) {
	if !*returned {
		b.finishAbnormal(t, err, recover())
		return
	}
	if *err == nil {
		// A closed-state success while the dependency is healthy, inline:
		// nothing to write unless there is a failure run to end or a
		// window with failures to age, so the breaker's words stay
		// shared between cores.
		if e := t.e; e != nil {
			switch b.cfg.policy {
			case tripConsecutive:
				if b.word.Load()&bwCountMask != 0 {
					b.resetFailures(e.gen)
				}
				return
			case tripCountWindow:
				if e.count.clean() {
					return
				}
			}
		}
		// A panic of OnStateChange is dropped here (it is counted in
		// Stats): turning a successful call into an error would invite the
		// caller to repeat work that was done.
		_ = b.record(t, outcomeSuccess)
		return
	}
	b.finishFailed(ctx, t, err)
}

// finishAbnormal records a call whose fn panicked with r, or, when r is nil,
// called runtime.Goexit.
//
//go:noinline
func (b *Breaker) finishAbnormal(t breakerTicket, err *error, r any) {
	// After runtime.Goexit nobody will see the error, but the outcome
	// still frees a probe slot and counts in Stats.
	*err = recovered(r)
	*err = joinCallbackPanic(*err, b.record(t, outcomeFailure))
}

// finishFailed records a call whose fn returned the non-nil error *err.
//
//go:noinline
func (b *Breaker) finishFailed(ctx context.Context, t breakerTicket, err *error) {
	o, perr := b.classify(ctx, *err)
	if perr != nil {
		// The IsFailure predicate panicked: the call's error becomes that
		// *PanicError, as for a panic in fn, and the call counts as a
		// failure (which also releases a probe's slot).
		*err = perr
	}
	*err = joinCallbackPanic(*err, b.record(t, o))
}

// record applies one outcome to the breaker. It returns the *PanicError of
// an OnStateChange callback that panicked while it delivered state changes.
//
// A closed-state outcome is applied to the epoch it was admitted in, not to
// the current one: the generation checks in countFailure, resetFailures and
// trip make an outcome of an ended generation a no-op for the state, while
// Stats still counts it, since the call did happen.
func (b *Breaker) record(t breakerTicket, o breakerOutcome) error {
	e := t.e
	if e == nil {
		return b.probeDone(t, o)
	}
	switch o {
	case outcomeNeutral:
		b.canceled.Add(1)
		return nil
	case outcomeFailure:
		b.failures.Add(1)
	}
	switch b.cfg.policy {
	case tripConsecutive:
		if o == outcomeFailure {
			return b.countFailure(e.gen)
		} else if w := b.word.Load(); w&bwCountMask != 0 {
			b.resetFailures(e.gen)
		}
	case tripCountWindow:
		calls, fails := e.count.record(o == outcomeFailure)
		if o == outcomeFailure && b.rateTrips(calls, fails) {
			return b.trip(e.gen, BreakerClosed)
		}
	case tripTimeWindow:
		calls, fails := e.timed.record(b.now(), o == outcomeFailure)
		if o == outcomeFailure && b.rateTrips(calls, fails) {
			return b.trip(e.gen, BreakerClosed)
		}
	}
	return nil
}

// rateTrips reports whether a window holding calls outcomes, fails of them
// failures, trips the breaker. It is only asked at a failure: a success can
// only lower the rate, so asking at every call would cost the healthy path
// for nothing.
func (b *Breaker) rateTrips(calls, fails int) bool {
	return calls >= b.cfg.minCalls && float64(fails) >= b.cfg.rate*float64(calls)
}

// countFailure adds a failure to the closed generation gen, and trips the
// breaker when it is the threshold-th in a row. The threshold-th failure
// trips without being stored, so two goroutines failing together cannot
// push the count past the threshold unnoticed.
func (b *Breaker) countFailure(gen uint32) error {
	for {
		w := b.word.Load()
		if bwGen(w) != gen || bwState(w) != BreakerClosed {
			return nil
		}
		if bwCount(w)+1 >= b.cfg.threshold {
			return b.trip(gen, BreakerClosed)
		}
		if b.word.CompareAndSwap(w, w+1<<bwCountShift) {
			return nil
		}
	}
}

// resetFailures clears the failure count of generation gen after a success.
// Callers check first that the count is non-zero, so that a healthy breaker
// is only ever read and its word stays shared between cores.
func (b *Breaker) resetFailures(gen uint32) {
	for {
		w := b.word.Load()
		if bwGen(w) != gen || w&bwCountMask == 0 {
			return
		}
		if b.word.CompareAndSwap(w, w&^bwCountMask) {
			return
		}
	}
}

// State returns the breaker's current state. It reads the clock when open,
// so an open breaker whose cooldown has passed reports HalfOpen (and makes
// the change, calling OnStateChange) even if no call has come in.
func (b *Breaker) State() BreakerState {
	w := b.word.Load()
	if bwState(w) == BreakerOpen && b.now() >= b.openUntil.Load() {
		_ = b.toHalfOpen(w) // a callback panic is counted in Stats
		w = b.word.Load()
	}
	return bwState(w)
}
