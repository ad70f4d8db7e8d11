package conc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeNamed returns the node of p whose name is name.
func nodeNamed(t *testing.T, p PipelineSnapshot, name string) NodeSnapshot {
	t.Helper()
	for _, n := range p.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %q in %+v", name, p.Nodes)
	return NodeSnapshot{}
}

func kinds(p PipelineSnapshot) []string {
	var k []string
	for _, n := range p.Nodes {
		k = append(k, n.Kind)
	}
	return k
}

// A slow middle stage between two fast ones is named the bottleneck: it is
// busy all the time while the stage feeding it waits for room. Virtual time
// only: the test counts seconds of the bubble's clock and asserts nothing
// about how long anything took.
func TestMonitorNamesTheSlowStageTheBottleneck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(RecentWindow(3 * time.Second))
		double := func(_ context.Context, v int) (int, error) { return 2 * v, nil }
		slow := func(_ context.Context, v int) (int, error) {
			time.Sleep(10 * time.Millisecond)
			return v, nil
		}
		s := Monitored(m, "demo", Then(Then(
			Map(double, Named("parse"), StageBuffer(8)),
			Map(slow, Named("slow"), StageBuffer(8))),
			Map(double, Named("store"))))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		in := make(chan int)
		go func() {
			defer close(in)
			for i := 0; ; i++ {
				select {
				case in <- i:
				case <-ctx.Done():
					return
				}
			}
		}()
		out, wait := s.Run(ctx, in)
		go func() {
			for range out {
			}
		}()
		var snap MonitorSnapshot
		for range 8 { // eight virtual seconds, a snapshot each
			time.Sleep(time.Second)
			snap = m.Snapshot()
		}
		require.Len(t, snap.Pipelines, 1)
		p := snap.Pipelines[0]
		assert.Equal(t, []string{"source", "stage", "stage", "stage", "sink"}, kinds(p))
		bn := nodeNamed(t, p, "slow")
		assert.Equal(t, bn.ID, p.Bottleneck, "%+v", p.Nodes)
		assert.True(t, bn.Bottleneck)
		assert.Greater(t, bn.Recent.Busy, 0.9)
		assert.Equal(t, "high", nodeNamed(t, p, "parse").Backpressure)
		assert.Greater(t, nodeNamed(t, p, "store").Recent.Idle, 0.9)
		assert.InDelta(t, 100, bn.OutRate, 10, "10ms an item")
		assert.False(t, bn.Stalled)
		cancel()
		require.ErrorIs(t, wait(), context.Canceled)
	})
}

// Counts add up after a run, default names follow kind and position, and a
// finished run stays visible.
func TestMonitorCountsAFusedRun(t *testing.T) {
	m := NewMonitor()
	s := Monitored(m, "count", Then(Then(
		Map(func(_ context.Context, v int) (int, error) { return v * v, nil }),
		Filter(func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil })),
		Batch[int](10, 0)))
	got, err := Collect(context.Background(), s, pipeInts(1000))
	require.NoError(t, err)
	require.Len(t, got, 50)
	snap := m.Snapshot()
	require.Len(t, snap.Pipelines, 1)
	p := snap.Pipelines[0]
	assert.False(t, p.Running)
	assert.Equal(t, []string{"source", "stage", "sink"}, kinds(p))
	seg := p.Nodes[1]
	assert.Equal(t, "map#1 · filter#2 · batch#3", seg.Name)
	assert.Equal(t, []StageSnapshot{
		{Name: "map#1", Kind: "map", In: 1000, Out: 1000},
		{Name: "filter#2", Kind: "filter", In: 1000, Out: 500, Dropped: 500},
		{Name: "batch#3", Kind: "batch", In: 500, Out: 50},
	}, seg.Stages)
	assert.Equal(t, uint64(1000), p.Nodes[0].Out)
	assert.Equal(t, uint64(50), p.Nodes[2].In)
	assert.Equal(t, uint64(500), seg.Dropped)
}

