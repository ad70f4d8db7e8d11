package peers

import (
	"context"
	"iter"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concpatterns/conc"
	"github.com/destel/rill"
	sgiter "github.com/sourcegraph/conc/iter"
	"github.com/sourcegraph/conc/stream"
)

// BenchmarkPipeline runs the workloads of the main suite's
// BenchmarkPipeline (bench_stage_test.go) against destel/rill and
// sourcegraph/conc. One b.N iteration is one input item.
//
//   - cheap3: square, keep even, add one over b.N ints. conc-collect is
//     Collect over an iter.Seq; rill chains Map, Filter and Map with n=1
//     from FromSeq and ranges over the result; sourcegraph runs the three
//     steps in one iter.Mapper.Map over a slice (its cheapest form: it has
//     no streaming filter) and compacts the kept items.
//   - 1us-wN and tiny-wN: one step (burning about 1 µs, or adding one) with
//     N workers. conc and conc-ordered use Map with Workers(N) (and
//     Ordered) through Collect; rill and rill-ordered use Map and
//     OrderedMap with n=N; sourcegraph is iter.Mapper{MaxGoroutines: N}.Map
//     over a slice; sourcegraph-stream submits one stream task per item
//     (ordered callbacks), with N goroutines.
//
// The input slice that sourcegraph's iter needs is built before the timer
// starts, which favours it slightly.
func BenchmarkPipeline(b *testing.B) {
	pipePeerBurnMicro()
	b.Run("cheap3", func(b *testing.B) {
		s := conc.Then(conc.Then(
			conc.Map(func(_ context.Context, v int) (int, error) { return v * v, nil }),
			conc.Filter(func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil })),
			conc.Map(func(_ context.Context, v int) (int, error) { return v + 1, nil }))
		b.Run("conc-collect", func(b *testing.B) {
			pipePeerStart(b)
			got, err := conc.Collect(context.Background(), s, pipePeerInts(b.N))
			pipePeerCheck(b, err)
			pipePeerSink.Store(int64(len(got)))
		})
		b.Run("rill", func(b *testing.B) {
			pipePeerStart(b)
			in := rill.FromSeq(pipePeerInts(b.N), nil)
			sq := rill.Map(in, 1, func(v int) (int, error) { return v * v, nil })
			even := rill.Filter(sq, 1, func(v int) (bool, error) { return v%2 == 0, nil })
			inc := rill.Map(even, 1, func(v int) (int, error) { return v + 1, nil })
			got, err := rill.ToSlice(inc)
			pipePeerCheck(b, err)
			pipePeerSink.Store(int64(len(got)))
		})
		b.Run("sourcegraph", func(b *testing.B) {
			input := pipePeerSlice(b.N)
			pipePeerStart(b)
			type kept struct {
				v  int
				ok bool
			}
			all := sgiter.Mapper[int, kept]{MaxGoroutines: runtime.GOMAXPROCS(0)}.Map(input, func(p *int) kept {
				v := *p * *p
				return kept{v + 1, v%2 == 0}
			})
			got := make([]int, 0, len(all)/2)
			for _, k := range all {
				if k.ok {
					got = append(got, k.v)
				}
			}
			pipePeerSink.Store(int64(len(got)))
		})
	})
	for _, work := range []struct {
		name string
		fn   func(int) int
	}{
		{"1us", func(v int) int { pipePeerBurnMicro(); return v }},
		{"tiny", func(v int) int { return v + 1 }},
	} {
		for _, w := range []int{1, 2, 4} {
			fn := work.fn
			b.Run(work.name+"-w"+strconv.Itoa(w), func(b *testing.B) {
				for _, impl := range []struct {
					name string
					opts []conc.StageOption
				}{
					{"conc", []conc.StageOption{conc.Workers(w)}},
					{"conc-ordered", []conc.StageOption{conc.Workers(w), conc.Ordered()}},
				} {
					s := conc.Map(func(_ context.Context, v int) (int, error) { return fn(v), nil }, impl.opts...)
					b.Run(impl.name, func(b *testing.B) {
						pipePeerStart(b)
						got, err := conc.Collect(context.Background(), s, pipePeerInts(b.N))
						pipePeerCheck(b, err)
						pipePeerSink.Store(int64(len(got)))
					})
				}
				for _, impl := range []struct {
					name string
					mapf func(<-chan rill.Try[int], int, func(int) (int, error)) <-chan rill.Try[int]
				}{
					{"rill", rill.Map[int, int]},
					{"rill-ordered", rill.OrderedMap[int, int]},
				} {
					b.Run(impl.name, func(b *testing.B) {
						pipePeerStart(b)
						out := impl.mapf(rill.FromSeq(pipePeerInts(b.N), nil), w,
							func(v int) (int, error) { return fn(v), nil })
						got, err := rill.ToSlice(out)
						pipePeerCheck(b, err)
						pipePeerSink.Store(int64(len(got)))
					})
				}
				b.Run("sourcegraph", func(b *testing.B) {
					input := pipePeerSlice(b.N)
					pipePeerStart(b)
					got := sgiter.Mapper[int, int]{MaxGoroutines: w}.Map(input, func(p *int) int { return fn(*p) })
					pipePeerSink.Store(int64(len(got)))
				})
				b.Run("sourcegraph-stream", func(b *testing.B) {
					pipePeerStart(b)
					s := stream.New().WithMaxGoroutines(w)
					var got []int
					for i := range b.N {
						s.Go(func() stream.Callback {
							v := fn(i)
							return func() { got = append(got, v) }
						})
					}
					s.Wait()
					pipePeerSink.Store(int64(len(got)))
				})
			})
		}
	}
}

// pipePeerSink defeats dead-code elimination of benchmark results.
var pipePeerSink atomic.Int64

func pipePeerInts(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

func pipePeerSlice(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func pipePeerCheck(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

var (
	pipePeerBurnOnce sync.Once
	pipePeerBurnN    int
)

// pipePeerBurnMicro burns about one microsecond of CPU, calibrated once per
// process like burnMicro in the main module's bench_test.go (which this
// module cannot import: it is a test file).
func pipePeerBurnMicro() int {
	pipePeerBurnOnce.Do(func() {
		const probe = 2_000_000
		start := time.Now()
		pipePeerSink.Store(int64(pipePeerBurn(probe)))
		pipePeerBurnN = max(1, int(float64(probe)*float64(time.Microsecond)/float64(time.Since(start))))
	})
	return pipePeerBurn(pipePeerBurnN)
}

//go:noinline
func pipePeerBurn(n int) int {
	x := 1
	for i := 0; i < n; i++ {
		x = x*1664525 + 1013904223
	}
	return x
}

// pipePeerStart begins a measurement: allocations reported, and the
// garbage of the previous sub-benchmark collected first, so that its GC
// debt is not billed to whichever implementation runs next.
func pipePeerStart(b *testing.B) {
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
}
