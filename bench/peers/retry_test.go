package peers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/avast/retry-go/v4"
	"github.com/cenkalti/backoff/v5"
	"github.com/concpatterns/conc"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
)

// retryOKErr is the operation the first-success workload wraps: it succeeds
// at once. A package variable keeps the compiler from inlining it into one
// implementation and not another.
var (
	retryOKErr   = func() error { return nil }
	errTransient = errors.New("peers: transient")
)

// BenchmarkRetry measures what a retry library adds to a call, per call, on
// GOMAXPROCS goroutines, with the workloads of the main suite:
// first-success (fn succeeds at once) and fail-2 (fn fails twice, then
// succeeds, with zero delays, so that the machinery between attempts is
// measured rather than the sleeping). Every impl is configured alike — 5
// attempts, the workload's base delay, 1s max delay, the caller's context —
// and used the way its documentation shows:
//
//   - conc: Retry with the options inline, as in the main suite;
//     conc-policy: a shared *RetryPolicy's Do.
//   - backoff: cenkalti/backoff v5 Retry; its ExponentialBackOff is stateful
//     and not safe to share, so a fresh one per call is the documented use.
//   - retrygo: avast/retry-go v4 Do with its options inline, and its delay
//     type set to plain exponential backoff: its default adds up to 100ms
//     of random delay, which would make fail-2 measure sleeping.
//   - failsafe: failsafe-go with a retry policy and an executor built once
//     and shared, its cheapest form; WithContext per call, as it requires.
func BenchmarkRetry(b *testing.B) {
	ctx := context.Background()
	const maxDelay = time.Second
	for _, w := range []struct {
		name  string
		base  time.Duration
		newFn func() func() error // one per goroutine
	}{
		{"first-success", 10 * time.Millisecond, func() func() error { return retryOKErr }},
		{"fail-2", 0, func() func() error {
			n := 0 // every third attempt succeeds
			return func() error {
				if n++; n%3 != 0 {
					return errTransient
				}
				return nil
			}
		}},
	} {
		base := w.base
		b.Run(w.name+"/conc", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				f := w.newFn()
				fn := func(context.Context) error { return f() }
				for pb.Next() {
					if err := conc.Retry(ctx, fn, conc.RetryAttempts(5),
						conc.RetryBaseDelay(base), conc.RetryMaxDelay(maxDelay)); err != nil {
						b.Error(err)
					}
				}
			})
		})
		b.Run(w.name+"/conc-policy", func(b *testing.B) {
			p := conc.NewRetryPolicy(conc.RetryAttempts(5), conc.RetryBaseDelay(base), conc.RetryMaxDelay(maxDelay))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				f := w.newFn()
				fn := func(context.Context) error { return f() }
				for pb.Next() {
					if err := p.Do(ctx, fn); err != nil {
						b.Error(err)
					}
				}
			})
		})
		b.Run(w.name+"/backoff", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				f := w.newFn()
				op := func() (struct{}, error) { return struct{}{}, f() }
				for pb.Next() {
					eb := backoff.NewExponentialBackOff()
					eb.InitialInterval, eb.MaxInterval = base, maxDelay
					if _, err := backoff.Retry(ctx, op, backoff.WithBackOff(eb), backoff.WithMaxTries(5)); err != nil {
						b.Error(err)
					}
				}
			})
		})
		b.Run(w.name+"/retrygo", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				f := w.newFn()
				for pb.Next() {
					if err := retry.Do(f, retry.Context(ctx), retry.Attempts(5), retry.Delay(base),
						retry.MaxDelay(maxDelay), retry.DelayType(retry.BackOffDelay)); err != nil {
						b.Error(err)
					}
				}
			})
		})
		b.Run(w.name+"/failsafe", func(b *testing.B) {
			bld := retrypolicy.NewBuilder[any]().WithMaxAttempts(5)
			if base > 0 {
				bld = bld.WithBackoff(base, maxDelay)
			} else {
				bld = bld.WithDelay(0)
			}
			exec := failsafe.With[any](bld.Build())
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				f := w.newFn()
				for pb.Next() {
					if err := exec.WithContext(ctx).Run(f); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
