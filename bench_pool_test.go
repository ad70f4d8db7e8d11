package conc

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/concpatterns/conc/internal/benchkit"
)

// BenchmarkPool measures a job's full trip through a pool of 4 workers (one
// for the -w1 workloads): submitted by one goroutine, run, and its result
// received by another, as a pipeline stage would use the pool. ns/op is per
// job. chan is the tutorial pool with unbuffered jobs and results channels,
// chan-buffered the same with capacity workers×2. At -cpu=2, 1us/conc against 1us-w1/conc reads the scaling target:
// with two processors four workers should deliver at least 1.8× the
// throughput of one.
//
// Measured 2026-12-06, Go 1.26.8, the project's 2-core VM shared with other
// agents' builds and tests (so ±20-60% spreads): 10 rounds, each running the
// Pool, MapN and ForEach suites once with the pool code before (5ebbaee) and
// once after batches and stealing, -benchtime 200ms, under the bench lock;
// benchstat medians of the 10, ns per job:
//
//	row                     cpu=1 before  after     cpu=2 before  after
//	tiny/conc                   148.1    133.7          157.6    128.1
//	tiny/conc-callback           85.0     73.0           71.6     74.9
//	tiny/chan                   592.4    496.5          438.0    479.1
//	tiny/chan-buffered          241.5    217.2          193.8    203.8
//	tiny/direct-send                -     58.2              -     62.7
//	tiny/direct-hop                 -    109.9              -    116.5
//
// At cpu=2 tiny/conc is 0.63× chan-buffered (ratio of medians; the median of
// the ten per-round ratios 0.68, was 0.81) and 0.27× chan. No row of
// Pool, MapN or ForEach changed by benchstat (every p > 0.14). A profile
// at cpu=2 leaves the pool's mutex at ~13% of CPU (was ~38%) and puts the
// Results channel's runtime lock at ~32%: the floor is direct-send, the
// channel alone at ~60 ns a result, which the conc-callback row (no channel)
// undercuts.
//
// Measured again 2026-12-06, the same 2-core machine, after four changes
// (1b7eb71 before): the short-job mode (an idle worker parks at once while
// timed takes show jobs under 500 ns), the default queue at 32 jobs per
// worker (was 16; the direct-send and direct-hop floors, which copy the
// pool's sizes, now have 64 and 32 slots a worker), the fields the workers
// read per job kept off mu's cache line, and no yield as Results crosses
// half full. A/B of the two test binaries, 20 interleaved rounds, cpu=2,
// -benchtime 200ms, under the bench lock, benchstat medians:
//
//	row                   before    after
//	tiny/conc              82.91    76.57   -7.6% (p=0.000)
//	tiny/chan-buffered    114.1    112.5    ~    (p=0.47)
//
// tiny/conc at cpu=2 is 0.681× chan-buffered (ratio of medians; median of
// the 20 per-round ratios 0.698, was 0.729 before, per-round 0.62-0.85).
// The plain run of the suite (-count 10, cpu=1,2, under the lock) gave
// tiny/conc 67.3 and 76.8 ns, chan-buffered 122.8 and 108.9, so 0.705× at
// cpu=2 (median of the ten ratios 0.696): the 0.7× target holds in the
// medians, not in every round. In a 10-round A/B at cpu=1,2 the 1us and
// 1us-w1 rows did not change (every p > 0.14); tiny/conc-callback went
// 51.4 -> 47.6 ns at cpu=2 (p=0.001). Per step (A/B at cpu=2): the queue
// of 32 took tiny/conc 85.7 -> 79.7 (p=0.063, 10 rounds; submitter
// wake-ups fell from 28 to 13 per 1000 jobs), the padding 83.0 -> 79.2
// (p=0.005, 20 rounds), the yield's removal 75.3 -> 72.9 (p=0.005, 20
// rounds; 1us-w1/conc 1.206 -> 1.175 us, p=0.018); the short-job mode
// changed nothing here (81.7 -> 82.4, p=0.48): the queue of this workload
// is full, its workers almost never find it empty (about one spin per
// thousand jobs). BenchmarkPoolSparse is where it shows.
//
// Where the time goes (go test -cpuprofile, tiny/conc, cpu=2, 4 s): the two
// processors are 136% busy, about 99 ns of CPU per job. The Results
// channel takes 47% of the CPU (chansend 28%, chanrecv 19%), most of it
// runtime.lock2/unlock2 on the channel's lock, spinning in procyield when
// a worker and the reader, or two workers, meet there; Submit takes 17%
// (the pool's mutex once per job), a worker's next (its take under the
// mutex, and the CAS on bh for each job of its batch) 17%, and run 12%, of
// which the workload's shared counter is half. The timing of one take in
// eight costs ~1%. The floor is direct-send, the channel alone (35.5 ns
// at these sizes); conc is 41 ns above it. Going further means touching
// the Results channel's lock less per job, which one send per Result does
// not allow, or fewer workers meeting there: capping the awake workers at
// GOMAXPROCS would do that, but then a job that blocks keeps the queued
// jobs from the parked workers, so it is not done.
func BenchmarkPool(b *testing.B) {
	var counter atomic.Int64
	workloads := []struct {
		name    string
		workers int
		fn      func(int) int
	}{
		{"tiny", 4, func(v int) int { counter.Add(1); return v }},
		{"1us", 4, func(v int) int { return burnMicro() + v }},
		{"1us-w1", 1, func(v int) int { return burnMicro() + v }},
	}
	burnMicro() // calibrate outside the timed region
	for _, wl := range workloads {
		b.Run(wl.name+"/conc", func(b *testing.B) {
			benchConcPool(b, wl.workers, wl.fn, false)
		})
		b.Run(wl.name+"/conc-callback", func(b *testing.B) {
			benchConcPool(b, wl.workers, wl.fn, true)
		})
		b.Run(wl.name+"/chan", func(b *testing.B) {
			benchChanPool(b, 0, wl.workers, wl.fn)
		})
		b.Run(wl.name+"/chan-buffered", func(b *testing.B) {
			benchChanPool(b, wl.workers*2, wl.workers, wl.fn)
		})
		if wl.name == "tiny" {
			// The floors of a pool that delivers on a channel, with the
			// conc pool's sizes: direct-send is the result channel alone
			// (the workers make their own jobs), direct-hop a bare
			// buffered jobs channel in front of it.
			b.Run(wl.name+"/direct-send", func(b *testing.B) {
				benchResultSends(b, wl.workers, wl.fn)
			})
			b.Run(wl.name+"/direct-hop", func(b *testing.B) {
				b.ReportAllocs()
				p := newChanPoolSized(32*wl.workers, 64*wl.workers, wl.workers, wl.fn)
				b.ResetTimer()
				driveChanPool(b, p, 0)
			})
		}
		b.Run(wl.name+"/mutex", func(b *testing.B) {
			b.ReportAllocs()
			p := newMutexPool(wl.workers, wl.fn)
			b.ResetTimer()
			go func() {
				for i := range b.N {
					p.jobs.Push(i)
				}
				p.jobs.Close()
			}()
			var s int
			for {
				r, ok := p.results.Pop()
				if !ok {
					break
				}
				s += r
			}
			sink.Add(int64(s))
		})
		b.Run(wl.name+"/waitgroup", func(b *testing.B) {
			b.ReportAllocs()
			var wg sync.WaitGroup
			var s atomic.Int64
			for i := range b.N {
				wg.Go(func() { s.Add(int64(wl.fn(i))) })
			}
			wg.Wait()
			sink.Add(s.Load())
		})
	}
}

