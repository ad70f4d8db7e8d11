package conc

import (
	"context"
	"errors"
	"iter"
)

// The block path. Collect runs a chain made only of single-worker Map,
// Filter and FlatMap stages (no Workers, no StageBuffer between them, no
// Batch) a block at a time, except an unmonitored chain of Maps and Filters
// that keep the item type, which it runs item by item (opsCall, in
// stage_call.go): the source gathers up to stageChunk items of the
// input in a buffer, and each stage then runs its function over the whole
// block in one tight loop, writing its output into a block of its own that
// it reuses, before the next stage is called once for that block. The
// per-item path costs about three dynamic calls per stage per item (the
// sink's push, the generic method behind it, the function) and a check of
// the run per item; here a stage costs one call of its function per item
// and one dynamic call per block. Buffers are allocated once per run.
//
// Collect may batch its input because it returns nothing before the end.
// All may not: its loop body must see an item as soon as a push iterator
// yields it (a subscription's Events, say), and a block would hold items
// until more arrive. All keeps the per-item path.
//
// What the block path keeps exactly, against the per-item path:
//   - order, and what Filter keeps;
//   - which failure the run reports: a stage whose function fails (or
//     panics) on the item at index i of a block first passes on its outputs
//     for items 0..i-1, as the per-item path would have done before it
//     reached item i, so a later stage failing on one of those still wins;
//   - errors prefixed by Named, panics as a bare *PanicError, and a
//     runtime.Goexit left to end the goroutine;
//   - the monitor's counts, which add up to the same totals; they are
//     updated per block instead of per item.
//
// What changes: a stage's function runs over a whole block before the next
// stage sees any of it, so after a failure the stages before the failing
// one may have been called for up to stageChunk-1 more items, and a
// cancelled context is checked once per block (the stop flag still before
// every item is read from the input).

// stageBlockSink receives the items of one stage a block at a time, always
// from the same goroutine.
type stageBlockSink[T any] interface {
	// pushBlock delivers vs, in order; it holds at most stageChunk
	// items. The sink may overwrite vs (Filter compacts it in place) but
	// must not keep it: the caller reuses it once pushBlock returns. It
	// returns false when the run is stopping, as stageSink.push does.
	pushBlock(vs []T) bool
	// end is stageSink.end.
	end()
}

// errBlockRefused is how a FlatMap's loop tells pushBlock that the next
// stage refused a block: the run is stopping for a reason already recorded.
var errBlockRefused = errors.New("conc: block refused")

// stageBlockStage holds what the three block stages share: the run, the
// stage's options and monitor count, the next stage and the output block
// reused for every call.
type stageBlockStage[U any] struct {
	r    *stageRun
	ctx  context.Context
	cfg  *stageConfig
	mb   *monMember // nil unless the run is monitored
	next stageBlockSink[U]
	out  []U // the output block, made at the first call
}

func newStageBlockStage[U any](r *stageRun, c *stageConfig, next stageBlockSink[U]) stageBlockStage[U] {
	return stageBlockStage[U]{r: r, ctx: r.ctx, cfg: c, next: next, mb: r.monMember(c.kind, c.name)}
}

func (s *stageBlockStage[U]) end() { s.next.end() }

// count adds a block's figures to the monitor, if the run has one.
func (s *stageBlockStage[U]) count(in, out int) {
	if s.mb != nil {
		s.mb.c.block(in, out)
	}
}

// fail ends the run with the failure of this stage's function on the item
// after those that gave done: done is passed on first, as the per-item path
// would have passed it on before it called the function on that item, so a
// later stage that fails on one of them is the run's failure instead. ok
// reports that the function returned err rather than panicking (it is then
// prefixed with the stage's name).
func (s *stageBlockStage[U]) fail(done []U, err error, ok bool) bool {
	if len(done) > 0 && !s.next.pushBlock(done) {
		return false
	}
	if ok {
		err = s.cfg.wrap(err)
	}
	s.mb.fail()
	s.r.fail(err)
	return false
}

type stageMapBlock[T, U any] struct {
	stageBlockStage[U]
	fn func(context.Context, T) (U, error)
}

func (s *stageMapBlock[T, U]) pushBlock(vs []T) bool {
	if s.out == nil {
		s.out = make([]U, stageChunk)
	}
	out := s.out[:len(vs)]
	i, ok, err := s.apply(vs, out)
	s.count(i, i)
	if !ok || err != nil {
		return s.fail(out[:i], err, ok)
	}
	return s.next.pushBlock(out)
}

