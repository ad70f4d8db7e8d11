package conc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concpatterns/conc/internal/benchkit"
)

// BenchmarkLimiter measures one Allow call. Workloads:
//
//	admit-g1, admit-g2  a rate so high that every call is admitted, with 1
//	                    and 2 goroutines calling;
//	half-g1, half-g2    a rate of half what Limiter alone achieves with that
//	                    many goroutines (measured once per process), so that
//	                    about half the calls are admitted and half denied.
//
// The "clock" impl only reads the clock, as every limiter here but chan must
// once per call: it is the floor. Every result carries admitted/op, the
// fraction of calls admitted, because a limiter that denies is cheaper than
// one that admits: the channel limiter cannot refill faster than its ticker
// and mostly denies in "admit". Each impl's loop calls its Allow directly (no
// interface or func value in between), as user code would.
//
// conc-counts is conc made with LimiterCounts. Counting is opt-in because
// it is not free: with the counts always on (8 striped slots, one atomic
// add per call), admit-g1/conc went from 39.5 ns to 45.9 ns (+16%,
// benchstat n=30, p=0.000, A/B binaries interleaved); with counting off,
// the one extra load left it at 39.3 ns (~, p=0.745).
func BenchmarkLimiter(b *testing.B) {
	nop := func() {}
	concWith := func(opts ...LimiterOption) func(float64, int) (func(int) int, func()) {
		return func(r float64, n int) (func(int) int, func()) {
			l := NewLimiter(r, n, opts...)
			return func(n int) (ok int) {
				for range n {
					if l.Allow() {
						ok++
					}
				}
				return ok
			}, nop
		}
	}
	impls := []struct {
		name string
		make func(perSecond float64, burst int) (loop func(n int) int, stop func())
	}{
		{"conc", concWith()},
		{"conc-counts", concWith(LimiterCounts())},
		{"mutex", func(r float64, n int) (func(int) int, func()) {
			l := newNaiveMutexLimiter(r, n)
			return func(n int) (ok int) {
				for range n {
					if l.Allow() {
						ok++
					}
				}
				return ok
			}, nop
		}},
		{"chan", func(r float64, n int) (func(int) int, func()) {
			l := newNaiveChanLimiter(r, n)
			return func(n int) (ok int) {
				for range n {
					if l.Allow() {
						ok++
					}
				}
				return ok
			}, l.Stop
		}},
		{"clock", func(float64, int) (func(int) int, func()) {
			c := clockReader{time.Now()}
			return func(n int) (ok int) {
				for range n {
					if c.Allow() {
						ok++
					}
				}
				return ok
			}, nop
		}},
	}
	for _, w := range benchkit.LimiterWorkloads(limiterHalfAllow) {
		b.Run(w.Name, func(b *testing.B) {
			perSecond, burst := w.Rate()
			for _, impl := range impls {
				b.Run(impl.name, func(b *testing.B) {
					loop, stop := impl.make(perSecond, burst)
					defer stop()
					benchkit.RunAllowers(b, w.Goroutines, loop)
				})
			}
		})
	}
}

// clockReader is the floor of any limiter that reads the clock per call: it
// only reads the monotonic clock the way Limiter does. On the project's
// machines that costs 23 ns when they are quiet and twice that under load,
// so conc minus clock is what Limiter itself costs.
type clockReader struct{ base time.Time }

func (c clockReader) Allow() bool { return time.Since(c.base) >= 0 }

// limiterHalfAllow is the limiter benchkit.HalfRate calibrates the half-*
// workloads on: a conc Limiter of rate r and burst 10.
func limiterHalfAllow(r float64) func() bool { return NewLimiter(r, 10).Allow }

// BenchmarkLimiterWait measures one Wait call at a rate so high (10^12 a
// second, burst 1000) that a token is always there: the cost of the
// blocking path when it need not block, with 1 and 2 goroutines calling.
// mutex takes the token under the mutex and would sleep off any debt;
// chan receives from the token channel, which its ticker refills with at
// most a burst per millisecond: the price of that design shows as waiting.
func BenchmarkLimiterWait(b *testing.B) {
	const perSecond, burst = 1e12, 1000
	impls := []struct {
		name string
		make func() (wait func(context.Context) error, stop func())
	}{
		{"conc", func() (func(context.Context) error, func()) {
			return NewLimiter(perSecond, burst).Wait, func() {}
		}},
		{"mutex", func() (func(context.Context) error, func()) {
			return newNaiveMutexLimiter(perSecond, burst).Wait, func() {}
		}},
		{"chan", func() (func(context.Context) error, func()) {
			l := newNaiveChanLimiter(perSecond, burst)
			return l.Wait, l.Stop
		}},
	}
	for _, g := range []int{1, 2} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("admit-g%d/%s", g, impl.name), func(b *testing.B) {
				wait, stop := impl.make()
				defer stop()
				ctx := context.Background()
				benchkit.RunAllowers(b, g, func(n int) (ok int) {
					for range n {
						if wait(ctx) == nil {
							ok++
						}
					}
					return ok
				})
			})
		}
	}
}

// BenchmarkKeyedLimiter measures one Allow call with a random key out of
// 100k (IP-address-like strings, precomputed), every call admitted, every
// key known after a warm-up: the steady state of a per-client limiter. It
// runs GOMAXPROCS goroutines. mutex is a map of x/time/rate limiters under
// one mutex, chan the same map owned by one goroutine that answers requests
// sent on an unbuffered channel.
func BenchmarkKeyedLimiter(b *testing.B) {
	const nkeys = 100_000
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)
	}
	// A random walk over the keys, shared by all goroutines from different
	// starting points, so that picking a key costs the same for every impl.
	rng := rand.New(rand.NewPCG(1, 2))
	order := make([]int32, 1<<20)
	for i := range order {
		order[i] = int32(rng.IntN(nkeys))
	}
	// A rate of one a second with a huge burst: every call is admitted and
	// no bucket is ever full again, so no key is ever forgotten.
	const perSecond, burst = 1, 1 << 30
	impls := []struct {
		name  string
		allow func() func(string) bool
	}{
		{"conc", func() func(string) bool { return NewKeyedLimiter[string](perSecond, burst).Allow }},
		{"mutex", func() func(string) bool { return newNaiveKeyedLimiter(perSecond, burst).Allow }},
		{"chan", func() func(string) bool {
			k := newNaiveChanKeyedLimiter(perSecond, burst)
			b.Cleanup(k.Stop)
			return k.Allow
		}},
	}
	b.Run("keys=100k", func(b *testing.B) {
		for _, impl := range impls {
			b.Run(impl.name, func(b *testing.B) {
				allow := impl.allow()
				for _, k := range keys {
					allow(k)
				}
				b.ReportAllocs()
				var next atomic.Int64
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := int(next.Add(1)) * 7919
					for pb.Next() {
						allow(keys[order[i&(len(order)-1)]])
						i++
					}
				})
			})
		}
	})
}
