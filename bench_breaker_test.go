package conc

import (
	"context"
	"testing"
	"time"

	"github.com/concpatterns/conc/internal/benchkit"
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
	for _, w := range benchkit.BreakerWorkloads {
		b.Run(w.Name, func(b *testing.B) {
			b.Run("conc", func(b *testing.B) {
				opts := []BreakerOption{ConsecutiveFailures(5)}
				if w.Window > 0 {
					opts = []BreakerOption{FailureRate(0.5, w.Window, LastCalls(w.Window))}
				}
				cb := NewBreaker(opts...)
				benchkit.RunCalls(b, w.Goroutines, cb.Execute)
			})
			b.Run("mutex", func(b *testing.B) {
				cb := newMutexBreaker(5, time.Minute, w.Window)
				benchkit.RunCalls(b, w.Goroutines, cb.Execute)
			})
			b.Run("chan", func(b *testing.B) {
				cb := newChanBreaker(5, time.Minute, w.Window)
				defer cb.Close()
				benchkit.RunCalls(b, w.Goroutines, cb.Execute)
			})
			b.Run("direct", func(b *testing.B) {
				benchkit.RunCalls(b, w.Goroutines, func(ctx context.Context, fn func(context.Context) error) error {
					return fn(ctx)
				})
			})
		})
	}
}
