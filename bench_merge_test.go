package conc

// The fan-in and fan-out comparison suites. One b.N iteration is one item
// carried from the producers to the consumers, so ns/op is a cost per item.
//
// Every implementation of a suite gets the same inputs: the producers are
// started the same way, send into channels of the same capacity, and the
// consumers only count. What differs is the code in between.

import (
	"context"
	"testing"

	"github.com/concpatterns/conc/internal/benchkit"
)

// BenchmarkMerge carries items from 8 producers to one counting consumer
// through each implementation, in the harness bench/peers uses too
// (benchkit.RunMerge; workloads in benchkit.MergeWorkloads).
func BenchmarkMerge(b *testing.B) {
	impls := []struct {
		name    string
		consume func(ctx context.Context, ins []<-chan int) int
	}{
		{"conc", func(ctx context.Context, ins []<-chan int) int {
			return countAll(Merge(ctx, ins...))
		}},
		{"chan", func(ctx context.Context, ins []<-chan int) int {
			return countAll(naiveMerge(ctx, ins...))
		}},
		{"mutex", func(_ context.Context, ins []<-chan int) int {
			return naiveMutexMerge(ins...).drain()
		}},
		{"reflect", func(ctx context.Context, ins []<-chan int) int {
			return countAll(reflectMerge(ctx, ins...))
		}},
	}
	for _, w := range benchkit.MergeWorkloads {
		for _, impl := range impls {
			b.Run(w.Name+"/"+impl.name, func(b *testing.B) {
				benchkit.RunMerge(b, w.InCap, func(ins []<-chan int) int {
					return impl.consume(context.Background(), ins)
				})
			})
		}
	}
}

// BenchmarkFanIn carries items through a FanIn to one counting consumer.
// Workloads:
//
//	ins=8   8 inputs (capacity 64) added before the first item, then sealed;
//	churn   inputs of 64 items each (capacity 64) added while the FanIn
//	        runs, at most 8 of them producing at a time, sealed after the
//	        last: the cost of Add and of an input's end is in every item.
//
// chan is the tutorial's dynamic fan-in (a forwarding goroutine per input,
// an unbuffered output, a WaitGroup), mutex the collector of BenchmarkMerge
// with inputs added as they come.
func BenchmarkFanIn(b *testing.B) {
	type fanIn struct {
		add   func(<-chan int)
		seal  func()
		count func() int
	}
	impls := []struct {
		name string
		make func(ctx context.Context) fanIn
	}{
		{"conc", func(ctx context.Context) fanIn {
			f := NewFanIn[int](ctx)
			return fanIn{
				add: func(c <-chan int) {
					if err := f.Add(c); err != nil {
						panic(err)
					}
				},
				seal:  f.Seal,
				count: func() int { return countAll(f.Out()) },
			}
		}},
		{"chan", func(ctx context.Context) fanIn {
			f := newNaiveFanIn[int](ctx)
			return fanIn{add: f.Add, seal: f.Seal, count: func() int { return countAll(f.out) }}
		}},
		{"mutex", func(context.Context) fanIn {
			c := newMutexCollector[int]()
			return fanIn{add: c.add, seal: c.seal, count: c.drain}
		}},
	}
	const size, live = 64, 8
	for _, churn := range []bool{false, true} {
		name := "ins=8"
		if churn {
			name = "churn"
		}
		for _, impl := range impls {
			b.Run(name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				f := impl.make(context.Background())
				b.ResetTimer()
				if !churn {
					for i := range benchkit.MergeInputs {
						c := make(chan int, size)
						f.add(c)
						go benchkit.Produce(c, benchkit.Share(b.N, benchkit.MergeInputs, i))
					}
					f.seal()
				} else {
					go func() {
						tokens := make(chan struct{}, live)
						for done := 0; done < b.N; done += size {
							tokens <- struct{}{}
							c := make(chan int, size)
							f.add(c)
							go func() {
								benchkit.Produce(c, min(size, b.N-done))
								<-tokens
							}()
						}
						f.seal()
					}()
				}
				got := f.count()
				b.StopTimer()
				if got != b.N {
					b.Fatalf("got %d items, want %d", got, b.N)
				}
			})
		}
	}
}

// BenchmarkFanOut: one producer, 4 outputs, one counting consumer each.
// mutex is one shared queue under a mutex that the four consumers pop from.
func BenchmarkFanOut(b *testing.B) {
	benchSplit(b, 1, []splitImpl{
		{"conc", chanSplit(func(ctx context.Context, in <-chan int, n int) []<-chan int {
			return FanOut(ctx, in, n)
		})},
		{"chan", chanSplit(naiveFanOut[int])},
		{"mutex", naiveMutexFanOut},
	})
}

// BenchmarkTee: one producer, 4 outputs; each item reaches all four, and
// ns/op is per input item (four deliveries). mutex pushes every item to four
// queues under their mutexes.
func BenchmarkTee(b *testing.B) {
	benchSplit(b, 4, []splitImpl{
		{"conc", chanSplit(func(ctx context.Context, in <-chan int, n int) []<-chan int {
			return Tee(ctx, in, n)
		})},
		{"chan", chanSplit(naiveTee[int])},
		{"mutex", naiveMutexTee},
	})
}

// BenchmarkPartition: one producer, 4 outputs, items keyed by value. mutex
// pushes each item to the queue its key hashes to.
func BenchmarkPartition(b *testing.B) {
	key := func(v int) int { return v }
	benchSplit(b, 1, []splitImpl{
		{"conc", chanSplit(func(ctx context.Context, in <-chan int, n int) []<-chan int {
			outs, _ := Partition(ctx, in, n, key)
			return outs
		})},
		{"chan", chanSplit(func(ctx context.Context, in <-chan int, n int) []<-chan int {
			return naivePartition(ctx, in, n, key)
		})},
		{"mutex", func(_ context.Context, in <-chan int, n int) []func() int {
			return naiveMutexPartition(in, n, key)
		}},
	})
}

// A splitImpl starts one implementation of a one-input, n-output suite and
// returns one function per output that drains it and returns its count.
type splitImpl struct {
	name  string
	split func(ctx context.Context, in <-chan int, n int) []func() int
}

// chanSplit adapts an implementation whose outputs are channels.
func chanSplit(f func(context.Context, <-chan int, int) []<-chan int) func(context.Context, <-chan int, int) []func() int {
	return func(ctx context.Context, in <-chan int, n int) []func() int {
		chans := f(ctx, in, n)
		drains := make([]func() int, len(chans))
		for i, c := range chans {
			drains[i] = func() int { return countAll(c) }
		}
		return drains
	}
}

// benchSplit runs a one-input, four-output suite. copies is how many times
// each item is delivered (1 for FanOut and Partition, 4 for Tee).
func benchSplit(b *testing.B, copies int, impls []splitImpl) {
	const outs = 4
	for _, impl := range impls {
		b.Run("outs=4/"+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			in := make(chan int, 64)
			ctx := context.Background()
			b.ResetTimer()
			go benchkit.Produce(in, b.N)
			drains := impl.split(ctx, in, outs)
			counts := make(chan int, outs)
			for _, d := range drains {
				go func() { counts <- d() }()
			}
			total := 0
			for range outs {
				total += <-counts
			}
			b.StopTimer()
			if total != b.N*copies {
				b.Fatalf("got %d deliveries, want %d", total, b.N*copies)
			}
		})
	}
}

// countAll drains c and returns how many items it held.
func countAll[T any](c <-chan T) int {
	n := 0
	for range c {
		n++
	}
	return n
}
