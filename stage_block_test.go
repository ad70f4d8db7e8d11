package conc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The tests in this file cover Collect's block path (stage_block.go): a
// chain of single-worker Map, Filter and FlatMap stages run a block at a
// time. Each compares it with the per-item path, which All still takes, or
// with the sequential meaning of the chain. A chain whose items keep one
// type is an ops chain, which Collect runs per item (see opsCall); the tests
// strip that with stageBlocksOnly to reach the block path.

// stageBlocksOnly returns s without its ops chain, so that Collect takes the
// block path even when the items of s keep one type.
func stageBlocksOnly[T, U any](s Stage[T, U]) Stage[T, U] {
	s.ops = nil
	return s
}

// stageAllItems runs s with All (the per-item path) and returns what it
// gave before its error, and the error.
func stageAllItems(ctx context.Context, s Stage[int, int], in []int) ([]int, error) {
	var got []int
	for v, err := range All(ctx, s, slices.Values(in)) {
		if err != nil {
			return got, err
		}
		got = append(got, v)
	}
	return got, nil
}

// Inputs around the block size, and FlatMaps that expand an item past a
// block, in chains of fused stages only, so that Collect always takes the
// block path.
func TestCollectBlockPathMatchesTheSequentialLoop(t *testing.T) {
	require.NotNil(t, Then(Map(stageIdentity), Filter(func(context.Context, int) (bool, error) { return true, nil })).blocks,
		"a fused chain must take the block path")
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, stageChunk - 1, stageChunk, stageChunk + 1, 3*stageChunk + 7, 2000} {
		for range 30 {
			specs := make([]stageSpec, 1+rng.IntN(5))
			for i := range specs {
				specs[i] = stageSpec{kind: rng.IntN(3), param: rng.IntN(5), workers: 1}
			}
			in := make([]int, n)
			for i := range in {
				in[i] = rng.IntN(1000)
			}
			s := stageComposeSpecs(specs)
			require.NotNil(t, s.blocks)
			want := stageSequentialSpecs(specs, in)
			got, err := Collect(context.Background(), stageBlocksOnly(s), slices.Values(in))
			require.NoError(t, err)
			require.Equal(t, want, got, "%d items, %+v", n, specs)
			got, err = Collect(context.Background(), s, slices.Values(in))
			require.NoError(t, err)
			require.Equal(t, want, got, "%d items, %+v, ops chain", n, specs)
		}
	}
	// One item expanding to 200 crosses three blocks of a FlatMap's output.
	wide := FlatMap(func(_ context.Context, v int) ([]int, error) {
		out := make([]int, 200)
		for i := range out {
			out[i] = v*1000 + i
		}
		return out, nil
	})
	s := Then(Then(wide, Filter(func(_ context.Context, v int) (bool, error) { return v%3 != 0, nil })),
		Map(func(_ context.Context, v int) (int, error) { return v + 1, nil }))
	in := []int{1, 2, 3, 4, 5, 6, 7}
	got, err := Collect(context.Background(), s, slices.Values(in))
	require.NoError(t, err)
	want, err := stageAllItems(context.Background(), s, in)
	require.NoError(t, err)
	require.Len(t, want, 7*200*2/3+1)
	assert.Equal(t, want, got)
}