// benchChanPool runs the tutorial channel pool with jobs and results
// channels of capacity size: 0 is the unbuffered "chan" row, workers×2 the
// "chan-buffered" one most tutorials show.
func benchChanPool(b *testing.B, size, workers int, fn func(int) int) {
	b.ReportAllocs()
	p := newChanPool(size, workers, fn)
	b.ResetTimer()
	driveChanPool(b, p, 0)
}

// driveChanPool submits b.N jobs to p from another goroutine and drains
// its results. With gap > 0 the submitter burns gap units of CPU before
// each Submit, as in drivePool.
func driveChanPool(b *testing.B, p *chanPool, gap int) {
	go func() {
		for i := range b.N {
			if gap > 0 {
				sink.Add(int64(burn(gap)))
			}
			p.Submit(i)
		}
		p.Close()
	}()
	var s int
	for r := range p.results {
		s += r
	}
	sink.Add(int64(s))
}

// benchResultSends is the result channel of a pool without its queue:
// workers goroutines call fn on b.N values between them and send each
// result on a channel of the conc pool's default capacity (twice 32 jobs a
// worker), drained by the benchmark's goroutine.
func benchResultSends(b *testing.B, workers int, fn func(int) int) {
	b.ReportAllocs()
	results := make(chan int, 64*workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < b.N; i += workers {
				results <- fn(i)
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	var s int
	for r := range results {
		s += r
	}
	sink.Add(int64(s))
}

func benchConcPool(b *testing.B, workers int, fn func(int) int, callback bool) {
	b.ReportAllocs()
	job := func(_ context.Context, v int) (int, error) { return fn(v), nil }
	var s atomic.Int64
	var opts []PoolOption
	if callback {
		opts = append(opts, OnResult(func(r Result[int, int]) { s.Add(int64(r.Value)) }))
	}
	p := NewPool(workers, job, opts...)
	b.ResetTimer()
	local := drivePool(p, b.N, 0)
	sink.Add(int64(local) + s.Load())
}

// drivePool submits 0..n-1 to p from another goroutine, closes it, and
// returns the sum of the results it delivers on Results. With gap > 0 the
// submitter burns gap units of CPU (see burn) before each Submit.
func drivePool(p *Pool[int, int], n, gap int) int {
	go func() {
		for i := range n {
			if gap > 0 {
				sink.Add(int64(burn(gap)))
			}
			if err := p.Submit(context.Background(), i); err != nil {
				panic(err)
			}
		}
		p.Close()
	}()
	var local int
	for r := range p.Results() {
		local += r.Value
	}
	return local
}

// BenchmarkPoolSparse is BenchmarkPool's tiny workload with a submitter
// that works about 100 ns for each job before it submits it, so that the
// four workers are faster than their supply and keep finding the queue
// empty: the case where a worker's wait for the next job, spinning or
// parked, decides the cost. ns/op is per job.
//
// Measured 2026-12-06, the 2-core machine, A/B of the pool before
// (1b7eb71) and after the short-job mode and its companions (see
// BenchmarkPool), 10 interleaved rounds, benchstat medians: tiny/conc
// 196.2 -> 149.5 ns at cpu=2 (-23.8%, p=0.002) and 141.5 -> 132.2 at
// cpu=1 (-6.5%, p=0.009; no worker spins on one processor, so that is the
// other changes); chan-buffered 188.2 and 181.5 (p=0.066). The mode alone
// (A/B against its parent, cpu=2): 182.5 -> 149.7 ns (-18.0%, p=0.012).
func BenchmarkPoolSparse(b *testing.B) {
	var counter atomic.Int64
	tiny := func(v int) int { counter.Add(1); return v }
	burnMicro() // calibrate outside the timed region
	gap := max(burnPerMicro/10, 1)
	b.Run("tiny/conc", func(b *testing.B) {
		b.ReportAllocs()
		p := NewPool(4, func(_ context.Context, v int) (int, error) { return tiny(v), nil })
		b.ResetTimer()
		sink.Add(int64(drivePool(p, b.N, gap)))
	})
	b.Run("tiny/chan-buffered", func(b *testing.B) {
		b.ReportAllocs()
		p := newChanPool(8, 4, tiny)
		b.ResetTimer()
		driveChanPool(b, p, gap)
	})
}

// BenchmarkMapN maps a slice of 1M ints with 4 workers; ns/op is per item.
// The tiny workload is a pure function of the item (v*2+1): shared atomic
// counters would measure cache-line contention, not the helper. b.N items
// are processed as consecutive calls over at most 1M items each.
func BenchmarkMapN(b *testing.B) {
	const size, limit = 1 << 20, 4
	items := make([]int, size)
	for i := range items {
		items[i] = i
	}
	tiny := func(v int) int { return v*2 + 1 }
	impls := []struct {
		name string
		run  func(items []int) []int
	}{
		{"conc", func(items []int) []int {
			out, err := MapN(context.Background(), items, limit, func(_ context.Context, v int) (int, error) { return tiny(v), nil })
			if err != nil {
				panic(err)
			}
			return out
		}},
		{"chan", func(items []int) []int { return chanMapN(items, limit, tiny) }},
		{"mutex", func(items []int) []int { return mutexMapN(items, limit, tiny) }},
		{"waitgroup", func(items []int) []int { return naiveMapN(items, limit, tiny) }},
	}
	for _, impl := range impls {
		b.Run("tiny/"+impl.name, func(b *testing.B) {
			benchkit.RunSlices(b, items, impl.run, func(v int) { sink.Add(int64(v)) })
		})
	}
}
