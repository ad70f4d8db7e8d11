package conc

import (
	"fmt"
	"sync"
	"time"
)

// Batch returns a Stage that groups items into slices of up to size, in
// input order. A batch is passed on as soon as it holds size items; with
// maxWait > 0 it is also passed on maxWait after its first item arrived,
// however few items it holds, so that a trickle of input is not held back
// indefinitely. The last, partial batch is passed on when the input ends.
// With maxWait == 0 a batch waits for size items or the end of the input.
//
// Every batch is a new slice that the receiver owns. size is a limit, not
// a buffer: a batch starts small and grows as items arrive, so a huge size
// with a maxWait (math.MaxInt, say) batches by time alone. Batch panics if
// size < 1 or maxWait < 0.
//
// A Batch with maxWait > 0 starts one goroutine per run to watch the clock
// (a single timer, reset per batch); the stages after it are then called
// from either that goroutine or the one feeding the batch, never both at
// once. Time is read only through the time package, so testing/synctest
// controls it, and nothing a Batch waits on hides from a bubble: a later
// stage may sleep on the bubble's clock while the input keeps coming.
func Batch[T any](size int, maxWait time.Duration) Stage[T, []T] {
	checkPositive("Batch size", size)
	if maxWait < 0 {
		panic(fmt.Sprintf("conc: Batch maxWait must not be negative, got %v", maxWait))
	}
	if maxWait == 0 {
		return Stage[T, []T]{
			build: func(r *stageRun, next stageSink[[]T]) stageSink[T] {
				return &stageBatch[T]{size: size, next: next, mb: r.monMember("batch", "")}
			},
			inline: true,
			buffer: -1,
		}
	}
	return Stage[T, []T]{
		build: func(r *stageRun, next stageSink[[]T]) stageSink[T] {
			b := &stageTimedBatch[T]{r: r, size: size, maxWait: maxWait, next: next,
				timer: time.NewTimer(maxWait), quit: make(chan struct{}), emit: make(chan struct{}, 1)}
			if r.mon != nil {
				// Two goroutines push into the stages from here on.
				b.mb = r.monMember("batch", "")
				r.mon.share()
			}
			b.timer.Stop() // armed by the first item of each batch
			r.spawn(b.watch)
			return b
		},
		buffer: -1,
	}
}

// stageBatch is Batch without a time limit: a fused sink.
type stageBatch[T any] struct {
	size int
	cur  []T
	next stageSink[[]T]
	mb   *monMember // nil unless the run is monitored
}

// batchFirstCap is the most a new batch reserves before its items arrive.
// A batch up to this size is allocated once, at its full size; a larger one
// grows by append from here, so that its size stays a limit and never
// becomes an allocation of size elements.
const batchFirstCap = 256

// newBatch returns an empty batch for a Batch of the given size. The
// receiver owns every batch, so none can be recycled.
func newBatch[T any](size int) []T {
	return make([]T, 0, min(size, batchFirstCap))
}

// push adds v to the current batch and passes the batch on when it is
// full.
func (b *stageBatch[T]) push(v T) bool {
	if b.cur == nil {
		b.cur = newBatch[T](b.size)
	}
	b.cur = append(b.cur, v)
	if len(b.cur) < b.size {
		if b.mb != nil {
			b.mb.c.tick(0)
		}
		return true
	}
	if b.mb != nil {
		b.mb.c.tick(1)
	}
	full := b.cur
	b.cur = nil
	return b.next.push(full)
}

// flush passes the request on but keeps the partial batch: "no input is
// ready now" is exactly when a batch should keep waiting for more.
func (b *stageBatch[T]) flush() bool { return b.next.flush() }

// end passes on the last, partial batch; an empty one is never emitted.
func (b *stageBatch[T]) end() {
	if len(b.cur) > 0 && b.mb != nil {
		b.mb.c.more(1)
	}
	if len(b.cur) > 0 && !b.next.push(b.cur) {
		return
	}
	b.next.end()
}

