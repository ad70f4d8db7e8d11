package conc

import (
	"context"
	"errors"
	"testing"
	"time"
)

// benchRetryOK is the function the first-success workload calls: it
// succeeds at once. It is a package variable so that no implementation can
// inline it, which would flatter whichever one the compiler happens to see
// through.
var benchRetryOK = func(context.Context) error { return nil }

var errBenchRetry = errors.New("bench: transient")

// BenchmarkRetry measures what a retry wrapper costs around a call. One b.N
// iteration is one call (with all its attempts). The calls run on
// GOMAXPROCS goroutines (b.RunParallel), so -cpu=2 also shows that a shared
// policy scales: it holds no mutable state.
//
// Workloads:
//   - first-success: fn succeeds at once, the common case and the one a
//     retry wrapper taxes on every request. Extra impls: conc-value
//     (RetryValue), direct (fn called directly: the floor).
//   - fail-2: fn fails twice, then succeeds, with zero delays, so that the
//     machinery between attempts is measured rather than the sleeping.
//
// The naive baselines are the two loops of naive_retry_test.go: "chan"
// waits between attempts on channels (a select on time.After and
// ctx.Done()), "loop" sleeps (time.Sleep). There is no mutex impl: a retry
// has no shared state to guard, so a mutex version would only measure an
// invented lock.
func BenchmarkRetry(b *testing.B) {
	ctx := context.Background()
	const (
		attempts = 5
		maxDelay = time.Second
	)
	// Each impl's loop is written out: going through a shared function
	// value would add an indirect call to every impl, direct included, and
	// hide part of what the target ratio is about.
	for _, w := range []struct {
		name  string
		base  time.Duration
		newFn func() func(context.Context) error // one per goroutine
	}{
		{"first-success", 10 * time.Millisecond, func() func(context.Context) error { return benchRetryOK }},
		{"fail-2", 0, func() func(context.Context) error {
			n := 0 // every third attempt succeeds
			return func(context.Context) error {
				if n++; n%3 != 0 {
					return errBenchRetry
				}
				return nil
			}
		}},
	} {
		base := w.base
		b.Run(w.name+"/conc", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				fn := w.newFn()
				for pb.Next() {
					if err := Retry(ctx, fn, RetryAttempts(attempts), RetryBaseDelay(base), RetryMaxDelay(maxDelay)); err != nil {
						b.Error(err)
					}
				}
			})
		})
		b.Run(w.name+"/conc-policy", func(b *testing.B) {
			p := NewRetryPolicy(RetryAttempts(attempts), RetryBaseDelay(base), RetryMaxDelay(maxDelay))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				fn := w.newFn()
				for pb.Next() {
					if err := p.Do(ctx, fn); err != nil {
						b.Error(err)
					}
				}
			})
		})
		if w.name == "first-success" {
			b.Run(w.name+"/conc-value", func(b *testing.B) {
				fn := func(context.Context) (int, error) { return 1, nil }
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					n := 0
					for pb.Next() {
						v, err := RetryValue(ctx, fn, RetryAttempts(attempts), RetryBaseDelay(base), RetryMaxDelay(maxDelay))
						if err != nil {
							b.Error(err)
						}
						n += v
					}
					sink.Add(int64(n))
				})
			})
			b.Run(w.name+"/direct", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := benchRetryOK(ctx); err != nil {
							b.Error(err)
						}
					}
				})
			})
		}
		b.Run(w.name+"/loop", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				fn := w.newFn()
				for pb.Next() {
					if err := naiveRetry(ctx, attempts, base, fn); err != nil {
						b.Error(err)
					}
				}
			})
		})
		b.Run(w.name+"/chan", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				fn := w.newFn()
				for pb.Next() {
					if err := naiveRetrySelect(ctx, attempts, base, fn); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
