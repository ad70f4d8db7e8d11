package conc

// The workers behind MapN, MapAll, ForEach and ForEachAll (declared in
// conc.go). They live apart from conc.go only to keep each file short.

import (
	"context"
	"errors"
	"iter"
	"sort"
	"sync"
	"sync/atomic"
)

// parRun is the state one MapN or ForEach call shares with its workers.
// Everything a worker touches per item is read-only or the stop flag; the
// mutex is taken only to record an error and once per worker at exit, so
// a run of cheap items never contends on it.
type parRun struct {
	parent context.Context
	ctx    context.Context // passed to fn; cancelled with the first error
	cancel context.CancelCauseFunc
	all    bool
	// stop is set when no further item may start: on the first error in
	// fail-fast mode, and when the parent context ends. Workers read it
	// before every item; it is a plain load on the hot path.
	stop atomic.Bool
	// unwatch deregisters the watch on parent that raises stop; watched
	// is closed when a watch that did fire has finished. Both are nil when
	// parent can never be cancelled.
	unwatch func() bool
	watched chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	first  error
	errs   []*ItemError
	seqErr error // ForEachAll: the *PanicError of a sequence that panicked
	done   int   // items whose fn returned (or Goexited)
}

func newParRun(parent context.Context, all bool) *parRun {
	r := &parRun{parent: parent, all: all}
	r.ctx, r.cancel = context.WithCancelCause(parent)
	// AfterFunc on the parent rather than polling ctx.Err per item: the
	// flag is all the hot path reads.
	if parent.Done() != nil {
		r.watched = make(chan struct{})
		r.unwatch = context.AfterFunc(parent, func() {
			defer close(r.watched)
			r.stop.Store(true)
		})
	}
	if parent.Err() != nil {
		r.stop.Store(true) // AfterFunc fires asynchronously; start nothing
	}
	return r
}

