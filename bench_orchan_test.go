package conc

import (
	"strconv"
	"testing"
)

// BenchmarkOr measures building an or-channel over n fresh channels, firing
// one of them and waiting for the result to close: the whole life of one
// Or. Making the n channels is part of every op, for every impl alike. The
// channel that fires rotates over the n positions, because the recursive
// version's cost depends on how deep in its chain the input sits.
func BenchmarkOr(b *testing.B) {
	impls := []struct {
		name string
		or   func(...<-chan struct{}) <-chan struct{}
	}{
		{"conc", Or[struct{}]},
		{"recursive", orRecursive},
		{"reflect", orReflect},
	}
	for _, n := range []int{2, 16, 128} {
		for _, impl := range impls {
			b.Run("n="+strconv.Itoa(n)+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				chans := make([]chan struct{}, n)
				ins := make([]<-chan struct{}, n)
				for i := 0; b.Loop(); i++ {
					for j := range chans {
						chans[j] = make(chan struct{})
						ins[j] = chans[j]
					}
					out := impl.or(ins...)
					close(chans[i%n])
					<-out
				}
			})
		}
	}
}
