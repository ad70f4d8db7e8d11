package conc

// Tests of Stop, Close and shutdown: the traps peers' bug trackers report
// (blocked submitters never woken, queued jobs lost or hanging, undrained
// results stalling shutdown, counters that do not add up, leaked workers).

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// blocker returns a pool function that blocks until its context ends, and
// a channel that receives each job as it starts.
func blocker() (func(context.Context, int) (int, error), chan int) {
	started := make(chan int, 100)
	return func(ctx context.Context, v int) (int, error) {
		started <- v
		<-ctx.Done()
		return v, context.Cause(ctx)
	}, started
}

// Submit calls blocked on a full queue must all return when the pool is
// closed; a naive pool leaves them blocked on a channel send forever (or
// makes them panic with "send on closed channel").
func TestPoolStopWakesEveryBlockedSubmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, started := blocker()
		p := NewPool(1, fn, QueueSize(1))
		require.NoError(t, p.Submit(context.Background(), 0))
		<-started
		require.NoError(t, p.Submit(context.Background(), 1)) // fills the queue
		const blocked = 5
		errs := make(chan error, blocked)
		for i := range blocked {
			go func() { errs <- p.Submit(context.Background(), 10+i) }()
		}
		synctest.Wait() // every submitter is parked
		assert.Equal(t, 1, p.Stats().Queued)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.ErrorIs(t, p.Stop(ctx), context.DeadlineExceeded)
		for range blocked {
			assert.ErrorIs(t, <-errs, ErrClosed)
		}
		res := drain(p)
		require.Len(t, res, 2)
		assert.ErrorIs(t, res[0].Err, context.DeadlineExceeded, "running job sees Stop's cause")
		assert.ErrorIs(t, res[1].Err, ErrClosed, "queued job reported as not run")
		assert.ErrorIs(t, res[1].Err, context.DeadlineExceeded)
		s := p.Stats()
		checkIdentity(t, s)
		assert.Equal(t, PoolStats{Submitted: 2, Rejected: blocked, Failed: 1, NotRun: 1}, s)
	})
}

// Cancelling while many jobs are queued must neither hang nor lose them.
func TestPoolStopWithQueuedJobsReportsThemNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, started := blocker()
		p := NewPool(2, fn, QueueSize(10))
		for i := range 12 {
			require.NoError(t, p.Submit(context.Background(), i))
		}
		<-started
		<-started
		ctx, cancel := context.WithCancelCause(context.Background())
		cause := errors.New("shutting down")
		cancel(cause)
		err := p.Stop(ctx)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, cause)
		res := drain(p)
		require.Len(t, res, 12)
		notRun := 0
		for _, r := range res {
			assert.ErrorIs(t, r.Err, cause)
			if errors.Is(r.Err, ErrClosed) {
				notRun++
			}
		}
		assert.Equal(t, 10, notRun)
		s := p.Stats()
		checkIdentity(t, s)
		assert.Equal(t, uint64(10), s.NotRun)
		assert.Equal(t, uint64(2), s.Failed)
	})
}

// A job that submits to its own full pool deadlocks a naive pool forever;
// with a context it must get the context's error.
func TestPoolJobSubmittingToItsOwnFullPoolGetsCtxError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p *Pool[int, int]
		gate := make(chan struct{})
		p = NewPool(1, func(ctx context.Context, v int) (int, error) {
			if v != 0 {
				return v, nil
			}
			<-gate
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return v, p.Submit(ctx, 99)
		}, QueueSize(1))
		require.NoError(t, p.Submit(context.Background(), 0))
		require.NoError(t, p.Submit(context.Background(), 1)) // queue full
		close(gate)
		r := <-p.Results()
		assert.Equal(t, 0, r.Job)
		assert.ErrorIs(t, r.Err, context.DeadlineExceeded)
		require.NoError(t, p.Stop(context.Background()))
		assert.Len(t, drain(p), 1)
		s := p.Stats()
		checkIdentity(t, s)
		assert.Equal(t, uint64(1), s.Rejected)
	})
}

// Nobody reads Results: Stop must still return when its context ends, and
// the results it could not deliver are counted, not silently lost.
func TestPoolStopWithUndrainedResultsReturnsWhenCtxEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPool(2, double, ResultBuffer(1))
		for i := range 6 {
			require.NoError(t, p.Submit(context.Background(), i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.ErrorIs(t, p.Stop(ctx), context.DeadlineExceeded)
		<-p.done // the workers exit once they stop waiting on the channel
		res := drain(p)
		s := p.Stats()
		checkIdentity(t, s)
		assert.Equal(t, s.Submitted, uint64(len(res))+s.Dropped)
		assert.NotZero(t, s.Dropped)
	})
}

