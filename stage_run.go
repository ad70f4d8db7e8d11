package conc

import (
	"context"
	"iter"
)

// stageChunk is the most items a chunk carries across a goroutine boundary
// of a pipeline, and the default capacity of Run's output channel. At 64 an
// int costs about 4 ns per item to cross, against 35–150 ns for a channel
// operation per item (measured on the project's machines; see "What things
// cost" in docs/ARCHITECTURE.md); larger chunks gain little and make a slow
// consumer hold more items.
const stageChunk = 64

// A stageSink receives the items of one stage. Every sink is driven by one
// goroutine at a time (fused chains are plain calls; boundaries hand over
// whole chunks), so sinks need no locking of their own.
type stageSink[T any] interface {
	// push delivers one item. It returns false when the run is stopping
	// (an error, a cancelled context, a consumer that went away); the
	// caller must then stop pushing and return. The reason has already
	// been recorded in the run.
	push(v T) bool
	// flush tells the sink that no more input is ready right now: any
	// boundary downstream hands over what it holds instead of waiting to
	// fill a chunk. This is what keeps chunking free of added latency.
	flush() bool
	// end tells the sink that the input is exhausted. It is called at
	// most once, and only when the run was not stopped.
	end()
}

// A stageRun is one execution of a Stage: the run (run.go) whose context
// its functions see, whose first error is the result, and which owns the
// goroutines the stages started.
type stageRun struct {
	run

	// mon records the run for a Monitor; nil unless the Stage was wrapped
	// by Monitored. Every hook is guarded by it (see monitor_run.go).
	mon *monRun
}

func newStageRun(ctx context.Context) *stageRun {
	checkCtx(ctx)
	r := &stageRun{}
	r.start(ctx, true)
	return r
}

// guard runs f, turning a panic in it into a *PanicError and a
// runtime.Goexit into errGoexit, both recorded as the run's failure. One
// deferred recover per goroutine, rather than one per call of a stage
// function, keeps fused chains free of per-item overhead; the first panic
// ends the run anyway, so nothing is lost by unwinding the whole chain.
//
// body, when not nil, is set while the chain is inside the loop body of the
// user's range over All. A panic there is the caller's own and must reach
// the caller unchanged, so guard lets it continue instead of recovering.
func (r *stageRun) guard(f func(), body *bool) (ok bool) {
	defer func() {
		if ok || (body != nil && *body) {
			return
		}
		r.fail(recovered(recover()))
	}()
	f()
	return true
}

// spawn starts f on a goroutine owned by the run.
func (r *stageRun) spawn(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.guard(f, nil)
	}()
}

// Run starts s on the items received from in and returns the channel of
// its output and a wait function.
//
// out closes once in is closed and drained and every item has been
// delivered, or as soon as a stage fails or ctx is done. wait blocks until
// every goroutine of the run has exited and out is closed, and returns the
// first error: the one a stage function returned or panicked with (as a
// *PanicError), or ctx's error (matching ctx.Err() with errors.Is and
// wrapping context.Cause) when ctx ended the run early; never a
// context.Canceled derived from another stage's failure.
//
// The caller must either read out until it is closed or cancel ctx;
// otherwise the run stays blocked on its output. After cancelling, nothing
// of the run outlives wait. Run stops reading in when it stops (a stage
// failed, or ctx is done) and never cancels ctx itself, so a producer
// writing to in must watch a context that the caller cancels after wait
// returns; for From and FromSeq, pass them ctx and defer its cancel.
//
// Run cannot tell an input closed early from a complete one: if in closes
// because its producer gave up while ctx is not done, the run succeeds on
// what it received.
//
// Output order is input order unless a stage has Workers(n > 1) without
// Ordered. The capacity of out is the Buffer option of the last stage of s,
// 64 when it has none.
//
// Run panics if in is nil: a nil channel never closes, so out never would.
func (s Stage[T, U]) Run(ctx context.Context, in <-chan T) (out <-chan U, wait func() error) {
	s.check()
	if in == nil {
		panic("conc: Run input must not be a nil channel")
	}
	r := newStageRun(ctx)
	size := s.buffer
	if size < 0 {
		size = stageChunk
	}
	ch := make(chan U, size)
	// A build that panics (Monitored in the wrong place) may already have
	// started goroutines: stop them before the panic goes on.
	built := false
	defer func() {
		if !built {
			r.release()
			r.wg.Wait()
		}
	}()
	sink := &stageChanSink[U]{r: r, ch: ch}
	head := s.build(r, sink)
	built = true
	// When ctx can never be done and the chain, unmonitored, starts no
	// goroutine, the run's context can be cancelled only by the goroutine
	// that drains in, when a stage fails on it, or after that goroutine
	// has exited: while it waits on in or on out, nothing can stop the
	// run. It then waits with a plain receive and send rather than a
	// select that also watches the run's context, which costs much more
	// with an unbuffered input (see BenchmarkPipeline, gen-cheap3).
	sink.lone = s.inline && ctx.Done() == nil && r.mon == nil
	r.spawn(func() { stageDrainChan(r, in, head, sink.lone) })

	// The closer is the only goroutine of the run not counted in wg: it is
	// the one that waits for the others. It closes out only then, because
	// until every stage has exited one of them may still be sending on it.
	finished := make(chan struct{})
	// release comes before close(ch): a consumer that cancels ctx as soon
	// as out closes then finds the watch on parent already gone.
	go func() {
		r.wg.Wait()
		r.release()
		r.monDone()
		close(ch)
		close(finished)
	}()
	return ch, func() error {
		<-finished
		return r.result()
	}
}