// Every shape of run is drawn: pools absorb their merge goroutine, timed
// batches share their node, All's caller becomes the sink.
func TestMonitorGraphShapes(t *testing.T) {
	ctx := context.Background()
	inc := func(_ context.Context, v int) (int, error) { return v + 1, nil }
	t.Run("pool", func(t *testing.T) {
		m := NewMonitor()
		s := Monitored(m, "p", Map(inc, Workers(4), Named("work")))
		out, wait := s.Run(ctx, From(ctx, 1, 2, 3))
		for range out {
		}
		require.NoError(t, wait())
		p := m.Snapshot().Pipelines[0]
		assert.Equal(t, []string{"source", "pool", "sink"}, kinds(p))
		assert.Equal(t, 4, p.Nodes[1].Workers)
		assert.Equal(t, uint64(3), p.Nodes[1].Out)
		assert.Equal(t, uint64(3), p.Nodes[2].In)
		assert.Equal(t, []string{"chunks", "channel"}, []string{p.Edges[0].Kind, p.Edges[1].Kind})
	})
	t.Run("pool then fused", func(t *testing.T) {
		m := NewMonitor()
		s := Monitored(m, "p", Then(Map(inc, Workers(2)), Batch[int](2, time.Hour)))
		got, err := Collect(ctx, s, pipeInts(7))
		require.NoError(t, err)
		require.Len(t, got, 4)
		p := m.Snapshot().Pipelines[0]
		assert.Equal(t, []string{"source", "pool", "stage", "sink"}, kinds(p))
		assert.Equal(t, "batch#2", p.Nodes[2].Name)
		assert.Equal(t, uint64(4), p.Nodes[2].Out)
		assert.Equal(t, uint64(4), p.Nodes[3].In)
	})
	t.Run("all", func(t *testing.T) {
		m := NewMonitor()
		s := Monitored(m, "a", Map(inc, StageBuffer(4), Named("x")))
		n := 0
		require.PanicsWithValue(t, "conc: Monitored must wrap the whole pipeline given to Run, Collect or All", func() {
			for range All(ctx, Then(s, Map(inc)), pipeInts(1)) {
			}
		})
		require.PanicsWithValue(t, "conc: Monitored must wrap the whole pipeline given to Run, Collect or All", func() {
			Then(s, Map(inc)).Run(ctx, From(ctx, 1))
		})
		s2 := Monitored(m, "a", Then(Map(inc, Workers(2)), Map(inc)))
		for _, err := range All(ctx, s2, pipeInts(100)) {
			require.NoError(t, err)
			n++
		}
		require.Equal(t, 100, n)
		p := m.Snapshot().Pipelines[0]
		assert.Equal(t, []string{"source", "pool", "stage", "sink"}, kinds(p))
		assert.True(t, p.Nodes[3].Timed, "All's caller drains the last hand-off")
		assert.Equal(t, uint64(100), p.Nodes[3].In)
	})
}

// A run whose output nobody reads is flagged as stalled on its output once
// StallAfter has passed without progress.
func TestMonitorFlagsAStalledOutput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(StallAfter(2 * time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		s := Monitored(m, "stuck", Map(func(_ context.Context, v int) (int, error) { return v, nil }, Named("send"), StageBuffer(0)))
		out, wait := s.Run(ctx, From(ctx, 1, 2, 3))
		_ = out // nobody receives
		time.Sleep(time.Second)
		p := m.Snapshot().Pipelines[0]
		assert.False(t, nodeNamed(t, p, "send").Stalled, "not yet")
		time.Sleep(2 * time.Second)
		p = m.Snapshot().Pipelines[0]
		n := nodeNamed(t, p, "send")
		assert.True(t, n.Stalled)
		assert.Equal(t, "output", n.WaitsOn)
		assert.GreaterOrEqual(t, n.StalledFor, 2.0)
		cancel()
		require.ErrorIs(t, wait(), context.Canceled)
		p = m.Snapshot().Pipelines[0]
		assert.False(t, p.Running)
		assert.False(t, nodeNamed(t, p, "send").Stalled)
	})
}

