package peers

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/concpatterns/conc"
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
				opt := conc.ConsecutiveFailures(5)
				if w.window > 0 {
					opt = conc.FailureRate(0.5, w.window, conc.LastCalls(w.window))
				}
				cb := conc.NewBreaker(opt)
				benchBreakerPeer(b, w.goroutines, func(ctx context.Context) error {
					return cb.Execute(ctx, breakerNop)
				})
			})
			if w.window == 0 {
				b.Run("gobreaker", func(b *testing.B) {
					cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
						Name:        "bench",
						Timeout:     time.Minute,
						ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
					})
					benchBreakerPeer(b, w.goroutines, func(ctx context.Context) error {
						_, err := cb.Execute(func() (any, error) { return nil, breakerNop(ctx) })
						return err
					})
				})
			}
			b.Run("failsafe", func(b *testing.B) {
				builder := circuitbreaker.NewBuilder[any]().WithDelay(time.Minute)
				if w.window > 0 {
					builder = builder.WithFailureThresholdRatio(uint(w.window/2), uint(w.window))
				} else {
					builder = builder.WithFailureThreshold(5)
				}
				exec := failsafe.With[any](builder.Build())
				benchBreakerPeer(b, w.goroutines, func(ctx context.Context) error {
					return exec.Run(func() error { return breakerNop(ctx) })
				})
			})
		})
	}
}

// breakerNop is the protected function: it does nothing and succeeds. It is
// a variable so that no implementation gets it inlined.
var breakerNop = func(context.Context) error { return nil }

// benchBreakerPeer runs b.N calls, from one goroutine or from g goroutines
// sharing b.N through RunParallel, exactly as conc's suite does.
func benchBreakerPeer(b *testing.B, g int, call func(context.Context) error) {
	ctx := context.Background()
	b.ReportAllocs()
	if g == 1 {
		for b.Loop() {
			if err := call(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((g + procs - 1) / procs)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
