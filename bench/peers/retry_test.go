package peers

import (
	"context"
	"testing"
	"time"

	"github.com/avast/retry-go/v4"
	"github.com/cenkalti/backoff/v5"
	"github.com/concpatterns/conc"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
)

// retryOK is the operation every Retry benchmark wraps: it succeeds at once.
// Package variables keep the compiler from inlining it into one
// implementation and not another.
var (
	retryOK    = func(context.Context) error { return nil }
	retryOKErr = func() error { return nil }
)

// BenchmarkRetry measures what a retry library adds to a call whose first
// attempt succeeds, per call, on GOMAXPROCS goroutines. Every impl is
// configured alike — 5 attempts, 10ms base delay, 1s max delay, the
// caller's context — and used the way its documentation shows:
//
//   - conc: Retry with the options inline, as in the main suite.
//   - backoff: cenkalti/backoff v5 Retry; its ExponentialBackOff is stateful
//     and not safe to share, so a fresh one per call is the documented use.
//   - retrygo: avast/retry-go v4 Do with its options inline.
//   - failsafe: failsafe-go with a retry policy and an executor built once
//     and shared, its cheapest form; WithContext per call, as it requires.
func BenchmarkRetry(b *testing.B) {
	ctx := context.Background()
	b.Run("first-success/conc", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := conc.Retry(ctx, retryOK, conc.RetryAttempts(5),
					conc.RetryBaseDelay(10*time.Millisecond), conc.RetryMaxDelay(time.Second)); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("first-success/conc-policy", func(b *testing.B) {
		p := conc.NewRetryPolicy(conc.RetryAttempts(5),
			conc.RetryBaseDelay(10*time.Millisecond), conc.RetryMaxDelay(time.Second))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.Do(ctx, retryOK); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("first-success/backoff", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				eb := backoff.NewExponentialBackOff()
				eb.InitialInterval, eb.MaxInterval = 10*time.Millisecond, time.Second
				_, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, retryOKErr() },
					backoff.WithBackOff(eb), backoff.WithMaxTries(5))
				if err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("first-success/retrygo", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := retry.Do(retryOKErr, retry.Context(ctx), retry.Attempts(5),
					retry.Delay(10*time.Millisecond), retry.MaxDelay(time.Second)); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("first-success/failsafe", func(b *testing.B) {
		rp := retrypolicy.NewBuilder[any]().WithMaxAttempts(5).
			WithBackoff(10*time.Millisecond, time.Second).Build()
		exec := failsafe.With[any](rp)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := exec.WithContext(ctx).Run(retryOKErr); err != nil {
					b.Error(err)
				}
			}
		})
	})
}
