package conc

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

// poolWorker is the state of one worker goroutine. It lives on the heap,
// apart from the goroutine, so that when a job calls runtime.Goexit the
// goroutine can die and a replacement can pick up exactly where it was: the
// jobs taken and not yet run and any result not yet delivered.
type poolWorker[J, R any] struct {
	_ [64]byte // keeps the counters off other workers' cache lines
	// The outcomes of this worker's jobs. Only the worker writes them; Stats
	// adds them up under the pool's lock, where no job can be taken, so a
	// snapshot still adds up. Counting here rather than under the lock lets
	// a worker count and deliver each result as its job ends while taking
	// the lock once per batch.
	completed, failed, panicked, notRun atomic.Uint64

	job    J
	hasJob bool // job was taken and has not been run yet
	// batch[bh:bn] are further jobs taken with job, in queue order, not yet
	// started; they count as Running (see takeLocked). The slots and bn
	// are written only by the worker, under the pool's lock, and only
	// while the batch is empty. bh moves by CAS: the worker takes one job
	// without the lock, another worker steals under the lock (stealLocked),
	// and the CAS decides who gets a job both read.
	batch   [poolBatch]J
	bh      atomic.Int32
	bn      int32
	batched bool // counted in Pool.batched
	// res is the finished job's Result, counted and waiting for delivery.
	res    Result[J, R]
	hasRes bool
	// inUser says which user code the worker is inside, so the deferred
	// exit hook can tell a runtime.Goexit (user code neither returned nor
	// panicked) from the worker's normal exit.
	inUser uint8
	cancel context.CancelFunc // per-job timeout, when JobTimeout is set
	// takes counts the worker's takes from the queue or from another's
	// batch; one in poolTimeEvery is timed: t0 is when it started (since
	// Pool.epoch) and ran how many of its jobs this worker has started,
	// for Pool.noteBatchLocked when the worker comes back for more.
	takes uint32
	timed bool
	ran   int32
	t0    time.Duration
	_     [64]byte
}

const (
	inNothing uint8 = iota
	inFn
	inCallback
)

// poolBatch is the most jobs a worker takes per acquisition of the pool's
// lock. See takeLocked for when it takes more than one.
const poolBatch = 8

// spinLimit is how many times an otherwise idle worker yields the processor,
// checking for new jobs in between, before it parks. Parking a goroutine and
// waking it again costs a few hundred nanoseconds, as much as a job of a
// microsecond or so; workers that keep pulling such jobs without parking
// are what lets them use most of the machine (see "What things cost" in
// docs/ARCHITECTURE.md). Jobs far shorter than a wake-up do not need it,
// and do not get it (see Pool.short).
// Only one worker spins at a time, the way the Go scheduler limits its
// spinning threads, so an idle pool burns at most one processor for a few
// microseconds before it goes quiet.
const spinLimit = 16

// The short-job mode: a worker times one take in poolTimeEvery, from when
// it has its jobs until it comes back for more, so a timed batch costs two
// monotonic clock reads shared by poolTimeEvery takes. A timed batch
// whose jobs took under poolShortJob each, their delivery included, sets
// Pool.short; poolSlowBatches timed batches in a row that took longer
// clear it.
const (
	poolTimeEvery   = 8
	poolShortJob    = 500 * time.Nanosecond
	poolSlowBatches = 4
)

// work is a worker goroutine's body: deliver the last result, take a job,
// run it, repeat, until the pool is closed and its queue empty.
func (p *Pool[J, R]) work(w *poolWorker[J, R]) {
	defer p.workerExit(w)
	for {
		// A replacement for a goroutine that ended inside the job may start
		// with its result to deliver, and one that ended inside OnResult
		// with a job already taken.
		if w.hasRes {
			p.deliver(w)
		}
		if !w.hasJob && !p.next(w) {
			return
		}
		p.run(w)
	}
}

