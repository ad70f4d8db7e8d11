package conc

import (
	"iter"
	"sync"
)

// The naive pools of the tutorials, the baselines of BenchmarkPool. They are
// written plainly on purpose: no context, no panic recovery, no stats.

// chanPool is the pool every Go tutorial shows: a jobs channel, a results
// channel, both of capacity size (0, or workers×2 as many tutorials have
// it), and workers ranging over jobs.
type chanPool struct {
	jobs    chan int
	results chan int
	wg      sync.WaitGroup
}

func newChanPool(size, workers int, fn func(int) int) *chanPool {
	return newChanPoolSized(size, size, workers, fn)
}

// newChanPoolSized is newChanPool with jobs and results channels of their
// own capacities.
func newChanPoolSized(jobs, results, workers int, fn func(int) int) *chanPool {
	p := &chanPool{
		jobs:    make(chan int, jobs),
		results: make(chan int, results),
	}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range p.jobs {
				p.results <- fn(j)
			}
		}()
	}
	go func() {
		p.wg.Wait()
		close(p.results)
	}()
	return p
}

func (p *chanPool) Submit(j int) { p.jobs <- j }
func (p *chanPool) Close()       { close(p.jobs) }

// mutexQueue is an unbounded FIFO of ints guarded by a mutex, with a
// sync.Cond to wait on while it is empty.
type mutexQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []int
	closed bool
}

func newMutexQueue() *mutexQueue {
	q := &mutexQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *mutexQueue) Push(v int) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *mutexQueue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// Pop waits for an item; ok is false once the queue is closed and empty.
func (q *mutexQueue) Pop() (v int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return 0, false
	}
	v = q.items[0]
	q.items = q.items[1:]
	return v, true
}

// mutexPool is the naive mutex pool: jobs and results each in a mutexQueue.
type mutexPool struct {
	jobs, results *mutexQueue
	wg            sync.WaitGroup
}

func newMutexPool(workers int, fn func(int) int) *mutexPool {
	p := &mutexPool{jobs: newMutexQueue(), results: newMutexQueue()}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				j, ok := p.jobs.Pop()
				if !ok {
					return
				}
				p.results.Push(fn(j))
			}
		}()
	}
	go func() {
		p.wg.Wait()
		p.results.Close()
	}()
	return p
}

// naiveMapN is the bounded-parallel map a tutorial writes: a semaphore
// channel and a goroutine per item.
func naiveMapN(items []int, limit int, fn func(int) int) []int {
	out := make([]int, len(items))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, v := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = fn(v)
			<-sem
		}()
	}
	wg.Wait()
	return out
}

// chanMapN feeds indexes to limit workers over a channel.
func chanMapN(items []int, limit int, fn func(int) int) []int {
	out := make([]int, len(items))
	idx := make(chan int)
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				out[i] = fn(items[i])
			}
		}()
	}
	for i := range items {
		idx <- i
	}
	close(idx)
	wg.Wait()
	return out
}

// mutexMapN lets limit workers take the next index under a mutex.
func mutexMapN(items []int, limit int, fn func(int) int) []int {
	out := make([]int, len(items))
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(items) {
					return
				}
				out[i] = fn(items[i])
			}
		}()
	}
	wg.Wait()
	return out
}

// naiveChanForEach feeds the items of seq to limit workers over an
// unbuffered channel.
func naiveChanForEach(seq iter.Seq[int], limit int, fn func(int)) {
	items := make(chan int)
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() {
			for v := range items {
				fn(v)
			}
		})
	}
	for v := range seq {
		items <- v
	}
	close(items)
	wg.Wait()
}

// naiveMutexForEach lets limit workers take the next item of seq (through
// iter.Pull) under a mutex.
func naiveMutexForEach(seq iter.Seq[int], limit int, fn func(int)) {
	next, stop := iter.Pull(seq)
	defer stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() {
			for {
				mu.Lock()
				v, ok := next()
				mu.Unlock()
				if !ok {
					return
				}
				fn(v)
			}
		})
	}
	wg.Wait()
}

// naiveWaitGroupForEach starts a goroutine per item, at most limit at a
// time (a semaphore channel).
func naiveWaitGroupForEach(seq iter.Seq[int], limit int, fn func(int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for v := range seq {
		sem <- struct{}{}
		wg.Go(func() {
			fn(v)
			<-sem
		})
	}
	wg.Wait()
}
