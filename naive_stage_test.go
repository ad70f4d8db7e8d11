package conc

import (
	"context"
	"sync"
	"time"
)

// The naive pipelines the benchmarks in bench_stage_test.go compare against,
// written the way the Go blog's "Pipelines and cancellation" article and
// most tutorials write them: one goroutine and one unbuffered channel per
// stage, fan-out by starting the same stage several times on one channel,
// fan-in with a WaitGroup. No cancellation: the benchmarks always drain.

// naivePipeGen sends 0..n-1 on an unbuffered channel.
func naivePipeGen(n int) <-chan int {
	out := make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			out <- i
		}
		close(out)
	}()
	return out
}

func naivePipeSquare(in <-chan int) <-chan int {
	out := make(chan int)
	go func() {
		for n := range in {
			out <- n * n
		}
		close(out)
	}()
	return out
}

func naivePipeKeepEven(in <-chan int) <-chan int {
	out := make(chan int)
	go func() {
		for n := range in {
			if n%2 == 0 {
				out <- n
			}
		}
		close(out)
	}()
	return out
}

func naivePipeAddOne(in <-chan int) <-chan int {
	out := make(chan int)
	go func() {
		for n := range in {
			out <- n + 1
		}
		close(out)
	}()
	return out
}

// naivePipeStep is the stage of the one-step workloads: it passes fn(n) on.
func naivePipeStep(in <-chan int, fn func(int) int) <-chan int {
	out := make(chan int)
	go func() {
		for n := range in {
			out <- fn(n)
		}
		close(out)
	}()
	return out
}

// naivePipeMerge is the fan-in of the Go blog: one goroutine per input copies it
// to out, and a WaitGroup closes out when they are all done.
func naivePipeMerge(cs ...<-chan int) <-chan int {
	var wg sync.WaitGroup
	out := make(chan int)
	output := func(c <-chan int) {
		for n := range c {
			out <- n
		}
		wg.Done()
	}
	wg.Add(len(cs))
	for _, c := range cs {
		go output(c)
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// naiveMutexPipeline processes 0..n-1 with workers goroutines that take the
// next index from a counter under a mutex, run fn on it, and append what fn
// keeps to a shared slice under the same mutex.
func naiveMutexPipeline(n, workers int, fn func(int) (int, bool)) []int {
	var (
		mu      sync.Mutex
		next    int
		results []int
		wg      sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				v, ok := fn(i)
				if !ok {
					continue
				}
				mu.Lock()
				results = append(results, v)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results
}

// naivePipeHops is the floor of the generator-fed pipeline: one goroutine
// receives from in, applies cheap3's three functions, and sends what it keeps
// on a buffered channel of capacity size.
func naivePipeHops(ctx context.Context, in <-chan int, size int) <-chan int {
	out := make(chan int, size)
	go func() {
		for v := range in {
			sq, _ := pipeSquare(ctx, v)
			if keep, _ := pipeKeepEven(ctx, sq); keep {
				w, _ := pipeAddOne(ctx, sq)
				out <- w
			}
		}
		close(out)
	}()
	return out
}

// naiveChanBatch is the tutorial batcher: one goroutine collects items from
// in into a slice and sends it on an unbuffered channel when it holds size
// items or maxWait after its first item, whichever comes first.
func naiveChanBatch(in <-chan int, size int, maxWait time.Duration) <-chan []int {
	out := make(chan []int)
	go func() {
		defer close(out)
		var batch []int
		timer := time.NewTimer(maxWait)
		timer.Stop()
		for {
			select {
			case v, ok := <-in:
				if !ok {
					if len(batch) > 0 {
						out <- batch
					}
					return
				}
				if len(batch) == 0 {
					timer.Reset(maxWait)
				}
				batch = append(batch, v)
				if len(batch) == size {
					timer.Stop()
					out <- batch
					batch = nil
				}
			case <-timer.C:
				if len(batch) > 0 {
					out <- batch
					batch = nil
				}
			}
		}
	}()
	return out
}

// mutexBatcher collects items under a mutex; full batches wait in a list
// for Take, and a time.AfterFunc armed by each batch's first item moves a
// late batch there.
type mutexBatcher struct {
	mu      sync.Mutex
	cond    sync.Cond
	size    int
	maxWait time.Duration
	cur     []int
	ready   [][]int
	closed  bool
	timer   *time.Timer
}

func newMutexBatcher(size int, maxWait time.Duration) *mutexBatcher {
	m := &mutexBatcher{size: size, maxWait: maxWait}
	m.cond.L = &m.mu
	m.timer = time.AfterFunc(time.Hour, func() {
		m.mu.Lock()
		m.flushLocked()
		m.mu.Unlock()
	})
	m.timer.Stop()
	return m
}

func (m *mutexBatcher) flushLocked() {
	if len(m.cur) > 0 {
		m.ready = append(m.ready, m.cur)
		m.cur = nil
		m.cond.Signal()
	}
}

func (m *mutexBatcher) Add(v int) {
	m.mu.Lock()
	if len(m.cur) == 0 {
		m.timer.Reset(m.maxWait)
	}
	m.cur = append(m.cur, v)
	if len(m.cur) == m.size {
		m.timer.Stop()
		m.flushLocked()
	}
	m.mu.Unlock()
}

func (m *mutexBatcher) Close() {
	m.mu.Lock()
	m.timer.Stop()
	m.flushLocked()
	m.closed = true
	m.mu.Unlock()
	m.cond.Signal()
}

// Take waits for a batch; ok is false once the batcher is closed and empty.
func (m *mutexBatcher) Take() (batch []int, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.ready) == 0 && !m.closed {
		m.cond.Wait()
	}
	if len(m.ready) == 0 {
		return nil, false
	}
	batch = m.ready[0]
	m.ready = m.ready[1:]
	return batch, true
}

// naivePipeExpand is FlatMap's tutorial stage: every item of pipeExpand's
// result is sent on an unbuffered channel.
func naivePipeExpand(in <-chan int) <-chan int {
	out := make(chan int)
	go func() {
		for v := range in {
			vs, _ := pipeExpand(context.Background(), v)
			for _, w := range vs {
				out <- w
			}
		}
		close(out)
	}()
	return out
}

// naiveMutexFlatMap is naiveMutexPipeline for a function with several
// results per item: workers take the next index under a mutex and append
// every result under the same mutex.
func naiveMutexFlatMap(n, workers int, fn func(int) []int) []int {
	var (
		mu      sync.Mutex
		next    int
		results []int
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				vs := fn(i)
				mu.Lock()
				results = append(results, vs...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return results
}
