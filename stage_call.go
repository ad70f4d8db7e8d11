package conc

import (
	"context"
	"iter"
	"sync/atomic"
)

// The call path. All runs a chain made only of single-worker Map, Filter
// and FlatMap stages, unmonitored, as nested closures (and All and Collect
// run an ops chain, of Maps and Filters that keep the item type, as one
// closure for up to stageOpsMax stages: see opsCall): each stage is a
// func(T) bool that calls the user's function and then the next stage's
// closure. The first one is handed to the input iterator as its yield
// function and does the source's checks itself; the last one calls the loop
// body. An item so costs one call of each stage's closure and of each
// function, and nothing else: the sink path adds the source's loop body, the
// interface call of every push and the generic method behind it, the
// output sink, and the monitor's nil checks. A closure made inside a generic
// function carries its dictionary in its context, so calling one is a
// single indirect call.
//
// The call path keeps the per-item order of the sink path: a stage sees an
// item as soon as the stage before passes it on, and the loop body gets it
// before the iterator is asked for the next one, so an item from a slow
// iterator (a subscription's Events, say) is never held back. That is why
// All cannot take Collect's block path (stage_block.go), which is cheaper
// than nested closures (an ops chain is cheaper than both).

// stageCall is one fused stage as a plain function: it takes one item and
// reports false when the run is stopping, as stageSink.push does.
type stageCall[T any] func(v T) bool

// stageCallEnds is where a stage of the call path sits in its chain.
type stageCallEnds[U any] struct {
	next  stageCall[U]       // the next stage; nil when last or out is set
	last  *stageYieldSink[U] // All's loop body, for the chain's last stage
	out   *stageSliceSink[U] // Collect's result, for an ops chain (see opsCall)
	first bool               // the chain's first stage: it checks the run per item
}

// recheck is the source's check before an item (see stageDrainSeq), out
// of line: the first stage's closure calls it when the stop flag is up or
// every stageChunk items, so the context is asked that often.
func (r *stageRun) recheck() bool {
	if r.stopping() || r.ctx.Err() != nil {
		r.stopped()
		return false
	}
	return true
}

//go:noinline // so that the closure it returns gets its callees inlined
func mapCall[T, U any](c *stageConfig, fn func(context.Context, T) (U, error)) func(*stageRun, stageCallEnds[U]) stageCall[T] {
	return func(r *stageRun, e stageCallEnds[U]) stageCall[T] {
		ctx, next, last, first := r.ctx, e.next, e.last, e.first
		var n uint
		return func(v T) bool {
			if first {
				if n++; (n%stageChunk == 0 || r.stop.Load()) && !r.recheck() {
					return false
				}
			}
			u, err := fn(ctx, v)
			if err != nil {
				r.fail(c.wrap(err))
				return false
			}
			if last != nil {
				last.body = true
				ok := last.yield(u, nil)
				last.body = false
				last.broken = !ok
				return ok
			}
			return next(u)
		}
	}
}

//go:noinline // so that the closure it returns gets its callees inlined
func filterCall[T any](c *stageConfig, keep func(context.Context, T) (bool, error)) func(*stageRun, stageCallEnds[T]) stageCall[T] {
	return func(r *stageRun, e stageCallEnds[T]) stageCall[T] {
		ctx, next, last, first := r.ctx, e.next, e.last, e.first
		var n uint
		return func(v T) bool {
			if first {
				if n++; (n%stageChunk == 0 || r.stop.Load()) && !r.recheck() {
					return false
				}
			}
			ok, err := keep(ctx, v)
			if err != nil {
				r.fail(c.wrap(err))
				return false
			}
			if !ok {
				return true
			}
			if last != nil {
				last.body = true
				ok = last.yield(v, nil)
				last.body = false
				last.broken = !ok
				return ok
			}
			return next(v)
		}
	}
}

