package peers

// Fan-in against github.com/destel/rill, whose Merge is the one peer merge
// of the same shape (n channels in, one out). rill.Merge takes no context:
// for 6 or more inputs it runs one goroutine per input sending on an
// unbuffered output, as the naive version of the main suite does.
// sourcegraph/conc's stream is not compared: it orders callbacks, it does
// not merge channels.
//
// The workloads and their names are those of BenchmarkMerge in the main
// suite: 8 producers, each sending its share of b.N ints on its own input
// channel (capacity 64, or unbuffered), one consumer counting.

import (
	"context"
	"testing"

	"github.com/concpatterns/conc"
	"github.com/destel/rill"
)

func BenchmarkMerge(b *testing.B) {
	const ins = 8
	workloads := []struct {
		name  string
		inCap int
	}{
		{"ins=8", 64},
		{"ins=8-unbuffered", 0},
	}
	impls := []struct {
		name  string
		merge func(ctx context.Context, ins []<-chan int) <-chan int
	}{
		{"conc", func(ctx context.Context, ins []<-chan int) <-chan int { return conc.Merge(ctx, ins...) }},
		{"rill", func(_ context.Context, ins []<-chan int) <-chan int { return rill.Merge(ins...) }},
	}
	for _, w := range workloads {
		for _, impl := range impls {
			b.Run(w.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				chans := make([]chan int, ins)
				views := make([]<-chan int, ins)
				for i := range chans {
					chans[i] = make(chan int, w.inCap)
					views[i] = chans[i]
				}
				b.ResetTimer()
				for i, c := range chans {
					share := b.N / ins
					if i < b.N%ins {
						share++
					}
					go func() {
						for j := range share {
							c <- j
						}
						close(c)
					}()
				}
				got := 0
				for range impl.merge(context.Background(), views) {
					got++
				}
				b.StopTimer()
				if got != b.N {
					b.Fatalf("got %d items, want %d", got, b.N)
				}
			})
		}
	}
}
