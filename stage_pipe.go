package conc

import (
	"runtime"
	"sync/atomic"
)

// This file holds the two goroutine boundaries of a pipeline: stagePipe, a
// single-consumer hand-off used by Buffer and by All, and stagePool, the
// worker pool behind Workers(n > 1). Both move items in chunks that are
// recycled through a fixed set of buffers, so that in steady state a hop
// allocates nothing and costs one channel operation per chunk, not per item.
//
// Both use the same three rules to size chunks adaptively:
//   - a chunk is handed over when it is full;
//   - it is handed over at once, however small, when the receiving side is
//     known to be idle (it announces that in an atomic before it parks);
//   - it is handed over on flush, which sources call when no input is ready.
//
// So at load a chunk fills up and the cost of the channel is spread over
// many items, and at low load an item never waits for others to join it.
//
// The number of buffers is fixed (limit). The channels that carry them have
// capacity limit too, so a send on them can never block: only taking a free
// buffer can, and that wait is the pipeline's backpressure, bounded to
// limit chunks per boundary, and it watches the run's context.

// stagePoolChunk is the chunk size of a worker pool. It is smaller than
// stageChunk because a chunk is also the unit of load balancing: a pool
// takes whole chunks, so the last ones of a finite input may leave some
// workers idle while one finishes a chunk. 32 items still spread the
// channel cost to a few nanoseconds per item.
const stagePoolChunk = 32

// stagePipe carries chunks of T from one sender goroutine to one receiver
// goroutine. The sender side implements stageSink[T].
type stagePipe[T any] struct {
	r     *stageRun
	size  int
	limit int
	full  chan []T
	free  chan []T
	idle  atomic.Bool // the receiver is parked or about to park

	// Owned by the sender.
	buf  []T
	made int

	// Set when the run is monitored (see monWire), nil otherwise.
	recvW, sendW *monWait  // receiver waiting for a chunk; sender for a buffer
	q            *monEdge  // items handed over, not yet taken by the receiver
	cnt          *monCount // items the receiver took, when it is a sink
	last         bool      // All's hand-off to the caller: the run's end
}

// newStagePipeSender makes a pipe whose receiver the caller runs with drain.
func newStagePipeSender[T any](r *stageRun, size, chunks int) *stagePipe[T] {
	// One buffer more than the chunks that may wait, so the sender can
	// fill one while the receiver works through another.
	limit := chunks + 1
	return &stagePipe[T]{r: r, size: size, limit: limit,
		full: make(chan []T, limit), free: make(chan []T, limit)}
}

// newStagePipe makes the hand-off for StageBuffer(n): about n items may wait in
// it, and a goroutine of the run drains it into next.
func newStagePipe[T any](r *stageRun, n int, next stageSink[T]) stageSink[T] {
	// A small Buffer gets chunks of its own size, so that Buffer(1)
	// really lets about one item wait; a large one gets full chunks and
	// as many of them as make up n.
	size := min(n, stageChunk)
	p := newStagePipeSender[T](r, size, max(1, n/size))
	if r.mon != nil {
		p.monWire(r.mon)
	}
	r.spawn(func() { p.drain(next) })
	return p
}

// monWire records the pipe in a monitored run: the node being wired is the
// receiver's, and the pipe starts the node of its sender.
func (p *stagePipe[T]) monWire(r *monRun) {
	p.recvW = &r.cur.in
	p.q = r.addEdge("chunks", p.limit*p.size)
	p.sendW = &r.cur.out
}

// monAttach makes All's last hand-off the sink of a monitored run: the
// caller's goroutine, which drains it into the loop body.
func (p *stagePipe[T]) monEnd() bool { return p.last }

func (p *stagePipe[T]) monAttach(r *monRun) {
	sink := r.newNode("sink")
	sink.name = "all"
	sink.count.shared = true
	p.cnt = &sink.count
	p.monWire(r)
}

// push adds v to the chunk being filled and hands the chunk over when it
// is full or the receiver is idle. Reading idle costs one load of a word
// the receiver writes only when it parks, so under load, when the receiver
// never parks, the line stays in the sender's cache.
func (p *stagePipe[T]) push(v T) bool {
	if p.buf == nil && !p.take() {
		return false
	}
	p.buf = append(p.buf, v)
	if len(p.buf) >= p.size || p.idle.Load() {
		p.send()
	}
	return true
}

