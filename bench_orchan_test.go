package conc

import (
	"context"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkOr measures the whole life of one or-channel: make n fresh
// channels, build the or-channel over them, fire one input, wait for the
// result to close. Making the channels is part of every op, for every impl
// alike (about 40 ns each). The input that fires rotates over the n
// positions, because the recursive version's cost depends on how deep in its
// chain the input sits.
//
// In the n=<k> workloads the input fires right after the build, as soon as
// Or returns; the waiting goroutine has often not run yet and finds the
// input fired when it polls. The n=<k>-parked workloads yield once
// (runtime.Gosched) between build and fire, so that the waiting goroutines
// are parked on every input first, as they are when the signal comes much
// later: that is the cost of registering on and unregistering from n
// channels, which no implementation avoids.
//
// Allocation dominates the n=128 workloads (making 128 channels is most of
// conc's time), so their figures move with the state of the heap: right
// after a benchmark that released a lot of memory, fresh pages have to be
// faulted in again, and every implementation and the direct floor slow down
// together, up to 2–3×. Compare rows of the same run. With -cpu 1 the yield parks them
// for sure; with more Ps, mostly.
//
// chan is the recursive or-channel of "Concurrency in Go" (channels and
// goroutines only), mutex one goroutine per input that closes the output
// under a mutex, reflect one goroutine in a reflect.Select over every input.
func BenchmarkOr(b *testing.B) {
	impls := []struct {
		name string
		or   func(...<-chan struct{}) <-chan struct{}
	}{
		{"conc", Or[struct{}]},
		{"chan", orRecursive},
		{"mutex", orMutex},
		{"reflect", orReflect},
		// The floor: the same channels made and the same input fired, with
		// no or-channel at all (the loop waits on the fired input itself).
		{"direct", nil},
	}
	workloads := []struct {
		n      int
		parked bool
	}{{2, false}, {16, false}, {128, false}, {16, true}, {128, true}}
	for _, w := range workloads {
		name := "n=" + strconv.Itoa(w.n)
		if w.parked {
			name += "-parked"
		}
		for _, impl := range impls {
			b.Run(name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				chans := make([]chan struct{}, w.n)
				ins := make([]<-chan struct{}, w.n)
				for i := 0; b.Loop(); i++ {
					for j := range chans {
						chans[j] = make(chan struct{})
						ins[j] = chans[j]
					}
					var out <-chan struct{}
					if impl.or != nil {
						out = impl.or(ins...)
					} else {
						out = ins[i%w.n]
					}
					if w.parked {
						runtime.Gosched()
					}
					close(chans[i%w.n])
					<-out
				}
			})
		}
	}
}

// BenchmarkRace measures one Race of two functions that both succeed at
// once: start them, take the first result, cancel the other, wait for it.
// One op is one race. chan is the tutorial version (an unbuffered results
// channel, the first received wins, the rest drained so nothing leaks),
// mutex records the first success under a mutex and waits with a
// WaitGroup.
func BenchmarkRace(b *testing.B) {
	fn := func(context.Context) (int, error) { return 1, nil }
	fns := []func(context.Context) (int, error){fn, fn}
	impls := []struct {
		name string
		race func(context.Context, ...func(context.Context) (int, error)) (int, error)
	}{
		{"conc", Race[int]},
		{"chan", naiveChanRace[int]},
		{"mutex", naiveMutexRace[int]},
	}
	for _, impl := range impls {
		b.Run("fns=2/"+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				v, err := impl.race(ctx, fns...)
				if err != nil || v != 1 {
					b.Fatal(v, err)
				}
			}
		})
	}
}