// A stage that fails on item i of a block first passes on the outputs of
// the items before it, so a later stage failing on one of those is still
// the run's failure, as on the per-item path. Without that hand-on, the
// earlier stage's failure (found first in time) would win.
func TestCollectBlockPathReportsTheFailureTheLoopWouldMeet(t *testing.T) {
	first, second := errors.New("first stage"), errors.New("second stage")
	fails := func(at int, err error, panics bool) func(context.Context, int) (int, error) {
		return func(_ context.Context, v int) (int, error) {
			if v == at {
				if panics {
					panic(err)
				}
				return 0, err
			}
			return v, nil
		}
	}
	for _, tc := range []struct {
		name           string
		firstAt        int
		secondAt       int
		firstPanics    bool
		secondPanics   bool
		filterInMiddle bool
		want           error
	}{
		{name: "later stage, earlier item", firstAt: 40, secondAt: 20, want: second},
		{name: "earlier stage, earlier item", firstAt: 20, secondAt: 40, want: first},
		{name: "first panics after the second fails", firstAt: 40, secondAt: 20, firstPanics: true, want: second},
		{name: "second panics before the first fails", firstAt: 40, secondAt: 20, secondPanics: true, want: second},
		{name: "the first panics first", firstAt: 20, secondAt: 40, firstPanics: true, want: first},
		{name: "across a filter", firstAt: 41, secondAt: 21, filterInMiddle: true, want: second},
		{name: "in a later block", firstAt: 3*stageChunk + 5, secondAt: 3*stageChunk + 2, want: second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mid := Filter(func(context.Context, int) (bool, error) { return true, nil })
			if tc.filterInMiddle {
				mid = Filter(func(_ context.Context, v int) (bool, error) { return v%2 == 1, nil })
			}
			s := Then(Then(
				Map(fails(tc.firstAt, first, tc.firstPanics), Named("a")), mid),
				Map(fails(tc.secondAt, second, tc.secondPanics), Named("b")))
			in := make([]int, 1000)
			for i := range in {
				in[i] = i
			}
			require.NotNil(t, s.ops)
			_, err := Collect(context.Background(), stageBlocksOnly(s), slices.Values(in))
			require.ErrorIs(t, err, tc.want)
			_, perItem := stageAllItems(context.Background(), s, in)
			assert.Equal(t, perItem.Error(), err.Error(), "Collect and All report the same failure")
			_, ops := Collect(context.Background(), s, slices.Values(in))
			assert.Equal(t, perItem.Error(), ops.Error(), "Collect's ops path reports it too")
			var pe *PanicError
			if errors.As(err, &pe) {
				// A panic is reported bare, as on the per-item path,
				// with the stack of the function that panicked.
				assert.Equal(t, tc.want, pe.Value)
				assert.Equal(t, "conc: panic: "+tc.want.Error(), err.Error())
				assert.Contains(t, string(pe.Stack), "TestCollectBlockPathReportsTheFailureTheLoopWouldMeet")
			} else {
				assert.Regexp(t, `^conc: stage [ab]: `, err.Error())
			}
		})
	}
}

// A FlatMap that fails after handing on some full blocks, and one whose
// next stage fails on an output of an earlier item.
func TestCollectBlockPathFlatMapFailures(t *testing.T) {
	boom := errors.New("boom")
	expand := func(fail int) Stage[int, int] {
		return FlatMap(func(_ context.Context, v int) ([]int, error) {
			if v == fail {
				return nil, boom
			}
			return []int{v, v, v, v, v, v, v, v, v, v}, nil
		})
	}
	in := make([]int, 300)
	for i := range in {
		in[i] = i
	}
	_, err := Collect(context.Background(), expand(50), slices.Values(in))
	require.ErrorIs(t, err, boom)

	late := errors.New("late")
	s := Then(expand(50), Map(func(_ context.Context, v int) (int, error) {
		if v == 12 {
			return 0, late
		}
		return v, nil
	}))
	_, err = Collect(context.Background(), s, slices.Values(in))
	require.ErrorIs(t, err, late)
}

// A stage function that cancels the caller's context mid-block: the run
// reports the cancellation, and the source reads at most one more block.
func TestCollectBlockPathStopsWithinABlockOfACancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	read := 0
	_, err := Collect(ctx, stageBlocksOnly(cancelAt100(cancel)), endlessCount(&read))
	require.ErrorIs(t, err, context.Canceled)
	assert.LessOrEqual(t, read, 100+2*stageChunk)
}

// endlessCount yields 0, 1, 2, ... until the consumer stops, and counts in
// *read the items it yielded.
func endlessCount(read *int) func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for i := 0; ; i++ {
			*read++
			if !yield(i) {
				return
			}
		}
	}
}