// next takes the worker's next job into w.job: from its batch if it holds
// one, else from the queue. It returns false when the pool is closed and
// drained; the worker has then been removed from live. The worker has no
// result left to deliver when it calls next, so Results never closes under
// a sender.
func (p *Pool[J, R]) next(w *poolWorker[J, R]) bool {
	for {
		h := w.bh.Load()
		if h >= w.bn {
			break
		}
		job := w.batch[h]
		if w.bh.CompareAndSwap(h, h+1) {
			w.job, w.hasJob = job, true
			w.ran++
			return true
		}
	}
	var took time.Duration
	timed := w.timed
	if timed {
		took = time.Since(p.epoch) - w.t0
		w.timed = false
	}
	// searching says whether this worker is counted in p.searching: it is
	// when spinning, and from the moment a signaller picks it.
	spun, searching := false, false
	p.mu.Lock()
	if timed {
		p.noteBatchLocked(took, w.ran)
	}
	p.dropBatchLocked(w)
	for {
		if p.n == 0 && p.wh < len(p.wq) {
			// The direct hand-off of QueueSize(0): submitters wait
			// until a worker comes for their job, and this is one.
			p.admitLocked()
		}
		if p.n > 0 {
			if searching {
				p.searching--
			}
			p.takeLocked(w)
			yield := p.woke && p.n <= p.limit/2
			p.mu.Unlock()
			if yield {
				runtime.Gosched() // see Pool.woke
			}
			p.took(w)
			return true
		}
		if p.batched > 0 && p.stealLocked(w) {
			if searching {
				p.searching--
			}
			p.mu.Unlock()
			p.took(w)
			return true
		}
		if p.closed {
			p.exitLocked(searching)
			return false
		}
		if !spun && !p.short && (searching || p.searching == 0) && p.multi {
			// On one processor spinning only delays the goroutine we wait
			// for, so it is skipped there; with short jobs it does the
			// same at any count: the next job comes from a submitter that
			// needs the processor the spinner holds, and a short job ends
			// before a parked worker would have woken, so spinning saves
			// no wake-up worth its cost (see Pool.short).
			if !searching {
				searching = true
				p.searching++
			}
			spun = true
			p.spinLocked()
			continue
		}
		// Park. sync.Cond rather than a channel per worker: Wait releases
		// mu atomically with parking, so a push between our check of n
		// and the park cannot be missed, and Signal wakes exactly one.
		if searching {
			searching = false
			p.searching--
		}
		p.idle++
		p.wake.Wait()
		// Whoever woke us took us off idle and counted us as searching.
		searching, spun = true, false
	}
}

// took counts a take by w, from the queue or from another's batch, and
// starts timing it if it is the one in poolTimeEvery.
func (p *Pool[J, R]) took(w *poolWorker[J, R]) {
	w.takes++
	if w.takes%poolTimeEvery == 0 {
		w.timed, w.ran = true, 1
		w.t0 = time.Since(p.epoch)
	}
}

// noteBatchLocked records a timed batch that ran jobs in d: it sets
// p.short when they took under poolShortJob each, and clears it after
// poolSlowBatches timed batches in a row that took longer.
func (p *Pool[J, R]) noteBatchLocked(d time.Duration, jobs int32) {
	if d < poolShortJob*time.Duration(jobs) {
		p.short, p.slow = true, 0
		return
	}
	if p.slow < poolSlowBatches {
		p.slow++
	}
	if p.slow == poolSlowBatches {
		p.short = false
	}
}

