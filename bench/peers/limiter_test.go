package peers

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concpatterns/conc"
	"go.uber.org/ratelimit"
	"golang.org/x/time/rate"
)

// BenchmarkLimiter repeats the workloads of conc's BenchmarkLimiter against
// golang.org/x/time/rate (xrate, Allow) and go.uber.org/ratelimit (uber,
// Take). One b.N iteration is one call; admitted/op is the fraction of calls
// admitted.
//
// uber's Take has no non-blocking form: it sleeps until its slot comes. It
// runs in the admit workloads only, with a rate of 1e9 a second so that it
// never sleeps; in the half workloads it would pace the callers instead of
// denying them, which measures something else.
func BenchmarkLimiter(b *testing.B) {
	// Each impl's loop calls the library directly, as user code would.
	type impl struct {
		name string
		loop func(perSecond float64, burst int) func(n int) int
	}
	concImpl := impl{"conc", func(r float64, b int) func(int) int {
		l := conc.NewLimiter(r, b)
		return func(n int) (ok int) {
			for range n {
				if l.Allow() {
					ok++
				}
			}
			return ok
		}
	}}
	xrate := impl{"xrate", func(r float64, b int) func(int) int {
		l := rate.NewLimiter(rate.Limit(r), b)
		return func(n int) (ok int) {
			for range n {
				if l.Allow() {
					ok++
				}
			}
			return ok
		}
	}}
	uber := impl{"uber", func(float64, int) func(int) int {
		l := ratelimit.New(1_000_000_000)
		return func(n int) int {
			for range n {
				l.Take()
			}
			return n
		}
	}}
	workloads := []struct {
		name       string
		goroutines int
		rate       func() (float64, int)
		impls      []impl
	}{
		{"admit-g1", 1, func() (float64, int) { return 1e12, 1000 }, []impl{concImpl, xrate, uber}},
		{"admit-g2", 2, func() (float64, int) { return 1e12, 1000 }, []impl{concImpl, xrate, uber}},
		{"half-g1", 1, func() (float64, int) { return halfRate(1), 10 }, []impl{concImpl, xrate}},
		{"half-g2", 2, func() (float64, int) { return halfRate(2), 10 }, []impl{concImpl, xrate}},
	}
	for _, w := range workloads {
		b.Run(w.name, func(b *testing.B) {
			perSecond, burst := w.rate()
			for _, im := range w.impls {
				b.Run(im.name, func(b *testing.B) {
					runAllowers(b, w.goroutines, im.loop(perSecond, burst))
				})
			}
		})
	}
}

// runAllowers splits b.N calls among g goroutines, each running loop for its
// share, and reports the fraction admitted.
func runAllowers(b *testing.B, g int, loop func(n int) (admitted int)) {
	b.ReportAllocs()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range g {
		n := b.N / g
		if i < b.N%g {
			n++
		}
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

// halfRate is half the calls a second that g goroutines achieve on an
// always-admitting conc.Limiter at the current GOMAXPROCS (as in conc's own
// suite), so that conc admits about half the calls.
func halfRate(g int) float64 {
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
			l := conc.NewLimiter(r, 10)
			var calls atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for range g {
				wg.Go(func() {
					n := int64(0)
					for time.Since(start) < 10*time.Millisecond {
						for range 100 {
							l.Allow()
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