// cancelAt100 is a Map that calls cancel at item 100 and passes every item
// on, then a Filter that keeps them all: an ops chain of two stages.
func cancelAt100(cancel context.CancelFunc) Stage[int, int] {
	return Then(Map(func(_ context.Context, v int) (int, error) {
		if v == 100 {
			cancel()
		}
		return v, nil
	}), Filter(func(context.Context, int) (bool, error) { return true, nil }))
}

// Counts of a monitored block run add up to what the per-item path counts.
func TestCollectBlockPathMonitorCountsMatchThePerItemPath(t *testing.T) {
	counts := func(run func(context.Context, Stage[int, int], []int) ([]int, error)) ([]StageSnapshot, []uint64) {
		m := NewMonitor()
		s := Monitored(m, "blocks", Then(Then(Then(
			Map(func(_ context.Context, v int) (int, error) { return v * v, nil }),
			Filter(func(_ context.Context, v int) (bool, error) { return v%3 != 0, nil })),
			FlatMap(func(_ context.Context, v int) ([]int, error) { return []int{v, v + 1}[:v%2+1], nil })),
			Map(func(_ context.Context, v int) (int, error) { return v + 1, nil })))
		in := make([]int, 1000)
		for i := range in {
			in[i] = i
		}
		_, err := run(context.Background(), s, in)
		require.NoError(t, err)
		p := m.Snapshot().Pipelines[0]
		var nodes []uint64
		for _, n := range p.Nodes {
			nodes = append(nodes, n.In, n.Out)
		}
		require.Len(t, p.Nodes, 3)
		return p.Nodes[1].Stages, nodes
	}
	blockStages, blockNodes := counts(func(ctx context.Context, s Stage[int, int], in []int) ([]int, error) {
		return Collect(ctx, s, slices.Values(in))
	})
	itemStages, itemNodes := counts(stageAllItems)
	assert.Equal(t, itemStages, blockStages)
	assert.Equal(t, itemNodes[:4], blockNodes[:4], "source and stages")
	assert.Equal(t, itemNodes[4], blockNodes[4], "the sink's input")
	assert.Equal(t, uint64(1000), blockStages[0].In)
	assert.Equal(t, uint64(666), blockStages[1].Out)
}

