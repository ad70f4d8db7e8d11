package conc

// Tests of the short-job mode: a worker times one take in poolTimeEvery,
// and the timed batches alone set and clear Pool.short. They run in a
// synctest bubble, where a job's time.Sleep is the only time that passes,
// so every timed batch takes exactly the time its jobs sleep.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sleeper is a pool function whose job is how long it sleeps.
func sleeper(_ context.Context, d time.Duration) (time.Duration, error) {
	if d > 0 {
		time.Sleep(d)
	}
	return d, nil
}

// isShort reads p.short under the pool's lock.
func isShort[J, R any](p *Pool[J, R]) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.short
}

// newSleeperPool is a pool of one worker over sleeper in the current
// bubble; its results go to a callback, so none has to be drained.
func newSleeperPool() *Pool[time.Duration, time.Duration] {
	return NewPool(1, sleeper, QueueSize(64), OnResult(func(Result[time.Duration, time.Duration]) {}))
}

// takeEach submits each job alone and waits, a second of the bubble's
// time, until the only worker has run it and come back for more, so that
// each job is one take, and its batch has ended when takeEach returns.
func takeEach(t *testing.T, p *Pool[time.Duration, time.Duration], jobs ...time.Duration) {
	t.Helper()
	for _, d := range jobs {
		require.NoError(t, p.Submit(context.Background(), d))
		time.Sleep(time.Second)
		synctest.Wait()
	}
}

// repeat is n copies of d.
func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// takeEightAtOnce makes the worker's next take one of 8 jobs of d each:
// it holds the worker in a sleeping job while 16 more are queued, so that
// it comes back to 16 and takes 8 (half the queue for its one worker, at
// most poolBatch). It counts two takes: the sleeping job's and the 8's.
func takeEightAtOnce(t *testing.T, p *Pool[time.Duration, time.Duration], d time.Duration) {
	t.Helper()
	require.NoError(t, p.Submit(context.Background(), time.Millisecond))
	synctest.Wait() // the worker sleeps in the job
	for range 16 {
		require.NoError(t, p.Submit(context.Background(), d))
	}
	time.Sleep(time.Second) // the worker wakes, and runs the 16
	synctest.Wait()
}

// The flag follows the timed takes, the 8th, 16th, ... of the worker, and
// only them: untimed takes of any length leave it alone, and a timed one
// decides by the time per job, under 500 ns for short, a batch of several
// jobs divided among them.
func TestPoolShortFollowsTheTimeOfTheTimedBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSleeperPool()
		takeEach(t, p, repeat(7, 0)...)
		assert.False(t, isShort(p), "takes 1-7 are not timed")
		takeEach(t, p, 499*time.Nanosecond)
		assert.True(t, isShort(p), "take 8 ran its job in 499 ns")
		require.NoError(t, p.Stop(context.Background()))

		p = newSleeperPool()
		takeEach(t, p, repeat(7, time.Millisecond)...)
		assert.False(t, isShort(p), "takes 1-7 are not timed")
		takeEach(t, p, 500*time.Nanosecond)
		assert.False(t, isShort(p), "take 8 ran its job in 500 ns")
		takeEach(t, p, repeat(7, time.Millisecond)...)
		takeEach(t, p, 0)
		assert.True(t, isShort(p), "take 16 ran its job at once")
		require.NoError(t, p.Stop(context.Background()))

		for _, tt := range []struct {
			each  time.Duration
			short bool
		}{{400 * time.Nanosecond, true}, {600 * time.Nanosecond, false}} {
			p = newSleeperPool()
			takeEach(t, p, repeat(6, 0)...)
			takeEightAtOnce(t, p, tt.each) // takes 7 and 8
			require.Equal(t, uint64(6+1+16), p.Stats().Completed, "every job ran")
			assert.Equal(t, tt.short, isShort(p), "take 8 ran 8 jobs of %v", tt.each)
			require.NoError(t, p.Stop(context.Background()))
		}
	})
}