// A pool's queue size in a snapshot is QueueSize, not the size its queue
// has grown to so far: with 40 workers the default queue (32 per worker)
// is larger than the first ring, and a stalled pool with room left waits
// on its jobs, not on a full queue. The snapshots are taken while jobs are
// submitted, so that -race also sees the monitor read the pool beside its
// growth.
func TestMonitorPoolQueueSizeIsTheLimitNotTheRing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers = 40
		m := NewMonitor(StallAfter(time.Second))
		gate := make(chan struct{})
		p := NewPool(workers, func(_ context.Context, j int) (int, error) {
			<-gate
			return j, nil
		}, OnResult(func(Result[int, int]) {}))
		m.Watch("p", p)
		limit := p.limit
		require.Greater(t, limit, 1024, "the test needs a queue larger than the first ring")
		snapshots := make(chan struct{})
		go func() {
			defer close(snapshots)
			for range 50 {
				assert.Equal(t, limit, m.Snapshot().Pools[0].QueueSize)
				runtime.Gosched()
			}
		}()
		for i := range workers {
			require.True(t, p.TrySubmit(i), "job %d", i)
		}
		synctest.Wait() // every worker holds one job
		require.Equal(t, workers, p.Stats().Running)
		for i := range limit - 1 {
			require.True(t, p.TrySubmit(i), "job %d", i)
		}
		<-snapshots
		m.Snapshot()
		time.Sleep(2 * time.Second)
		ps := m.Snapshot().Pools[0]
		assert.Equal(t, limit, ps.QueueSize)
		assert.Equal(t, limit-1, ps.Queued)
		assert.True(t, ps.Stalled, "%+v", ps)
		assert.Equal(t, "jobs", ps.WaitsOn, "one slot is free")
		require.True(t, p.TrySubmit(-1))
		time.Sleep(2 * time.Second)
		assert.Equal(t, "full queue", m.Snapshot().Pools[0].WaitsOn)
		close(gate)
		require.NoError(t, p.Close())
		m.Unwatch("p")
	})
}

// A job that submits to its own full pool is flagged, waiting on the full
// queue; Watch reads the pool through Stats only.
func TestMonitorFlagsAPoolWaitingOnItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(StallAfter(time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		var p *Pool[int, int]
		started := make(chan struct{})
		p = NewPool(1, func(_ context.Context, j int) (int, error) {
			if j == 1 {
				close(started)
				synctest.Wait() // job 2 is queued: the queue is full
				return 0, p.Submit(ctx, 3)
			}
			return j, nil
		}, QueueSize(1), OnResult(func(Result[int, int]) {}))
		m.Watch("self", p)
		require.NoError(t, p.Submit(ctx, 1))
		<-started
		require.NoError(t, p.Submit(ctx, 2))
		m.Snapshot()
		time.Sleep(2 * time.Second)
		ps := m.Snapshot().Pools
		require.Len(t, ps, 1)
		assert.True(t, ps[0].Stalled, "%+v", ps[0])
		assert.Equal(t, "full queue", ps[0].WaitsOn)
		assert.Equal(t, 1, ps[0].Running)
		assert.Equal(t, 1, ps[0].Queued)
		cancel()
		require.NoError(t, p.Close())
		for range p.Results() {
		}
		m.Unwatch("self")
		assert.Empty(t, m.Snapshot().Pools)
	})
}

func TestMonitorWatchesEveryKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		m := NewMonitor(StallAfter(time.Second))
		b := NewBreaker(ConsecutiveFailures(1))
		br := NewBroker[int]()
		defer br.Close()
		sub := br.Subscribe("t", SubBuffer(1), SubPolicy(DropNewest))
		defer sub.Unsubscribe()
		f := NewFanIn[int](ctx)
		k := NewKeyedLimiter[string](1, 1)
		l := NewLimiter(10, 5)
		m.Watch("b", b)
		m.Watch("br", br)
		m.Watch("f", f)
		m.Watch("k", k)
		m.Watch("l", l)
		require.PanicsWithValue(t, "conc: Monitor.Watch cannot watch a int", func() { m.Watch("x", 1) })
		require.Panics(t, func() { m.Watch("x", nil) })
		m.Snapshot()
		_ = b.Execute(ctx, func(context.Context) error { return errors.New("boom") })
		for i := range 3 {
			require.NoError(t, br.Publish(ctx, "t", i))
		}
		k.Allow("a")
		k.Allow("a")
		for range 7 {
			l.Allow() // 5 admitted, 2 denied
		}
		ch := make(chan int, 2)
		ch <- 1
		ch <- 2
		close(ch)
		require.NoError(t, f.Add(ch))
		f.Seal()
		for range f.Out() {
		}
		time.Sleep(time.Second)
		s := m.Snapshot()
		require.Len(t, s.Breakers, 1)
		assert.Equal(t, "open", s.Breakers[0].State)
		assert.Equal(t, []BreakerTransition{{Time: s.Time, From: "closed", To: "open"}}, s.Breakers[0].Transitions)
		assert.Equal(t, uint64(1), s.Brokers[0].Published-2)
		assert.Equal(t, uint64(2), s.Brokers[0].Dropped)
		assert.True(t, s.Brokers[0].Stalled, "one message waits and nobody reads it")
		assert.Equal(t, "subscriber", s.Brokers[0].WaitsOn)
		assert.Equal(t, uint64(2), s.FanIns[0].Forwarded)
		assert.Equal(t, uint64(1), s.KeyedLimiters[0].Allowed)
		assert.Equal(t, uint64(1), s.KeyedLimiters[0].Denied)
		assert.Equal(t, 10.0, s.Limiters[0].Limit)
		assert.Equal(t, uint64(5), s.Limiters[0].Allowed)
		assert.Equal(t, uint64(2), s.Limiters[0].Denied)
		assert.Positive(t, s.Limiters[0].AllowedRate)
		assert.Positive(t, s.Limiters[0].DeniedRate)
		var buf bytes.Buffer
		require.NoError(t, m.WriteText(&buf))
		for _, want := range []string{"breaker b", "open", "broker br", "fan-in f", "keyed limiter k", "limiter l"} {
			assert.Contains(t, buf.String(), want)
		}
	})
}

