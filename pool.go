package conc

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what a Pool reports for one accepted job: the job itself, the
// value its function returned and the error. Exactly one Result is produced
// per accepted job, whether the job succeeded, failed, panicked (Err is a
// *PanicError), called runtime.Goexit, or was never run because Stop gave up
// waiting (Err matches ErrClosed).
type Result[J, R any] struct {
	Job   J
	Value R
	Err   error
}

// PoolStats is a snapshot of a Pool's counters, taken under the pool's lock,
// so the identity
//
//	Submitted == Queued + Running + Completed + Failed + Panicked + NotRun
//
// holds in every snapshot. Rejected counts Submit and TrySubmit calls that
// did not add a job (pool full, closed, or the caller's context ended) and is
// not part of the identity. Dropped counts Results that could not be handed
// over: the Results channel was still full when Stop's context ended, or the
// OnResult callback panicked; the jobs themselves are already counted in
// Completed, Failed or Panicked.
type PoolStats struct {
	Submitted uint64 // jobs accepted
	Rejected  uint64 // submissions refused
	Queued    int    // accepted jobs waiting for a worker
	Running   int    // jobs a worker has taken and not yet finished (see Pool.Stats)
	Completed uint64 // jobs whose function returned a nil error
	Failed    uint64 // jobs whose function returned an error or called runtime.Goexit
	Panicked  uint64 // jobs whose function panicked
	NotRun    uint64 // queued jobs Stop reported without running them
	Dropped   uint64 // results that could not be delivered (see above)
}

// A Pool runs a function over submitted jobs with a fixed number of worker
// goroutines fed from a bounded queue, and reports one Result per job.
//
// Create one with NewPool; the zero value is not usable. A Pool is safe for
// concurrent use by any number of goroutines, including its own jobs (a job
// may Submit to its own pool; if the queue is full it blocks until its ctx
// ends, so give it one that does). Workers take jobs in submission order,
// and a single worker runs them, and reports them, in that order. While the
// queue holds more than four jobs per worker, a worker takes up to eight at
// once and runs them one after the other (an idle worker takes over the
// older half of those not started), so with more than one worker jobs may
// start and finish, and their Results arrive, in any order.
//
// The workers exist from NewPool until the pool is closed and drained (or
// stopped); an idle pool holds them parked, costing no CPU. Close or Stop
// every Pool, or its workers leak.
type Pool[J, R any] struct {
	fn       func(context.Context, J) (R, error)
	onResult func(Result[J, R])
	timeout  time.Duration
	results  chan Result[J, R]

	// jobCtx is the parent of every job's context. It is cancelled only when
	// Stop's context ends; sharing one context keeps the hot path free of
	// allocations (a per-job context costs two).
	jobCtx    context.Context
	cancelJob context.CancelCauseFunc
	// epoch is the base of the workers' batch timings: time.Since on a
	// time with a monotonic reading reads only the monotonic clock.
	epoch time.Time

	// The fields above are read by every worker for every job and never
	// written after NewPool (aborted, below, is read per job too, but
	// written once); mu is written by every Submit. Keeping them off mu's
	// cache line spares a worker a miss per job (measured: a few ns per
	// tiny job at 2 processors, see bench_pool_test.go).
	_  [64]byte
	mu sync.Mutex
	// ring is the job queue: n jobs starting at head. It is guarded by mu;
	// Submit and the workers each hold mu for a handful of instructions.
	// It starts small and doubles when full, up to limit (QueueSize), so a
	// large QueueSize costs memory only for the jobs that actually wait.
	// limit 0 is the direct hand-off: see roomLocked.
	ring    []J
	head, n int
	limit   int
	// wq holds the Submit calls blocked on a full queue, oldest at wh. A
	// worker that frees a slot moves the oldest waiter's job straight into
	// the queue, so blocked submitters are served in FIFO order and never
	// need the lock again after they wake.
	wq   []*poolWaiter[J]
	wh   int
	wait sync.Pool // *poolWaiter[J], recycled so blocking allocates nothing
	// idle is the number of workers parked in wake.Wait that nobody has
	// signalled yet; searching is the number looking for work: spinning
	// without the lock, or signalled and not yet back. A submitter wakes a
	// parked worker only when nobody searches, and a searcher that finds a
	// job wakes the next one only if jobs remain, the way the Go scheduler
	// wakes its threads: a burst of submissions wakes workers one chain
	// link at a time instead of one goroutine wake-up (several hundred
	// nanoseconds) per job.
	idle, searching int
	wake            sync.Cond
	live            int // worker goroutines not yet exited
	// batched is the number of workers that took a batch (see takeLocked)
	// and have not come back for more; only then may stealLocked find jobs.
	batched int
	closed  bool
	// multi caches GOMAXPROCS > 1 from NewPool: runtime.GOMAXPROCS(0)
	// takes the scheduler's global lock, too dear for every idle moment.
	// A later change only makes the spinning heuristic stale, never wrong.
	multi bool
	// short says the jobs are short: the last fast timed batch (see
	// Pool.noteBatchLocked) ran its jobs in under poolShortJob each, and
	// fewer than poolSlowBatches slow timed batches in a row have followed
	// it. While it is set, a worker that finds the queue empty parks at
	// once instead of spinning. slow counts the slow timed batches in a
	// row, up to poolSlowBatches. Both are guarded by mu: a worker updates
	// them when it comes back for the lock after a timed batch.
	short bool
	slow  int
	// woke is set when a worker has woken a blocked submitter and no
	// submitter has taken the lock since. The woken goroutine waits in the
	// waking processor's run queue, and the scheduler does not preempt a
	// busy worker for it, so with every processor running jobs the
	// submitter would not run until the queue ran dry, leaving workers
	// idle while it refills. Every worker that takes a job from a queue
	// at most half full while woke is set yields once, until the
	// submitter runs and clears it, letting it refill early.
	//
	// woke stays set until the submitter takes the lock (Submit clears
	// it): one yield is not enough when the woken submitter is not next in
	// line. A worker's send on Results also readies the reader into the
	// processor's next slot, which pushes the submitter to the back of the
	// run queue, behind the other workers; a single yield then runs the
	// reader or another worker, the queue runs dry and workers park
	// (measured: the park count fell from one per ninety jobs to one per
	// thousand, 1 µs jobs at 2 processors).
	woke bool
	// st holds Submitted, Rejected and Queued; the outcomes are counted
	// by the workers (poolWorker.completed and the rest) and Running
	// follows from the identity, Dropped lives in dropped.
	st      PoolStats
	workers []*poolWorker[J, R]

	// queued mirrors n for spinning workers, which read it without mu. It
	// is kept up to date only while one spins (searching > 0): an atomic
	// store per job on the lock holder's path is measurable.
	queued  atomic.Int32
	closedA atomic.Bool // mirror of closed, read by spinning workers
	aborted atomic.Bool // Stop's context ended: do not start jobs
	abort   chan struct{}
	done    chan struct{} // closed when the last worker has exited
	dropped atomic.Uint64
	stop    sync.Once
	notRun  error // Result.Err of jobs Stop did not run; set before aborted
}