// Without a timed batch that has ended the flag stays unset: a new pool,
// one whose worker has taken fewer than poolTimeEvery times, however short
// the jobs, and one whose first timed batch is still running. An idle or
// lightly used pool keeps spinning for work as it did before the mode.
func TestPoolShortStaysUnsetWithoutBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		p := NewPool(1, func(_ context.Context, v int) (int, error) {
			if v == 8 {
				<-gate
			}
			return v, nil
		}, OnResult(func(Result[int, int]) {}))
		synctest.Wait()
		assert.False(t, isShort(p), "a new pool")
		for v := 1; v <= 7; v++ {
			require.NoError(t, p.Submit(context.Background(), v))
			synctest.Wait()
		}
		assert.False(t, isShort(p), "seven takes")
		require.NoError(t, p.Submit(context.Background(), 8))
		synctest.Wait()
		assert.False(t, isShort(p), "the timed take has not ended")
		close(gate)
		synctest.Wait()
		assert.True(t, isShort(p), "the timed take ran its job at once")
		require.NoError(t, p.Stop(context.Background()))
	})
}

// Slow timed batches clear the flag only four in a row: a fast timed batch
// in between starts the count again, and untimed takes, slow or fast, do
// not count. Once clear, one fast timed batch sets it again.
func TestPoolShortNeedsLongBatchesInARowToClear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSleeperPool()
		const slow = time.Microsecond
		// timed runs the worker's next 8 takes, the last of them timed,
		// seven untimed ones of untimed and the timed one of d.
		timed := func(untimed, d time.Duration) {
			takeEach(t, p, repeat(7, untimed)...)
			takeEach(t, p, d)
		}
		timed(slow, 0)
		require.True(t, isShort(p))
		for i := 1; i <= 3; i++ {
			timed(0, slow)
			require.True(t, isShort(p), "%d slow timed batches in a row", i)
		}
		timed(slow, 0) // a fast one: the count starts again
		for i := 1; i <= 3; i++ {
			timed(0, slow)
			require.True(t, isShort(p), "%d slow timed batches in a row after a fast one", i)
		}
		timed(0, slow)
		require.False(t, isShort(p), "four slow timed batches in a row")
		for range 5 {
			timed(0, slow)
			require.False(t, isShort(p), "more slow ones")
		}
		timed(slow, 0)
		require.True(t, isShort(p), "one fast timed batch")
		require.NoError(t, p.Stop(context.Background()))
	})
}

// Several submitters and workers run phases of jobs that take no time and
// phases of jobs that sleep, in a bubble, so that the flag sets in every
// fast phase and clears in every slow one while workers take batches and
// steal them. Every job still runs exactly once and has exactly one
// Result. Run it under -race.
func TestPoolRunsEveryJobExactlyOnceWhileShortFlips(t *testing.T) {
	for _, tt := range []struct{ workers, queue int }{{2, 16}, {4, 64}, {8, 8}} {
		t.Run(fmt.Sprintf("workers=%d/queue=%d", tt.workers, tt.queue), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stressPoolShort(t, tt.workers, tt.queue)
			})
		})
	}
}

func stressPoolShort(t *testing.T, workers, queue int) {
	const phases, submitters, each = 6, 3, 400
	const total = phases * submitters * each
	runs := make([]atomic.Int32, total)
	p := NewPool(workers, func(_ context.Context, v int) (int, error) {
		runs[v].Add(1)
		if phase := v / (submitters * each); phase%2 == 1 {
			time.Sleep(time.Duration(1+v%3) * time.Microsecond)
		}
		return v, nil
	}, QueueSize(queue))
	var res []Result[int, int]
	drained := make(chan struct{})
	go func() {
		res = drain(p)
		close(drained)
	}()
	for phase := range phases {
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Go(func() {
				base := (phase*submitters + g) * each
				for i := range each {
					assert.NoError(t, p.Submit(context.Background(), base+i))
				}
			})
		}
		wg.Wait()
		synctest.Wait() // every job of the phase has run and been reported
		checkIdentity(t, p.Stats())
		// The phase's 1200 jobs took at least 1200/poolBatch = 150 takes,
		// and a worker's timed takes are one in eight of its own: with at
		// most 8 workers at least (150-8*7)/8, eleven, timed batches ended
		// in the phase, all of them fast or all slow.
		assert.Equal(t, phase%2 == 0, isShort(p), "after phase %d", phase)
	}
	require.NoError(t, p.Close())
	<-drained
	require.Len(t, res, total)
	seen := make([]bool, total)
	for _, r := range res {
		require.NoError(t, r.Err)
		require.False(t, seen[r.Job], "job %d reported twice", r.Job)
		seen[r.Job] = true
	}
	for i := range runs {
		require.Equal(t, int32(1), runs[i].Load(), "job %d ran once", i)
	}
	assert.Equal(t, PoolStats{Submitted: total, Completed: total}, p.Stats())
}