// The JSON field names are part of the documented interface.
func TestMonitorSnapshotJSONNames(t *testing.T) {
	m := NewMonitor()
	_, err := Collect(context.Background(), Monitored(m, "j", Map(func(_ context.Context, v int) (int, error) { return v, nil })), pipeInts(3))
	require.NoError(t, err)
	raw, err := json.Marshal(m.Snapshot())
	require.NoError(t, err)
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &top))
	var keys []string
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	assert.Equal(t, []string{"breakers", "brokers", "fan_ins", "keyed_limiters", "limiters", "pipelines", "pools", "recent_window_s", "stall_after_s", "time"}, keys)
	for _, k := range []string{`"nodes"`, `"edges"`, `"bottleneck"`, `"busy_workers"`, `"out_per_s"`, `"backpressured"`, `"stages"`} {
		assert.Contains(t, string(raw), k)
	}
}

func TestMonitorText(t *testing.T) {
	m := NewMonitor()
	_, err := Collect(context.Background(), Monitored(m, "t\nx", Map(func(_ context.Context, v int) (int, error) { return v, nil }, Named("a\tb"))), pipeInts(3))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, m.WriteText(&buf))
	out := buf.String()
	assert.Contains(t, out, `pipeline t\nx #1 (finished`)
	assert.Contains(t, out, `stage a\tb`)
	assert.Equal(t, 5, strings.Count(out, "\n"), out)
}

func TestMonitorOptionsPanic(t *testing.T) {
	require.PanicsWithValue(t, "conc: StallAfter must be positive, got 0s", func() { StallAfter(0) })
	require.PanicsWithValue(t, "conc: RecentWindow must be positive, got -1s", func() { RecentWindow(-time.Second) })
	require.Panics(t, func() { NewMonitor(nil) })
	require.Panics(t, func() {
		Monitored[int, int](nil, "x", Map(func(_ context.Context, v int) (int, error) { return v, nil }))
	})
}

// Snapshots taken while runs of every shape start, run and end race with
// nothing (run under -race), and the final counts add up.
func TestMonitorStressSnapshotsDuringRuns(t *testing.T) {
	m := NewMonitor()
	ctx := context.Background()
	inc := func(_ context.Context, v int) (int, error) { return v + 1, nil }
	even := func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil }
	stop := make(chan struct{})
	snapped := make(chan struct{})
	go func() {
		defer close(snapped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := m.Snapshot()
			_ = s.WriteText(io.Discard)
		}
	}()
	shapes := []Stage[int, int]{
		Then(Map(inc, StageBuffer(3)), Filter(even, Workers(3))),
		Then(Then(Filter(even), Map(inc, Workers(2), Ordered(), StageBuffer(5))), Map(inc)),
		Then(Then(Filter(even), Batch[int](4, time.Millisecond)), FlatMap(func(_ context.Context, b []int) ([]int, error) { return b, nil })),
	}
	for round := range 20 {
		s := Monitored(m, "shape"+itoa(round%len(shapes)), shapes[round%len(shapes)])
		switch round % 3 {
		case 0:
			got, err := Collect(ctx, s, pipeInts(500))
			require.NoError(t, err)
			require.Len(t, got, 250)
		case 1:
			n := 0
			for _, err := range All(ctx, s, pipeInts(500)) {
				require.NoError(t, err)
				n++
			}
			require.Equal(t, 250, n)
		default:
			out, wait := s.Run(ctx, FromSeq(ctx, pipeInts(500)))
			n := 0
			for range out {
				n++
			}
			require.NoError(t, wait())
			require.Equal(t, 250, n)
		}
	}
	close(stop)
	<-snapped
	for _, p := range m.Snapshot().Pipelines {
		assert.False(t, p.Running)
		assert.Equal(t, uint64(500), p.Nodes[0].Out, p.Name)
		assert.Equal(t, uint64(250), p.Nodes[len(p.Nodes)-1].In, p.Name)
	}
}

