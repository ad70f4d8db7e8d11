package conc

import (
	"context"
	"iter"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPipeline compares pipelines built from Stage with the naive
// versions in naive_stage_test.go. One b.N iteration is one input item.
//
// Workload cheap3 streams b.N ints through three cheap steps (square, keep
// even, add one): here the cost is all transport. conc-collect runs them
// with Collect over an iter.Seq (fused: no goroutine, no channel),
// conc-all with All, conc-run with Run between a FromSeq channel and the
// output channel; chan is the tutorial pipeline of one goroutine and one
// unbuffered channel per step; mutex is GOMAXPROCS workers sharing an
// index counter and a result slice under a mutex.
//
// Workloads 1us-wN run one step that burns about 1 µs of CPU with N
// workers, tiny-wN one that adds one (transport cost again): conc (unordered) and conc-ordered use Workers(N) (and Ordered)
// through Collect; chan is the tutorial fan-out/fan-in (N goroutines
// reading one unbuffered channel, merged with a WaitGroup); mutex is N
// workers sharing an index counter and a result slice under a mutex.
//
// Measured 2026-12-06 on the project's 2-core machine (AMD EPYC VM, Go
// 1.26), -count=10, medians. First the run of the final code alone
// (go test -bench 'BenchmarkPipeline$' -cpu 1,2 -count 10), then the
// interleaved A/B of the code before and after ops chains (All and Collect)
// and Run's plain waits (10 rounds of old then new in one lock hold):
//
//	                             cpu=1               cpu=2
//	cheap3/direct                2.69 ns             2.75 ns
//	cheap3/conc-all              5.19 ns (1.93×)     5.17 ns (1.88×)
//	cheap3/conc-collect          6.92 ns             8.47 ns
//	cheap3/direct-append         5.66 ns             14.6 ns
//	cheap3-4k/conc-collect       6.45 ns             6.44 ns
//	cheap3-4k/direct-append      3.99 ns             5.52 ns
//	gen-cheap3/conc-run          201 ns              156 ns
//	gen-cheap3/chan              392 ns (1.95×)      369 ns (2.37×)
//	gen-cheap3/direct-hops       146 ns              146 ns
//
//	A/B, old → new               cpu=1               cpu=2
//	cheap3/conc-all              6.81 → 4.98 ns      6.66 → 4.80 ns    (p=0.000; direct 2.64, 2.65)
//	cheap3/conc-collect          10.1 → 7.21 ns      19.6 → 17.2 ns    (p=0.000, p=0.075)
//	cheap3-4k/conc-collect       8.49 → 6.03 ns      8.70 → 6.34 ns    (p=0.000)
//	gen-cheap3/conc-run          239 → 199 ns        197 → 149 ns      (p=0.007, p=0.000; chan 384, 364)
//
// All over cheap3 is within 2× of direct at both cpu counts. Collect less
// the growth of its result, which cheap3-4k/direct-append shows over direct
// (3.99 − 2.69 ns), is 6.45 − 1.30 = 5.15 ns, 1.91× direct, at cpu=1 (1.34×
// at cpu=2); over a b.N-long result Collect beats direct-append, whose
// doublings copy the slice over and over.
//
// What is left between conc-all and direct: an ops chain (stage_call.go)
// runs the three stages in one closure, so an item costs the iterator's
// call of that closure, the three functions and the loop body, against the
// loop body, ctx.Err and the three functions in direct: the same five
// calls. The rest is the closure's stop-flag check and its end (the loop
// body flag). The same shape written by hand (an iterator calling one
// closure that calls the three functions and then the range loop's body)
// measured 4.2 ns here, 1.5× direct: that much is the price of handing
// every item to a range-over-func loop body through a second call.
//
// gen-cheap3 with a context.Background() ctx takes Run's plain waits (see
// Run); with a cancellable ctx Run still selects on its done channel and
// stays where it was: 241 ns at cpu=1 and 206 ns at cpu=2 (a 6-round A/B
// of a cancellable ctx, old 242 and 208 ns), against about 384 and 364 ns
// for chan, 1.59× and 1.77×. About half of its gap to direct-hops is that
// two-case select (a plain receive in its place gave 250 → 197 ns at
// cpu=1): runtime.selectgo locks both channels and queues on both each
// time the drain goroutine parks, once every two items with an unbuffered
// generator.
func BenchmarkPipeline(b *testing.B) {
	burnMicro() // calibrate outside any timed region
	b.Run("cheap3", func(b *testing.B) {
		s := pipeCheap3()
		b.Run("conc-collect", func(b *testing.B) {
			pipeStart(b)
			got, err := Collect(context.Background(), s, pipeInts(b.N))
			pipeCheck(b, err)
			sink.Store(int64(len(got)))
		})
		b.Run("conc-all", func(b *testing.B) {
			pipeStart(b)
			sum := 0
			for v, err := range All(context.Background(), s, pipeInts(b.N)) {
				pipeCheck(b, err)
				sum += v
			}
			sink.Store(int64(sum))
		})
		b.Run("conc-run", func(b *testing.B) {
			pipeStart(b)
			ctx := context.Background()
			out, wait := s.Run(ctx, FromSeq(ctx, pipeInts(b.N)))
			sum := sumAll(out)
			pipeCheck(b, wait())
			sink.Store(int64(sum))
		})
		b.Run("chan", func(b *testing.B) {
			pipeStart(b)
			sum := sumAll(naivePipeAddOne(naivePipeKeepEven(naivePipeSquare(naivePipeGen(b.N)))))
			sink.Store(int64(sum))
		})
		b.Run("mutex", func(b *testing.B) {
			pipeStart(b)
			got := naiveMutexPipeline(b.N, runtime.GOMAXPROCS(0), func(v int) (int, bool) {
				v *= v
				return v + 1, v%2 == 0
			})
			sink.Store(int64(len(got)))
		})
		// The floor: the loop a programmer writes by hand, calling the
		// same three functions through the same function values, with a
		// ctx.Err() check per item.
		b.Run("direct", func(b *testing.B) {
			pipeStart(b)
			ctx := context.Background()
			sum := 0
			for v := range pipeInts(b.N) {
				if err := ctx.Err(); err != nil {
					b.Fatal(err)
				}
				sq, _ := pipeSquare(ctx, v)
				if keep, _ := pipeKeepEven(ctx, sq); !keep {
					continue
				}
				w, _ := pipeAddOne(ctx, sq)
				sum += w
			}
			sink.Store(int64(sum))
		})
		// The floor for conc-collect: the same loop gathering what it
		// keeps into a slice with append, as a programmer writes it
		// when the caller wants the slice.
		b.Run("direct-append", func(b *testing.B) {
			pipeStart(b)
			sink.Store(int64(len(pipeDirectAppend(b, b.N))))
		})
	})
	// cheap3-4k is cheap3 over inputs of 4096 items, one Collect (or one
	// loop) per 4096 items of b.N: the result slice then stays in the
	// cache, so the rows show the transport with little of the growth of a
	// b.N-long result, which on a long stream is memory traffic and most
	// of conc-collect's and direct-append's time.
	b.Run("cheap3-4k", func(b *testing.B) {
		s := pipeCheap3()
		const n = 4096
		b.Run("conc-collect", func(b *testing.B) {
			pipeStart(b)
			for i := 0; i < b.N; i += n {
				got, err := Collect(context.Background(), s, pipeInts(min(n, b.N-i)))
				pipeCheck(b, err)
				sink.Store(int64(len(got)))
			}
		})
		b.Run("direct-append", func(b *testing.B) {
			pipeStart(b)
			for i := 0; i < b.N; i += n {
				sink.Store(int64(len(pipeDirectAppend(b, min(n, b.N-i)))))
			}
		})
	})
	// gen-cheap3 is cheap3 fed by the seed's generator: one goroutine
	// sending 0..b.N-1 on an unbuffered channel, as naivePipeGen does.
	b.Run("gen-cheap3", func(b *testing.B) {
		s := pipeCheap3()
		b.Run("conc-run", func(b *testing.B) {
			pipeStart(b)
			out, wait := s.Run(context.Background(), naivePipeGen(b.N))
			sum := sumAll(out)
			pipeCheck(b, wait())
			sink.Store(int64(sum))
		})
		b.Run("chan", func(b *testing.B) {
			pipeStart(b)
			sum := sumAll(naivePipeAddOne(naivePipeKeepEven(naivePipeSquare(naivePipeGen(b.N)))))
			sink.Store(int64(sum))
		})
		// The floor of any pipeline that takes the generator's channel
		// and hands its output to another goroutine: one unbuffered hop
		// (generator to worker) and one buffered hop (worker to consumer)
		// per item, with the three functions called in between.
		b.Run("direct-hops", func(b *testing.B) {
			pipeStart(b)
			sum := sumAll(naivePipeHops(context.Background(), naivePipeGen(b.N), stageChunk))
			sink.Store(int64(sum))
		})
	})
	for _, work := range []struct {
		name string
		fn   func(int) int
	}{
		{"1us", func(v int) int { burnMicro(); return v }},
		{"tiny", func(v int) int { return v + 1 }},
	} {
		benchPipelineWorkers(b, work.name, work.fn)
	}
}

// benchPipelineWorkers runs the one-step workloads <name>-w1, -w2, -w4.
func benchPipelineWorkers(b *testing.B, name string, fn func(int) int) {
	for _, w := range []int{1, 2, 4} {
		b.Run(name+"-w"+strconv.Itoa(w), func(b *testing.B) {
			for _, impl := range []struct {
				name string
				opts []StageOption
			}{
				{"conc", []StageOption{Workers(w)}},
				{"conc-ordered", []StageOption{Workers(w), Ordered()}},
			} {
				s := Map(func(_ context.Context, v int) (int, error) { return fn(v), nil }, impl.opts...)
				b.Run(impl.name, func(b *testing.B) {
					pipeStart(b)
					got, err := Collect(context.Background(), s, pipeInts(b.N))
					pipeCheck(b, err)
					sink.Store(int64(len(got)))
				})
			}
			b.Run("chan", func(b *testing.B) {
				pipeStart(b)
				in := naivePipeGen(b.N)
				workers := make([]<-chan int, w)
				for i := range workers {
					workers[i] = naivePipeStep(in, fn)
				}
				sum := sumAll(naivePipeMerge(workers...))
				sink.Store(int64(sum))
			})
			b.Run("mutex", func(b *testing.B) {
				pipeStart(b)
				got := naiveMutexPipeline(b.N, w, func(v int) (int, bool) { return fn(v), true })
				sink.Store(int64(len(got)))
			})
		})
	}
}

// The three cheap steps, as package variables so that the stages and the
// direct loop call them through the same function values.
var (
	pipeSquare   = func(_ context.Context, v int) (int, error) { return v * v, nil }
	pipeKeepEven = func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil }
	pipeAddOne   = func(_ context.Context, v int) (int, error) { return v + 1, nil }
)