// Collect runs s over the items of in and returns all of its output. Every
// stage with one worker runs on the calling goroutine, fused into the loop
// over in, so a chain without Workers or Buffer starts no goroutine and
// uses no channel. A chain made only of such Map, Filter and FlatMap stages
// that has a FlatMap or a Map that changes the item type runs a block of up
// to 64 input items at a time: each stage calls its function over the whole
// block before the next stage sees any of it, so the calls of different
// stages interleave per block rather than per item, and after a failure the
// stages before the failing one may have been called on up to 63 items more
// than a plain loop would have. The output, and which failure is reported,
// are the same. A chain of such Maps and Filters whose items keep one type
// runs item by item, as the plain loop does, unless it is Monitored (a
// monitored chain keeps the block path). Collect returns when the output is
// complete, or when a stage fails or ctx is done, with the same error Run's
// wait would report (and a nil slice). Output order is as for Run. A panic inside in itself
// is reported as a *PanicError too. A stage function that calls
// runtime.Goexit on the caller's goroutine ends that goroutine, as it would
// in a plain loop; the run's other goroutines are still stopped and waited
// for on the way out.
//
// An iter.Seq cannot tell whether its next item is ready, so where the
// chain has a goroutine boundary, items produced while the stage after it
// is busy may wait in a partial chunk until in yields again or ends. That
// costs nothing when in is a slice or a computation; for a slow, bursty
// source whose every item must move on at once, use Run with a channel.
func Collect[T, U any](ctx context.Context, s Stage[T, U], in iter.Seq[T]) ([]U, error) {
	s.check()
	checkFunc("Collect input", in == nil)
	r := newStageRun(ctx)
	// Even if the caller's goroutine is ended by runtime.Goexit in a stage
	// function, the run's goroutines are stopped and waited for.
	defer func() {
		r.release()
		r.wg.Wait()
		r.monDone()
	}()
	out := &stageSliceSink[U]{r: r}
	if s.ops != nil {
		head := s.calls(r, stageCallEnds[U]{out: out, first: true})
		r.guard(func() { stageDrainCalls(r, in, head, nil, out) }, nil)
	} else if s.blocks != nil {
		head := s.blocks(r, out)
		r.guard(func() { stageDrainSeqBlocks(r, in, head) }, nil)
	} else {
		head := s.build(r, out)
		r.guard(func() { stageDrainSeq(r, in, head) }, nil)
	}
	r.wg.Wait() // the last segment may still be appending
	r.release()
	if err := r.result(); err != nil {
		return nil, err
	}
	return out.items(), nil
}

// All runs s over the items of in and returns an iterator over its output,
// for use in a range loop: each item comes with a nil error, and a failure
// of the run (as Collect reports it) comes last, once, with the zero U.
// Breaking out of the loop stops the run; by the time the loop statement
// completes, every goroutine of the run has exited. Like Collect, a chain of
// single-worker stages runs on the caller's goroutine with no channel at all;
// otherwise the loop body is still always called on the caller's goroutine.
// A panic in the loop body propagates to the caller unchanged. The returned
// iterator starts a new run each time it is ranged over. What Collect says
// about a slow iter.Seq holds for All too.
func All[T, U any](ctx context.Context, s Stage[T, U], in iter.Seq[T]) iter.Seq2[U, error] {
	s.check()
	checkFunc("All input", in == nil)
	checkCtx(ctx) // now, not when the loop starts
	return func(yield func(U, error) bool) {
		r := newStageRun(ctx)
		// Deferred in this order so that, whatever way this function
		// exits (a break, a panic in the loop body), the run is
		// cancelled first and then waited for.
		defer r.monDone()
		defer r.wg.Wait()
		defer r.release()
		tail := &stageYieldSink[U]{r: r, yield: yield}
		if s.calls != nil {
			head := s.calls(r, stageCallEnds[U]{last: tail, first: true})
			r.guard(func() { stageDrainCalls(r, in, head, &tail.broken, tail) }, &tail.body)
		} else if s.inline {
			head := s.build(r, tail)
			r.guard(func() { stageDrainSeq(r, in, head) }, &tail.body)
		} else {
			// The last boundary is drained on this goroutine, so
			// that yield is only ever called here; the input is fed
			// by a goroutine of the run.
			p := newStagePipeSender[U](r, stageChunk, 2)
			p.last = true
			head := s.build(r, p)
			r.spawn(func() { stageDrainSeq(r, in, head) })
			r.guard(func() { p.drain(tail) }, &tail.body)
		}
		if tail.broken {
			return
		}
		r.wg.Wait()
		r.release()
		if err := r.result(); err != nil {
			var zero U
			yield(zero, err)
		}
	}
}