// stageTimedBatch is Batch with a time limit. It is fused into the
// goroutine that feeds it, so an item joins its batch the moment it is
// produced and the clock starts from the real arrival of the first item,
// not from whenever a chunk carrying it would cross a boundary. The watch
// goroutine only wakes when a batch has aged maxWait.
//
// Both goroutines cut batches and push them into next, so two locks order
// them. mu guards the batch being filled (cur and start); it is held only
// for bookkeeping, never while a later stage runs. emit is held by whoever
// is calling next; a batch is cut under mu and emit is taken before mu is
// let go, so batches reach next in the order they were cut. emit is a
// channel of one token rather than a sync.Mutex because its holder may
// wait for a long time (a later stage's function, or its backpressure),
// and a goroutine waiting on a channel counts as durably blocked for
// testing/synctest while one waiting on a mutex does not: with a mutex
// there, a test whose later stage sleeps on the bubble's clock would see
// that clock stop. Both are released by defer or before any user code
// runs, so a panic in a later stage, which unwinds through here to the
// run's guard, cannot leave the other goroutine waiting forever.
type stageTimedBatch[T any] struct {
	r       *stageRun
	size    int
	maxWait time.Duration
	timer   *time.Timer
	quit    chan struct{} // closed by end: the watch goroutine exits
	emit    chan struct{} // holds a token while its sender may call next
	mb      *monMember    // nil unless the run is monitored; counts shared

	mu    sync.Mutex
	cur   []T
	start time.Time // when cur got its first item
	next  stageSink[[]T]
}

// push is stageBatch.push plus the clock: the first item of a batch records
// when it came and arms the timer. One time.Now per batch, not per item,
// keeps the clock off the per-item path, and the per-item path takes mu
// alone.
func (b *stageTimedBatch[T]) push(v T) bool {
	b.mu.Lock()
	if len(b.cur) == 0 {
		b.cur = newBatch[T](b.size)
		b.start = time.Now()
		b.timer.Reset(b.maxWait)
	}
	b.cur = append(b.cur, v)
	if b.mb != nil {
		b.mb.c.add(1, 0)
	}
	if len(b.cur) < b.size {
		b.mu.Unlock()
		return true
	}
	// Since Go 1.23 a stopped timer delivers no stale tick, so the
	// watcher cannot cut the next batch short because of this one.
	b.timer.Stop()
	full := b.cur
	b.cur = nil
	return b.handOn(full, false)
}

// handOn passes a batch just cut under mu to next, and then, if flush is
// set, a flush. The caller holds mu; handOn takes emit before it releases
// mu (so no later batch can overtake this one) and releases emit when next
// is done.
func (b *stageTimedBatch[T]) handOn(batch []T, flush bool) bool {
	if b.mb != nil {
		b.mb.c.add(0, 1)
	}
	b.emit <- struct{}{}
	b.mu.Unlock()
	defer func() { <-b.emit }()
	if !b.next.push(batch) {
		return false
	}
	return !flush || b.next.flush()
}

// flush passes the request on; it needs only emit, since it cuts nothing.
func (b *stageTimedBatch[T]) flush() bool {
	b.emit <- struct{}{}
	defer func() { <-b.emit }()
	return b.next.flush()
}

// end stops the clock, passes on the last batch and releases the watch
// goroutine. quit is closed even if next refuses the batch (the run is
// stopping), so the watcher never depends on the run's context alone.
func (b *stageTimedBatch[T]) end() {
	defer close(b.quit)
	b.mu.Lock()
	b.timer.Stop()
	last := b.cur
	b.cur = nil
	b.emit <- struct{}{}
	b.mu.Unlock()
	defer func() { <-b.emit }()
	if len(last) > 0 && b.mb != nil {
		b.mb.c.add(0, 1)
	}
	if len(last) > 0 && !b.next.push(last) {
		return
	}
	b.next.end()
}

// watch passes on a batch that has waited maxWait. It runs on its own
// goroutine of the run and exits when the input ends or the run stops.
func (b *stageTimedBatch[T]) watch() {
	for {
		select {
		case <-b.timer.C:
			if !b.expire() {
				return
			}
		case <-b.quit:
			return
		case <-b.r.done:
			b.r.stopped()
			return
		}
	}
}

// expire hands on the current batch if it is old enough. The timer may
// have fired just as the feeding goroutine filled that batch and began the
// next one; the start time tells the two apart, and a young batch only
// re-arms the timer for the time it still has. After the batch it flushes:
// nothing else is coming from this goroutine, so boundaries further down
// should hand the batch on now rather than wait to fill a chunk.
func (b *stageTimedBatch[T]) expire() bool {
	b.mu.Lock()
	if len(b.cur) == 0 {
		b.mu.Unlock()
		return true
	}
	if age := time.Since(b.start); age < b.maxWait {
		b.timer.Reset(b.maxWait - age)
		b.mu.Unlock()
		return true
	}
	due := b.cur
	b.cur = nil
	return b.handOn(due, true)
}
