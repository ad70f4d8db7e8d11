package conc

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// BenchmarkBreaker measures one call through a closed breaker whose
// function returns nil: the cost a breaker adds to every healthy call.
//
//	consecutive-g1/g2  default policy (5 failures in a row), 1 or 2 callers
//	window-g1/g2       failure rate over the last 100 calls, 1 or 2 callers
//
// Implementations: conc (Breaker.Execute), mutex and chan (the naive
// breakers of naive_breaker_test.go, ring-buffer windowed for window-*),
// direct (calling the function with no breaker at all).
func BenchmarkBreaker(b *testing.B) {
	const window = 100
	for _, w := range []struct {
		name       string
		goroutines int
		window     int
	}{
		{"consecutive-g1", 1, 0},
		{"consecutive-g2", 2, 0},
		{"window-g1", 1, window},
		{"window-g2", 2, window},
	} {
		b.Run(w.name, func(b *testing.B) {
			b.Run("conc", func(b *testing.B) {
				opts := []BreakerOption{ConsecutiveFailures(5)}
				if w.window > 0 {
					opts = []BreakerOption{FailureRate(0.5, w.window, LastCalls(w.window))}
				}
				cb := NewBreaker(opts...)
				benchBreakerCalls(b, w.goroutines, cb.Execute)
			})
			b.Run("mutex", func(b *testing.B) {
				cb := newMutexBreaker(5, time.Minute, w.window)
				benchBreakerCalls(b, w.goroutines, cb.Execute)
			})
			b.Run("chan", func(b *testing.B) {
				cb := newChanBreaker(5, time.Minute, w.window)
				defer cb.Close()
				benchBreakerCalls(b, w.goroutines, cb.Execute)
			})
			b.Run("direct", func(b *testing.B) {
				benchBreakerCalls(b, w.goroutines, func(ctx context.Context, fn func(context.Context) error) error {
					return fn(ctx)
				})
			})
		})
	}
}

// breakerNop is the protected function: it does nothing and succeeds. It is
// a variable so that no implementation gets it inlined.
var breakerNop = func(context.Context) error { return nil }

// benchBreakerCalls runs b.N calls of execute(ctx, breakerNop), from one
// goroutine or from g goroutines sharing b.N through RunParallel (which
// hands out iterations in batches, so the sharing itself costs nothing
// measurable). With GOMAXPROCS above g the parallel case runs GOMAXPROCS
// goroutines, the fewest RunParallel allows.
func benchBreakerCalls(b *testing.B, g int, execute func(context.Context, func(context.Context) error) error) {
	ctx := context.Background()
	b.ReportAllocs()
	if g == 1 {
		for b.Loop() {
			if err := execute(ctx, breakerNop); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((g + procs - 1) / procs)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := execute(ctx, breakerNop); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