// pipeCheap3 is square, keep even, add one: three fused stages.
func pipeCheap3() Stage[int, int] {
	return Then(Then(Map(pipeSquare), Filter(pipeKeepEven)), Map(pipeAddOne))
}

// pipeInts yields 0..n-1.
func pipeInts(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

func pipeCheck(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// pipeStart begins a measurement: allocations reported, and the garbage of
// the previous sub-benchmark (whose results are b.N long) collected first,
// so that its GC debt is not billed to whichever implementation runs next.
func pipeStart(b *testing.B) {
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
}

// BenchmarkBatch groups b.N ints into batches of 64 (at most 1 ms apart);
// ns/op is per input item. conc ranges over All of Batch(64, time.Millisecond)
// on an iter.Seq; conc-run is Batch's Run fed by the seed's unbuffered
// generator, as chan is. chan is the tutorial batcher (one goroutine
// selecting on the input and a timer, sending each batch on an unbuffered
// channel); mutex appends under a mutex, hands full batches to the consumer
// through a sync.Cond and flushes a late batch from a time.AfterFunc.
func BenchmarkBatch(b *testing.B) {
	const size, maxWait = 64, time.Millisecond
	s := Batch[int](size, maxWait)
	check := func(b *testing.B, n int) {
		if n != b.N {
			b.Fatalf("got %d items, want %d", n, b.N)
		}
	}
	b.Run("size=64/conc", func(b *testing.B) {
		pipeStart(b)
		n := 0
		for batch, err := range All(context.Background(), s, pipeInts(b.N)) {
			pipeCheck(b, err)
			n += len(batch)
		}
		check(b, n)
	})
	b.Run("size=64/conc-run", func(b *testing.B) {
		pipeStart(b)
		out, wait := s.Run(context.Background(), naivePipeGen(b.N))
		n := 0
		for batch := range out {
			n += len(batch)
		}
		pipeCheck(b, wait())
		check(b, n)
	})
	b.Run("size=64/chan", func(b *testing.B) {
		pipeStart(b)
		n := 0
		for batch := range naiveChanBatch(naivePipeGen(b.N), size, maxWait) {
			n += len(batch)
		}
		check(b, n)
	})
	b.Run("size=64/mutex", func(b *testing.B) {
		pipeStart(b)
		m := newMutexBatcher(size, maxWait)
		go func() {
			for v := range pipeInts(b.N) {
				m.Add(v)
			}
			m.Close()
		}()
		n := 0
		for {
			batch, ok := m.Take()
			if !ok {
				break
			}
			n += len(batch)
		}
		check(b, n)
	})
}

// pipeExpand is FlatMap's function in BenchmarkFlatMap: four items per input.
var pipeExpand = func(_ context.Context, v int) ([]int, error) { return []int{v, v + 1, v + 2, v + 3}, nil }

// BenchmarkFlatMap expands each of b.N ints into four; ns/op is per input
// item. conc ranges over All of FlatMap (fused: no goroutine); chan is one
// goroutine per step on unbuffered channels (generator, expander,
// consumer); mutex is GOMAXPROCS workers sharing an index counter and a
// result slice under a mutex; direct the plain loop calling the same
// function value.
func BenchmarkFlatMap(b *testing.B) {
	s := FlatMap(pipeExpand)
	b.Run("x4/conc", func(b *testing.B) {
		pipeStart(b)
		sum := 0
		for v, err := range All(context.Background(), s, pipeInts(b.N)) {
			pipeCheck(b, err)
			sum += v
		}
		sink.Store(int64(sum))
	})
	b.Run("x4/chan", func(b *testing.B) {
		pipeStart(b)
		sum := sumAll(naivePipeExpand(naivePipeGen(b.N)))
		sink.Store(int64(sum))
	})
	b.Run("x4/mutex", func(b *testing.B) {
		pipeStart(b)
		got := naiveMutexFlatMap(b.N, runtime.GOMAXPROCS(0), func(v int) []int {
			vs, _ := pipeExpand(context.Background(), v)
			return vs
		})
		sink.Store(int64(len(got)))
	})
	b.Run("x4/direct", func(b *testing.B) {
		pipeStart(b)
		ctx := context.Background()
		sum := 0
		for v := range pipeInts(b.N) {
			if err := ctx.Err(); err != nil {
				b.Fatal(err)
			}
			vs, _ := pipeExpand(ctx, v)
			for _, w := range vs {
				sum += w
			}
		}
		sink.Store(int64(sum))
	})
}

// sumAll receives everything from c until it closes and returns the sum,
// as a pipeline's consumer does.
func sumAll(c <-chan int) int {
	sum := 0
	for v := range c {
		sum += v
	}
	return sum
}

// pipeDirectAppend is the hand-written cheap3 loop over n items that also
// builds the result slice: Collect's floor.
func pipeDirectAppend(b *testing.B, n int) []int {
	ctx := context.Background()
	var got []int
	for v := range pipeInts(n) {
		if err := ctx.Err(); err != nil {
			b.Fatal(err)
		}
		sq, _ := pipeSquare(ctx, v)
		if keep, _ := pipeKeepEven(ctx, sq); !keep {
			continue
		}
		w, _ := pipeAddOne(ctx, sq)
		got = append(got, w)
	}
	return got
}
