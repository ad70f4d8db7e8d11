package conc

import (
	"context"
	"fmt"
	"slices"
)

// A Stage is a typed step of a pipeline that turns a stream of T into a
// stream of U. A Stage is only a description: nothing runs and no goroutine
// exists until it is started by Run, Collect or All, and the same Stage may
// be started any number of times, concurrently.
//
// Stages are built with Map, Filter, FlatMap and Batch and chained with Then.
// The zero Stage describes nothing; starting it, or passing it to Then,
// panics.
//
// How a Stage runs is decided when it is started, from the whole chain:
// consecutive stages with one worker are fused into plain function calls in
// one goroutine, with no channel between them. Where every stage of such a
// chain is a Map or a Filter that keeps the item type, All and Collect run
// it item by item, one call per item standing for up to three stages, added
// to the loop a programmer would write by hand. Over other such chains All
// calls the stages item by item, and Collect, which returns nothing before
// the end, runs chains of Map, Filter and FlatMap a block of items at a
// time. A goroutine boundary appears only where the description asks for
// one (Workers(n) with n > 1, StageBuffer(n) with n > 0, Batch with a
// maxWait, the channels of Run); items cross it in chunks of whatever is
// ready, up to a cap, so a hop costs a small fraction of a channel operation
// per item when the pipeline is busy and adds no latency when it is idle.
//
// Within one run, a stage function is never called by more goroutines at
// once than its Workers option allows (one by default), so a single-worker
// stage may keep unsynchronised state in its closure as long as the Stage is
// run once at a time. Concurrent runs of the same Stage share its closures:
// state captured there must then be safe for concurrent use, or each run
// should build its own Stage.
type Stage[T, U any] struct {
	// build wires the stage onto next, the sink that receives its output,
	// and returns the sink that accepts its input. It may start goroutines
	// (for worker pools and buffers) through r.spawn; they belong to r.
	build func(r *stageRun, next stageSink[U]) stageSink[T]
	// inline reports that build starts no goroutine and that every call
	// into next happens on the goroutine that pushed the input. Collect
	// and All rely on it to run the whole chain on the caller's goroutine.
	inline bool
	// blocks, when not nil, wires the stage for Collect's block path (see
	// stage_block.go) the way build wires it for the per-item path. Only
	// chains of single-worker Map, Filter and FlatMap stages have it.
	blocks func(r *stageRun, next stageBlockSink[U]) stageBlockSink[T]
	// calls, when not nil, wires the stage for All's call path (see
	// stage_call.go). Only unmonitored chains of single-worker Map, Filter
	// and FlatMap stages have it.
	calls func(r *stageRun, e stageCallEnds[U]) stageCall[T]
	// ops, when not nil, lists the stages of a chain made only of
	// single-worker Map[T, T] and Filter[T] stages, unmonitored, so that
	// U is T. Its calls then runs them all in one closure (see opsCall),
	// and Collect takes that path too.
	ops []stageOp[T]
	// buffer is the Buffer option of the last stage of the chain, or -1.
	// Then turns it into a chunked hand-off; Run sizes its output channel
	// with it (there is no next stage to hand off to).
	buffer int
}

// check panics when s is the zero Stage. Failing at the call that starts or
// chains it gives a clearer message than a nil function call deep in a run.
func (s Stage[T, U]) check() {
	if s.build == nil {
		panic("conc: zero Stage; build stages with Map, Filter, FlatMap or Batch")
	}
}

// A StageOption configures a stage built by Map, Filter or FlatMap. Options
// are values: the same option may be passed to any number of stages.
type StageOption interface {
	applyStage(*stageConfig)
}

// stageConfig is what the options of one stage add up to.
type stageConfig struct {
	workers int
	ordered bool
	buffer  int // -1 when Buffer was not given
	name    string
	kind    string // "map", "filter" or "flatmap", for a Monitor
}

type stageOptionFunc func(*stageConfig)

