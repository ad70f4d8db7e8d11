package conc

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The tests in this file cover every way a run can end early. Each checks
// the error that comes out and, with goleak, that no goroutine of the run
// is left behind.

// stageRunner is one of the three ways to start a stage; each returns the output
// it got and the run's error.
type stageRunner struct {
	name string
	run  func(ctx context.Context, s Stage[int, int], in func(func(int) bool)) ([]int, error)
}

var stageRunners = []stageRunner{
	{"Collect", func(ctx context.Context, s Stage[int, int], in func(func(int) bool)) ([]int, error) {
		return Collect(ctx, s, in)
	}},
	{"All", func(ctx context.Context, s Stage[int, int], in func(func(int) bool)) ([]int, error) {
		var got []int
		for v, err := range All(ctx, s, in) {
			if err != nil {
				return got, err
			}
			got = append(got, v)
		}
		return got, nil
	}},
	{"Run", func(ctx context.Context, s Stage[int, int], in func(func(int) bool)) ([]int, error) {
		// The producer is the caller's business: it stops when
		// its own context is cancelled, after the run.
		src, stop := context.WithCancel(context.Background())
		defer stop()
		out, wait := s.Run(ctx, FromSeq(src, in))
		var got []int
		for v := range out {
			got = append(got, v)
		}
		return got, wait()
	}},
}

func stageIdentity(_ context.Context, v int) (int, error) { return v, nil }

func TestStageErrorInMiddleStageIsTheRootCause(t *testing.T) {
	boom := errors.New("boom")
	for _, r := range stageRunners {
		for _, w := range []int{1, 3} {
			t.Run(r.name, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				// With a pool in between, the last stage waits for
				// the run's context once it sees an item after the
				// failing one, so the only way out is the failure
				// upstream; it must see that failure as the cause.
				// (Fused, w == 1, there is nothing to wait for.)
				var cause error
				// The first pool is ordered so that item 100 is
				// already in the failing stage when 101 gets past it.
				s := Then(Then(
					Map(stageIdentity, Workers(w), Ordered()),
					Map(func(_ context.Context, v int) (int, error) {
						if v == 100 {
							return 0, boom
						}
						return v, nil
					}, Workers(w))),
					Map(func(ctx context.Context, v int) (int, error) {
						if w > 1 && v > 100 {
							<-ctx.Done()
							cause = context.Cause(ctx)
						}
						return v, nil
					}))
				_, err := r.run(context.Background(), s, stageInts(1<<30))
				require.ErrorIs(t, err, boom)
				assert.NotErrorIs(t, err, context.Canceled)
				if cause != nil {
					assert.ErrorIs(t, cause, boom)
				}
			})
		}
	}
}

func TestStagePanicInLastStageBecomesPanicError(t *testing.T) {
	for _, r := range stageRunners {
		for _, w := range []int{1, 4} {
			t.Run(r.name, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				s := Then(Map(stageIdentity, Workers(2)), Map(func(_ context.Context, v int) (int, error) {
					if v == 500 {
						panic("last stage")
					}
					return v, nil
				}, Workers(w)))
				_, err := r.run(context.Background(), s, stageInts(1<<30))
				var pe *PanicError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, "last stage", pe.Value)
				assert.Contains(t, string(pe.Stack), "TestStagePanicInLastStageBecomesPanicError")
			})
		}
	}
}

func TestStageCtxCancelledBeforeStartReturnsItsCause(t *testing.T) {
	cause := errors.New("shutting down")
	for _, r := range stageRunners {
		for _, w := range []int{1, 2} {
			t.Run(r.name, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				ctx, cancel := context.WithCancelCause(context.Background())
				cancel(cause)
				calls := 0
				s := Map(func(_ context.Context, v int) (int, error) { calls++; return v, nil }, Workers(w))
				_, err := r.run(ctx, s, stageInts(10))
				require.ErrorIs(t, err, context.Canceled)
				assert.ErrorIs(t, err, cause)
				if r.name != "Run" { // Run's source may race ahead by a few items
					assert.Zero(t, calls)
				}
			})
		}
	}
}

