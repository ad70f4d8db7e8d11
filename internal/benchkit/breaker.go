package benchkit

import (
	"context"
	"runtime"
	"testing"
)

// BreakerWindow is the size of the count window of the window-* breaker
// workloads.
const BreakerWindow = 100

// BreakerWorkloads are the breaker suites' workloads: the
// consecutive-failures policy (Window 0: trip after 5 in a row) or a
// failure rate over the last BreakerWindow calls, with 1 or 2 callers.
var BreakerWorkloads = []struct {
	Name       string
	Goroutines int
	Window     int
}{
	{"consecutive-g1", 1, 0},
	{"consecutive-g2", 2, 0},
	{"window-g1", 1, BreakerWindow},
	{"window-g2", 2, BreakerWindow},
}

// BreakerNop is the protected function of the breaker suites: it does
// nothing and succeeds. It is a variable so that no implementation gets it
// inlined.
var BreakerNop = func(context.Context) error { return nil }

// RunCalls runs b.N calls of execute(ctx, BreakerNop), from one goroutine
// or from g goroutines sharing b.N through RunParallel (which hands out
// iterations in batches, so the sharing itself costs nothing measurable).
// With GOMAXPROCS above g the parallel case runs GOMAXPROCS goroutines,
// the fewest RunParallel allows. Every implementation, conc's included, is
// called through the same function value, so none gets inlined into the
// loop and the others not.
func RunCalls(b *testing.B, g int, execute func(context.Context, func(context.Context) error) error) {
	ctx := context.Background()
	b.ReportAllocs()
	if g == 1 {
		for b.Loop() {
			if err := execute(ctx, BreakerNop); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((g + procs - 1) / procs)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := execute(ctx, BreakerNop); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