func (f stageOptionFunc) applyStage(c *stageConfig) { f(c) }

// Workers sets how many goroutines call the stage's function (1 by default).
// With n > 1 the stage runs on its own pool of n goroutines; items reach it
// in chunks and its output leaves in arrival order unless Ordered is given.
// The n goroutines start with each run. Workers panics if n < 1 or
// n > 65536.
func Workers(n int) StageOption {
	checkPositive("Workers", n)
	checkAtMost("Workers", n, maxWorkers)
	return stageOptionFunc(func(c *stageConfig) { c.workers = n })
}

// Ordered makes a stage with Workers(n > 1) emit its output in input order.
// Reordering needs memory for the items that finished early; it is bounded
// by a small multiple of n chunks, never the whole stream: a worker that is
// slow on one item holds the others back rather than letting memory grow.
// With one worker Ordered changes nothing: that stage is always in order.
func Ordered() StageOption {
	return stageOptionFunc(func(c *stageConfig) { c.ordered = true })
}

// StageBuffer lets about n items wait between this stage and the next, so that
// the two run on separate goroutines and a burst in one does not stall the
// other. StageBuffer(0), like no StageBuffer, keeps the stages fused. On the last stage
// given to Run, StageBuffer sets the capacity of the output channel instead (64
// when absent; StageBuffer(0) makes it unbuffered); Collect and All have no
// channel to size and ignore it there. StageBuffer panics if n < 0 or
// n > 2^20 (1048576).
func StageBuffer(n int) StageOption {
	checkBuffer("Buffer", n)
	return stageOptionFunc(func(c *stageConfig) { c.buffer = n })
}

// Named gives the stage a name that prefixes every error its function
// returns (the original error stays reachable with errors.Is and errors.As),
// so that a failure in a long pipeline says where it happened.
func Named(name string) StageOption {
	return stageOptionFunc(func(c *stageConfig) { c.name = name })
}

func newStageConfig(opts []StageOption) stageConfig {
	c := stageConfig{workers: 1, buffer: -1}
	for i, o := range opts {
		checkOption("Stage", i, o == nil)
		o.applyStage(&c)
	}
	return c
}

// wrap prefixes err with the stage name, if it has one.
func (c *stageConfig) wrap(err error) error {
	if c.name == "" {
		return err
	}
	return fmt.Errorf("conc: stage %s: %w", c.name, err)
}

// stageStep is the per-item body of a parallel stage: it appends the output
// of fn(v) to out. One shape for Map, Filter and FlatMap keeps a single
// worker pool implementation; the fused single-worker sinks below do not
// use it, because the extra indirect call and slice round trip would be
// most of their cost.
type stageStep[T, U any] func(ctx context.Context, v T, out []U) ([]U, error)

// newStage makes the Stage for a function stage: fused sinks from serial
// (and block stages from blocks) when it has one worker, a worker pool
// around step otherwise.
func newStage[T, U any](c stageConfig, serial func(r *stageRun, next stageSink[U]) stageSink[T],
	blocks func(r *stageRun, next stageBlockSink[U]) stageBlockSink[T],
	calls func(r *stageRun, e stageCallEnds[U]) stageCall[T], op stageOp[T], step stageStep[T, U]) Stage[T, U] {
	if c.workers == 1 {
		s := Stage[T, U]{build: serial, blocks: blocks, calls: calls, inline: true, buffer: c.buffer}
		if op.fn != nil || op.keep != nil {
			s.setOps([]stageOp[T]{op})
		}
		return s
	}
	return Stage[T, U]{
		build: func(r *stageRun, next stageSink[U]) stageSink[T] {
			return newStagePool(r, &c, step, next)
		},
		buffer: c.buffer,
	}
}