func TestStageCtxCancelledMidRunStopsEveryGoroutine(t *testing.T) {
	for _, r := range stageRunners {
		t.Run(r.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx, cancel := context.WithCancel(context.Background())
			s := Then(Then(
				Map(stageIdentity, Workers(3)),
				Map(func(_ context.Context, v int) (int, error) {
					if v == 1000 {
						cancel()
					}
					return v, nil
				}, StageBuffer(10))),
				Filter(func(context.Context, int) (bool, error) { return true, nil }, Workers(2), Ordered()))
			_, err := r.run(ctx, s, stageInts(1<<30))
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

// TestCollectFusedChainStopsSoonAfterParentCancel cancels the caller's
// context from inside a fused chain that never blocks: the source must
// notice within a chunk's worth of items, whether or not the watch on the
// context got to run.
func TestCollectFusedChainStopsSoonAfterParentCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	after := 0
	s := Map(func(_ context.Context, v int) (int, error) {
		if v == 10 {
			cancel()
		}
		if v > 10 {
			after++
		}
		return v, nil
	})
	_, err := Collect(ctx, s, stageInts(1<<30))
	require.ErrorIs(t, err, context.Canceled)
	assert.LessOrEqual(t, after, stageChunk)
}

func TestRunConsumerThatStopsAndCancelsLeaksNothing(t *testing.T) {
	for _, w := range []int{1, 4} {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx, cancel := context.WithCancel(context.Background())
		s := Then(Map(stageIdentity, Workers(w)), Map(stageIdentity, StageBuffer(0)))
		out, wait := s.Run(ctx, FromSeq(ctx, stageInts(1<<30)))
		for range 10 {
			<-out
		}
		cancel()
		require.ErrorIs(t, wait(), context.Canceled)
		// out is closed by the time wait returns.
		for range out {
		}
	}
}

func TestAllBrokenAfterOneItemStopsTheRun(t *testing.T) {
	for _, s := range []Stage[int, int]{
		Map(stageIdentity),
		Then(Map(stageIdentity, Workers(4)), Map(stageIdentity, StageBuffer(3))),
		Then(Map(stageIdentity, Workers(2), Ordered()), Map(stageIdentity)),
	} {
		func() {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			n := 0
			for v, err := range All(context.Background(), s, stageInts(1<<30)) {
				require.NoError(t, err)
				assert.GreaterOrEqual(t, v, 0)
				n++
				break
			}
			assert.Equal(t, 1, n)
		}()
	}
}

func TestAllPanicInLoopBodyReachesTheCaller(t *testing.T) {
	for _, s := range []Stage[int, int]{Map(stageIdentity), Map(stageIdentity, Workers(2))} {
		func() {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			assert.PanicsWithValue(t, "body", func() {
				for range All(context.Background(), s, stageInts(100)) {
					panic("body")
				}
			})
		}()
	}
}

func TestAllPanicInSourceBecomesPanicError(t *testing.T) {
	bad := func(yield func(int) bool) {
		yield(1)
		panic("source")
	}
	var got []error
	for _, err := range All(context.Background(), Map(stageIdentity), bad) {
		got = append(got, err)
	}
	require.Len(t, got, 2)
	var pe *PanicError
	assert.ErrorAs(t, got[1], &pe)
}

func TestStageGoexitInWorkerIsReported(t *testing.T) {
	for _, r := range stageRunners {
		t.Run(r.name, func(t *testing.T) {
			s := Map(func(_ context.Context, v int) (int, error) {
				if v == 3 {
					runtime.Goexit()
				}
				return v, nil
			}, Workers(2))
			_, err := r.run(context.Background(), s, stageInts(100))
			require.ErrorIs(t, err, errGoexit)
		})
	}
}

func TestStageErrorFromCancelledCtxKeepsCallerCause(t *testing.T) {
	cause := errors.New("deadline from caller")
	ctx, cancel := context.WithCancelCause(context.Background())
	s := Map(func(ctx context.Context, v int) (int, error) {
		if v == 5 {
			cancel(cause)
			return 0, ctx.Err() // a stage giving up the usual way
		}
		return v, nil
	})
	_, err := Collect(ctx, s, stageInts(10))
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, cause)
}

// TestRunHandsOnAnItemWithoutWaitingForAChunk feeds one item at a time
// through boundaries of every kind and expects each out before the next is
// sent. If a boundary held items back to fill a chunk, every goroutine
// would block and synctest would report the deadlock.
func TestRunHandsOnAnItemWithoutWaitingForAChunk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Then(Then(
			Map(stageIdentity, Workers(3)),
			Map(stageIdentity, StageBuffer(100))),
			Map(stageIdentity, Workers(2), Ordered(), StageBuffer(0)))
		in := make(chan int)
		out, wait := s.Run(context.Background(), in)
		for i := range 50 {
			in <- i
			assert.Equal(t, i, <-out)
		}
		close(in)
		_, open := <-out
		assert.False(t, open)
		require.NoError(t, wait())
	})
}

func TestStageRunsConcurrentlyWithItself(t *testing.T) {
	s := Then(Map(func(_ context.Context, v int) (int, error) { return v * 2, nil }, Workers(2)), Map(stageIdentity))
	want := slices.Collect(func(yield func(int) bool) {
		for i := range 1000 {
			yield(i * 2)
		}
	})
	done := make(chan []int)
	for range 4 {
		go func() {
			got, _ := Collect(context.Background(), s, stageInts(1000))
			slices.Sort(got)
			done <- got
		}()
	}
	for range 4 {
		assert.Equal(t, want, <-done)
	}
}

// A run whose final sink has ended has delivered everything: a cancellation
// of the caller's context after that point is not the run's result. The
// watch on parent fires synchronously with cancel, so without the complete
// flag release would wait for it and it would record context.Canceled.
func TestStageRunCompleteIgnoresLaterCancel(t *testing.T) {
	for _, name := range []string{"slice", "yield", "chan"} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			r := newStageRun(ctx)
			switch name {
			case "slice":
				(&stageSliceSink[int]{r: r}).end()
			case "yield":
				(&stageYieldSink[int]{r: r}).end()
			case "chan":
				(&stageChanSink[int]{r: r}).end()
			}
			cancel()
			r.release()
			require.NoError(t, r.result())
		})
	}
}

// The public face of the same race: a consumer that reads out to the end and
// then cancels must get nil from wait, every time.
func TestRunDrainedThenCancelledReportsSuccess(t *testing.T) {
	for range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		out, wait := Map(stageIdentity, Workers(2)).Run(ctx, From(ctx, 1, 2, 3))
		n := 0
		for range out {
			n++
		}
		cancel()
		require.NoError(t, wait())
		require.Equal(t, 3, n)
	}
}
