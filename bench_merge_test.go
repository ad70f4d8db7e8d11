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
			c := naiveMutexMerge(ins...)
			var spare []int
			n := 0
			for {
				got, ok := c.take(spare)
				if !ok {
					return n
				}
				n += len(got)
				spare = got
			}
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

// BenchmarkFanOut: one producer, 4 outputs, one counting consumer each.
func BenchmarkFanOut(b *testing.B) {
	benchSplit(b, 1, func(ctx context.Context, in <-chan int, n int) []<-chan int {
		return FanOut(ctx, in, n)
	}, naiveFanOut[int])
}

// BenchmarkTee: one producer, 4 outputs; each item reaches all four, and
// ns/op is per input item (four deliveries).
func BenchmarkTee(b *testing.B) {
	benchSplit(b, 4, func(ctx context.Context, in <-chan int, n int) []<-chan int {
		return Tee(ctx, in, n)
	}, naiveTee[int])
}

// BenchmarkPartition: one producer, 4 outputs, items keyed by value.
func BenchmarkPartition(b *testing.B) {
	key := func(v int) int { return v }
	benchSplit(b, 1, func(ctx context.Context, in <-chan int, n int) []<-chan int {
		outs, _ := Partition(ctx, in, n, key)
		return outs
	}, func(ctx context.Context, in <-chan int, n int) []<-chan int {
		return naivePartition(ctx, in, n, key)
	})
}

// benchSplit runs a one-input, four-output suite. copies is how many times
// each item is delivered (1 for FanOut and Partition, 4 for Tee).
func benchSplit(b *testing.B, copies int, conc, naive func(context.Context, <-chan int, int) []<-chan int) {
	const outs = 4
	impls := []struct {
		name  string
		split func(context.Context, <-chan int, int) []<-chan int
	}{{"conc", conc}, {"chan", naive}}
	for _, impl := range impls {
		b.Run("outs=4/"+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			in := make(chan int, 64)
			ctx := context.Background()
			b.ResetTimer()
			go benchkit.Produce(in, b.N)
			chans := impl.split(ctx, in, outs)
			counts := make(chan int, outs)
			for _, c := range chans {
				go func() { counts <- countAll(c) }()
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
