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
// whole slice at once, waiting on a sync.Cond while it is empty.
type mutexCollector[T any] struct {
	mu    sync.Mutex
	cond  sync.Cond
	items []T
	open  int // inputs not yet closed
}

func naiveMutexMerge[T any](ins ...<-chan T) *mutexCollector[T] {
	c := &mutexCollector[T]{open: len(ins)}
	c.cond.L = &c.mu
	for _, in := range ins {
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
	return c
}

// take swaps the collected items for spare (emptied) and returns them; it
// blocks while there are none, and returns nil, false once every input is
// closed and everything has been taken.
func (c *mutexCollector[T]) take(spare []T) ([]T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.items) == 0 && c.open > 0 {
		c.cond.Wait()
	}
	if len(c.items) == 0 {
		return nil, false
	}
	got := c.items
	c.items = spare[:0]
	return got, true
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