// fail records item i's error. An fn that gave up because the caller's
// context is done returns a bare context.Canceled (or DeadlineExceeded);
// it is replaced, as stageRun.fail does, by the parent's error with its
// cause, so that errors.Is matches both ctx.Err() and context.Cause.
func (r *parRun) fail(i int, err error) {
	if ctxGaveUp(r.parent, err) {
		err = ctxErr(r.parent)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all {
		r.errs = append(r.errs, &ItemError{Index: i, Err: err})
		return
	}
	if r.first == nil {
		r.first = err
		r.stop.Store(true) // before cancel: nothing starts once fn sees the cancellation
		r.cancel(err)
	}
}

// finish waits for the workers, releases the context and returns the
// call's error. total is the number of items handed to workers; early says
// the caller stopped handing them out before the input was exhausted.
func (r *parRun) finish(total int, early bool) error {
	r.wg.Wait()
	// Deregister the watch on parent, so that a later cancellation of
	// parent starts no goroutine; if it has fired already, wait for it, so
	// that not even that goroutine outlives the call. (Cancelling r.ctx
	// below does not trigger it: the watch is on parent.)
	if r.unwatch != nil && !r.unwatch() {
		<-r.watched
	}
	r.cancel(nil)
	// Items were skipped only because of r.stop: the first error (fail-fast)
	// or the parent context ending.
	// Counting finished items, rather than checking ctx.Err, tells "ctx
	// ended but every item ran anyway" (success) from a real skip.
	skipped := early || r.done < total
	if !r.all {
		// A panic in ForEach's sequence was recorded through failSeq,
		// as first when it came first.
		if r.first != nil {
			return r.first
		}
		if skipped {
			return ctxErr(r.parent)
		}
		return nil
	}
	// Workers report failures in completion order; index order makes the
	// joined error deterministic and easy to read.
	sort.Slice(r.errs, func(a, b int) bool { return r.errs[a].Index < r.errs[b].Index })
	errs := make([]error, 0, len(r.errs)+1)
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

// failSeq records a panic in ForEach's sequence. Fail-fast, it is an error
// like any other: the first one wins, stops the items not yet started and
// cancels the running ones. ForEachAll joins it to the item errors and lets
// the items already read run, as it would after an item error.
func (r *parRun) failSeq(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all {
		r.seqErr = err
		return
	}
	if r.first == nil {
		r.first = err
		r.stop.Store(true)
		r.cancel(err)
	}
}

// addDone adds n finished items. Workers call it once, when they exit, so
// the count costs nothing per item; finish reads it after wg.Wait.
func (r *parRun) addDone(n int) {
	r.mu.Lock()
	r.done += n
	r.mu.Unlock()
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
	m.r.addDone(done)
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
		if v := recover(); v != nil {
			m.r.fail(i, newPanicError(v))
			*done++
			next, nend, more = i+1, end, true
			return
		}
		m.r.fail(i, errGoexit)
		m.r.addDone(*done + 1)
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
				m.r.fail(i, err)
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

// feChunkCap bounds the batch a ForEach worker receives at once. Batches
// form only while every worker is busy (a worker already waiting gets the
// next item at once), so the cap trades the channel cost per item (1/32 of
// a hop) against how many items one worker may be left holding at the end,
// and how many may wait for a slow sequence (see forEachRun).
const feChunkCap = 32

// feFreeMax bounds the free list of batch buffers. Only the buffers of
// workers that finished a batch recently are worth keeping; with a large
// limit the free list would otherwise cost limit words per call (and
// overflow with math.MaxInt). Buffers that find it full fall to the GC.
const feFreeMax = 64

// feChunk is a batch of consecutive items; base is the index of the first.
type feChunk[T any] struct {
	base  int
	items []T
}

// feWork is one ForEach call's plumbing.
type feWork[T any] struct {
	r    *parRun
	fn   func(context.Context, T) error
	work chan feChunk[T] // unbuffered: a send succeeds only to a waiting worker
	free chan []T        // emptied batches, reused by the producer
}

// forEachRun is ForEach and ForEachAll. The calling goroutine reads the
// sequence; workers are started lazily, one per item, up to limit.
func forEachRun[T any](ctx context.Context, items iter.Seq[T], limit int, fn func(context.Context, T) error, all bool) (err error) {
	checkCtx(ctx)
	checkPositive("limit", limit)
	checkFunc("items", items == nil)
	checkFunc("fn", fn == nil)
	f := &feWork[T]{r: newParRun(ctx, all), fn: fn, work: make(chan feChunk[T]), free: make(chan []T, min(limit, feFreeMax)+1)}
	// n counts the items read from the sequence (the next item's index);
	// early records that reading stopped before the sequence ended.
	workers, n, early, finished := 0, 0, false, false
	var cur feChunk[T]
	defer func() {
		if finished {
			return
		}
		// The sequence itself panicked, or called runtime.Goexit (then
		// recover returns nil and the Goexit carries on once the workers
		// are done). A panic is reported like a panic in fn, as Collect
		// and All report one in their input (contract 2 in
		// docs/ARCHITECTURE.md); either way
		// no worker outlives the call.
		v := recover()
		if v == nil {
			f.r.stop.Store(true)
			close(f.work)
			f.r.finish(n, true)
			return
		}
		f.r.failSeq(newPanicError(v))
		if all && !early && cur.items != nil {
			// ForEachAll runs what was read. Workers always keep
			// receiving until work closes, so this send cannot hang.
			f.work <- cur
		}
		close(f.work)
		err = f.r.finish(n, early)
	}()
loop:
	for v := range items {
		if f.r.stop.Load() {
			early = true
			break
		}
		if cur.items == nil {
			cur = feChunk[T]{base: n, items: f.buf()}
		}
		cur.items = append(cur.items, v)
		n++
		// Workers start lazily, one per item, so a short sequence does not
		// pay for limit goroutines, and each starts with its first item
		// instead of a channel hand-over.
		if workers < limit {
			workers++
			f.r.wg.Add(1)
			f.spawn(cur, 0)
			cur = feChunk[T]{}
			continue
		}
		// Try a hand-over first: it succeeds only if a worker is waiting,
		// and then the batch goes out at once, full or not. A failed
		// non-blocking send is a few nanoseconds (no lock).
		//
		// What this cannot do is notice a worker that becomes free while
		// the sequence is computing its next item: a partial batch
		// formed while every worker was busy then waits for that next
		// item (or the end of the sequence) while the worker idles. An
		// iter.Seq gives no sign that its next item is slow; letting
		// idle workers take the batch would cost synchronisation on
		// every item. ForEach documents this, as Collect does.
		select {
		case f.work <- cur: // a worker was waiting: no batching delay
			cur = feChunk[T]{}
			continue
		default:
		}
		if len(cur.items) < feChunkCap {
			continue
		}
		// Every worker is busy and the batch is full: wait for one, or
		// for the run to be decided (first error, or ctx), which is what
		// r.ctx ending means.
		select {
		case f.work <- cur:
			cur = feChunk[T]{}
		case <-f.r.ctx.Done():
			early = true
			break loop
		}
	}
	// The sequence is exhausted; the last partial batch still has to go.
	if !early && cur.items != nil {
		select {
		case f.work <- cur:
		case <-f.r.ctx.Done():
			early = true
		}
	}
	finished = true
	close(f.work)
	return f.r.finish(n, early)
}

// buf returns an empty batch buffer, reusing one a worker has finished.
func (f *feWork[T]) buf() []T {
	select {
	case b := <-f.free:
		return b
	default:
		return make([]T, 0, feChunkCap)
	}
}

// spawn starts a worker on c.items[j:]; see mapWork.spawn.
func (f *feWork[T]) spawn(c feChunk[T], j int) { go f.run(c, j) }

// run processes c.items[j:] and then every batch received on work. After
// r.stop it keeps receiving, skipping the items, so the producer is never
// left blocked on a send. Goexit in fn is handled as in mapWork.work.
func (f *feWork[T]) run(c feChunk[T], j int) {
	done, cur := 0, -1
	defer func() {
		if cur >= 0 {
			f.r.fail(c.base+cur, errGoexit)
			done++
			f.r.wg.Add(1)
			f.spawn(c, cur+1)
		}
		f.r.addDone(done)
		f.r.wg.Done()
	}()
	for {
		for ; j < len(c.items) && !f.r.stop.Load(); j++ {
			cur = j
			err := callErr(f.fn, f.r.ctx, c.items[j])
			cur = -1
			done++
			if err != nil {
				f.r.fail(c.base+j, err)
			}
		}
		// Hand the buffer back for the producer's next batch; if the free
		// list is full the buffer is simply left to the GC.
		clear(c.items) // drop references to the items before reuse
		select {
		case f.free <- c.items[:0]:
		default:
		}
		var ok bool
		if c, ok = <-f.work; !ok {
			return
		}
		j = 0
	}
}

// callErr runs fn(c, v) and reports a panic in it as a *PanicError.
func callErr[C, T any](fn func(C, T) error, c C, v T) (err error) {
	defer recoverTo(&err)
	return fn(c, v)
}
