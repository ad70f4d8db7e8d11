package conc

// The naive fan-in and fan-out versions that bench_merge_test.go compares
// against, written plainly, the way tutorials and the Go blog's "Pipelines
// and cancellation" article write them: unbuffered channels, a select on the
// send and ctx.Done() for every item, a WaitGroup to close the output.

import (
	"context"
	"hash/maphash"
	"reflect"
	"sync"
)

// naiveMerge is the goroutine-per-input merge of the Go blog.
func naiveMerge[T any](ctx context.Context, ins ...<-chan T) <-chan T {
	var wg sync.WaitGroup
	out := make(chan T)
	output := func(c <-chan T) {
		defer wg.Done()
		for v := range c {
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}
	wg.Add(len(ins))
	for _, c := range ins {
		go output(c)
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// mutexCollector is the mutex-guarded fan-in: one goroutine per input
// appends into a shared slice under a mutex, and the consumer takes the
// whole slice at once, waiting on a sync.Cond while it is empty. Inputs may
// be added until seal.
type mutexCollector[T any] struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  []T
	open   int // inputs not yet closed
	sealed bool
}

func newMutexCollector[T any]() *mutexCollector[T] {
	c := &mutexCollector[T]{}
	c.cond.L = &c.mu
	return c
}

func naiveMutexMerge[T any](ins ...<-chan T) *mutexCollector[T] {
	c := newMutexCollector[T]()
	for _, in := range ins {
		c.add(in)
	}
	c.seal()
	return c
}

// add starts a goroutine that appends in's items to the shared slice.
func (c *mutexCollector[T]) add(in <-chan T) {
	c.mu.Lock()
	c.open++
	c.mu.Unlock()
	go func() {
		for v := range in {
			c.mu.Lock()
			c.items = append(c.items, v)
			c.mu.Unlock()
			c.cond.Signal()
		}
		c.mu.Lock()
		c.open--
		c.mu.Unlock()
		c.cond.Signal()
	}()
}

// seal declares that no more inputs will be added.
func (c *mutexCollector[T]) seal() {
	c.mu.Lock()
	c.sealed = true
	c.mu.Unlock()
	c.cond.Signal()
}

// take swaps the collected items for spare (emptied) and returns them; it
// blocks while there are none, and returns nil, false once the collector is
// sealed, every input is closed and everything has been taken.
func (c *mutexCollector[T]) take(spare []T) ([]T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.items) == 0 && (c.open > 0 || !c.sealed) {
		c.cond.Wait()
	}
	if len(c.items) == 0 {
		return nil, false
	}
	got := c.items
	c.items = spare[:0]
	return got, true
}

// drain takes everything until the collector is done, as a consumer does
// (reusing each slice it took), and returns how many items it took.
func (c *mutexCollector[T]) drain() int {
	var spare []T
	n := 0
	for {
		got, ok := c.take(spare)
		if !ok {
			return n
		}
		n += len(got)
		spare = got
	}
}

// naiveFanIn is the dynamic fan-in of the tutorials: Add starts one
// goroutine per input forwarding to an unbuffered output, a WaitGroup
// counts them, and Seal closes the output once they are all done.
type naiveFanIn[T any] struct {
	ctx context.Context
	out chan T
	wg  sync.WaitGroup
}

func newNaiveFanIn[T any](ctx context.Context) *naiveFanIn[T] {
	return &naiveFanIn[T]{ctx: ctx, out: make(chan T)}
}

func (f *naiveFanIn[T]) Add(in <-chan T) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for v := range in {
			select {
			case f.out <- v:
			case <-f.ctx.Done():
				return
			}
		}
	}()
}

// Seal must be called after the last Add.
func (f *naiveFanIn[T]) Seal() {
	go func() {
		f.wg.Wait()
		close(f.out)
	}()
}

