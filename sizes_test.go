package conc

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Size options are limits, or are refused: a huge value never reaches an
// allocation of that size (a fatal out-of-memory, which no recover can
// catch), and an option never silently does nothing (issue 13 §1.5, §1.6).

// TestSizeOptionsRefuseWhatTheyCannotHold: before the limits, each of these
// was accepted, and using it allocated the whole size up front.
func TestSizeOptionsRefuseWhatTheyCannotHold(t *testing.T) {
	const huge = 1 << 40
	buffer := func(what string) string {
		return fmt.Sprintf("conc: %s must be at most 1048576, got %d", what, huge)
	}
	for _, tc := range []struct {
		name, want string
		fn         func()
	}{
		{"ResultBuffer", buffer("result buffer"), func() { ResultBuffer(huge) }},
		{"MergeBuffer", buffer("MergeBuffer n"), func() { MergeBuffer(huge) }},
		{"StageBuffer", buffer("Buffer"), func() { StageBuffer(huge) }},
		{"SubBuffer", buffer("subscription buffer"), func() { SubBuffer(huge) }},
		{"QueueSize", fmt.Sprintf("conc: queue size must be at most 2147483647, got %d", huge), func() { QueueSize(huge) }},
		{"HalfOpenProbes", fmt.Sprintf("conc: breaker half-open probes must be at most 1024, got %d", huge), func() { HalfOpenProbes(huge) }},
		{"LastDuration buckets", "conc: breaker window buckets must be at most 4096, got 4097", func() { LastDuration(time.Hour, 4097) }},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.PanicsWithValue(t, tc.want, tc.fn) })
	}
	// The limits themselves are accepted.
	assert.NotPanics(t, func() {
		ResultBuffer(1 << 20)
		MergeBuffer(1 << 20)
		StageBuffer(1 << 20)
		SubBuffer(1 << 20)
		HalfOpenProbes(1024)
		LastDuration(time.Hour, 4096)
	})
}

// TestWorkerCountsBeyondTheLimitAreRefused: NewPool and a stage's Workers
// start their goroutines at once, so a huge count died of a fatal
// out-of-memory when the pool was made or the stage run. (MapN, MapAll,
// ForEach and ForEachAll start goroutines only as items come, and accept
// any limit.)
func TestWorkerCountsBeyondTheLimitAreRefused(t *testing.T) {
	assert.PanicsWithValue(t, "conc: Workers must be at most 65536, got 1099511627776", func() { Workers(1 << 40) })
	assert.PanicsWithValue(t, "conc: workers must be at most 65536, got 65537", func() { NewPool(1<<16+1, double) })
	got, err := MapN(t.Context(), []int{1, 2, 3}, 1<<40, func(_ context.Context, v int) (int, error) { return v, nil })
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3}, got)
}

// TestPoolHugeQueueSizeIsALimitNotAnAllocation: the queue grows as jobs
// wait. Before, NewPool allocated QueueSize slots at once (16 GiB here) and
// a Results channel of twice that, which Go refuses.
func TestPoolHugeQueueSizeIsALimitNotAnAllocation(t *testing.T) {
	p := NewPool(1, double, QueueSize(math.MaxInt32))
	for i := range 3 {
		require.NoError(t, p.Submit(t.Context(), i))
	}
	p.Close()
	got := drain(p)
	require.Len(t, got, 3)
	for i, r := range got {
		assert.Equal(t, 2*i, r.Value)
	}
}

// TestPoolQueueGrowsAndKeepsOrder fills a queue well past its first ring,
// while the only worker is held, so that the ring doubles with jobs wrapped
// around it; the worker must still see them in submission order, and the
// limit must hold exactly.
func TestPoolQueueGrowsAndKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 5000
		hold := make(chan struct{})
		p := NewPool(1, func(_ context.Context, v int) (int, error) {
			if v == -1 {
				<-hold
			}
			return v, nil
		}, QueueSize(limit), ResultBuffer(limit+1))
		require.NoError(t, p.Submit(t.Context(), -1))
		synctest.Wait() // the worker holds job -1; the queue is empty
		for i := range limit {
			require.True(t, p.TrySubmit(i), "job %d", i)
		}
		assert.False(t, p.TrySubmit(limit), "the queue is full at its limit")
		close(hold)
		p.Close()
		got := drain(p)
		require.Len(t, got, limit+1)
		for i, r := range got[1:] {
			require.Equal(t, i, r.Value)
		}
		checkIdentity(t, p.Stats())
	})
}

