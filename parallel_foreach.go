package conc

// The workers behind ForEach and ForEachAll (declared in parallel.go).

import (
	"context"
	"iter"
)

// feChunkCap bounds the batch a ForEach worker receives at once. Batches
// form only while every worker is busy (a worker already waiting gets the
// next item at once), so the cap trades the channel cost per item (1/32 of
// a hop) against how many items one worker may be left holding at the end,
// and how many may wait for a slow sequence (see forEachRun).
const feChunkCap = 32

// feFreeMax bounds the free list of batch buffers. Only the buffers of
// workers that finished a batch recently are worth keeping; with a large
// limit the free list would otherwise cost limit words per call (and
// overflow with math.MaxInt). Buffers that find it full fall to the GC.
const feFreeMax = 64

// feChunk is a batch of consecutive items; base is the index of the first.
type feChunk[T any] struct {
	base  int
	items []T
}

// feWork is one ForEach call's plumbing.
type feWork[T any] struct {
	r    *parRun
	fn   func(context.Context, T) error
	work chan feChunk[T] // unbuffered: a send succeeds only to a waiting worker
	free chan []T        // emptied batches, reused by the producer
}

// forEachRun is ForEach and ForEachAll. The calling goroutine reads the
// sequence; workers are started lazily, one per item, up to limit.
func forEachRun[T any](ctx context.Context, items iter.Seq[T], limit int, fn func(context.Context, T) error, all bool) (err error) {
	checkCtx(ctx)
	checkPositive("limit", limit)
	checkFunc("items", items == nil)
	checkFunc("fn", fn == nil)
	f := &feWork[T]{r: newParRun(ctx, all), fn: fn, work: make(chan feChunk[T]), free: make(chan []T, min(limit, feFreeMax)+1)}
	// n counts the items read from the sequence (the next item's index);
	// early records that reading stopped before the sequence ended.
	workers, n, early, finished := 0, 0, false, false
	var cur feChunk[T]
	defer func() {
		if !finished {
			err = f.seqEnded(recovered(recover()), cur, n, early)
		}
	}()
	for v := range items {
		if f.r.stop.Load() {
			early = true
			break
		}
		if cur.items == nil {
			cur = feChunk[T]{base: n, items: f.buf()}
		}
		cur.items = append(cur.items, v)
		n++
		// Workers start lazily, one per item, so a short sequence does not
		// pay for limit goroutines, and each starts with its first item
		// instead of a channel hand-over.
		if workers < limit {
			workers++
			f.r.wg.Add(1)
			f.spawn(cur, 0)
			cur = feChunk[T]{}
			continue
		}
		// Try a hand-over first: it succeeds only if a worker is waiting,
		// and then the batch goes out at once, full or not. A failed
		// non-blocking send is a few nanoseconds (no lock).
		//
		// What this cannot do is notice a worker that becomes free while
		// the sequence is computing its next item: a partial batch
		// formed while every worker was busy then waits for that next
		// item (or the end of the sequence) while the worker idles. An
		// iter.Seq gives no sign that its next item is slow; letting
		// idle workers take the batch would cost synchronisation on
		// every item. ForEach documents this, as Collect does.
		select {
		case f.work <- cur: // a worker was waiting: no batching delay
			cur = feChunk[T]{}
			continue
		default:
		}
		if len(cur.items) < feChunkCap {
			continue
		}
		// Every worker is busy and the batch is full: wait for one.
		if early = !f.send(cur); early {
			break
		}
		cur = feChunk[T]{}
	}
	// The sequence is exhausted; the last partial batch still has to go.
	if !early && cur.items != nil {
		early = !f.send(cur)
	}
	finished = true
	close(f.work)
	return f.r.finish(n, early)
}

// send hands c to a worker, waiting for one; false when the run was
// decided first (a first error, or ctx), which is what r.ctx ending means.
func (f *feWork[T]) send(c feChunk[T]) bool {
	select {
	case f.work <- c:
		return true
	case <-f.r.done:
		return false
	}
}

// seqEnded ends a run whose sequence panicked (perr is its *PanicError) or
// called runtime.Goexit (perr is errGoexit, and the Goexit carries on once
// the workers are done). cur, n and early are forEachRun's at that moment.
// A panic is reported like a panic in fn, as Collect and All report one in
// their input (contract 2 in docs/ARCHITECTURE.md); either way no worker
// outlives the call.
func (f *feWork[T]) seqEnded(perr error, cur feChunk[T], n int, early bool) error {
	if perr == errGoexit {
		f.r.stop.Store(true)
		close(f.work)
		return f.r.finish(n, true)
	}
	f.r.failSeq(perr)
	if f.r.all && !early && cur.items != nil {
		// ForEachAll runs what was read. Workers always keep receiving
		// until work closes, so this send cannot hang.
		f.work <- cur
	}
	close(f.work)
	return f.r.finish(n, early)
}

// buf returns an empty batch buffer, reusing one a worker has finished.
func (f *feWork[T]) buf() []T {
	select {
	case b := <-f.free:
		return b
	default:
		return make([]T, 0, feChunkCap)
	}
}

// spawn starts a worker on c.items[j:]; see mapWork.spawn.
func (f *feWork[T]) spawn(c feChunk[T], j int) { go f.run(c, j) }

// run processes c.items[j:] and then every batch received on work. After
// r.stop it keeps receiving, skipping the items, so the producer is never
// left blocked on a send. A call of fn that panics or calls runtime.Goexit
// ends the goroutine's loop; the deferred function records that item's
// error and a new goroutine carries on from the next item, so the items pay
// no deferred recover each and the limit of running workers is kept.
func (f *feWork[T]) run(c feChunk[T], j int) {
	done, cur := 0, -1
	defer func() {
		if cur >= 0 {
			f.r.failItem(c.base+cur, recovered(recover()))
			done++
			f.r.wg.Add(1)
			f.spawn(c, cur+1)
		}
		f.r.addRan(done)
		f.r.wg.Done()
	}()
	for {
		for ; j < len(c.items) && !f.r.stop.Load(); j++ {
			cur = j
			err := f.fn(f.r.ctx, c.items[j])
			cur = -1
			done++
			if err != nil {
				f.r.failItem(c.base+j, err)
			}
		}
		// Hand the buffer back for the producer's next batch; if the free
		// list is full the buffer is simply left to the GC.
		clear(c.items) // drop references to the items before reuse
		select {
		case f.free <- c.items[:0]:
		default:
		}
		var ok bool
		if c, ok = <-f.work; !ok {
			return
		}
		j = 0
	}
}
