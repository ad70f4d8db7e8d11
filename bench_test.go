package conc

// The comparison suites live in bench_<primitive>_test.go files, the naive
// versions they are compared with in naive_<primitive>_test.go. Every suite
// follows one naming scheme, which `make bench` relies on to build its table:
//
//	Benchmark<Primitive>/<workload>/<impl>
//
// where impl is "conc" (or "conc-<variant>") for this package, "mutex" for
// the naive mutex version, "chan" for the naive unbuffered-channel version,
// and any other word for a further baseline (for example "waitgroup" or
// "direct"). One b.N iteration is one item, job or call, so ns/op is a cost
// per item.

import (
	"sync"
	"sync/atomic"
	"time"
)

// sink defeats dead-code elimination of benchmark results.
var sink atomic.Int64

// burn spins for roughly n iterations of a cheap integer loop; burn(burnPerMicro)
// costs about one microsecond of CPU on the project's machines. It stands for
// a CPU-bound user function in the "1 µs" workloads.
//
//go:noinline
func burn(n int) int {
	x := 1
	for i := 0; i < n; i++ {
		x = x*1664525 + 1013904223
	}
	return x
}

var (
	burnOnce     sync.Once
	burnPerMicro int
)

// burnMicro burns about one microsecond of CPU. The loop count is calibrated
// once per process, so that every implementation in a suite does the same
// work whatever the machine.
func burnMicro() int {
	burnOnce.Do(func() {
		const probe = 2_000_000
		start := time.Now()
		sink.Store(int64(burn(probe)))
		el := time.Since(start)
		burnPerMicro = int(float64(probe) * float64(time.Microsecond) / float64(el))
		if burnPerMicro < 1 {
			burnPerMicro = 1
		}
	})
	return burn(burnPerMicro)
}
