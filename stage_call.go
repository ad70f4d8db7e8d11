package conc

import (
	"context"
	"iter"
)

// The call path. All runs a chain made only of single-worker Map, Filter
// and FlatMap stages, unmonitored, as nested closures: each stage is a
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
// still.

// stageCall is one fused stage as a plain function: it takes one item and
// reports false when the run is stopping, as stageSink.push does.
type stageCall[T any] func(v T) bool

// stageCallEnds is where a stage of the call path sits in its chain.
type stageCallEnds[U any] struct {
	next  stageCall[U]       // the next stage; nil when last is set
	last  *stageYieldSink[U] // All's loop body, for the chain's last stage
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
			if n++; first && (n%stageChunk == 0 || r.stop.Load()) && !r.recheck() {
				return false
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
			if n++; first && (n%stageChunk == 0 || r.stop.Load()) && !r.recheck() {
				return false
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
			if n++; first && (n%stageChunk == 0 || r.stop.Load()) && !r.recheck() {
				return false
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

// thenCalls chains two stages of the call path.
func thenCalls[A, B, C any](first func(*stageRun, stageCallEnds[B]) stageCall[A], next func(*stageRun, stageCallEnds[C]) stageCall[B]) func(*stageRun, stageCallEnds[C]) stageCall[A] {
	return func(r *stageRun, e stageCallEnds[C]) stageCall[A] {
		mid := next(r, stageCallEnds[C]{next: e.next, last: e.last})
		return first(r, stageCallEnds[B]{next: mid, first: e.first})
	}
}

// stageDrainCalls feeds seq into the chain head, whose first stage checks
// the run before every item, and ends the run's output when seq ends with
// the run still going and the loop not broken out of.
func stageDrainCalls[T, U any](r *stageRun, seq iter.Seq[T], head stageCall[T], tail *stageYieldSink[U]) {
	if r.stopping() {
		r.stopped()
		return
	}
	// Not a range loop: its body would be one more call per item.
	seq(head)
	switch {
	case tail.broken:
	case r.stopping() || r.ctx.Err() != nil:
		// A stage failed, or the caller's context ended: stopped
		// records the latter if nothing else was.
		r.stopped()
	default:
		tail.end()
	}
}