// flush hands over a partial chunk. It does not pass the flush on: what
// lies beyond the pipe belongs to the receiver's goroutine, which flushes
// it itself whenever it runs out of chunks.
func (p *stagePipe[T]) flush() bool {
	if len(p.buf) > 0 {
		p.send()
	}
	return true
}

// end hands over the last chunk and closes full; the receiver drains what
// is queued before it sees the close, so nothing is lost at the end.
func (p *stagePipe[T]) end() {
	p.flush()
	close(p.full)
}

// take gets an empty buffer: a recycled one, a new one while fewer than
// limit exist, or else waits for the receiver to give one back.
func (p *stagePipe[T]) take() bool {
	select {
	case p.buf = <-p.free:
		return true
	default:
	}
	if p.made < p.limit {
		p.made++
		p.buf = make([]T, 0, p.size)
		return true
	}
	t := p.sendW.begin()
	defer p.sendW.end(t)
	select {
	case p.buf = <-p.free:
		return true
	case <-p.r.done:
		p.r.stopped()
		return false
	}
}

// send hands the chunk over. Clearing idle first means the receiver is
// woken at most once by a chunk of one item; until it parks again, items
// gather into fuller chunks.
func (p *stagePipe[T]) send() {
	p.idle.Store(false)
	if p.q != nil {
		p.q.queued.Add(int64(len(p.buf)))
	}
	p.full <- p.buf // never blocks: see the comment at the top of the file
	p.buf = nil
}

// drain pushes everything that arrives into next until the sender ends or
// the run stops. Before parking it flushes next, so that boundaries further
// down do not sit on partial chunks while this one has nothing to give
// them, and it raises idle so that the sender hands over its next item at
// once.
func (p *stagePipe[T]) drain(next stageSink[T]) {
	for {
		var b []T
		var ok bool
		select {
		case b, ok = <-p.full:
		default:
			if !next.flush() {
				return
			}
			p.idle.Store(true)
			t := p.recvW.begin()
			select {
			case b, ok = <-p.full:
			case <-p.r.done:
				p.recvW.end(t)
				p.r.stopped()
				return
			}
			p.recvW.end(t)
		}
		if !ok {
			next.end()
			return
		}
		if p.q != nil {
			p.q.queued.Add(-int64(len(b)))
			if p.cnt != nil {
				p.cnt.add(len(b), 0)
			}
		}
		for _, v := range b {
			if p.r.stopping() {
				p.r.stopped()
				return
			}
			if !next.push(v) {
				return
			}
		}
		clear(b) // drop references so recycled buffers do not pin memory
		p.free <- b[:0]
	}
}

// A stageJob is one chunk of work of a pool: the inputs, the outputs the
// worker made of them, and the chunk's place in the input order. Input and
// output travel in the same object so one fixed set of jobs bounds both.
type stageJob[T, U any] struct {
	seq uint64 // consecutive per pool, assigned when the job is sent
	in  []T    // filled by the sender, up to stagePoolChunk items
	out []U    // filled by a worker; any length (Filter, FlatMap)
}

// stagePool runs a stage's function on cfg.workers goroutines. The sender
// side (the upstream goroutine) implements stageSink[T]; the workers take
// jobs from work and put them on results; one merge goroutine emits the
// outputs into the next sink, in arrival order or, with Ordered, in input
// order, and recycles the jobs.
type stagePool[T, U any] struct {
	r       *stageRun
	cfg     *stageConfig
	step    stageStep[T, U]
	limit   int
	work    chan *stageJob[T, U]
	results chan *stageJob[T, U]
	free    chan *stageJob[T, U]
	idle    atomic.Int32 // workers parked or about to park (a hint)
	live    atomic.Int32 // workers that have not seen work closed

	// Owned by the sender.
	cur  *stageJob[T, U]
	made int
	seq  uint64

	// Set when the run is monitored (see monWire), nil otherwise.
	workW, resW, sendW *monWait // workers, merge and the sender waiting
	inq, outq          *monEdge // items sent to workers; items done, not yet merged
	mb                 *monMember
}

