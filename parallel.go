package conc

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"sync/atomic"
)

// Bounded parallelism: ForEach, ForEachAll, MapN, MapAll.
//
// They run on their own workers rather than on errgroup: a goroutine and a
// semaphore round trip per item (errgroup with SetLimit) costs a few hundred
// nanoseconds, while workers that claim runs of indexes with one atomic add
// (MapN) or receive items in small batches (ForEach) spend a few nanoseconds
// per item on coordination. The error policy is errgroup's: the first error
// cancels the context passed to the calls still running and is what the
// call returns. ForEach's workers are in parallel_foreach.go.

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

// parRun is the state one MapN or ForEach call shares with its workers: a
// run (run.go) that stops, rather than fails, when the caller's context
// ends, plus what MapAll and ForEachAll collect. Everything a worker
// touches per item is read-only or the stop flag; the mutex is taken only
// to record an error and once per worker at exit, so a run of cheap items
// never contends on it.
type parRun struct {
	run
	all    bool
	errs   []*ItemError
	seqErr error // ForEachAll: the *PanicError of a sequence that panicked
	ran    int   // items whose fn returned (or Goexited)
}

func newParRun(parent context.Context, all bool) *parRun {
	r := &parRun{all: all}
	r.start(parent, false)
	return r
}

// failItem records item i's error: the run's failure (fail-fast), or one
// more *ItemError (MapAll, ForEachAll). A bare context.Canceled of an fn
// that gave up because the caller's context is done becomes the parent's
// error with its cause, as run.fail does.
func (r *parRun) failItem(i int, err error) {
	if !r.all {
		r.fail(err)
		return
	}
	if ctxGaveUp(r.parent, err) {
		err = ctxErr(r.parent)
	}
	r.mu.Lock()
	r.errs = append(r.errs, &ItemError{Index: i, Err: err})
	r.mu.Unlock()
}

// failSeq records a panic in ForEach's sequence. Fail-fast, it is an error
// like any other: the first one wins, stops the items not yet started and
// cancels the running ones. ForEachAll joins it to the item errors and lets
// the items already read run, as it would after an item error.
func (r *parRun) failSeq(err error) {
	if !r.all {
		r.fail(err)
		return
	}
	r.mu.Lock()
	r.seqErr = err
	r.mu.Unlock()
}

// addRan adds n finished items. Workers call it once, when they exit, so
// the count costs nothing per item; finish reads it after wg.Wait.
func (r *parRun) addRan(n int) {
	r.mu.Lock()
	r.ran += n
	r.mu.Unlock()
}

// finish waits for the workers, releases the run and returns the call's
// error. total is the number of items handed to workers; early says the
// caller stopped handing them out before the input was exhausted.
func (r *parRun) finish(total int, early bool) error {
	r.wg.Wait()
	r.release()
	// Items were skipped only because of r.stop: the first error
	// (fail-fast) or the parent context ending. Counting finished items,
	// rather than checking ctx.Err, tells "ctx ended but every item ran
	// anyway" (success) from a real skip.
	skipped := early || r.ran < total
	if !r.all {
		// A panic in ForEach's sequence was recorded through failSeq,
		// as the run's failure when it came first.
		if err := r.result(); err != nil {
			return err
		}
		if skipped {
			return ctxErr(r.parent)
		}
		return nil
	}
	// Workers report failures in completion order; index order makes the
	// joined error deterministic and easy to read.
	sort.Slice(r.errs, func(a, b int) bool { return r.errs[a].Index < r.errs[b].Index })
	errs := make([]error, 0, len(r.errs)+2)
	for _, e := range r.errs {
		errs = append(errs, e)
	}
	if r.seqErr != nil {
		errs = append(errs, r.seqErr)
	}
	if skipped {
		errs = append(errs, ctxErr(r.parent))
	}
	return errors.Join(errs...)
}

// mapRun is MapN and MapAll.
func mapRun[T, U any](ctx context.Context, items []T, limit int, fn func(context.Context, T) (U, error), all bool) ([]U, error) {
	checkCtx(ctx)
	checkPositive("limit", limit)
	checkFunc("fn", fn == nil)
	out := make([]U, len(items))
	if len(items) == 0 {
		return out, nil
	}
	// Never more goroutines than items; each worker starts by claiming
	// (its first run is the empty [0, 0)), so start order does not matter.
	workers := min(limit, len(items))
	m := &mapWork[T, U]{r: newParRun(ctx, all), items: items, out: out, fn: fn}
	// Runs of about an eighth of a worker's share, at most 256 items: one
	// atomic add then covers many cheap items, while the last runs are
	// short enough that no worker is left with a long tail of slow ones.
	m.chunk = max(1, min(len(items)/(workers*8), 256))
	m.r.wg.Add(workers)
	for range workers {
		m.spawn(0, 0)
	}
	err := m.r.finish(len(items), false)
	return out, err
}

// mapWork is one MapN call's input, output and index counter.
type mapWork[T, U any] struct {
	r     *parRun
	items []T
	out   []U
	fn    func(context.Context, T) (U, error)
	next  atomic.Int64 // first index not yet claimed
	chunk int
}

// spawn starts a worker over items[i:end]. (A go statement on a generic
// method inside the generic caller trips a Go 1.26 compiler bug, so every
// goroutine start of this file goes through a method like this one.)
func (m *mapWork[T, U]) spawn(i, end int) { go m.work(i, end) }

// work runs items[i:end], then claims further runs until none is left or
// r.stop is set.
func (m *mapWork[T, U]) work(i, end int) {
	defer m.r.wg.Done()
	done, more := 0, true
	for more {
		i, end, more = m.span(i, end, &done)
	}
	m.r.addRan(done)
}

// span is work's loop. It returns more=false when no item is left to start.
// Panics are recovered here, once per span rather than once per item (a
// deferred recover per call costs as much as a tiny item itself): the item
// gets its *PanicError and span returns the position after it, so work
// carries on. A call that ends in runtime.Goexit (neither returned nor
// panicked) is reported as that item's error and a new goroutine carries on
// from the next item, so the limit of running workers is kept.
func (m *mapWork[T, U]) span(i, end int, done *int) (next, nend int, more bool) {
	finished, n := false, 0
	defer func() {
		*done += n
		if finished {
			return
		}
		err := recovered(recover())
		m.r.failItem(i, err)
		if err != errGoexit {
			*done++
			next, nend, more = i+1, end, true
			return
		}
		m.r.addRan(*done + 1)
		m.r.wg.Add(1)
		m.spawn(i+1, end)
	}()
	// Locals, so that the loop below reads no field through m per item.
	ctx, fn, items, out, stop := m.r.ctx, m.fn, m.items, m.out, &m.r.stop
	for {
		// The stop flag is checked before every item, not per run: fail
		// fast means no item starts after the first error, even within
		// a run already claimed.
		for ; i < end; i++ {
			if stop.Load() {
				finished = true
				return 0, 0, false
			}
			v, err := fn(ctx, items[i])
			n++
			if err != nil {
				m.r.failItem(i, err)
				continue
			}
			out[i] = v
		}
		// Claim the next run. The counter may overshoot len(items) by up
		// to workers×chunk; that is harmless, as it only ever grows.
		i = int(m.next.Add(int64(m.chunk))) - m.chunk
		if i >= len(items) {
			finished = true
			return 0, 0, false
		}
		end = min(i+m.chunk, len(items))
	}
}