// Map returns a Stage that calls fn for every item and passes on its
// result. An error from fn, or a panic (as *PanicError), ends the run: it
// is what Run's wait, Collect and All report. fn receives the run's context,
// which is cancelled as soon as any stage fails or the caller's context is
// done. Map panics if fn is nil.
func Map[T, U any](fn func(context.Context, T) (U, error), opts ...StageOption) Stage[T, U] {
	checkFunc("Map function", fn == nil)
	c := newStageConfig(opts)
	c.kind = "map"
	return newStage(c,
		func(r *stageRun, next stageSink[U]) stageSink[T] {
			return &stageMap[T, U]{r: r, ctx: r.ctx, fn: fn, next: next, cfg: &c, mb: r.monMember(c.kind, c.name)}
		},
		func(r *stageRun, next stageBlockSink[U]) stageBlockSink[T] {
			return &stageMapBlock[T, U]{stageBlockStage: newStageBlockStage(r, &c, next), fn: fn}
		},
		mapCall(&c, fn),
		mapOp(&c, fn),
		func(ctx context.Context, v T, out []U) ([]U, error) {
			u, err := fn(ctx, v)
			if err != nil {
				return out, err
			}
			return append(out, u), nil
		})
}

// Filter returns a Stage that passes on the items for which keep reports
// true and drops the others. Errors and panics end the run as for Map.
// Filter panics if keep is nil.
func Filter[T any](keep func(context.Context, T) (bool, error), opts ...StageOption) Stage[T, T] {
	checkFunc("Filter function", keep == nil)
	c := newStageConfig(opts)
	c.kind = "filter"
	return newStage(c,
		func(r *stageRun, next stageSink[T]) stageSink[T] {
			return &stageFilter[T]{r: r, ctx: r.ctx, keep: keep, next: next, cfg: &c, mb: r.monMember(c.kind, c.name)}
		},
		func(r *stageRun, next stageBlockSink[T]) stageBlockSink[T] {
			return &stageFilterBlock[T]{stageBlockStage: newStageBlockStage(r, &c, next), keep: keep}
		},
		filterCall(&c, keep),
		stageOp[T]{keep: keep, cfg: &c},
		func(ctx context.Context, v T, out []T) ([]T, error) {
			ok, err := keep(ctx, v)
			if err != nil || !ok {
				return out, err
			}
			return append(out, v), nil
		})
}

// FlatMap returns a Stage that calls fn for every item and passes on each
// element of the slice it returns, in order. The slice is not retained, so
// fn may reuse it between calls when the stage has one worker. Errors and
// panics end the run as for Map. FlatMap panics if fn is nil.
func FlatMap[T, U any](fn func(context.Context, T) ([]U, error), opts ...StageOption) Stage[T, U] {
	checkFunc("FlatMap function", fn == nil)
	c := newStageConfig(opts)
	c.kind = "flatmap"
	return newStage(c,
		func(r *stageRun, next stageSink[U]) stageSink[T] {
			return &stageFlatMap[T, U]{r: r, ctx: r.ctx, fn: fn, next: next, cfg: &c, mb: r.monMember(c.kind, c.name)}
		},
		func(r *stageRun, next stageBlockSink[U]) stageBlockSink[T] {
			return &stageFlatMapBlock[T, U]{stageBlockStage: newStageBlockStage(r, &c, next), fn: fn}
		},
		flatMapCall(&c, fn),
		stageOp[T]{},
		func(ctx context.Context, v T, out []U) ([]U, error) {
			us, err := fn(ctx, v)
			if err != nil {
				return out, err
			}
			return append(out, us...), nil
		})
}