// takeLocked moves the oldest queued job into w.job, and when the queue
// holds at least four jobs for every worker also the next ones, up to
// poolBatch in all, into w.batch. It lets blocked submitters' jobs into the
// freed slots, oldest first, and wakes another worker if jobs remain and
// nobody is looking for them.
//
// A batch spares the worker the lock, a cache-line transfer between
// processors, for all but one job in poolBatch. It is taken only from a
// queue long enough that every worker could take as much, so that it
// does not leave other workers idle; a worker that is slow on one job
// holds the rest of its batch back until that job ends. QueueSize(0)
// never queues more jobs than there are workers, so each takes one.
func (p *Pool[J, R]) takeLocked(w *poolWorker[J, R]) {
	k := min(p.n/(2*p.live), poolBatch)
	k = max(k, 1)
	var zero J
	for i := range k {
		job := p.ring[p.head]
		p.ring[p.head] = zero // do not keep the job reachable from the ring
		p.head++
		if p.head == len(p.ring) {
			p.head = 0
		}
		if i == 0 {
			w.job, w.hasJob = job, true
		} else {
			w.batch[i-1] = job
		}
	}
	w.bh.Store(0)
	w.bn = int32(k - 1)
	if k > 1 {
		w.batched = true
		p.batched++
	}
	p.n -= k
	if p.searching > 0 {
		p.queued.Store(int32(p.n))
	}
	p.st.Queued -= k
	// The freed slots go to the oldest blocked submitters: their jobs move
	// in now, so the queue never looks less full than it is, and the
	// submitters wake to an answer instead of racing for the slot.
	for p.wh < len(p.wq) && p.roomLocked() {
		p.admitLocked()
	}
	if p.n > 0 && p.idle > 0 && p.searching == 0 {
		p.idle--
		p.searching++
		p.wake.Signal()
	}
}

// dropBatchLocked forgets w's batch, which it has run or lost to thieves:
// the slots no longer keep its jobs reachable, and w no longer counts in
// Pool.batched.
func (p *Pool[J, R]) dropBatchLocked(w *poolWorker[J, R]) {
	clear(w.batch[:w.bn])
	w.bh.Store(0)
	w.bn = 0
	if w.batched {
		w.batched = false
		p.batched--
	}
}

// stealLocked takes the older half (rounded up) of the jobs another worker
// holds in its batch and has not started, for a worker that found the
// queue empty: a worker busy with a slow job must not keep the rest of its
// batch from workers that are free. It reports whether it found any.
func (p *Pool[J, R]) stealLocked(w *poolWorker[J, R]) bool {
	for _, v := range p.workers {
		if v == w || !v.batched {
			continue
		}
		for {
			h := v.bh.Load()
			m := (v.bn - h + 1) / 2
			if m <= 0 {
				break
			}
			w.job = v.batch[h]
			copy(w.batch[:m-1], v.batch[h+1:h+m])
			if v.bh.CompareAndSwap(h, h+m) {
				w.hasJob = true
				w.bn = m - 1
				if m > 1 {
					w.batched = true
					p.batched++
				}
				return true
			}
		}
	}
	var zero J
	w.job = zero
	clear(w.batch[:])
	return false
}

// admitLocked moves the oldest blocked submitter's job into the queue and
// tells it so.
func (p *Pool[J, R]) admitLocked() {
	wt := p.wq[p.wh]
	p.wq[p.wh] = nil
	p.wh++
	if p.wh == len(p.wq) {
		p.wq, p.wh = p.wq[:0], 0
	}
	p.pushLocked(wt.job)
	wt.done = true
	wt.ch <- struct{}{} // capacity 1 and one token per waiter: never blocks
	p.woke = true
}

// run runs the job in w.job, records its Result in w and counts its
// outcome; the Result is delivered next.
func (p *Pool[J, R]) run(w *poolWorker[J, R]) {
	var zero J
	job := w.job
	w.job, w.hasJob = zero, false
	w.res.Job = job
	// A job taken before Stop gave up, but not started, is reported rather
	// than run: Stop promised that nothing new starts after its deadline.
	if p.aborted.Load() {
		w.res.Err = p.notRun
		w.notRun.Add(1)
		w.hasRes = true
		return
	}
	// The timeout context is made per job, when the job starts, so time a
	// job spends queued does not count against it.
	ctx := p.jobCtx
	if p.timeout > 0 {
		ctx, w.cancel = context.WithTimeout(ctx, p.timeout)
	}
	// No deferred recover per job: a panic unwinds the worker goroutine to
	// workerExit, which reports it and starts a replacement. That costs a
	// goroutine per panic instead of a defer and a recover call per job.
	w.inUser = inFn
	v, err := p.fn(ctx, job)
	w.inUser = inNothing
	if w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
	w.res.Value, w.res.Err = v, err
	// Panicked counts only panics raised in this pool (see workerExit); a
	// *PanicError that fn returns, relayed from nested work, is an error.
	if err != nil {
		w.failed.Add(1)
	} else {
		w.completed.Add(1)
	}
	w.hasRes = true
}