// poolWaiter is one Submit call blocked on a full queue. err and done are
// written under the pool's mutex before the token is sent on ch.
type poolWaiter[J any] struct {
	job  J
	ch   chan struct{}
	err  error
	done bool
}

// NewPool starts a Pool of workers goroutines that call fn for every
// submitted job, with the context of the job (cancelled by Stop, and bounded
// by JobTimeout when set) and the job.
//
// It panics with a message starting "conc: " when workers < 1 or > 65536
// (they all start at once), fn is nil, an option is nil, an OnResult
// callback's type does not match the pool's, or ResultBuffer(n > 0) comes
// with OnResult.
func NewPool[J, R any](workers int, fn func(context.Context, J) (R, error), opts ...PoolOption) *Pool[J, R] {
	checkPositive("workers", workers)
	checkAtMost("workers", workers, maxWorkers)
	checkFunc("fn", fn == nil)
	cfg := poolConfig{queue: -1, results: -1}
	for i, o := range opts {
		checkOption("NewPool", i, o == nil)
		o.applyPool(&cfg)
	}
	if cfg.queue < 0 {
		// Thirty-two jobs per worker let a submitter run well ahead of the
		// workers, so that neither side parks and is woken for every job:
		// a submitter blocked on a full queue is woken, and refills it,
		// about once per half a queue of jobs (see bench_pool_test.go for
		// the figures against 16), while the memory a full pool holds
		// stays small.
		cfg.queue = 32 * workers
	}
	if cfg.onResult != nil && cfg.results > 0 {
		panic(fmt.Sprintf("conc: ResultBuffer(%d) does nothing with OnResult, which sends no result on the channel", cfg.results))
	}
	if cfg.results < 0 {
		cfg.results = 2 * min(max(cfg.queue, 1), poolFirstRing)
	}
	p := &Pool[J, R]{
		fn:      fn,
		timeout: cfg.timeout,
		ring:    make([]J, min(max(cfg.queue, 1), poolFirstRing)),
		limit:   cfg.queue,
		live:    workers,
		abort:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	if cfg.onResult != nil {
		cb, ok := cfg.onResult.(func(Result[J, R]))
		if !ok {
			panic(fmt.Sprintf("conc: OnResult callback is %T, the pool needs %v",
				cfg.onResult, reflect.TypeFor[func(Result[J, R])]()))
		}
		p.onResult = cb
		// Results still returns a channel, closed when the pool is done, so
		// `for range p.Results() {}` waits in both forms.
		p.results = make(chan Result[J, R])
	} else {
		p.results = make(chan Result[J, R], cfg.results)
	}
	p.multi = runtime.GOMAXPROCS(0) > 1
	p.epoch = time.Now()
	p.jobCtx, p.cancelJob = context.WithCancelCause(context.Background())
	p.wake.L = &p.mu
	p.wait.New = func() any { return &poolWaiter[J]{ch: make(chan struct{}, 1)} }
	p.workers = make([]*poolWorker[J, R], workers)
	for i := range p.workers {
		p.workers[i] = new(poolWorker[J, R])
		p.spawn(p.workers[i])
	}
	return p
}

// Submit adds job to the queue, blocking while the queue is full. It returns
// nil once the job is accepted (it will get exactly one Result), ErrClosed if
// the pool is closed or gets closed while Submit waits, and the context's
// error (errors.Is matches ctx.Err(); context.Cause is kept) if ctx ends
// first — a job submitting to its own full pool gets that error instead of
// a deadlock. A ctx that is already done never adds the job. A nil ctx
// panics with a conc: message.
func (p *Pool[J, R]) Submit(ctx context.Context, job J) error {
	checkCtx(ctx)
	if ctx.Err() != nil {
		p.mu.Lock()
		p.st.Rejected++
		p.mu.Unlock()
		return ctxErr(ctx)
	}
	p.mu.Lock()
	p.woke = false
	if p.closed {
		p.st.Rejected++
		p.mu.Unlock()
		return ErrClosed
	}
	if p.roomLocked() && p.wh == len(p.wq) {
		p.pushLocked(job)
		p.mu.Unlock()
		return nil
	}
	// No spinning here: a submitter that yields on a full queue competes
	// with the workers for the processors and measured slower (by a
	// quarter, short jobs at 2 processors) than one that parks at once and
	// is woken with its job already accepted.
	// Still full, or earlier submitters wait for room: queue up behind
	// them. The worker that frees a slot moves our job in and tells us.
	w := p.wait.Get().(*poolWaiter[J])
	w.job, w.err, w.done = job, nil, false
	p.wq = append(p.wq, w)
	p.mu.Unlock()

	select {
	case <-w.ch:
		return p.putWaiter(w)
	case <-ctx.Done():
	}
	p.mu.Lock()
	if w.done {
		// Served while ctx ended: the decision stands and the token is in
		// ch already (it is sent under mu).
		p.mu.Unlock()
		<-w.ch
		return p.putWaiter(w)
	}
	for i := p.wh; i < len(p.wq); i++ {
		if p.wq[i] == w {
			copy(p.wq[i:], p.wq[i+1:])
			p.wq[len(p.wq)-1] = nil
			p.wq = p.wq[:len(p.wq)-1]
			break
		}
	}
	p.st.Rejected++
	p.mu.Unlock()
	w.err = ctxErr(ctx)
	return p.putWaiter(w)
}

// growLocked doubles the ring, up to the queue's limit (or as far as the
// hand-off needs), keeping the queued jobs in order from index 0.
func (p *Pool[J, R]) growLocked() {
	size := 2 * len(p.ring)
	if p.limit > 0 {
		size = min(size, p.limit)
	}
	ring := make([]J, size)
	k := copy(ring, p.ring[p.head:])
	copy(ring[k:], p.ring[:p.head])
	p.ring, p.head = ring, 0
}

// putWaiter recycles w and returns the outcome it carried.
func (p *Pool[J, R]) putWaiter(w *poolWaiter[J]) error {
	err := w.err
	var zero J
	w.job, w.err = zero, nil
	p.wait.Put(w)
	return err
}

// TrySubmit adds job if the queue has room and the pool is open, and reports
// whether it did. It never blocks, and never overtakes Submit calls already
// waiting for room (while any waits, the queue counts as full).
func (p *Pool[J, R]) TrySubmit(job J) bool {
	p.mu.Lock()
	p.woke = false
	if p.closed || !p.roomLocked() || p.wh < len(p.wq) {
		p.st.Rejected++
		p.mu.Unlock()
		return false
	}
	p.pushLocked(job)
	p.mu.Unlock()
	return true
}

// poolFirstRing is the most slots a new pool's queue has before jobs wait.
const poolFirstRing = 1024

// roomLocked reports whether the queue may take one more job. With
// QueueSize(0) there is room only for as many jobs as there are workers
// parked or looking for work, so every accepted job has a worker to take
// it: a direct hand-off.
func (p *Pool[J, R]) roomLocked() bool {
	if p.limit == 0 {
		return p.n < p.idle+p.searching
	}
	return p.n < p.limit
}

// pushLocked appends job to the ring (which has room under limit) and
// makes sure some worker will see it.
func (p *Pool[J, R]) pushLocked(job J) {
	if p.n == len(p.ring) {
		p.growLocked()
	}
	i := p.head + p.n
	if i >= len(p.ring) {
		i -= len(p.ring)
	}
	p.ring[i] = job
	p.n++
	if p.searching > 0 {
		p.queued.Store(int32(p.n))
	}
	p.st.Submitted++
	p.st.Queued++
	if p.idle > 0 && p.searching == 0 {
		p.idle--
		p.searching++
		p.wake.Signal()
	}
}

// Results returns the channel on which every job's Result is delivered. It
// is closed once the pool is closed and every accepted job has been
// reported. Drain it, or a full channel stalls the workers (Stop's context
// still bounds that). With OnResult no Result is sent on it and it only
// closes, so ranging over it waits for the pool to finish.
func (p *Pool[J, R]) Results() <-chan Result[J, R] { return p.results }

// Close stops the pool from accepting jobs: later Submit and TrySubmit calls,
// and Submit calls blocked on a full queue right now, return ErrClosed or
// false. Jobs already accepted still run and are reported; Results closes
// after the last one. Close does not wait for them (use Stop for that), is
// idempotent and always returns nil.
func (p *Pool[J, R]) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.closedA.Store(true)
	for _, w := range p.wq[p.wh:] {
		w.err, w.done = ErrClosed, true
		p.st.Rejected++
		w.ch <- struct{}{}
	}
	clear(p.wq)
	p.wq, p.wh = p.wq[:0], 0
	// Idle workers must wake to find the queue empty and closed, and exit.
	p.searching += p.idle
	p.idle = 0
	p.wake.Broadcast()
	return nil
}

