package peers

// Fan-in against github.com/destel/rill, whose Merge is the one peer merge
// of the same shape (n channels in, one out). rill.Merge takes no context:
// for 6 or more inputs it runs one goroutine per input sending on an
// unbuffered output, as the naive version of the main suite does.
// sourcegraph/conc's stream is not compared: it orders callbacks, it does
// not merge channels.
//
// The workloads and the harness are those of BenchmarkMerge in the main
// suite (benchkit.RunMerge): 8 producers, each sending its share of b.N
// ints on its own input channel (capacity 64, or unbuffered), one consumer
// counting.

import (
	"context"
	"testing"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/internal/benchkit"
	"github.com/destel/rill"
)

func BenchmarkMerge(b *testing.B) {
	impls := []struct {
		name  string
		merge func(ctx context.Context, ins []<-chan int) <-chan int
	}{
		{"conc", func(ctx context.Context, ins []<-chan int) <-chan int { return conc.Merge(ctx, ins...) }},
		{"rill", func(_ context.Context, ins []<-chan int) <-chan int { return rill.Merge(ins...) }},
	}
	for _, w := range benchkit.MergeWorkloads {
		for _, impl := range impls {
			b.Run(w.Name+"/"+impl.name, func(b *testing.B) {
				benchkit.RunMerge(b, w.InCap, func(ins []<-chan int) int {
					got := 0
					for range impl.merge(context.Background(), ins) {
						got++
					}
					return got
				})
			})
		}
	}
}