// deliver hands the worker's pending Result to the callback or the Results
// channel. Once Stop's context has ended it no longer waits for room in the
// channel: what does not fit is counted in Dropped.
func (p *Pool[J, R]) deliver(w *poolWorker[J, R]) {
	if !w.hasRes {
		return
	}
	r := w.res
	w.res, w.hasRes = Result[J, R]{}, false
	if p.onResult != nil {
		w.inUser = inCallback
		p.onResult(r)
		w.inUser = inNothing
		return
	}
	// The non-blocking attempt first keeps the common case cheap and, once
	// aborted, gives a result that fits priority over dropping it.
	select {
	case p.results <- r:
		// No yield for the reader here, as a woken submitter gets (see
		// Pool.woke): with the default buffer (twice the queue, up to
		// 2048), one as the channel crossed half full measured slower
		// (bench_pool_test.go).
		return
	default:
	}
	if !p.aborted.Load() {
		select {
		case p.results <- r:
			return
		case <-p.abort:
		}
	}
	p.dropped.Add(1)
}

// workerExit runs as the worker goroutine ends, and is where a panic in
// user code lands. Ending inside user code means that code panicked or
// called runtime.Goexit (it neither returned nor panicked when recover
// reports nil). A job's panic becomes its *PanicError and a Goexit its
// errGoexit; a panic in OnResult is counted in Dropped, a Goexit there
// counts the result as delivered. Then a new goroutine takes over w, so the
// pool keeps its size and Close still completes.
func (p *Pool[J, R]) workerExit(w *poolWorker[J, R]) {
	v := recover()
	switch w.inUser {
	case inNothing:
		if v != nil {
			panic(v) // a bug in this package: do not hide it
		}
		return
	case inFn:
		if w.cancel != nil {
			w.cancel()
			w.cancel = nil
		}
		var zero R
		w.res.Value = zero
		w.res.Err = recovered(v)
		if v != nil {
			w.panicked.Add(1)
		} else {
			w.failed.Add(1)
		}
		w.hasRes = true
	case inCallback:
		if v != nil {
			p.dropped.Add(1)
		}
	}
	w.inUser = inNothing
	p.spawn(w)
}

// exitLocked ends a worker of a pool that is closed and drained; p.mu is
// held on entry and released. The last worker out closes Results and done:
// every other worker has delivered its last result by now (work delivers a
// result before it calls next), so no send can race with the close.
func (p *Pool[J, R]) exitLocked(searching bool) {
	if searching {
		p.searching--
	}
	p.live--
	last := p.live == 0
	p.mu.Unlock()
	if last {
		close(p.results)
		p.cancelJob(ErrClosed) // release the context; no job is left to see it
		close(p.done)
	}
}

// spinLocked lets go of p.mu and yields a few times while no job is
// queued, before the worker parks; p.mu is held again on return.
func (p *Pool[J, R]) spinLocked() {
	p.queued.Store(0) // n is 0 here; see Pool.queued
	p.mu.Unlock()
	for i := 0; i < spinLimit && p.queued.Load() == 0 && !p.closedA.Load(); i++ {
		runtime.Gosched()
	}
	p.mu.Lock()
}

// spawn starts a worker goroutine over w. (A go statement naming a generic
// method directly inside NewPool trips a compiler bug in Go 1.26.)
func (p *Pool[J, R]) spawn(w *poolWorker[J, R]) {
	go p.work(w)
}