//go:noinline // so that the closure it returns gets its callees inlined
func flatMapCall[T, U any](c *stageConfig, fn func(context.Context, T) ([]U, error)) func(*stageRun, stageCallEnds[U]) stageCall[T] {
	return func(r *stageRun, e stageCallEnds[U]) stageCall[T] {
		ctx, next, last, first := r.ctx, e.next, e.last, e.first
		var n uint
		return func(v T) bool {
			if first {
				if n++; (n%stageChunk == 0 || r.stop.Load()) && !r.recheck() {
					return false
				}
			}
			us, err := fn(ctx, v)
			if err != nil {
				r.fail(c.wrap(err))
				return false
			}
			for _, u := range us {
				if last != nil {
					last.body = true
					ok := last.yield(u, nil)
					last.body = false
					if !ok {
						last.broken = true
						return false
					}
				} else if !next(u) {
					return false
				}
			}
			return true
		}
	}
}

// stageOp is one stage of an ops chain (see Stage.ops): a Map[T, T] when
// fn is set, a Filter[T] when keep is.
type stageOp[T any] struct {
	fn   func(context.Context, T) (T, error)
	keep func(context.Context, T) (bool, error)
	cfg  *stageConfig
}

// mapOp is the stageOp of a Map, or the zero stageOp when U is not T.
func mapOp[T, U any](c *stageConfig, fn func(context.Context, T) (U, error)) stageOp[T] {
	f, _ := any(fn).(func(context.Context, T) (T, error))
	return stageOp[T]{fn: f, cfg: c}
}

// setOps makes s the ops chain ops, whose items keep one type, so that U
// is T: the assertion holds.
func (s *Stage[T, U]) setOps(ops []stageOp[T]) {
	s.ops = ops
	s.calls = any(opsCall(ops)).(func(*stageRun, stageCallEnds[U]) stageCall[T])
}

// opsCall runs a whole ops chain in one closure per stageOpsMax stages: it
// calls each stage's function directly and hands the item to the next
// closure, the loop body or Collect's result. A chain of k stages so costs
// one closure call per item instead of k: the items keep one type, so one
// variable carries an item through every stage. Collect takes this path
// rather than the block path, which the per-item calls undercut (see
// BenchmarkPipeline).
func opsCall[T any](ops []stageOp[T]) func(*stageRun, stageCallEnds[T]) stageCall[T] {
	if len(ops) > stageOpsMax {
		return thenCalls(opsCall(ops[:stageOpsMax]), opsCall(ops[stageOpsMax:]))
	}
	return func(r *stageRun, e stageCallEnds[T]) stageCall[T] {
		c := &opsChain[T]{r: r, stop: &r.stop, ctx: r.ctx, ends: e}
		copy(c.ops[:], ops)
		return opsPick0(c, len(ops))
	}
}

// stageOpsMax is the most stages one closure of an ops chain runs; a longer
// chain is split into closures of that many. opsClosure and the opsPick
// functions are written for three places: they change with it.
const stageOpsMax = 3

// A change of stageOpsMax alone does not compile (the index is out of range).
var _ = [1]struct{}{}[stageOpsMax-3]

// opsChain is one run's state of an ops chain of up to stageOpsMax stages.
// The closure that runs it captures only a pointer to it: a closure loads
// every variable it captures on entry, and they would all be spilled and
// reloaded around every call.
type opsChain[T any] struct {
	r    *stageRun
	stop *atomic.Bool // &r.stop, one load nearer
	ctx  context.Context
	ops  [stageOpsMax]stageOp[T]
	ends stageCallEnds[T]
	n    uint // items pushed, for the first stage's check of the run
}

// The kinds of the stages of an ops closure, as type parameters of
// opsClosure: one instance of it is compiled for every sequence of kinds,
// so that a stage's code is the call of its Map or of its Filter alone, with
// no test of which one it is: that test, per item and stage, was a large
// part of All's overhead over the plain loop (see BenchmarkPipeline). The
// kinds are array types of distinct lengths because an
// instance is compiled per shape (underlying type): opNone and opMap, say,
// as two struct{} types, would share one instance, which would then have to
// look the kind up at run time.
type (
	opNone   [0]byte // no stage at this place: the chain is shorter
	opMap    [1]byte
	opFilter [2]byte
)

type opKind interface{ opNone | opMap | opFilter }

// kindOf is the kind K stands for: 0 none, 1 Map, 2 Filter. It is a
// constant in every compiled instance.
func kindOf[K opKind]() int {
	var k K
	return len(k)
}

// opsPick0, opsPick1 and opsPick2 choose the instance of opsClosure for the
// kinds of c's k stages, one place at a time.
func opsPick0[T any](c *opsChain[T], k int) stageCall[T] {
	if c.ops[0].keep != nil {
		return opsPick1[T, opFilter](c, k)
	}
	return opsPick1[T, opMap](c, k)
}