// Then returns the Stage that feeds the output of first into next. Two
// single-worker stages chained by Then are fused: an item goes from one
// function to the other by a direct call on the same goroutine. A Buffer
// option on first puts a chunked hand-off between them instead. Then panics
// if either stage is the zero Stage.
func Then[A, B, C any](first Stage[A, B], next Stage[B, C]) Stage[A, C] {
	first.check()
	next.check()
	var blocks func(r *stageRun, out stageBlockSink[C]) stageBlockSink[A]
	if first.blocks != nil && next.blocks != nil && first.buffer <= 0 {
		blocks = func(r *stageRun, out stageBlockSink[C]) stageBlockSink[A] {
			return first.blocks(r, next.blocks(r, out))
		}
	}
	var calls func(r *stageRun, e stageCallEnds[C]) stageCall[A]
	if first.calls != nil && next.calls != nil && first.buffer <= 0 {
		calls = thenCalls(first.calls, next.calls)
	}
	s := Stage[A, C]{
		blocks: blocks,
		calls:  calls,
		build: func(r *stageRun, out stageSink[C]) stageSink[A] {
			// Build back to front: each stage needs the sink it feeds.
			var mid stageSink[B] = next.build(r, out)
			if first.buffer > 0 {
				mid = newStagePipe(r, first.buffer, mid)
			}
			return first.build(r, mid)
		},
		inline: first.inline && next.inline && first.buffer <= 0,
		buffer: next.buffer,
	}
	if first.ops != nil && next.ops != nil && first.buffer <= 0 {
		// first.ops is not nil, so B is A, and next.ops not nil, so C is
		// B: the assertion holds.
		s.setOps(slices.Concat(first.ops, any(next.ops).([]stageOp[A])))
	}
	return s
}

// The fused sinks. Each calls its function directly and pushes the result
// into the next sink on the same goroutine. They do not recover panics per
// item: the goroutine that drives the chain runs it under stageRun.guard,
// which turns a panic anywhere in the chain into the run's error at no cost
// on the happy path.

type stageMap[T, U any] struct {
	r    *stageRun
	ctx  context.Context
	fn   func(context.Context, T) (U, error)
	next stageSink[U]
	cfg  *stageConfig
	mb   *monMember // nil unless the run is monitored
}

func (s *stageMap[T, U]) push(v T) bool {
	u, err := s.fn(s.ctx, v)
	if err != nil {
		s.mb.fail()
		s.r.fail(s.cfg.wrap(err))
		return false
	}
	if s.mb != nil {
		s.mb.c.tick1()
	}
	return s.next.push(u)
}

func (s *stageMap[T, U]) flush() bool { return s.next.flush() }
func (s *stageMap[T, U]) end()        { s.next.end() }

type stageFilter[T any] struct {
	r    *stageRun
	ctx  context.Context
	keep func(context.Context, T) (bool, error)
	next stageSink[T]
	cfg  *stageConfig
	mb   *monMember
}

func (s *stageFilter[T]) push(v T) bool {
	ok, err := s.keep(s.ctx, v)
	if err != nil {
		s.mb.fail()
		s.r.fail(s.cfg.wrap(err))
		return false
	}
	if !ok {
		if s.mb != nil {
			s.mb.c.tick(0)
		}
		return true
	}
	if s.mb != nil {
		s.mb.c.tick(1)
	}
	return s.next.push(v)
}

func (s *stageFilter[T]) flush() bool { return s.next.flush() }
func (s *stageFilter[T]) end()        { s.next.end() }

type stageFlatMap[T, U any] struct {
	r    *stageRun
	ctx  context.Context
	fn   func(context.Context, T) ([]U, error)
	next stageSink[U]
	cfg  *stageConfig
	mb   *monMember
}

func (s *stageFlatMap[T, U]) push(v T) bool {
	us, err := s.fn(s.ctx, v)
	if err != nil {
		s.mb.fail()
		s.r.fail(s.cfg.wrap(err))
		return false
	}
	if s.mb != nil {
		s.mb.c.tick(uint64(len(us)))
	}
	for _, u := range us {
		if !s.next.push(u) {
			return false
		}
	}
	return true
}

func (s *stageFlatMap[T, U]) flush() bool { return s.next.flush() }
func (s *stageFlatMap[T, U]) end()        { s.next.end() }
