package peers

import (
	"context"
	"testing"
	"time"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/internal/benchkit"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// BenchmarkBreaker is the peer side of conc's BenchmarkBreaker: one call
// through a closed breaker whose function returns nil, with 1 or 2 calling
// goroutines, under the consecutive-failure policy (trip after 5) and a
// failure rate over the last 100 calls.
//
// Each library is used the way its documentation shows: gobreaker's
// CircuitBreaker[T].Execute, and failsafe-go's executor Run with the
// breaker as its only policy, the executor built once outside the loop.
// gobreaker has no count-based window (its rolling window is by time), so
// it has no window-* rows.
func BenchmarkBreaker(b *testing.B) {
	for _, w := range benchkit.BreakerWorkloads {
		b.Run(w.Name, func(b *testing.B) {
			b.Run("conc", func(b *testing.B) {
				opt := conc.ConsecutiveFailures(5)
				if w.Window > 0 {
					opt = conc.FailureRate(0.5, w.Window, conc.LastCalls(w.Window))
				}
				cb := conc.NewBreaker(opt)
				benchkit.RunCalls(b, w.Goroutines, cb.Execute)
			})
			if w.Window == 0 {
				b.Run("gobreaker", func(b *testing.B) {
					cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
						Name:        "bench",
						Timeout:     time.Minute,
						ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
					})
					benchkit.RunCalls(b, w.Goroutines, func(ctx context.Context, fn func(context.Context) error) error {
						_, err := cb.Execute(func() (any, error) { return nil, fn(ctx) })
						return err
					})
				})
			}
			b.Run("failsafe", func(b *testing.B) {
				builder := circuitbreaker.NewBuilder[any]().WithDelay(time.Minute)
				if w.Window > 0 {
					builder = builder.WithFailureThresholdRatio(uint(w.Window/2), uint(w.Window))
				} else {
					builder = builder.WithFailureThreshold(5)
				}
				exec := failsafe.With[any](builder.Build())
				benchkit.RunCalls(b, w.Goroutines, func(ctx context.Context, fn func(context.Context) error) error {
					return exec.Run(func() error { return fn(ctx) })
				})
			})
		})
	}
}