// TestPoolQueueSizeZeroIsADirectHandOff: with no queue a job is accepted
// only when a worker is free to take it. Before, QueueSize(0) was silently
// a queue of one, so a second job was accepted with the only worker busy.
func TestPoolQueueSizeZeroIsADirectHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hold := make(chan struct{})
		var ran []int
		p := NewPool(1, func(_ context.Context, v int) (int, error) {
			ran = append(ran, v)
			<-hold
			return v, nil
		}, QueueSize(0), OnResult(func(Result[int, int]) {}))
		synctest.Wait() // the worker is parked, free
		require.True(t, p.TrySubmit(1))
		synctest.Wait() // the worker holds job 1
		assert.False(t, p.TrySubmit(2), "no worker is free and there is no queue")
		submitted := make(chan error)
		go func() { submitted <- p.Submit(context.Background(), 3) }()
		synctest.Wait()
		select {
		case <-submitted:
			t.Fatal("Submit returned while no worker was free")
		default:
		}
		assert.Equal(t, 0, p.Stats().Queued)
		hold <- struct{}{} // job 1 ends; the worker takes job 3 from Submit
		require.NoError(t, <-submitted)
		close(hold)
		p.Close()
		for range p.Results() {
		}
		assert.Equal(t, []int{1, 3}, ran)
		s := p.Stats()
		assert.Equal(t, uint64(2), s.Completed)
		checkIdentity(t, s)
	})
}

// TestPoolResultBufferWithOnResultIsRefused: OnResult sends nothing on the
// Results channel, so a buffer for it would silently do nothing.
func TestPoolResultBufferWithOnResultIsRefused(t *testing.T) {
	assert.PanicsWithValue(t, "conc: ResultBuffer(8) does nothing with OnResult, which sends no result on the channel", func() {
		NewPool(1, double, ResultBuffer(8), OnResult(func(Result[int, int]) {}))
	})
	p := NewPool(1, double, ResultBuffer(0), OnResult(func(Result[int, int]) {}))
	p.Close()
	for range p.Results() {
	}
}

// TestPoolQueueSizeZeroStress: many submitters and workers through the
// hand-off, some Submit calls cancelled while they wait; every accepted job
// gets one result and the counters add up.
func TestPoolQueueSizeZeroStress(t *testing.T) {
	const submitters, jobs = 4, 500
	p := NewPool(3, double, QueueSize(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for s := range submitters {
		wg.Go(func() {
			for i := range jobs {
				if s == 0 && i == jobs/2 {
					cancel() // submitter 0 gives up halfway, maybe while waiting
				}
				c := context.Background()
				if s == 0 {
					c = ctx
				}
				if p.Submit(c, i) == nil {
					accepted.Add(1)
				} else if s != 0 {
					t.Errorf("submit %d/%d failed", s, i)
				}
				if i%7 == 0 && p.TrySubmit(i) {
					accepted.Add(1)
				}
			}
		})
	}
	done := make(chan int)
	go func() { done <- len(drain(p)) }()
	wg.Wait()
	p.Close()
	assert.Equal(t, int(accepted.Load()), <-done)
	s := p.Stats()
	assert.Equal(t, uint64(accepted.Load()), s.Completed)
	checkIdentity(t, s)
}

// TestFanOutCountsBeyondTheLimitAreRefused: FanOut, Tee and Partition make
// their n outputs (FanOut a goroutine each) at once; FanOut(ctx, in, 1<<40)
// died of a fatal out-of-memory. The cases use 65537, which the old code
// accepted without dying, so that the test fails rather than crashes there.
func TestFanOutCountsBeyondTheLimitAreRefused(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // anything the old code started exits at once
	in := make(chan int)
	close(in)
	const n = 1<<16 + 1
	for name, fn := range map[string]func(){
		"FanOut":    func() { FanOut(ctx, in, n) },
		"Tee":       func() { Tee(ctx, in, n) },
		"Partition": func() { Partition(ctx, in, n, func(v int) int { return v }) },
	} {
		assert.PanicsWithValue(t, fmt.Sprintf("conc: %s n must be at most 65536, got %d", name, n), fn, name)
	}
}
