package conc

import (
	"context"
	"sync/atomic"
	"testing"
)

// BenchmarkMonitor measures what a Monitor costs the code it watches: each
// workload runs unmonitored (off) and monitored (on) in the same run, so
// benchstat can compare the two columns. One b.N iteration is one item or
// job. cheap3 is BenchmarkPipeline's fused three-step chain under Collect,
// 1us-w2 one stage of about 1 µs with Workers(2), pool-tiny a Pool of 4
// workers running a job that adds to a counter, watched by the monitor.
func BenchmarkMonitor(b *testing.B) {
	burnMicro()
	ctx := context.Background()
	for _, mon := range []bool{false, true} {
		impl := "off"
		if mon {
			impl = "on"
		}
		wrap := func(s Stage[int, int]) Stage[int, int] {
			if mon {
				return Monitored(NewMonitor(), "bench", s)
			}
			return s
		}
		b.Run("cheap3/"+impl, func(b *testing.B) {
			s := wrap(pipeCheap3())
			pipeStart(b)
			got, err := Collect(ctx, s, pipeInts(b.N))
			pipeCheck(b, err)
			sink.Store(int64(len(got)))
		})
		b.Run("1us-w2/"+impl, func(b *testing.B) {
			s := wrap(Map(func(_ context.Context, v int) (int, error) { return burnMicro() + v, nil }, Workers(2)))
			pipeStart(b)
			got, err := Collect(ctx, s, pipeInts(b.N))
			pipeCheck(b, err)
			sink.Store(int64(len(got)))
		})
		b.Run("pool-tiny/"+impl, func(b *testing.B) {
			var counter atomic.Int64
			b.ReportAllocs()
			p := NewPool(4, func(_ context.Context, v int) (int, error) { counter.Add(1); return v, nil })
			m := NewMonitor()
			if mon {
				m.Watch("pool", p)
				m.Snapshot()
			}
			b.ResetTimer()
			go func() {
				for i := range b.N {
					if err := p.Submit(ctx, i); err != nil {
						panic(err)
					}
				}
				p.Close()
			}()
			var local int
			for r := range p.Results() {
				local += r.Value
			}
			if mon {
				m.Snapshot()
			}
			sink.Add(int64(local))
		})
	}
}