// apply calls fn for the items of vs in order, writing the results to out.
// It returns how many succeeded and, unless fn panicked (ok false, err the
// *PanicError), the error that stopped it. The deferred catch costs about a
// nanosecond per block, not per item.
func (s *stageMapBlock[T, U]) apply(vs []T, out []U) (i int, ok bool, err error) {
	defer catch(&err, &ok)
	// Locals, not the fields or the named err: the results live in
	// memory because of the deferred catch, and the loop should not
	// store err or reload fn and ctx around every call.
	fn, ctx := s.fn, s.ctx
	for i = range vs {
		u, e := fn(ctx, vs[i])
		if e != nil {
			return i, true, e
		}
		out[i] = u
	}
	return len(vs), true, nil
}

type stageFilterBlock[T any] struct {
	stageBlockStage[T]
	keep func(context.Context, T) (bool, error)
}

// pushBlock keeps the items of vs in place: the block it passes on is a
// prefix of vs.
func (s *stageFilterBlock[T]) pushBlock(vs []T) bool {
	i, k, ok, err := s.apply(vs)
	s.count(i, k)
	if !ok || err != nil {
		return s.fail(vs[:k], err, ok)
	}
	if k == 0 {
		return true
	}
	return s.next.pushBlock(vs[:k])
}

// apply is stageMapBlock.apply for Filter: it moves the items keep accepts
// to the front of vs and returns how many items it tried (i) and kept (k).
func (s *stageFilterBlock[T]) apply(vs []T) (i, k int, ok bool, err error) {
	defer catch(&err, &ok)
	keep, ctx, kept := s.keep, s.ctx, 0 // locals, as in stageMapBlock.apply
	for i = range vs {
		yes, e := keep(ctx, vs[i])
		if e != nil {
			return i, kept, true, e
		}
		if yes {
			vs[kept] = vs[i]
			kept++
		}
		k = kept // for a panic in the next call
	}
	return len(vs), kept, true, nil
}

type stageFlatMapBlock[T, U any] struct {
	stageBlockStage[U]
	fn func(context.Context, T) ([]U, error)
}

// pushBlock copies what fn returns into the output block and passes the
// block on whenever it is full, so that however much one item expands to,
// no block holds more than stageChunk items.
func (s *stageFlatMapBlock[T, U]) pushBlock(vs []T) bool {
	if s.out == nil {
		s.out = make([]U, 0, stageChunk)
	}
	s.out = s.out[:0]
	i, n, ok, err := s.apply(vs)
	if err == errBlockRefused {
		// The item whose outputs were refused counts as taken in, as
		// on the per-item path.
		s.count(i+1, n)
		return false
	}
	s.count(i, n)
	if !ok || err != nil {
		return s.fail(s.out, err, ok)
	}
	if len(s.out) == 0 {
		return true
	}
	return s.next.pushBlock(s.out)
}

// apply calls fn for the items of vs and copies the outputs into s.out,
// handing on every full block. It returns how many items it finished (i),
// how many outputs they gave (n), and what stopped it: errBlockRefused when
// the next stage refused a block.
func (s *stageFlatMapBlock[T, U]) apply(vs []T) (i, n int, ok bool, err error) {
	defer catch(&err, &ok)
	for i = range vs {
		var us []U
		if us, err = s.fn(s.ctx, vs[i]); err != nil {
			return i, n, true, err
		}
		n += len(us)
		for len(us) > 0 {
			k := copy(s.out[len(s.out):cap(s.out)], us)
			s.out = s.out[:len(s.out)+k]
			us = us[k:]
			if len(s.out) == cap(s.out) {
				if !s.next.pushBlock(s.out) {
					return i, n, true, errBlockRefused
				}
				s.out = s.out[:0]
			}
		}
	}
	return len(vs), n, true, nil
}

// stageDrainSeqBlocks is stageDrainSeq for the block path: it gathers the
// items of seq into blocks of stageChunk and pushes each into head. It
// checks the stop flag before every item, as stageDrainSeq does, and the
// context before every block.
func stageDrainSeqBlocks[T any](r *stageRun, seq iter.Seq[T], head stageBlockSink[T]) {
	src, ok := r.seqSource()
	if !ok {
		return
	}
	buf := make([]T, stageChunk)
	n := 0
	going := true
	// Not a range loop, whose bookkeeping around the body costs as much
	// as the body here.
	seq(func(v T) bool {
		if !going || r.stopping() {
			r.stopped()
			going = false
			return false
		}
		buf[n] = v
		if n++; n == len(buf) {
			n = 0
			going = stageBlockOut(r, head, buf, src)
		}
		return going
	})
	if !going || (n > 0 && !stageBlockOut(r, head, buf[:n], src)) {
		return
	}
	stageEnd(r, head)
}

// stageBlockOut pushes one block from the source, unless the context is
// done.
func stageBlockOut[T any](r *stageRun, head stageBlockSink[T], b []T, src *monCount) bool {
	if r.ctx.Err() != nil {
		r.stopped()
		return false
	}
	if src != nil {
		src.block(len(b), 0)
	}
	return head.pushBlock(b)
}
