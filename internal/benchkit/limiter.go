package benchkit

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RunAllowers splits b.N calls among g goroutines, each running loop for
// its share, and reports the fraction admitted as admitted/op. One b.N
// iteration is one call.
func RunAllowers(b *testing.B, g int, loop func(n int) (admitted int)) {
	b.ReportAllocs()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range g {
		n := Share(b.N, g, i)
		wg.Go(func() { admitted.Add(int64(loop(n))) })
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(admitted.Load())/float64(b.N), "admitted/op")
}

var (
	halfRateMu    sync.Mutex
	halfRateCache = map[[2]int]float64{}
)

// HalfRate is half the calls a second that g goroutines achieve on an
// always-admitting limiter at the current GOMAXPROCS, measured once per
// process: the rate at which a limiter admits about half the calls of a
// benchmark loop. newAllow(r) returns the Allow of a fresh limiter of rate
// r a second and burst 10 (conc.NewLimiter in both suites, so that they
// agree on the rate).
func HalfRate(g int, newAllow func(r float64) func() bool) float64 {
	halfRateMu.Lock()
	defer halfRateMu.Unlock()
	key := [2]int{g, runtime.GOMAXPROCS(0)}
	if r, ok := halfRateCache[key]; ok {
		return r
	}
	// Denials are cheaper than admissions, so the rate that admits half
	// is found in two rounds: all admitted, then at half that rate. Each
	// round keeps the best of five 10 ms probes, the one least disturbed by
	// whatever else the machine runs.
	r := 1e12
	for range 2 {
		best := 0.0
		for range 5 {
			allow := newAllow(r)
			var calls atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for range g {
				wg.Go(func() {
					n := int64(0)
					for time.Since(start) < 10*time.Millisecond {
						for range 100 {
							allow()
						}
						n += 100
					}
					calls.Add(n)
				})
			}
			wg.Wait()
			best = max(best, float64(calls.Load())/time.Since(start).Seconds())
		}
		r = best / 2
	}
	halfRateCache[key] = r
	return r
}

// A LimiterWorkload is one workload of the limiter suites: Goroutines
// callers, and the rate (per second) and burst that every implementation
// gets.
type LimiterWorkload struct {
	Name       string
	Goroutines int
	Rate       func() (perSecond float64, burst int)
}

// LimiterWorkloads are the limiter suites' workloads: admit-gN admits every
// call of N goroutines, half-gN admits about half of them (see HalfRate,
// to which newAllow is passed).
func LimiterWorkloads(newAllow func(r float64) func() bool) []LimiterWorkload {
	half := func(g int) func() (float64, int) {
		return func() (float64, int) { return HalfRate(g, newAllow), 10 }
	}
	all := func() (float64, int) { return 1e12, 1000 }
	return []LimiterWorkload{
		{"admit-g1", 1, all},
		{"admit-g2", 2, all},
		{"half-g1", 1, half(1)},
		{"half-g2", 2, half(2)},
	}
}
