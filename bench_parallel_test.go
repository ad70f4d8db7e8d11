package conc

import (
	"context"
	"iter"
	"testing"
)

// BenchmarkForEach runs fn over b.N items of an iter.Seq with at most 4 at
// a time; ns/op is per item. Workloads: tiny (fn adds to a per-item result,
// transport cost) and 1us (fn burns about 1 µs of CPU). chan feeds the
// items to 4 workers over an unbuffered channel, mutex lets 4 workers pull
// the next item from the sequence under a mutex, waitgroup starts a
// goroutine per item behind a semaphore channel.
func BenchmarkForEach(b *testing.B) {
	const limit = 4
	burnMicro() // calibrate outside the timed region
	for _, wl := range []struct {
		name string
		fn   func(int) int
	}{
		{"tiny", func(v int) int { return v*2 + 1 }},
		{"1us", func(v int) int { return burnMicro() + v }},
	} {
		impls := []struct {
			name string
			run  func(seq iter.Seq[int], fn func(int))
		}{
			{"conc", func(seq iter.Seq[int], fn func(int)) {
				err := ForEach(context.Background(), seq, limit, func(_ context.Context, v int) error {
					fn(v)
					return nil
				})
				if err != nil {
					panic(err)
				}
			}},
			{"chan", func(seq iter.Seq[int], fn func(int)) { naiveChanForEach(seq, limit, fn) }},
			{"mutex", func(seq iter.Seq[int], fn func(int)) { naiveMutexForEach(seq, limit, fn) }},
			{"waitgroup", func(seq iter.Seq[int], fn func(int)) { naiveWaitGroupForEach(seq, limit, fn) }},
		}
		for _, impl := range impls {
			b.Run(wl.name+"/"+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				b.ResetTimer()
				// The result is only compared, so that nothing is
				// shared between the workers but the calls cannot be
				// optimised away (fn is called through a func value).
				impl.run(pipeInts(b.N), func(v int) {
					if wl.fn(v) == -1 {
						sink.Add(1)
					}
				})
			})
		}
	}
}