// stagePoolLimit is the number of jobs of a pool of n workers: the bound
// on its items in flight and on its reorder memory (limit × stagePoolChunk
// items). Each worker needs one job to work on and one waiting, the ends
// one each, and then as many again: a worker that finishes a job hands it
// to merge, whose goroutine usually cannot run until some worker parks (on
// two cores both are busy), so with only the minimum the workers would run
// dry while merge waits for a core. Twice the minimum lets merge and the
// sender run rarely and in long batches. Eight jobs more on top keep a
// small pool from running dry in the gap between a worker parking and
// the sender, woken by merge, refilling work: with two workers on two
// cores that gap idled a core often enough to cost 1 µs items about 4%
// (measured: 1.73× one worker's throughput before, 1.87× after).
func stagePoolLimit(n int) int { return 4*n + 12 }

func newStagePool[T, U any](r *stageRun, cfg *stageConfig, step stageStep[T, U], next stageSink[U]) stageSink[T] {
	n := cfg.workers
	limit := stagePoolLimit(n)
	p := &stagePool[T, U]{r: r, cfg: cfg, step: step, limit: limit,
		work:    make(chan *stageJob[T, U], limit),
		results: make(chan *stageJob[T, U], limit),
		free:    make(chan *stageJob[T, U], limit),
	}
	p.live.Store(int32(n))
	if r.mon != nil {
		p.monWire(r.mon)
	}
	for range n {
		r.spawn(p.worker)
	}
	r.spawn(func() { p.merge(next) })
	return p
}

// monWire records the pool in a monitored run. The node being wired is the
// one merge drives; when it has no stage of its own, merge is the pool's
// output and its node becomes the pool's. The sender gets a new node.
func (p *stagePool[T, U]) monWire(r *monRun) {
	g := r.cur
	node := g
	if len(g.members) == 0 && g.kind == "stage" {
		// merge's wait for finished jobs is internal to the pool: not
		// shown, but it still publishes the counts merge keeps.
		p.resW = &monWait{node: g, start: r.start}
	} else {
		p.resW = &g.in
		p.outq = &monEdge{kind: "chunks", cap: p.limit * stagePoolChunk}
		r.edges = append(r.edges, p.outq)
		node = r.newNode("pool")
	}
	node.kind, node.workers = "pool", p.cfg.workers
	node.in.nopub = true // the workers own none of the node's plain counts
	p.workW = &node.in
	p.mb = r.member(p.cfg.kind, p.cfg.name)
	p.mb.c.shared, p.mb.c.same = true, false
	p.inq = r.addEdge("chunks", p.limit*stagePoolChunk)
	p.sendW = &r.cur.out
}

// push is stagePipe.push for a pool: the same full-or-idle rule, with idle
// counting parked workers rather than flagging one receiver.
func (p *stagePool[T, U]) push(v T) bool {
	if p.cur == nil && !p.take() {
		return false
	}
	p.cur.in = append(p.cur.in, v)
	if len(p.cur.in) >= stagePoolChunk || p.idle.Load() > 0 {
		p.send()
	}
	return true
}

// flush and end are as for stagePipe; end closes work, and the last worker
// to see that closes results, so merge ends only after every job is out.
func (p *stagePool[T, U]) flush() bool {
	if p.cur != nil && len(p.cur.in) > 0 {
		p.send()
	}
	return true
}

func (p *stagePool[T, U]) end() {
	p.flush()
	close(p.work)
}

// take is stagePipe.take for jobs. With Ordered, the wait for a free job is
// also what bounds reorder memory: while the job holding the oldest items
// is still being worked on, it cannot come back, and once all limit jobs
// are out the sender stops.
func (p *stagePool[T, U]) take() bool {
	select {
	case p.cur = <-p.free:
		return true
	default:
	}
	if p.made < p.limit {
		p.made++
		p.cur = &stageJob[T, U]{in: make([]T, 0, stagePoolChunk)}
		return true
	}
	t := p.sendW.begin()
	defer p.sendW.end(t)
	select {
	case p.cur = <-p.free:
		return true
	case <-p.r.done:
		p.r.stopped()
		return false
	}
}

func (p *stagePool[T, U]) send() {
	j := p.cur
	p.cur = nil
	j.seq = p.seq
	p.seq++
	// This send wakes at most one parked worker; count it as no longer
	// idle so the next items gather into a fuller chunk. Only the sender
	// decrements, so the check-then-add cannot go below zero.
	if p.idle.Load() > 0 {
		p.idle.Add(-1)
	}
	if p.inq != nil {
		p.inq.queued.Add(int64(len(j.in)))
	}
	p.work <- j // never blocks: limit jobs exist, work holds limit
}