// Many concurrent runs of one Stage on the block path, some cancelled at
// random points: each either delivers exactly the sequential result or
// reports the cancellation, and no goroutine is left.
func TestCollectBlockPathStressConcurrentRunsAndCancels(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	specs := []stageSpec{{kind: 0, param: 1, workers: 1}, {kind: 1, param: 2, workers: 1},
		{kind: 2, param: 2, workers: 1}, {kind: 0, param: 3, workers: 1}}
	s := stageComposeSpecs(specs)
	in := make([]int, 5000)
	for i := range in {
		in[i] = i
	}
	want := stageSequentialSpecs(specs, in)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 20 {
				ctx, cancel := context.WithCancel(context.Background())
				stopAt := rng.IntN(2 * len(in)) // half the runs are never cancelled
				seq := func(yield func(int) bool) {
					for i, v := range in {
						if i == stopAt {
							cancel()
						}
						if !yield(v) {
							return
						}
					}
				}
				got, err := Collect(ctx, s, seq)
				cancel()
				if stopAt < len(in) {
					if !assert.ErrorIs(t, err, context.Canceled) {
						return
					}
					assert.Nil(t, got)
					continue
				}
				if !assert.NoError(t, err) || !assert.Equal(t, want, got, fmt.Sprint("goroutine ", g)) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// All's call path (stage_call.go) for chains of fused stages: the loop body
// gets every item before the iterator is asked for the next, so a slow or
// blocking iterator's items are never held back.
func TestAllCallPathHandsOnEachItemBeforeTheNext(t *testing.T) {
	s := Then(Then(Map(func(_ context.Context, v int) (int, error) { return v * 2, nil }),
		Filter(func(_ context.Context, v int) (bool, error) { return v%3 != 0, nil })),
		FlatMap(func(_ context.Context, v int) ([]int, error) { return []int{v, v + 1}, nil }))
	require.NotNil(t, s.calls, "a fused chain must take the call path")
	var got []int
	seen := 0 // items the loop body has seen when the iterator yields
	src := func(yield func(int) bool) {
		for i := range 300 {
			// Every output of item i-1 (if it was kept) is in got.
			if (i-1)*2%3 != 0 && i > 0 {
				require.Equal(t, seen, len(got), "item %d", i)
				require.Equal(t, (i-1)*2+1, got[len(got)-1])
			}
			seen = len(got)
			if !yield(i) {
				return
			}
			if i*2%3 != 0 {
				seen += 2
			}
		}
	}
	for v, err := range All(context.Background(), s, src) {
		require.NoError(t, err)
		got = append(got, v)
	}
	var want []int
	for i := range 300 {
		if i*2%3 != 0 {
			want = append(want, i*2, i*2+1)
		}
	}
	assert.Equal(t, want, got)
}

// Breaking out of the loop stops the chain at once: no stage is called for
// a later item, and the iterator is not asked for one.
func TestAllCallPathBreakStopsAtOnce(t *testing.T) {
	for _, last := range []string{"map", "filter", "flatmap"} {
		t.Run(last, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			calls, read := 0, 0
			count := Map(func(_ context.Context, v int) (int, error) { calls++; return v, nil })
			var tail Stage[int, int]
			switch last {
			case "map":
				tail = Map(stageIdentity)
			case "filter":
				tail = Filter(func(context.Context, int) (bool, error) { return true, nil })
			default:
				tail = FlatMap(func(_ context.Context, v int) ([]int, error) { return []int{v, v}, nil })
			}
			s := Then(count, tail)
			require.NotNil(t, s.calls)
			src := func(yield func(int) bool) {
				for i := 0; ; i++ {
					read++
					if !yield(i) {
						return
					}
				}
			}
			n := 0
			for v, err := range All(context.Background(), s, src) {
				require.NoError(t, err)
				if n++; v == 10 {
					break
				}
			}
			assert.Equal(t, 11, read)
			assert.Equal(t, 11, calls)
		})
	}
}

// Errors are prefixed with the stage name, panics are bare *PanicErrors
// with the function's stack, a panic in the loop body reaches the caller,
// and a cancel from inside the chain ends the run within a chunk of items.
func TestAllCallPathFailures(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	boom := errors.New("boom")
	s := Then(Map(stageIdentity), Map(func(_ context.Context, v int) (int, error) {
		if v == 7 {
			return 0, boom
		}
		return v, nil
	}, Named("seven")))
	require.NotNil(t, s.calls)
	got, err := stageAllItems(context.Background(), s, []int{1, 2, 3, 7, 8})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, "conc: stage seven: boom", err.Error())
	assert.Equal(t, []int{1, 2, 3}, got)

	p := Then(Filter(func(_ context.Context, v int) (bool, error) {
		if v == 3 {
			panic("three")
		}
		return true, nil
	}, Named("f")), Map(stageIdentity))
	got, err = stageAllItems(context.Background(), p, []int{1, 2, 3, 4})
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "conc: panic: three", err.Error())
	assert.Contains(t, string(pe.Stack), "TestAllCallPathFailures")
	assert.Equal(t, []int{1, 2}, got)

	assert.PanicsWithValue(t, "body", func() {
		for range All(context.Background(), p, slices.Values([]int{1})) {
			panic("body")
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	after := 0
	c := Then(Map(func(_ context.Context, v int) (int, error) {
		if v == 10 {
			cancel()
		}
		if v > 10 {
			after++
		}
		return v, nil
	}), Filter(func(context.Context, int) (bool, error) { return true, nil }))
	_, err = stageAllItems(ctx, c, make([]int, 0))
	require.NoError(t, err)
	seq := func(yield func(int) bool) {
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
	for _, err := range All(ctx, c, seq) {
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
		}
	}
	assert.LessOrEqual(t, after, stageChunk)
}