// A monitored run allocates per run, not per item: a run of 10000 items
// allocates no more than a run of 100.
func TestMonitorNoAllocationPerItem(t *testing.T) {
	m := NewMonitor()
	inc := func(_ context.Context, v int) (int, error) { return v + 1, nil }
	s := Monitored(m, "allocs", Then(Then(Map(inc), Filter(func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil })), Map(inc, StageBuffer(64))))
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(5, func() {
			for _, err := range All(context.Background(), s, pipeInts(n)) {
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	small, large := allocs(100), allocs(10000)
	assert.LessOrEqual(t, large, small+2, "100 items: %v allocations, 10000 items: %v", small, large)
}

// The first snapshot after a long block already sees the stall: a node
// blocked on its output made no progress since it blocked.
func TestMonitorFirstSnapshotSeesAnOldStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMonitor(StallAfter(2 * time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		s := Monitored(m, "stuck", Map(func(_ context.Context, v int) (int, error) { return v, nil }, Named("send"), StageBuffer(0)))
		_, wait := s.Run(ctx, From(ctx, 1, 2, 3))
		time.Sleep(3 * time.Second)
		n := nodeNamed(t, m.Snapshot().Pipelines[0], "send")
		assert.True(t, n.Stalled)
		assert.Equal(t, "output", n.WaitsOn)
		cancel()
		require.ErrorIs(t, wait(), context.Canceled)
	})
}

func TestMonitorLimiterLimitIsMinusOneOnlyWhenUnlimited(t *testing.T) {
	for _, c := range []struct {
		rate, want float64
	}{{Inf, -1}, {math.Inf(1), -1}, {1e301, 1e301}, {0, 0}, {2.5, 2.5}} {
		m := NewMonitor()
		m.Watch("l", NewLimiter(c.rate, 1))
		s := m.Snapshot()
		require.Len(t, s.Limiters, 1)
		assert.Equal(t, c.want, s.Limiters[0].Limit, "rate %g", c.rate)
		_, err := json.Marshal(s)
		assert.NoError(t, err, "rate %g", c.rate)
	}
}

func TestMonitorFlagsTheSlowestSubscriberWhileOthersKeepUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		m := NewMonitor(StallAfter(time.Second))
		br := NewBroker[int]()
		defer br.Close()
		fast := br.Subscribe("orders.*", SubBuffer(8), SubPolicy(DropOldest))
		slow := br.Subscribe("orders.eu", SubBuffer(8), SubPolicy(DropOldest))
		defer fast.Unsubscribe()
		defer slow.Unsubscribe()
		m.Watch("br", br)
		publish := func(n int) {
			for i := range n {
				require.NoError(t, br.Publish(ctx, "orders.eu", i))
				_, err := fast.Next(ctx)
				require.NoError(t, err)
			}
		}
		publish(3)
		s := m.Snapshot()
		require.NotNil(t, s.Brokers[0].Slowest)
		assert.Equal(t, SubscriberSnapshot{Pattern: "orders.eu", Policy: DropOldest.String(), Buffered: 3}, *s.Brokers[0].Slowest)
		assert.False(t, s.Brokers[0].Stalled)
		for range 3 {
			time.Sleep(500 * time.Millisecond)
			publish(1)
		}
		s = m.Snapshot()
		assert.True(t, s.Brokers[0].Stalled, "orders.eu took nothing for 1.5s while orders.* kept up")
		assert.Equal(t, "subscriber", s.Brokers[0].WaitsOn)
		assert.Equal(t, 1.5, s.Brokers[0].StalledFor)
		assert.Equal(t, uint64(6), s.Brokers[0].Slowest.Buffered)
		var buf bytes.Buffer
		require.NoError(t, m.WriteText(&buf))
		assert.Contains(t, buf.String(), "slowest orders.eu (6 waiting)")

		n, err := slow.NextBatch(ctx, make([]int, 8))
		assert.Equal(t, 6, n)
		require.NoError(t, err)
		s = m.Snapshot()
		assert.Nil(t, s.Brokers[0].Slowest, "nothing waits")
		assert.False(t, s.Brokers[0].Stalled)
	})
}
