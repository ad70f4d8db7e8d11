package conc

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stageTimedItem is an input of the Batch tests: v is produced after waiting
// gap since the previous item.
type stageTimedItem struct {
	gap time.Duration
	v   int
}

// stageSlowSeq yields items with the given gaps, sleeping in between. Inside a
// synctest bubble the sleeps take no real time.
func stageSlowSeq(items []stageTimedItem) func(func(int) bool) {
	return func(yield func(int) bool) {
		for _, it := range items {
			time.Sleep(it.gap)
			if !yield(it.v) {
				return
			}
		}
	}
}

// stageStamped is a batch and the (fake) time since the start at which it left
// the Batch stage.
type stageStamped struct {
	at    time.Duration
	batch []int
}

func stageStampBatches(start time.Time) Stage[[]int, stageStamped] {
	return Map(func(_ context.Context, b []int) (stageStamped, error) {
		return stageStamped{time.Since(start), b}, nil
	})
}

func TestBatchEmitsOnSizeOnMaxWaitAndAtEnd(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		size    int
		maxWait time.Duration
		items   []stageTimedItem
		want    []stageStamped
	}{
		{
			name: "full batches leave at once", size: 2, maxWait: time.Hour,
			items: []stageTimedItem{{0, 1}, {ms, 2}, {ms, 3}, {ms, 4}, {ms, 5}},
			want:  []stageStamped{{1 * ms, []int{1, 2}}, {3 * ms, []int{3, 4}}, {4 * ms, []int{5}}},
		},
		{
			name: "maxWait counts from the first item of the batch", size: 10, maxWait: 50 * ms,
			items: []stageTimedItem{{10 * ms, 1}, {30 * ms, 2}, {100 * ms, 3}, {10 * ms, 4}},
			// The input ends at 150ms and takes the last batch with it.
			want: []stageStamped{{60 * ms, []int{1, 2}}, {150 * ms, []int{3, 4}}},
		},
		{
			name: "a trickle is cut every maxWait", size: 100, maxWait: 25 * ms,
			items: []stageTimedItem{{0, 1}, {10 * ms, 2}, {10 * ms, 3}, {10 * ms, 4}, {10 * ms, 5}, {10 * ms, 6}, {50 * ms, 7}},
			want:  []stageStamped{{25 * ms, []int{1, 2, 3}}, {55 * ms, []int{4, 5, 6}}, {100 * ms, []int{7}}},
		},
		{
			name: "no maxWait waits for size or end", size: 3, maxWait: 0,
			items: []stageTimedItem{{0, 1}, {time.Hour, 2}, {time.Hour, 3}, {time.Hour, 4}},
			want:  []stageStamped{{2 * time.Hour, []int{1, 2, 3}}, {3 * time.Hour, []int{4}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := Then(Batch[int](tc.size, tc.maxWait), stageStampBatches(time.Now()))
				got, err := Collect(context.Background(), s, stageSlowSeq(tc.items))
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
			})
		})
	}
}

// TestBatchMaxWaitReachesAConsumerAcrossBoundaries checks that a batch cut
// by the clock is handed on through a worker pool and Run's channel while
// the input is still silent.
func TestBatchMaxWaitReachesAConsumerAcrossBoundaries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(chan int)
		s := Then(Batch[int](10, 20*time.Millisecond),
			Map(func(_ context.Context, b []int) (int, error) { return len(b), nil }, Workers(2)))
		out, wait := s.Run(context.Background(), in)
		start := time.Now()
		in <- 1
		in <- 2
		assert.Equal(t, 2, <-out)
		assert.Equal(t, 20*time.Millisecond, time.Since(start))
		close(in)
		require.NoError(t, wait())
	})
}

func TestBatchStopsWithTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		s := Then(Batch[int](4, time.Second), Map(func(_ context.Context, b []int) (int, error) {
			if b[0] >= 8 {
				return 0, boom
			}
			return len(b), nil
		}))
		_, err := Collect(context.Background(), s, stageInts(1<<30))
		require.ErrorIs(t, err, boom)

		// A panic downstream of the timer goroutine unwinds through the
		// batch's lock without wedging it.
		s = Then(Batch[int](100, time.Millisecond), Map(func(_ context.Context, b []int) (int, error) {
			panic("downstream")
		}))
		_, err = Collect(context.Background(), s, stageSlowSeq([]stageTimedItem{{0, 1}, {time.Second, 2}}))
		var pe *PanicError
		require.ErrorAs(t, err, &pe)
	})
}

func TestBatchAllGivesEveryItemInOrder(t *testing.T) {
	for _, maxWait := range []time.Duration{0, time.Hour} {
		var got []int
		for b, err := range All(context.Background(), Batch[int](7, maxWait), stageInts(100)) {
			require.NoError(t, err)
			assert.LessOrEqual(t, len(b), 7)
			got = append(got, b...)
		}
		assert.Equal(t, slices.Collect(stageInts(100)), got)
	}
}

// A timed Batch must not hold anything that testing/synctest cannot see
// through while a later stage runs: here the clock cuts every batch (the
// input is slow), the stage after Batch sleeps on the bubble's clock (or,
// with workers, pushes back), and meanwhile the feeding goroutine comes
// back with the next item. Had Batch kept a sync.Mutex locked across the
// later stage, the feeder would wait on it, a goroutine waiting on a mutex
// does not count as durably blocked, the bubble's clock would never move
// again, and the test would hang; the watchdog turns that into a failure.
func TestBatchLetsSynctestAdvanceWhileALaterStageSleeps(t *testing.T) {
	for _, workers := range []int{1, 3} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			synctest.Test(t, func(t *testing.T) {
				items := make([]stageTimedItem, 40)
				want := make([]int, len(items))
				for i := range items {
					items[i] = stageTimedItem{300 * time.Microsecond, i}
					want[i] = i
				}
				slow := Map(func(_ context.Context, b []int) ([]int, error) {
					time.Sleep(5 * time.Millisecond)
					return b, nil
				}, Workers(workers), Ordered())
				got, err := Collect(context.Background(), Then(Batch[int](100, time.Millisecond), slow), stageSlowSeq(items))
				require.NoError(t, err)
				assert.Equal(t, want, slices.Concat(got...))
				assert.Greater(t, len(got), 1, "the clock, not the size, must cut the batches")
			})
		}()
		// A guard against the hang, not a timing assertion: the bubble
		// takes no real time to sleep, so this never fires unless the
		// clock is stuck.
		watchdog := time.NewTimer(20 * time.Second)
		select {
		case <-done:
			watchdog.Stop()
		case <-watchdog.C:
			t.Fatalf("workers=%d: the bubble's clock stopped: Batch blocked its feeder on a mutex", workers)
		}
	}
}

// TestBatchHugeSizeIsALimitNotABuffer: a size far beyond any input is the
// natural way to batch by time alone, so it must not be allocated up front.
// Before the fix math.MaxInt failed with "makeslice: cap out of range" and
// 1<<40 died of a fatal out-of-memory that no recover can catch.
func TestBatchHugeSizeIsALimitNotABuffer(t *testing.T) {
	for _, size := range []int{math.MaxInt, 1 << 40} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			for _, maxWait := range []time.Duration{0, time.Second} {
				synctest.Test(t, func(t *testing.T) {
					got, err := Collect(t.Context(), Batch[int](size, maxWait), slices.Values([]int{1, 2, 3}))
					require.NoError(t, err)
					assert.Equal(t, [][]int{{1, 2, 3}}, got)
				})
			}
		})
	}
}