// Stop closes the pool and waits until every accepted job has been run and
// reported, or until ctx ends. In the second case it cancels the context of
// the jobs still running (with ctx's cause), reports every job not yet
// started with an error that matches ErrClosed and ctx's cause without
// running it, stops waiting on a full Results channel (those results are
// counted in Dropped), and returns ctx's error at once, without waiting for
// functions that ignore their context: their workers exit, and Results
// closes, when they return. Stop returns nil if the pool finished in time;
// it is safe to call more than once and with Close. A job that calls Stop
// on its own pool waits for itself: give it a context that ends.
func (p *Pool[J, R]) Stop(ctx context.Context) error {
	checkCtx(ctx) // before Close: a bad call changes nothing
	p.Close()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	}
	// Prefer success if both are ready: the work is done.
	select {
	case <-p.done:
		return nil
	default:
	}
	p.stop.Do(func() {
		cause := context.Cause(ctx)
		p.notRun = fmt.Errorf("%w: job not run: %w", ErrClosed, cause)
		p.aborted.Store(true)
		close(p.abort)
		p.cancelJob(cause)
	})
	return ctxErr(ctx)
}

// Stats returns a snapshot of the pool's counters; see PoolStats. A worker
// counts its job's outcome before it delivers the Result, so a Result the
// caller holds is always counted. A job counts as Running from the moment a
// worker takes it from the queue until its outcome is counted; the jobs a
// worker takes together (see Pool) all count as Running while it runs the
// first. Stats takes the pool's lock briefly and adds up each worker's
// counters; it is safe to call at any time.
func (p *Pool[J, R]) Stats() PoolStats {
	p.mu.Lock()
	s := p.st
	// No job is taken while mu is held, so every outcome read here belongs
	// to a job that has left Queued: Running, the rest, is never negative.
	for _, w := range p.workers {
		s.Completed += w.completed.Load()
		s.Failed += w.failed.Load()
		s.Panicked += w.panicked.Load()
		s.NotRun += w.notRun.Load()
	}
	p.mu.Unlock()
	s.Running = int(s.Submitted - uint64(s.Queued) - s.Completed - s.Failed - s.Panicked - s.NotRun)
	s.Dropped = p.dropped.Load()
	return s
}
