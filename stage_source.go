package conc

import (
	"context"
	"iter"
	"slices"
)

// The sources of a run: the loops that feed a stage chain from an iter.Seq
// (Collect, All) or a channel (Run), and From and FromSeq, which turn a
// list or an iter.Seq into a channel for Run.
//
// A source is the only place that learns when input is not ready yet, so
// it is what makes chunking adaptive: the channel source flushes the chain
// before it blocks, and boundaries downstream then hand over partial chunks
// instead of waiting for full ones.

// seqSource starts the drain of an iter.Seq: false when the run is already
// stopping (and now stopped), else the source's monitor count, nil when the
// run is not monitored.
func (r *stageRun) seqSource() (*monCount, bool) {
	if r.stopping() {
		r.stopped()
		return nil, false
	}
	src, _ := r.monSource(nil)
	return src, true
}

// stageDrainSeq pushes the items of seq into head, checking before each
// one that the run is still going: stop for every item, and the context
// itself every stageChunk items, which bounds how far a fused chain that
// never blocks runs past a cancellation of parent even when the watch that
// raises stop cannot get a core. It never flushes: an iter.Seq cannot
// say whether its next item is ready, so boundaries downstream rely on
// their receivers' idle signal instead (see stagePipe).
func stageDrainSeq[T any](r *stageRun, seq iter.Seq[T], head stageSink[T]) {
	src, ok := r.seqSource()
	if !ok {
		return
	}
	n := uint(0)
	for v := range seq {
		if n++; r.stopping() || (n%stageChunk == 0 && r.ctx.Err() != nil) {
			r.stopped()
			return
		}
		if src != nil {
			src.tick(0)
		}
		if !head.push(v) {
			return
		}
	}
	stageEnd(r, head)
}

// stageEnd ends the input of head, unless the run's context is done: an
// input that ended because its producer saw the cancellation is not the
// whole input, and the run must not report success.
func stageEnd(r *stageRun, head interface{ end() }) {
	if r.ctx.Err() != nil {
		r.stopped()
		return
	}
	head.end()
}

// stageDrainChan pushes what arrives on in into head. It first tries a
// non-blocking receive; only when nothing is ready does it flush the chain
// (so boundaries hand over partial chunks) and block. With lone, for a run
// that nothing but this goroutine can stop while it waits (see Run), it
// receives with a plain receive instead, and never flushes: a chain with
// no goroutine boundary has nothing to flush.
func stageDrainChan[T any](r *stageRun, in <-chan T, head stageSink[T], lone bool) {
	var src *monCount
	var w *monWait
	if r.mon != nil {
		src, w = r.monSource(func() (int, int) { return len(in), cap(in) })
	}
	for n := uint(1); ; n++ {
		var v T
		var ok bool
		if lone {
			v, ok = <-in
		} else {
			select {
			case v, ok = <-in:
			default:
				if !head.flush() {
					return
				}
				t := w.begin()
				select {
				case v, ok = <-in:
				case <-r.done:
					w.end(t)
					r.stopped()
					return
				}
				w.end(t)
			}
		}
		if !ok {
			stageEnd(r, head)
			return
		}
		if r.stopping() || (n%stageChunk == 0 && r.ctx.Err() != nil) {
			r.stopped()
			return
		}
		if src != nil {
			src.tick(0)
		}
		if !head.push(v) {
			return
		}
	}
}

// From returns a channel that yields items in order and then closes, for use
// as the input of Run. Up to 64 items are placed in the channel's buffer
// before From returns, so a short list needs no goroutine at all; the rest
// are sent by a goroutine that stops, closing the channel early, when ctx is
// done.
//
// That goroutine ends only when the channel is read to the end or ctx is
// done. Run does not cancel a context it did not create, so when a stage
// fails, Run stops reading and the sender waits for ctx: give From and Run
// the same ctx and cancel it once wait has returned, e.g.
//
//	ctx, cancel := context.WithCancel(parent)
//	defer cancel() // also ends From's sender after a failed run
//	out, wait := s.Run(ctx, conc.From(ctx, items...))
//
// The channel cannot say why it closed: if From's ctx ends while Run's does
// not, Run sees a short input and reports success. Sharing the ctx avoids
// that too, since Run then sees the cancellation and reports ctx's error.
func From[T any](ctx context.Context, items ...T) <-chan T {
	checkCtx(ctx)
	n := min(len(items), stageChunk)
	ch := make(chan T, n)
	for _, v := range items[:n] {
		ch <- v
	}
	if n == len(items) {
		close(ch)
		return ch
	}
	go stageSend(ctx, ch, slices.Values(items[n:]))
	return ch
}

// FromSeq returns a channel that yields the items of seq in order and then
// closes, for use as the input of Run. A goroutine ranges over seq and
// sends with a buffer of 64; it stops, closing the channel, when ctx is
// done. What From says about its goroutine and its ctx holds for FromSeq:
// give it Run's ctx and cancel that after wait returns.
//
// A panic in seq crashes the program: it happens on FromSeq's goroutine
// and there is no error to report it through. Recovering it and closing
// the channel would make Run report success on a truncated input, which is
// worse. When seq may panic, use Collect or All, which report the panic as
// a *PanicError, or recover inside seq.
func FromSeq[T any](ctx context.Context, seq iter.Seq[T]) <-chan T {
	checkCtx(ctx)
	checkFunc("FromSeq input", seq == nil)
	ch := make(chan T, stageChunk)
	go stageSend(ctx, ch, seq)
	return ch
}

// stageSend sends the items of seq on ch until seq ends or ctx is done, and
// closes ch.
func stageSend[T any](ctx context.Context, ch chan<- T, seq iter.Seq[T]) {
	defer close(ch)
	done := ctx.Done()
	for v := range seq {
		// Two single-case selects with default compile to the
		// runtime's fast non-blocking paths; one select with both
		// cases would go through the general select every time.
		select {
		case <-done:
			return
		default:
		}
		select {
		case ch <- v:
			continue
		default:
		}
		select {
		case ch <- v:
		case <-done:
			return
		}
	}
}
