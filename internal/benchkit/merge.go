package benchkit

import "testing"

// MergeInputs is the number of producers, each with an input channel of its
// own, in the merge suites.
const MergeInputs = 8

// MergeWorkloads are the merge suites' workloads; InCap is the capacity of
// every input channel. With unbuffered inputs every item also costs the
// producers' own hand-off (a park and a wake-up), which no merge can
// remove: that workload shows the floor, ins=8 what the merge itself costs.
var MergeWorkloads = []struct {
	Name  string
	InCap int
}{
	{"ins=8", 64},
	{"ins=8-unbuffered", 0},
}

// RunMerge times b.N items carried from MergeInputs producers, each sending
// its share of 0..b.N-1 on an input channel of capacity inCap and closing
// it, to consume, which merges the inputs and returns how many items it
// received. One b.N iteration is one item; RunMerge fails b when an item
// was lost or delivered twice.
func RunMerge(b *testing.B, inCap int, consume func(ins []<-chan int) int) {
	b.ReportAllocs()
	chans := make([]chan int, MergeInputs)
	views := make([]<-chan int, MergeInputs)
	for i := range chans {
		chans[i] = make(chan int, inCap)
		views[i] = chans[i]
	}
	b.ResetTimer()
	for i, c := range chans {
		go Produce(c, Share(b.N, MergeInputs, i))
	}
	got := consume(views)
	b.StopTimer()
	if got != b.N {
		b.Fatalf("got %d items, want %d", got, b.N)
	}
}

// Produce sends 0..n-1 on c and closes it.
func Produce(c chan<- int, n int) {
	for i := range n {
		c <- i
	}
	close(c)
}

// RunSlices times b.N items processed by run as consecutive calls over at
// most size items each (items[:n]); run returns its results, the last of
// which goes to sink so that nothing is optimised away. One b.N iteration
// is one item.
func RunSlices(b *testing.B, items []int, run func([]int) []int, sink func(int)) {
	b.ReportAllocs()
	for done := 0; done < b.N; {
		n := min(len(items), b.N-done)
		out := run(items[:n])
		sink(out[n-1])
		done += n
	}
}