// reflectMerge merges in one goroutine with reflect.Select over every
// input, the "dynamic select" answer to fan-in.
func reflectMerge[T any](ctx context.Context, ins ...<-chan T) <-chan T {
	out := make(chan T)
	cases := make([]reflect.SelectCase, 0, len(ins)+1)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for _, in := range ins {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(in)})
	}
	go func() {
		defer close(out)
		for open := len(ins); open > 0; {
			i, v, ok := reflect.Select(cases)
			if i == 0 {
				return
			}
			if !ok {
				cases[i].Chan = reflect.Value{} // a zero Value is never selected
				open--
				continue
			}
			select {
			case out <- v.Interface().(T):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// naiveFanOut starts one goroutine per output, each reading the shared
// input and sending on its own unbuffered output.
func naiveFanOut[T any](ctx context.Context, in <-chan T, n int) []<-chan T {
	outs := make([]<-chan T, n)
	for i := range outs {
		out := make(chan T)
		outs[i] = out
		go func() {
			defer close(out)
			for v := range in {
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return outs
}

// naiveTee sends every item to each unbuffered output in turn.
func naiveTee[T any](ctx context.Context, in <-chan T, n int) []<-chan T {
	chans := make([]chan T, n)
	outs := make([]<-chan T, n)
	for i := range chans {
		chans[i] = make(chan T)
		outs[i] = chans[i]
	}
	go func() {
		defer func() {
			for _, c := range chans {
				close(c)
			}
		}()
		for v := range in {
			for _, c := range chans {
				select {
				case c <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return outs
}

// naivePartition routes by hash to unbuffered outputs. It hashes with
// maphash like Partition does, so that the benchmark compares transports.
func naivePartition[T any, K comparable](ctx context.Context, in <-chan T, n int, key func(T) K) []<-chan T {
	chans := make([]chan T, n)
	outs := make([]<-chan T, n)
	for i := range chans {
		chans[i] = make(chan T)
		outs[i] = chans[i]
	}
	seed := maphash.MakeSeed()
	go func() {
		defer func() {
			for _, c := range chans {
				close(c)
			}
		}()
		for v := range in {
			c := chans[maphash.Comparable(seed, key(v))%uint64(n)]
			select {
			case c <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return outs
}

// The mutex versions of the splitters: a goroutine reads the input and
// pushes into mutexQueues (naive_pool_test.go), which the consumers pop.

// naiveMutexFanOut has all n consumers pop from one shared queue.
func naiveMutexFanOut(_ context.Context, in <-chan int, n int) []func() int {
	q := newMutexQueue()
	go func() {
		for v := range in {
			q.Push(v)
		}
		q.Close()
	}()
	return mutexDrains(q, n)
}

// naiveMutexTee pushes every item to each of n queues.
func naiveMutexTee(_ context.Context, in <-chan int, n int) []func() int {
	qs := make([]*mutexQueue, n)
	for i := range qs {
		qs[i] = newMutexQueue()
	}
	go func() {
		for v := range in {
			for _, q := range qs {
				q.Push(v)
			}
		}
		for _, q := range qs {
			q.Close()
		}
	}()
	var drains []func() int
	for _, q := range qs {
		drains = append(drains, mutexDrains(q, 1)...)
	}
	return drains
}

// naiveMutexPartition pushes each item to the queue its key hashes to.
func naiveMutexPartition[K comparable](in <-chan int, n int, key func(int) K) []func() int {
	qs := make([]*mutexQueue, n)
	for i := range qs {
		qs[i] = newMutexQueue()
	}
	seed := maphash.MakeSeed()
	go func() {
		for v := range in {
			qs[maphash.Comparable(seed, key(v))%uint64(n)].Push(v)
		}
		for _, q := range qs {
			q.Close()
		}
	}()
	var drains []func() int
	for _, q := range qs {
		drains = append(drains, mutexDrains(q, 1)...)
	}
	return drains
}

// mutexDrains returns n functions that each pop q until it is closed and
// empty, and return how many items they took.
func mutexDrains(q *mutexQueue, n int) []func() int {
	drains := make([]func() int, n)
	for i := range drains {
		drains[i] = func() int {
			c := 0
			for {
				if _, ok := q.Pop(); !ok {
					return c
				}
				c++
			}
		}
	}
	return drains
}
