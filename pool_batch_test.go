package conc

// Tests of the batches: a worker takes up to poolBatch jobs at once from a
// long queue, runs them one after the other, and a worker that finds the
// queue empty steals the older half of another's batch. Each test sets up
// a batch deterministically (every worker busy while the queue fills, then
// one released) and fails if the mechanism loses, repeats, reorders or
// holds back a job.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gated returns a pool function that blocks the jobs in gates until their
// channel is closed (or the job's context ends), and reports each job as
// it starts on started.
func gated(gates map[int]chan struct{}) (func(context.Context, int) (int, error), chan int) {
	started := make(chan int, 1000)
	return func(ctx context.Context, v int) (int, error) {
		started <- v
		if g, ok := gates[v]; ok {
			select {
			case <-g:
			case <-ctx.Done():
				return v, context.Cause(ctx)
			}
		}
		return 2 * v, nil
	}, started
}

// A worker stuck on the first job of its batch must not hold the rest
// back: the other worker, once the queue is empty, steals them. Without
// stealing, jobs 3..9 would wait for job 2.
func TestPoolStealsTheBatchOfAWorkerStuckOnASlowJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gates := map[int]chan struct{}{0: make(chan struct{}), 1: make(chan struct{}), 2: make(chan struct{})}
		fn, started := gated(gates)
		p := NewPool(2, fn, QueueSize(64))
		ctx := context.Background()
		require.NoError(t, p.Submit(ctx, 0))
		require.NoError(t, p.Submit(ctx, 1))
		<-started
		<-started // both workers are busy
		for i := 2; i < 42; i++ {
			require.NoError(t, p.Submit(ctx, i))
		}
		close(gates[1])
		synctest.Wait()
		// The freed worker took 40/(2*2) = 8 jobs at once, 2..9, and is
		// stuck on job 2 holding seven of them.
		s := p.Stats()
		checkIdentity(t, s)
		assert.Equal(t, 32, s.Queued, "a batch of 8 was taken")
		assert.Equal(t, 9, s.Running, "job 0, and 2..9 taken together")
		close(gates[0])
		synctest.Wait()
		var got []int
		for len(p.Results()) > 0 {
			got = append(got, (<-p.Results()).Job)
		}
		sort.Ints(got)
		want := []int{0, 1}
		for i := 3; i < 42; i++ {
			want = append(want, i)
		}
		assert.Equal(t, want, got, "every job but the stuck one has run")
		s = p.Stats()
		checkIdentity(t, s)
		assert.Equal(t, 1, s.Running)
		assert.Zero(t, s.Queued)
		close(gates[2])
		require.NoError(t, p.Stop(ctx))
		res := drain(p)
		require.Len(t, res, 1)
		assert.Equal(t, 2, res[0].Job)
		assert.Equal(t, PoolStats{Submitted: 42, Completed: 42}, p.Stats())
	})
}

// One worker runs its jobs, batches or not, in submission order, and a
// panic or Goexit in the middle of a batch neither loses nor repeats the
// jobs after it: the replacement goroutine goes on with the batch.
func TestPoolSingleWorkerKeepsOrderThroughBatchesPanicsAndGoexits(t *testing.T) {
	gate := make(chan struct{})
	var runs [200]atomic.Int32
	p := NewPool(1, func(_ context.Context, v int) (int, error) {
		runs[v].Add(1)
		switch {
		case v == 0:
			<-gate // let the queue fill, so that the worker takes batches
		case v%17 == 3:
			panic(v)
		case v%23 == 5:
			runtime.Goexit()
		case v%7 == 1:
			return 0, errors.New("odd")
		}
		return v, nil
	}, QueueSize(256))
	for i := range 200 {
		require.NoError(t, p.Submit(context.Background(), i))
	}
	close(gate)
	require.NoError(t, p.Stop(context.Background()))
	res := drain(p)
	require.Len(t, res, 200)
	var failed, panicked uint64
	for i, r := range res {
		require.Equal(t, i, r.Job, "results in submission order")
		require.Equal(t, int32(1), runs[i].Load(), "job %d ran once", i)
		var pe *PanicError
		switch {
		case i != 0 && i%17 == 3:
			require.ErrorAs(t, r.Err, &pe)
			panicked++
		case i%23 == 5:
			require.ErrorIs(t, r.Err, errGoexit)
			failed++
		case i%7 == 1:
			require.Error(t, r.Err)
			failed++
		default:
			require.NoError(t, r.Err)
		}
	}
	s := p.Stats()
	checkIdentity(t, s)
	assert.Equal(t, PoolStats{Submitted: 200, Completed: 200 - failed - panicked, Failed: failed, Panicked: panicked}, s)
}

