package conc

import (
	"context"
	"sync"
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
