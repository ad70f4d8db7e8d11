package conc

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

// double is the pool function of most tests.
func double(_ context.Context, v int) (int, error) { return 2 * v, nil }

// drain reads results until the channel closes.
func drain[J, R any](p *Pool[J, R]) []Result[J, R] {
	var out []Result[J, R]
	for r := range p.Results() {
		out = append(out, r)
	}
	return out
}

// checkIdentity asserts the PoolStats identity.
func checkIdentity(t *testing.T, s PoolStats) {
	t.Helper()
	sum := uint64(s.Queued) + uint64(s.Running) + s.Completed + s.Failed + s.Panicked + s.NotRun
	require.Equal(t, s.Submitted, sum, "stats do not add up: %+v", s)
	require.GreaterOrEqual(t, s.Queued, 0)
	require.GreaterOrEqual(t, s.Running, 0)
}

func TestPoolRunsEveryJobAndReportsItsResult(t *testing.T) {
	for _, workers := range []int{1, 3, 8} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			p := NewPool(workers, double, QueueSize(2))
			go func() {
				for i := range 200 {
					assert.NoError(t, p.Submit(context.Background(), i))
				}
				p.Close()
			}()
			res := drain(p)
			require.Len(t, res, 200)
			sort.Slice(res, func(i, j int) bool { return res[i].Job < res[j].Job })
			for i, r := range res {
				require.Equal(t, i, r.Job)
				require.Equal(t, 2*i, r.Value)
				require.NoError(t, r.Err)
			}
			s := p.Stats()
			checkIdentity(t, s)
			assert.Equal(t, PoolStats{Submitted: 200, Completed: 200}, s)
		})
	}
}

func TestPoolSingleWorkerRunsJobsInSubmissionOrder(t *testing.T) {
	p := NewPool(1, double, QueueSize(0))
	go func() {
		for i := range 50 {
			assert.NoError(t, p.Submit(context.Background(), i))
		}
		p.Close()
	}()
	for i, r := range drain(p) {
		require.Equal(t, i, r.Job)
	}
}

func TestPoolSubmitAfterCloseReturnsErrClosed(t *testing.T) {
	p := NewPool(2, double)
	require.NoError(t, p.Close())
	assert.NotPanics(t, func() {
		assert.ErrorIs(t, p.Submit(context.Background(), 1), ErrClosed)
		assert.False(t, p.TrySubmit(2))
	})
	assert.Empty(t, drain(p))
	assert.Equal(t, PoolStats{Rejected: 2}, p.Stats())
}

func TestPoolCloseAndStopAreIdempotent(t *testing.T) {
	p := NewPool(2, double)
	require.NoError(t, p.Submit(context.Background(), 1))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	res := drain(p)
	require.NoError(t, p.Stop(context.Background()))
	require.NoError(t, p.Stop(context.Background()))
	require.NoError(t, p.Close())
	assert.Len(t, res, 1)
}

func TestPoolPanicBecomesPanicErrorAndWorkerLivesOn(t *testing.T) {
	p := NewPool(1, func(_ context.Context, v int) (int, error) {
		if v == 1 {
			panic("boom")
		}
		return v, nil
	})
	for i := range 3 {
		require.NoError(t, p.Submit(context.Background(), i))
	}
	require.NoError(t, p.Stop(context.Background()))
	res := drain(p)
	require.Len(t, res, 3)
	var pe *PanicError
	require.ErrorAs(t, res[1].Err, &pe)
	assert.Equal(t, "boom", pe.Value)
	assert.Contains(t, string(pe.Stack), "TestPoolPanicBecomesPanicErrorAndWorkerLivesOn", "stack of the panicking job")
	assert.NoError(t, res[2].Err, "the worker must survive the panic")
	s := p.Stats()
	checkIdentity(t, s)
	assert.Equal(t, uint64(1), s.Panicked)
	assert.Equal(t, uint64(2), s.Completed)
}

// A job that calls runtime.Goexit (t.FailNow does) kills its goroutine
// without returning or panicking. A naive pool loses the job, runs with one
// worker fewer, and with one worker never finishes.
func TestPoolGoexitInJobKeepsPoolSizeAndCloseReturns(t *testing.T) {
	const workers = 2
	var started sync.WaitGroup
	started.Add(workers)
	release := make(chan struct{})
	p := NewPool(workers, func(_ context.Context, v int) (int, error) {
		if v < 0 {
			runtime.Goexit()
		}
		// Jobs >= 100 prove that `workers` jobs still run at once.
		if v >= 100 {
			started.Done()
			<-release
		}
		return v, nil
	})
	for i := range 4 {
		require.NoError(t, p.Submit(context.Background(), -1-i))
	}
	for i := range workers {
		require.NoError(t, p.Submit(context.Background(), 100+i))
	}
	started.Wait() // hangs if a Goexit shrank the pool
	close(release)
	require.NoError(t, p.Stop(context.Background()))
	res := drain(p)
	require.Len(t, res, 4+workers)
	goexits := 0
	for _, r := range res {
		if r.Job < 0 {
			assert.ErrorIs(t, r.Err, errGoexit)
			goexits++
		}
	}
	assert.Equal(t, 4, goexits)
	s := p.Stats()
	checkIdentity(t, s)
	assert.Equal(t, uint64(4), s.Failed)
}