func opsPick1[T any, K0 opKind](c *opsChain[T], k int) stageCall[T] {
	switch {
	case k < 2:
		return opsClosure[T, K0, opNone, opNone](c)
	case c.ops[1].keep != nil:
		return opsPick2[T, K0, opFilter](c, k)
	}
	return opsPick2[T, K0, opMap](c, k)
}

func opsPick2[T any, K0, K1 opKind](c *opsChain[T], k int) stageCall[T] {
	switch {
	case k < 3:
		return opsClosure[T, K0, K1, opNone](c)
	case c.ops[2].keep != nil:
		return opsClosure[T, K0, K1, opFilter](c)
	}
	return opsClosure[T, K0, K1, opMap](c)
}

// opsClosure is the closure of an ops chain whose stages have the kinds
// K0, K1 and K2.
//
//go:noinline // so that the closure it returns gets its callees inlined
func opsClosure[T any, K0, K1, K2 opKind](c *opsChain[T]) stageCall[T] {
	return func(v T) bool {
		if c.ends.first {
			if c.n++; (c.n%stageChunk == 0 || c.stop.Load()) && !c.r.recheck() {
				return false
			}
		}
		var ok bool
		var err error
		switch kindOf[K0]() {
		case 1:
			if v, err = c.ops[0].fn(c.ctx, v); err != nil {
				return c.fail(0, err)
			}
		case 2:
			if ok, err = c.ops[0].keep(c.ctx, v); err != nil {
				return c.fail(0, err)
			} else if !ok {
				return true
			}
		}
		switch kindOf[K1]() {
		case 1:
			if v, err = c.ops[1].fn(c.ctx, v); err != nil {
				return c.fail(1, err)
			}
		case 2:
			if ok, err = c.ops[1].keep(c.ctx, v); err != nil {
				return c.fail(1, err)
			} else if !ok {
				return true
			}
		}
		switch kindOf[K2]() {
		case 1:
			if v, err = c.ops[2].fn(c.ctx, v); err != nil {
				return c.fail(2, err)
			}
		case 2:
			if ok, err = c.ops[2].keep(c.ctx, v); err != nil {
				return c.fail(2, err)
			} else if !ok {
				return true
			}
		}
		switch e := &c.ends; {
		case e.last != nil:
			e.last.body = true
			ok = e.last.yield(v, nil)
			e.last.body = false
			e.last.broken = !ok
			return ok
		case e.out != nil:
			if len(e.out.cur) == cap(e.out.cur) {
				e.out.grow()
			}
			e.out.cur = append(e.out.cur, v)
			return true
		}
		return c.ends.next(v)
	}
}

// fail ends the run with the error of stage i.
func (c *opsChain[T]) fail(i int, err error) bool {
	c.r.fail(c.ops[i].cfg.wrap(err))
	return false
}

// thenCalls chains two stages of the call path.
func thenCalls[A, B, C any](first func(*stageRun, stageCallEnds[B]) stageCall[A], next func(*stageRun, stageCallEnds[C]) stageCall[B]) func(*stageRun, stageCallEnds[C]) stageCall[A] {
	return func(r *stageRun, e stageCallEnds[C]) stageCall[A] {
		mid := next(r, stageCallEnds[C]{next: e.next, last: e.last, out: e.out})
		return first(r, stageCallEnds[B]{next: mid, first: e.first})
	}
}

// stageDrainCalls feeds seq into the chain head, whose first stage checks
// the run before every item, and ends tail, the run's output, when seq ends
// with the run still going and the loop not broken out of (*broken, when
// broken is not nil).
func stageDrainCalls[T any](r *stageRun, seq iter.Seq[T], head stageCall[T], broken *bool, tail interface{ end() }) {
	if r.stopping() {
		r.stopped()
		return
	}
	// Not a range loop: its body would be one more call per item.
	seq(head)
	switch {
	case broken != nil && *broken:
	case r.stopping() || r.ctx.Err() != nil:
		// A stage failed, or the caller's context ended: stopped
		// records the latter if nothing else was.
		r.stopped()
	default:
		tail.end()
	}
}
