package conc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// A run is the state one call of a runner shares with the goroutines it
// starts: MapN and ForEach (parRun in parallel.go) and a pipeline (stageRun
// in stage_run.go) each embed one. It holds the caller's context, a child
// of it for the user's functions that is cancelled with the first failure,
// a stop flag that goroutines read before every item, a watch on the
// caller's context, and the first failure. The first failure wins;
// everything a goroutine observes afterwards (a cancelled context, a
// refused hand-off) is a consequence of it and is not reported.
type run struct {
	parent context.Context
	ctx    context.Context // passed to user functions; cancelled with the first failure
	cancel context.CancelCauseFunc
	done   <-chan struct{} // ctx.Done()
	wg     sync.WaitGroup

	// stop is set, before ctx is cancelled, whenever no further item may
	// start. It is what the per-item check reads (see stopping): one
	// atomic load, where ctx.Err() costs an interface call and a
	// non-blocking receive on done twice that.
	stop atomic.Bool
	// parentFails says that the end of parent is itself the run's failure
	// (pipelines). MapN and ForEach only stop, and decide at the end, by
	// counting the items that ran, whether the end of parent skipped any.
	parentFails bool
	// complete is set once every item has been delivered, so that the run
	// has succeeded whatever happens to parent afterwards (see stopped).
	complete atomic.Bool
	// unwatch deregisters the watch on parent; watched is closed once a
	// watch that did fire has finished (see release). Both are nil when
	// parent can never be cancelled.
	unwatch  func() bool
	watched  chan struct{}
	released bool // release has run; only the owner calls it

	mu  sync.Mutex
	err error
}

// errRunStopped is the cause a run's context is cancelled with when the
// run is over or its consumer went away (All's loop was broken out of);
// nobody ever sees it as a result.
var errRunStopped = errors.New("conc: run stopped")

// start makes r a run under parent. The cancellation of parent reaches
// r.ctx by itself; the watch (context.AfterFunc, so no goroutine waits for
// it) is there to raise stop, which no context can do.
func (r *run) start(parent context.Context, parentFails bool) {
	r.parent, r.parentFails = parent, parentFails
	r.ctx, r.cancel = context.WithCancelCause(parent)
	r.done = r.ctx.Done()
	if parent.Err() != nil {
		r.stopped() // start nothing
	} else if parent.Done() != nil {
		r.watched = make(chan struct{})
		r.unwatch = context.AfterFunc(parent, r.watch)
	}
}

func (r *run) watch() {
	defer close(r.watched)
	r.stopped()
}

// stopped is called when parent is done: by the watch, or by a goroutine
// that saw the run's context done. The run stops; in a pipeline the
// caller's cancellation is also its result (our own cancellations always
// record first) unless the run is already complete: a consumer that drains
// out and then cancels, or a deadline that lands between the last delivery
// and release, must not turn a successful run into context.Canceled.
func (r *run) stopped() {
	if !r.parentFails {
		r.stop.Store(true)
		return
	}
	if r.complete.Load() {
		return
	}
	if r.parent.Err() != nil {
		r.fail(ctxErr(r.parent))
	}
}

// stopping reports, without blocking, whether the run is stopping. It lags
// a cancellation of parent by the moment the watch takes to run; code that
// must not miss one asks the context itself.
func (r *run) stopping() bool {
	return r.stop.Load()
}

// fail records err as the run's result if it is the first failure, and
// cancels the run's context with it as the cause, so that every user
// function sees context.Cause report the root error. The cancellation is
// done under mu so that the recorded error and the cause always agree.
func (r *run) fail(err error) {
	if ctxGaveUp(r.parent, err) {
		// A function gave up because the caller's context is done:
		// report that with its cause rather than a bare
		// context.Canceled.
		err = ctxErr(r.parent)
	}
	r.mu.Lock()
	// A panic also replaces the caller's cancellation recorded before it
	// (by the watch on parent, which races with the panicking goroutine):
	// the cancellation is no failure of the run's own, the panic is.
	if r.err == nil || (ctxGaveUp(r.parent, r.err) && isPanicErr(err)) {
		r.err = err
		r.stop.Store(true) // before cancel: nothing starts once a function sees the cancellation
		r.cancel(err)
	}
	r.mu.Unlock()
}

// release ends the run's use of its context once the run is over or its
// consumer has gone: it stops the goroutines still running and
// deregisters the watch on parent, waiting for the watch if it had
// already fired, so that not even that goroutine outlives the run. It may
// be called more than once.
func (r *run) release() {
	if r.released {
		return
	}
	r.released = true
	r.stop.Store(true)
	r.cancel(errRunStopped)
	if r.unwatch != nil && !r.unwatch() {
		<-r.watched
	}
}

// result is the run's error once every goroutine has exited.
func (r *run) result() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