func TestPoolGoexitInOnResultKeepsPoolAlive(t *testing.T) {
	var got atomic.Int32
	p := NewPool(1, double, OnResult(func(r Result[int, int]) {
		got.Add(1)
		if r.Job == 0 {
			runtime.Goexit()
		}
	}))
	for i := range 3 {
		require.NoError(t, p.Submit(context.Background(), i))
	}
	require.NoError(t, p.Stop(context.Background()))
	assert.Equal(t, int32(3), got.Load())
}

func TestPoolSubmitReturnsCtxErrorAndCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, started := blocker()
		p := NewPool(1, fn, QueueSize(1))
		defer p.Stop(canceledCtx())
		require.NoError(t, p.Submit(context.Background(), 0))
		<-started
		require.NoError(t, p.Submit(context.Background(), 1))

		cause := errors.New("caller gave up")
		ctx, cancel := context.WithCancelCause(context.Background())
		go func() {
			time.Sleep(time.Second)
			cancel(cause)
		}()
		err := p.Submit(ctx, 2) // blocks: queue full
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, cause)
		// An already-done context never adds the job, even with room.
		assert.ErrorIs(t, p.Submit(ctx, 3), cause)
		s := p.Stats()
		assert.Equal(t, uint64(2), s.Rejected)
		assert.Equal(t, uint64(2), s.Submitted)
	})
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestPoolBlockedSubmittersAreServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		p := NewPool(1, func(_ context.Context, v int) (int, error) {
			<-gate
			return v, nil
		}, QueueSize(2), ResultBuffer(8))
		for i := range 3 { // one running, two queued
			require.NoError(t, p.Submit(context.Background(), i))
		}
		synctest.Wait()
		for i := 3; i < 8; i++ {
			go func() { assert.NoError(t, p.Submit(context.Background(), i)) }()
			synctest.Wait() // parked before the next one arrives
		}
		assert.False(t, p.TrySubmit(100), "TrySubmit must not jump the queue")
		close(gate)
		synctest.Wait()
		require.NoError(t, p.Stop(context.Background()))
		for i, r := range drain(p) {
			require.Equal(t, i, r.Job)
		}
	})
}

func TestPoolTrySubmitNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, started := blocker()
		p := NewPool(1, fn, QueueSize(2))
		assert.True(t, p.TrySubmit(0))
		<-started
		assert.True(t, p.TrySubmit(1))
		assert.True(t, p.TrySubmit(2))
		assert.False(t, p.TrySubmit(3))
		s := p.Stats()
		checkIdentity(t, s)
		assert.Equal(t, PoolStats{Submitted: 3, Rejected: 1, Queued: 2, Running: 1}, s)
		require.Error(t, p.Stop(canceledCtx()))
		assert.Len(t, drain(p), 3)
	})
}

func TestPoolJobTimeoutEndsEachJobsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p := NewPool(1, func(ctx context.Context, v int) (int, error) {
			<-ctx.Done()
			return int(time.Since(start) / time.Second), ctx.Err()
		}, JobTimeout(3*time.Second))
		require.NoError(t, p.Submit(context.Background(), 0))
		require.NoError(t, p.Submit(context.Background(), 1))
		require.NoError(t, p.Stop(context.Background()))
		res := drain(p)
		require.Len(t, res, 2)
		for i, r := range res {
			assert.ErrorIs(t, r.Err, context.DeadlineExceeded)
			assert.Equal(t, 3*(i+1), r.Value, "each job gets its own timeout")
		}
	})
}

func TestPoolOnResultReceivesEveryResultAndChannelOnlyCloses(t *testing.T) {
	var mu sync.Mutex
	var got []int
	p := NewPool(3, double, OnResult(func(r Result[int, int]) {
		if r.Job == 7 {
			panic("callback bug")
		}
		mu.Lock()
		got = append(got, r.Value)
		mu.Unlock()
	}), ResultBuffer(0))
	for i := range 20 {
		require.NoError(t, p.Submit(context.Background(), i))
	}
	require.NoError(t, p.Stop(context.Background()))
	assert.Empty(t, drain(p))
	assert.Len(t, got, 19)
	s := p.Stats()
	checkIdentity(t, s)
	assert.Equal(t, uint64(1), s.Dropped, "a panicking callback is counted")
}

func TestNewPoolPanicsOnBadInput(t *testing.T) {
	tests := []struct {
		name string
		make func()
		want string
	}{
		{"zero workers", func() { NewPool(0, double) }, "conc: workers must be at least 1, got 0"},
		{"nil fn", func() { NewPool[int, int](1, nil) }, "conc: fn must not be nil"},
		{"negative queue", func() { NewPool(1, double, QueueSize(-1)) }, "conc: queue size must not be negative, got -1"},
		{"negative results", func() { NewPool(1, double, ResultBuffer(-2)) }, "conc: result buffer must not be negative, got -2"},
		{"zero timeout", func() { NewPool(1, double, JobTimeout(0)) }, "conc: job timeout must be positive, got 0s"},
		{"nil callback", func() { NewPool(1, double, OnResult[int, int](nil)) }, "conc: OnResult callback must not be nil"},
		{"callback of other types", func() { NewPool(1, double, OnResult(func(Result[string, int]) {})) },
			"conc: OnResult callback is func(conc.Result[string,int]), the pool needs func(conc.Result[int,int])"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.make)
		})
	}
}