// Many goroutines Submit and TrySubmit while the pool is closed under them
// and a sampler checks the stats identity. Every accepted job must produce
// exactly one result, every refusal must be counted.
func TestPoolStatsAddUpUnderConcurrentSubmitTrySubmitClose(t *testing.T) {
	for _, tt := range []struct{ workers, queue int }{{1, 0}, {2, 1}, {4, 8}, {8, 64}} {
		t.Run(fmt.Sprintf("workers=%d/queue=%d", tt.workers, tt.queue), func(t *testing.T) {
			stressPoolStats(t, tt.workers, tt.queue)
		})
	}
}

func stressPoolStats(t *testing.T, workers, queue int) {
	var ran atomic.Int64
	p := NewPool(workers, func(_ context.Context, v int) (int, error) {
		ran.Add(1)
		switch v % 10 {
		case 3:
			return 0, errors.New("odd")
		case 7:
			panic(v)
		}
		return v, nil
	}, QueueSize(queue))
	var attempts, accepted atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				attempts.Add(1)
				if g%2 == 0 {
					if p.Submit(context.Background(), i) == nil {
						accepted.Add(1)
					}
				} else if p.TrySubmit(i) {
					accepted.Add(1)
				}
			}
		})
	}
	stopSampler := sampleStats(p)
	results := make(chan []Result[int, int])
	go func() { results <- drain(p) }()
	// Close while the submitters are in full swing: after a good share of
	// the jobs is in, before all of them are.
	var closer sync.WaitGroup
	closer.Go(func() {
		for accepted.Load() < 800 && attempts.Load() < 3900 {
			runtime.Gosched()
		}
		p.Close()
	})
	wg.Wait()
	closer.Wait()
	res := <-results
	bad, samples := stopSampler()
	require.Nil(t, bad, "a snapshot did not add up")
	require.NotZero(t, samples)

	s := p.Stats()
	checkIdentity(t, s)
	assert.Equal(t, uint64(accepted.Load()), s.Submitted)
	assert.Equal(t, uint64(attempts.Load()), s.Submitted+s.Rejected)
	assert.Equal(t, int(s.Submitted), len(res))
	assert.Equal(t, ran.Load(), int64(len(res)))
	assert.Zero(t, s.Queued+s.Running)
	var failed, panicked uint64
	for _, r := range res {
		var pe *PanicError
		switch {
		case errors.As(r.Err, &pe):
			panicked++
		case r.Err != nil:
			failed++
		}
	}
	assert.Equal(t, failed, s.Failed)
	assert.Equal(t, panicked, s.Panicked)
}

// sampleStats checks the PoolStats identity over and over on a goroutine of
// its own until the function it returns is called; that reports the first
// snapshot that did not add up (nil if none) and how many it took. The loop
// uses no testify and yields between samples: a tight loop on Stats would
// starve the pool under the race detector.
func sampleStats[J, R any](p *Pool[J, R]) func() (*PoolStats, int64) {
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	var bad atomic.Pointer[PoolStats]
	var samples atomic.Int64
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := p.Stats()
			if s.Submitted != uint64(s.Queued)+uint64(s.Running)+s.Completed+s.Failed+s.Panicked+s.NotRun ||
				s.Queued < 0 || s.Running < 0 {
				bad.CompareAndSwap(nil, &s)
			}
			samples.Add(1)
			runtime.Gosched()
		}
	})
	return func() (*PoolStats, int64) {
		close(stop)
		sampler.Wait()
		return bad.Load(), samples.Load()
	}
}

// Once Stop has returned nil, or Results has closed, no goroutine of the
// pool is left; a naive pool that never closes its jobs channel keeps its
// workers forever.
func TestPoolLeavesNoGoroutineAfterStopOrDrain(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := NewPool(4, double)
	for i := range 10 {
		require.NoError(t, p.Submit(context.Background(), i))
	}
	require.NoError(t, p.Stop(context.Background()))
	assert.Len(t, drain(p), 10)

	q := NewPool(3, double, OnResult(func(Result[int, int]) {}))
	require.NoError(t, q.Submit(context.Background(), 1))
	require.NoError(t, q.Close())
	for range q.Results() {
	}
}
