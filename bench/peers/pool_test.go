package peers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/internal/benchkit"
	"github.com/panjf2000/ants/v2"
	sgiter "github.com/sourcegraph/conc/iter"
	sgpool "github.com/sourcegraph/conc/pool"
	"golang.org/x/sync/errgroup"
)

// The pool suites of the main module (BenchmarkPool, BenchmarkMapN in
// bench_pool_test.go) against the libraries people use for the same job.
// 4 workers everywhere; ns/op is per job or per item.

var poolSink atomic.Int64

//go:noinline
func poolBurn(n int) int {
	x := 1
	for i := 0; i < n; i++ {
		x = x*1664525 + 1013904223
	}
	return x
}

var (
	poolBurnOnce sync.Once
	poolBurnN    int
)

// poolBurnMicro burns about a microsecond of CPU, calibrated once.
func poolBurnMicro() int {
	poolBurnOnce.Do(func() {
		const probe = 2_000_000
		start := time.Now()
		poolSink.Store(int64(poolBurn(probe)))
		poolBurnN = max(1, int(float64(probe)*float64(time.Microsecond)/float64(time.Since(start))))
	})
	return poolBurn(poolBurnN)
}

const poolWorkers = 4

// BenchmarkPool: b.N jobs submitted from one goroutine, each job's result
// accounted for (an atomic add for fire-and-forget peers), until all done.
func BenchmarkPool(b *testing.B) {
	var counter atomic.Int64
	workloads := []struct {
		name string
		fn   func(int) int
	}{
		{"tiny", func(v int) int { counter.Add(1); return v }},
		{"1us", func(v int) int { return poolBurnMicro() + v }},
	}
	poolBurnMicro()
	for _, wl := range workloads {
		fn := wl.fn
		b.Run(wl.name+"/conc", func(b *testing.B) {
			b.ReportAllocs()
			p := conc.NewPool(poolWorkers, func(_ context.Context, v int) (int, error) { return fn(v), nil })
			b.ResetTimer()
			go func() {
				for i := range b.N {
					_ = p.Submit(context.Background(), i)
				}
				p.Close()
			}()
			s := 0
			for r := range p.Results() {
				s += r.Value
			}
			poolSink.Add(int64(s))
		})
		b.Run(wl.name+"/conc-callback", func(b *testing.B) {
			b.ReportAllocs()
			var s atomic.Int64
			p := conc.NewPool(poolWorkers, func(_ context.Context, v int) (int, error) { return fn(v), nil },
				conc.OnResult(func(r conc.Result[int, int]) { s.Add(int64(r.Value)) }))
			b.ResetTimer()
			for i := range b.N {
				_ = p.Submit(context.Background(), i)
			}
			_ = p.Stop(context.Background())
			poolSink.Add(s.Load())
		})
		b.Run(wl.name+"/pond", func(b *testing.B) {
			b.ReportAllocs()
			var s atomic.Int64
			p := pond.NewPool(poolWorkers)
			b.ResetTimer()
			for i := range b.N {
				p.Submit(func() { s.Add(int64(fn(i))) })
			}
			p.StopAndWait()
			poolSink.Add(s.Load())
		})
		b.Run(wl.name+"/pond-go", func(b *testing.B) {
			b.ReportAllocs()
			var s atomic.Int64
			p := pond.NewPool(poolWorkers)
			b.ResetTimer()
			for i := range b.N {
				_ = p.Go(func() { s.Add(int64(fn(i))) })
			}
			p.StopAndWait()
			poolSink.Add(s.Load())
		})
		b.Run(wl.name+"/ants", func(b *testing.B) {
			b.ReportAllocs()
			var s atomic.Int64
			var wg sync.WaitGroup
			p, _ := ants.NewPool(poolWorkers)
			defer p.Release()
			b.ResetTimer()
			for i := range b.N {
				wg.Add(1)
				_ = p.Submit(func() { s.Add(int64(fn(i))); wg.Done() })
			}
			wg.Wait()
			poolSink.Add(s.Load())
		})
		b.Run(wl.name+"/ants-func", func(b *testing.B) {
			b.ReportAllocs()
			var s atomic.Int64
			var wg sync.WaitGroup
			p, _ := ants.NewPoolWithFunc(poolWorkers, func(a any) { s.Add(int64(fn(a.(int)))); wg.Done() })
			defer p.Release()
			b.ResetTimer()
			for i := range b.N {
				wg.Add(1)
				_ = p.Invoke(i)
			}
			wg.Wait()
			poolSink.Add(s.Load())
		})
		b.Run(wl.name+"/sourcegraph", func(b *testing.B) {
			b.ReportAllocs()
			var s atomic.Int64
			p := sgpool.New().WithMaxGoroutines(poolWorkers)
			b.ResetTimer()
			for i := range b.N {
				p.Go(func() { s.Add(int64(fn(i))) })
			}
			p.Wait()
			poolSink.Add(s.Load())
		})
		b.Run(wl.name+"/errgroup", func(b *testing.B) {
			b.ReportAllocs()
			var s atomic.Int64
			var g errgroup.Group
			g.SetLimit(poolWorkers)
			b.ResetTimer()
			for i := range b.N {
				g.Go(func() error { s.Add(int64(fn(i))); return nil })
			}
			_ = g.Wait()
			poolSink.Add(s.Load())
		})
	}
}

// BenchmarkMapN maps a slice of up to 1M ints with 4 workers (the same
// tiny pure function as the main suite); ns/op is per item.
func BenchmarkMapN(b *testing.B) {
	const size = 1 << 20
	items := make([]int, size)
	for i := range items {
		items[i] = i
	}
	tiny := func(v int) int { return v*2 + 1 }
	impls := []struct {
		name string
		run  func([]int) []int
	}{
		{"conc", func(in []int) []int {
			out, _ := conc.MapN(context.Background(), in, poolWorkers, func(_ context.Context, v int) (int, error) { return tiny(v), nil })
			return out
		}},
		{"sourcegraph", func(in []int) []int {
			return sgiter.Mapper[int, int]{MaxGoroutines: poolWorkers}.Map(in, func(v *int) int { return tiny(*v) })
		}},
		{"errgroup", func(in []int) []int {
			out := make([]int, len(in))
			var g errgroup.Group
			g.SetLimit(poolWorkers)
			for i, v := range in {
				g.Go(func() error { out[i] = tiny(v); return nil })
			}
			_ = g.Wait()
			return out
		}},
	}
	for _, impl := range impls {
		b.Run("tiny/"+impl.name, func(b *testing.B) {
			benchkit.RunSlices(b, items, impl.run, func(v int) { poolSink.Add(int64(v)) })
		})
	}
}