// Jobs a worker holds in its batch when Stop gives up are reported as not
// run, like the queued ones: Stop promised that nothing starts after its
// deadline.
func TestPoolStopReportsTheJobsHeldInABatchNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gates := map[int]chan struct{}{0: make(chan struct{}), 1: make(chan struct{})}
		fn, started := gated(gates)
		p := NewPool(1, fn, QueueSize(64))
		ctx := context.Background()
		require.NoError(t, p.Submit(ctx, 0))
		<-started
		for i := 1; i <= 40; i++ {
			require.NoError(t, p.Submit(ctx, i))
		}
		close(gates[0])
		synctest.Wait() // the worker took 1..8 and is stuck on job 1
		assert.Equal(t, 1, <-started)
		s := p.Stats()
		assert.Equal(t, 8, s.Running)
		assert.Equal(t, 32, s.Queued)

		stopCtx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		require.ErrorIs(t, p.Stop(stopCtx), context.DeadlineExceeded)
		res := drain(p)
		require.Len(t, res, 41)
		assert.NoError(t, res[0].Err)
		assert.ErrorIs(t, res[1].Err, context.DeadlineExceeded, "the running job sees Stop's cause")
		for _, r := range res[2:] {
			require.ErrorIs(t, r.Err, ErrClosed, "job %d", r.Job)
		}
		assert.Len(t, started, 0, "no job started after Stop gave up")
		s = p.Stats()
		checkIdentity(t, s)
		assert.Equal(t, PoolStats{Submitted: 41, Completed: 1, Failed: 1, NotRun: 39}, s)
	})
}

// Many submitters and workers over a long queue, so that workers take
// batches and steal them, with jobs of uneven length, errors and panics,
// and a sampler that checks every snapshot. Every accepted job runs
// exactly once and has exactly one Result, and the counters match the
// Results.
func TestPoolBatchesAndStealsRunEveryJobExactlyOnce(t *testing.T) {
	for _, tt := range []struct{ workers, queue int }{{2, 256}, {4, 1024}, {8, 4096}} {
		t.Run(fmt.Sprintf("workers=%d/queue=%d", tt.workers, tt.queue), func(t *testing.T) {
			stressPoolBatches(t, tt.workers, tt.queue)
		})
	}
}

func stressPoolBatches(t *testing.T, workers, queue int) {
	const submitters, each = 4, 2000
	runs := make([]atomic.Int32, submitters*each)
	p := NewPool(workers, func(_ context.Context, v int) (int, error) {
		runs[v].Add(1)
		switch v % 97 {
		case 11:
			for range 50 { // a slow job: its batch should be stolen
				runtime.Gosched()
			}
		case 13:
			return 0, errors.New("odd")
		case 17:
			panic(v)
		}
		return v, nil
	}, QueueSize(queue))

	stopSampler := sampleStats(p)
	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			for i := range each {
				assert.NoError(t, p.Submit(context.Background(), g*each+i))
			}
		})
	}
	results := make(chan []Result[int, int])
	go func() { results <- drain(p) }()
	wg.Wait()
	require.NoError(t, p.Close())
	res := <-results
	bad, _ := stopSampler()
	require.Nil(t, bad, "a snapshot did not add up")

	require.Len(t, res, submitters*each)
	seen := make([]bool, submitters*each)
	var failed, panicked uint64
	for _, r := range res {
		require.False(t, seen[r.Job], "job %d reported twice", r.Job)
		seen[r.Job] = true
		var pe *PanicError
		switch {
		case errors.As(r.Err, &pe):
			panicked++
		case r.Err != nil:
			failed++
		}
	}
	for i := range runs {
		require.Equal(t, int32(1), runs[i].Load(), "job %d ran once", i)
	}
	s := p.Stats()
	checkIdentity(t, s)
	assert.Equal(t, PoolStats{
		Submitted: submitters * each,
		Completed: submitters*each - failed - panicked,
		Failed:    failed,
		Panicked:  panicked,
	}, s)
}

// With two workers, job 0 waits for job 1, submitted right behind it. A
// worker that took both in one batch and blocks in job 0 would deadlock the
// pool unless the idle worker can run job 1; synctest reports that deadlock.
func TestPoolIdleWorkerRunsAJobQueuedBehindABlockedOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := NewPool(2, func(ctx context.Context, j int) (int, error) {
			switch j {
			case 0:
				<-release
			case 1:
				close(release)
			}
			return j, nil
		}, QueueSize(64), OnResult(func(Result[int, int]) {}))
		for j := range 40 {
			require.NoError(t, p.Submit(context.Background(), j))
		}
		require.NoError(t, p.Close())
		require.NoError(t, p.Stop(context.Background()))
		s := p.Stats()
		assert.Equal(t, uint64(40), s.Completed)
	})
}