// worker runs the stage function over whole jobs. It checks the run before
// each item, not only between jobs, so that a failure elsewhere stops a
// slow function's chunk after the current item rather than after up to
// stagePoolChunk of them. It raises idle only on the slow path, just before
// parking: a worker that always finds work queued never touches it.
func (p *stagePool[T, U]) worker() {
	ctx := p.r.ctx
	for {
		var j *stageJob[T, U]
		var ok bool
		select {
		case j, ok = <-p.work:
		default:
			p.idle.Add(1)
			t := p.workW.begin()
			select {
			case j, ok = <-p.work:
			case <-p.r.done:
				p.workW.end(t)
				p.r.stopped()
				return
			}
			p.workW.end(t)
		}
		if !ok {
			// The last worker out tells merge that nothing more
			// will come.
			if p.live.Add(-1) == 0 {
				close(p.results)
			}
			return
		}
		if p.inq != nil {
			p.inq.queued.Add(-int64(len(j.in)))
		}
		out := j.out[:0]
		for _, v := range j.in {
			if p.r.stopping() {
				p.r.stopped()
				return
			}
			var err error
			if out, err = p.step(ctx, v, out); err != nil {
				p.mb.fail()
				p.r.fail(p.cfg.wrap(err))
				return
			}
		}
		if p.mb != nil {
			p.mb.c.add(len(j.in), len(out))
			if p.outq != nil {
				p.outq.queued.Add(int64(len(out)))
			}
		}
		// The inputs are done with; clear them now, on the worker,
		// rather than on merge, which is the pool's serial part.
		clear(j.in)
		j.in = j.in[:0]
		j.out = out
		p.results <- j // never blocks
		// The send readied merge into this processor's next slot, where
		// it waits while the workers keep both processors busy; the jobs
		// it would recycle pile up in results, the sender waits for them,
		// and the workers run dry all at once. When few jobs are left to
		// work on while more wait for merge, yield: merge and the sender
		// then run here, in one batch, while the other workers still have
		// jobs, instead of after every worker has parked (measured with
		// 1 µs items on two processors: about a tenth of the time idle
		// before, and two workers 1.8× one).
		if len(p.work) <= p.cfg.workers && len(p.results) > p.cfg.workers {
			runtime.Gosched()
		}
	}
}

// merge emits the workers' output into next. With Ordered, jobs that arrive
// early wait in ring, indexed by seq modulo limit: every job not yet emitted
// holds one of the limit buffers and seqs are handed out consecutively, so
// the jobs waiting always have distinct slots.
func (p *stagePool[T, U]) merge(next stageSink[U]) {
	var ring []*stageJob[T, U]
	var want uint64
	if p.cfg.ordered {
		ring = make([]*stageJob[T, U], p.limit)
	}
	for {
		var j *stageJob[T, U]
		var ok bool
		select {
		case j, ok = <-p.results:
		default:
			if !next.flush() {
				return
			}
			t := p.resW.begin()
			select {
			case j, ok = <-p.results:
			case <-p.r.done:
				p.resW.end(t)
				p.r.stopped()
				return
			}
			p.resW.end(t)
		}
		if !ok {
			next.end()
			return
		}
		if p.outq != nil {
			p.outq.queued.Add(-int64(len(j.out)))
		}
		// Unordered: emit whatever finished first. Ordered: park the
		// job in its slot, then emit every job that is now next in
		// line; a job that finished early waits for its predecessors.
		if ring == nil {
			if !p.emit(j, next) {
				return
			}
			continue
		}
		ring[j.seq%uint64(p.limit)] = j
		for {
			k := want % uint64(p.limit)
			j := ring[k]
			if j == nil || j.seq != want {
				break
			}
			ring[k] = nil
			want++
			if !p.emit(j, next) {
				return
			}
		}
	}
}

// emit pushes a job's outputs into next and gives the job back to the
// sender. The outputs are cleared first so that a recycled job does not
// keep the items it carried reachable.
func (p *stagePool[T, U]) emit(j *stageJob[T, U], next stageSink[U]) bool {
	for _, u := range j.out {
		if p.r.stopping() {
			p.r.stopped()
			return false
		}
		if !next.push(u) {
			return false
		}
	}
	clear(j.out)
	j.out = j.out[:0]
	p.free <- j // never blocks
	return true
}
