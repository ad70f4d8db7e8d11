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
// 1us one stage of about 1 µs, 1us-w2 the same with Workers(2), pool-tiny a Pool of 4
// workers running a job that adds to a counter, watched by the monitor.
func BenchmarkMonitor(b *testing.B) {
	burnMicro()
	ctx := context.Background()
	// Each workload runs off, then on, next to each other, so the two
	// columns share the machine's state as closely as one run allows.
	impls := []struct {
		name string
		on   bool
	}{{"off", false}, {"on", true}}
	wrap := func(on bool, s Stage[int, int]) Stage[int, int] {
		if on {
			return Monitored(NewMonitor(), "bench", s)
		}
		return s
	}
	for _, impl := range impls {
		b.Run("cheap3/"+impl.name, func(b *testing.B) {
			s := wrap(impl.on, pipeCheap3())
			pipeStart(b)
			got, err := Collect(ctx, s, pipeInts(b.N))
			pipeCheck(b, err)
			sink.Store(int64(len(got)))
		})
	}
	for _, impl := range impls {
		b.Run("1us/"+impl.name, func(b *testing.B) {
			s := wrap(impl.on, Map(func(_ context.Context, v int) (int, error) { return burnMicro() + v, nil }))
			pipeStart(b)
			got, err := Collect(ctx, s, pipeInts(b.N))
			pipeCheck(b, err)
			sink.Store(int64(len(got)))
		})
	}
	for _, impl := range impls {
		b.Run("1us-w2/"+impl.name, func(b *testing.B) {
			s := wrap(impl.on, Map(func(_ context.Context, v int) (int, error) { return burnMicro() + v, nil }, Workers(2)))
			pipeStart(b)
			got, err := Collect(ctx, s, pipeInts(b.N))
			pipeCheck(b, err)
			sink.Store(int64(len(got)))
		})
	}
	for _, impl := range impls {
		b.Run("pool-tiny/"+impl.name, func(b *testing.B) {
			var counter atomic.Int64
			b.ReportAllocs()
			p := NewPool(4, func(_ context.Context, v int) (int, error) { counter.Add(1); return v, nil })
			m := NewMonitor()
			if impl.on {
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
			if impl.on {
				m.Snapshot()
			}
			sink.Add(int64(local))
		})
	}
}
