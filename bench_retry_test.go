package conc

import (
	"context"
	"testing"
	"time"
)

// benchRetryOK is the function every Retry benchmark calls: it succeeds at
// once. It is a package variable so that no implementation can inline it,
// which would flatter whichever one the compiler happens to see through.
var benchRetryOK = func(context.Context) error { return nil }

// BenchmarkRetry measures the cost Retry adds to a call whose first attempt
// succeeds — the common case, and the one a retry wrapper taxes on every
// request. One b.N iteration is one call. The calls run on GOMAXPROCS
// goroutines (b.RunParallel), so -cpu=2 also shows that a shared policy
// scales: it holds no mutable state.
//
// Impls: conc (Retry with three options written inline, the usual way),
// conc-policy (a shared *RetryPolicy's Do), conc-value (RetryValue with the
// options inline), direct (fn called directly, the floor) and loop (the
// tutorial loop in naive_retry_test.go). There is no mutex or chan impl:
// a retry has no shared state to guard and no hand-off between goroutines,
// so a naive mutex or channel version would only measure an invented lock.
func BenchmarkRetry(b *testing.B) {
	ctx := context.Background()
	b.Run("first-success/conc", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := Retry(ctx, benchRetryOK,
					RetryAttempts(5), RetryBaseDelay(10*time.Millisecond), RetryMaxDelay(time.Second)); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("first-success/conc-policy", func(b *testing.B) {
		p := NewRetryPolicy(RetryAttempts(5), RetryBaseDelay(10*time.Millisecond), RetryMaxDelay(time.Second))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.Do(ctx, benchRetryOK); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("first-success/conc-value", func(b *testing.B) {
		fn := func(context.Context) (int, error) { return 1, nil }
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			n := 0
			for pb.Next() {
				v, err := RetryValue(ctx, fn,
					RetryAttempts(5), RetryBaseDelay(10*time.Millisecond), RetryMaxDelay(time.Second))
				if err != nil {
					b.Error(err)
				}
				n += v
			}
			sink.Add(int64(n))
		})
	})
	b.Run("first-success/direct", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := benchRetryOK(ctx); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("first-success/loop", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := naiveRetry(ctx, 5, 10*time.Millisecond, benchRetryOK); err != nil {
					b.Error(err)
				}
			}
		})
	})
}