// stageChanSink is Run's output: a send that tries the fast non-blocking
// path first and falls back to a select with the run's done channel only
// when out is full (about 40 ns against 85 ns per item; see "What things
// cost" in docs/ARCHITECTURE.md).
type stageChanSink[T any] struct {
	r    *stageRun
	ch   chan T
	lone bool      // nothing can stop the run while push waits (see Run)
	w    *monWait  // monitored: the pushing goroutine blocked on out
	cnt  *monCount // monitored: items delivered
}

func (s *stageChanSink[T]) push(v T) bool {
	if s.cnt != nil {
		s.cnt.tick(0)
	}
	if s.lone {
		s.ch <- v
		return true
	}
	select {
	case s.ch <- v:
		return true
	default:
	}
	t := s.w.begin()
	defer s.w.end(t)
	select {
	case s.ch <- v:
		return true
	case <-s.r.done:
		s.r.stopped()
		return false
	}
}

func (s *stageChanSink[T]) monEnd() bool { return true }

func (s *stageChanSink[T]) monAttach(r *monRun) {
	e := r.sinkNode("out", "channel")
	e.cap = cap(s.ch)
	e.queue = func() (int, int) { return len(s.ch), cap(s.ch) }
	s.w, s.cnt = &r.cur.out, r.cur.extra[0]
}

func (s *stageChanSink[T]) flush() bool { return true }

// end marks the run complete: every item is in out (see stopped).
func (s *stageChanSink[T]) end() { s.r.complete.Store(true) }

// stageSliceSink is Collect's output. It gathers items in blocks and
// copies them once, at the end, into a slice of exactly the right length.
// Growing one slice instead (append, or doubling) clears and copies two to
// four times the final size on a long stream, and for a cheap pipeline
// that memory traffic, not the stages, is most of Collect's cost. Blocks
// double from 64 items up to stageBlockMax, so a short output is a single
// block, returned as it is, and a long one wastes at most one block.
type stageSliceSink[T any] struct {
	r      *stageRun
	cnt    *monCount // monitored: items collected
	cur    []T       // the block being filled
	blocks [][]T     // full blocks, in order
	n      int       // items in blocks
}

const stageBlockMax = 16384

func (s *stageSliceSink[T]) push(v T) bool {
	if s.cnt != nil {
		s.cnt.tick(0)
	}
	if len(s.cur) == cap(s.cur) {
		s.grow()
	}
	s.cur = append(s.cur, v)
	return true
}

// pushBlock is push for the block path: it copies vs into the blocks.
func (s *stageSliceSink[T]) pushBlock(vs []T) bool {
	if s.cnt != nil {
		s.cnt.block(len(vs), 0)
	}
	for len(vs) > 0 {
		if len(s.cur) == cap(s.cur) {
			s.grow()
		}
		k := min(len(vs), cap(s.cur)-len(s.cur))
		s.cur = append(s.cur, vs[:k]...)
		vs = vs[k:]
	}
	return true
}

// grow starts a new block; it is kept out of push so that push inlines,
// and out of line so that the item loops that call it stay short.
//
//go:noinline
func (s *stageSliceSink[T]) grow() {
	c := stageChunk
	if s.cur != nil {
		s.blocks = append(s.blocks, s.cur)
		s.n += len(s.cur)
		c = min(2*cap(s.cur), stageBlockMax)
	}
	s.cur = make([]T, 0, c)
}

// items returns everything pushed, in order.
func (s *stageSliceSink[T]) items() []T {
	if len(s.blocks) == 0 {
		return s.cur
	}
	out := make([]T, 0, s.n+len(s.cur))
	for _, b := range s.blocks {
		out = append(out, b...)
	}
	return append(out, s.cur...)
}

func (s *stageSliceSink[T]) flush() bool { return true }

func (s *stageSliceSink[T]) monEnd() bool { return true }

func (s *stageSliceSink[T]) monAttach(r *monRun) {
	r.sinkNode("collect", "fused")
	s.cnt = r.cur.extra[0]
	r.dropSink = func() { s.cnt = nil }
}
func (s *stageSliceSink[T]) end() { s.r.complete.Store(true) }

// stageYieldSink is All's output: the body of the caller's range loop.
type stageYieldSink[T any] struct {
	r      *stageRun
	yield  func(T, error) bool
	body   bool // inside yield: a panic now is the caller's, see guard
	broken bool // yield returned false: the caller broke out of the loop
	cnt    *monCount
}

func (s *stageYieldSink[T]) push(v T) bool {
	if s.cnt != nil {
		s.cnt.tick(0)
	}
	s.body = true
	ok := s.yield(v, nil)
	s.body = false
	if !ok {
		s.broken = true
	}
	return ok
}

func (s *stageYieldSink[T]) flush() bool { return true }

func (s *stageYieldSink[T]) monEnd() bool { return true }

func (s *stageYieldSink[T]) monAttach(r *monRun) {
	r.sinkNode("all", "fused")
	s.cnt = r.cur.extra[0]
	r.dropSink = func() { s.cnt = nil }
}
func (s *stageYieldSink[T]) end() { s.r.complete.Store(true) }
