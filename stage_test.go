package conc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// stageSpec describes one int → int stage of a generated pipeline; the
// property and fuzz tests build random chains of them and compare every way
// of running the chain with a plain sequential loop (stageSpec.apply).
type stageSpec struct {
	kind    int // 0 Map, 1 Filter, 2 FlatMap
	param   int
	workers int
	ordered bool
	buffer  int
}

// apply is the sequential meaning of the stage: the outputs for one input.
func (sp stageSpec) apply(v int) []int {
	switch sp.kind {
	case 0:
		return []int{v*3 + sp.param}
	case 1:
		if v%(sp.param+2) != 0 {
			return []int{v}
		}
		return nil
	default:
		out := make([]int, sp.param%3) // zero, one or two outputs
		for i := range out {
			out[i] = v + i
		}
		return out
	}
}

func (sp stageSpec) stage() Stage[int, int] {
	opts := []StageOption{Workers(sp.workers), Named(fmt.Sprint("k", sp.kind))}
	if sp.ordered {
		opts = append(opts, Ordered())
	}
	if sp.buffer > 0 {
		opts = append(opts, StageBuffer(sp.buffer))
	}
	switch sp.kind {
	case 0:
		return Map(func(_ context.Context, v int) (int, error) { return sp.apply(v)[0], nil }, opts...)
	case 1:
		return Filter(func(_ context.Context, v int) (bool, error) { return len(sp.apply(v)) == 1, nil }, opts...)
	default:
		return FlatMap(func(_ context.Context, v int) ([]int, error) { return sp.apply(v), nil }, opts...)
	}
}

func stageComposeSpecs(specs []stageSpec) Stage[int, int] {
	s := specs[0].stage()
	for _, sp := range specs[1:] {
		s = Then(s, sp.stage())
	}
	return s
}

func stageSequentialSpecs(specs []stageSpec, in []int) []int {
	cur := slices.Clone(in)
	for _, sp := range specs {
		var next []int
		for _, v := range cur {
			next = append(next, sp.apply(v)...)
		}
		cur = next
	}
	return cur
}

// stageKeepsOrder reports whether every parallel stage of specs is Ordered, so
// that the whole chain must reproduce the sequential order.
func stageKeepsOrder(specs []stageSpec) bool {
	for _, sp := range specs {
		if sp.workers > 1 && !sp.ordered {
			return false
		}
	}
	return true
}

// stageCheckComposition runs specs over in through Collect, All and Run and
// compares each result with the sequential loop.
func stageCheckComposition(t *testing.T, specs []stageSpec, in []int) {
	t.Helper()
	ctx := context.Background()
	s := stageComposeSpecs(specs)
	want := stageSequentialSpecs(specs, in)
	check := func(how string, got []int) {
		t.Helper()
		if stageKeepsOrder(specs) {
			require.Equal(t, want, got, "%s %+v", how, specs)
			return
		}
		require.ElementsMatch(t, want, got, "%s %+v", how, specs)
	}

	got, err := Collect(ctx, s, slices.Values(in))
	require.NoError(t, err)
	check("Collect", got)

	got = got[:0]
	for v, err := range All(ctx, s, slices.Values(in)) {
		require.NoError(t, err)
		got = append(got, v)
	}
	check("All", got)

	out, wait := s.Run(ctx, From(ctx, in...))
	got = got[:0]
	for v := range out {
		got = append(got, v)
	}
	require.NoError(t, wait())
	check("Run", got)
}

func stageRandomSpecs(rng *rand.Rand) []stageSpec {
	specs := make([]stageSpec, 1+rng.IntN(5))
	for i := range specs {
		specs[i] = stageSpec{
			kind:    rng.IntN(3),
			param:   rng.IntN(5),
			workers: 1 + rng.IntN(4)*rng.IntN(2), // half single-worker
			ordered: rng.IntN(2) == 0,
			buffer:  rng.IntN(3) * rng.IntN(40),
		}
	}
	return specs
}

func TestStageRandomCompositionsMatchSequentialLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 150 {
		specs := stageRandomSpecs(rng)
		n := rng.IntN(300)
		if i%10 == 0 {
			n = 2000 + rng.IntN(2000) // enough to fill many chunks
		}
		in := make([]int, n)
		for j := range in {
			in[j] = rng.IntN(1000)
		}
		stageCheckComposition(t, specs, in)
	}
}

func TestStageAllOrderedParallelStagesKeepInputOrder(t *testing.T) {
	for _, w := range []int{2, 3, 8} {
		specs := []stageSpec{
			{kind: 0, param: 1, workers: w, ordered: true},
			{kind: 1, param: 1, workers: w, ordered: true},
			{kind: 2, param: 2, workers: w, ordered: true, buffer: 10},
		}
		in := make([]int, 5000)
		for j := range in {
			in[j] = j
		}
		stageCheckComposition(t, specs, in)
	}
}

func TestStageZeroItemsGiveEmptyOutput(t *testing.T) {
	for _, w := range []int{1, 3} {
		stageCheckComposition(t, []stageSpec{{kind: 0, workers: w}, {kind: 2, param: 1, workers: w, buffer: 5}}, nil)
	}
}

// TestCollectKeepsOrderAcrossManyBlocks covers the block list behind
// Collect's result: short outputs (one block) and long ones (many full
// blocks of stageBlockMax, then a partial one).
func TestCollectKeepsOrderAcrossManyBlocks(t *testing.T) {
	for _, n := range []int{0, 1, stageChunk, stageChunk + 1, 3*stageBlockMax + 17} {
		got, err := Collect(context.Background(), Map(stageIdentity), stageInts(n))
		require.NoError(t, err)
		require.Len(t, got, n)
		for i, v := range got {
			require.Equal(t, i, v)
		}
	}
}

func TestCollectFusedChainStartsNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	var during atomic.Int64
	s := Then(Map(func(_ context.Context, v int) (int, error) { return v + 1, nil }),
		Filter(func(_ context.Context, v int) (bool, error) {
			during.Store(int64(runtime.NumGoroutine()))
			return true, nil
		}))
	got, err := Collect(context.Background(), s, slices.Values([]int{1, 2, 3}))
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3, 4}, got)
	assert.Equal(t, int64(before), during.Load())
}

// TestStageSingleWorkerStageIsNeverCalledConcurrently checks the promise
// that lets a single-worker stage keep unsynchronised state, and that a
// Workers(n) stage never runs more than n calls at once, under -race with
// parallel neighbours on both sides.
func TestStageSingleWorkerStageIsNeverCalledConcurrently(t *testing.T) {
	const n = 20000
	var inSerial, inPool, maxPool atomic.Int64
	seen := 0 // unsynchronised on purpose: -race reports concurrent calls
	s := Then(Then(
		Map(func(_ context.Context, v int) (int, error) { return v * 2, nil }, Workers(3)),
		Map(func(_ context.Context, v int) (int, error) {
			if inSerial.Add(1) != 1 {
				return 0, errors.New("serial stage called concurrently")
			}
			seen++
			inSerial.Add(-1)
			return v, nil
		})),
		Map(func(_ context.Context, v int) (int, error) {
			cur := inPool.Add(1)
			for m := maxPool.Load(); cur > m && !maxPool.CompareAndSwap(m, cur); m = maxPool.Load() {
			}
			inPool.Add(-1)
			return v + 1, nil
		}, Workers(4), Ordered()))
	got, err := Collect(context.Background(), s, stageInts(n))
	require.NoError(t, err)
	assert.Len(t, got, n)
	assert.Equal(t, n, seen)
	assert.LessOrEqual(t, maxPool.Load(), int64(4))
}

// TestStageStressManyItemsManyWorkersDeliversEachItemOnce pushes many items
// through wide pools in every mode and checks that nothing is lost or
// duplicated.
func TestStageStressManyItemsManyWorkersDeliversEachItemOnce(t *testing.T) {
	const n = 60000
	for _, ordered := range []bool{false, true} {
		opts, opts5 := []StageOption{Workers(8)}, []StageOption{Workers(5), StageBuffer(100)}
		if ordered {
			opts, opts5 = append(opts, Ordered()), append(opts5, Ordered())
		}
		s := Then(Then(
			Map(func(_ context.Context, v int) (int, error) { return v, nil }, opts...),
			Filter(func(_ context.Context, v int) (bool, error) { return true, nil }, opts5...)),
			FlatMap(func(_ context.Context, v int) ([]int, error) { return []int{v}, nil }, append(opts, StageBuffer(7))...))
		ctx := context.Background()
		out, wait := s.Run(ctx, FromSeq(ctx, stageInts(n)))
		seen := make([]bool, n)
		prev := -1
		for v := range out {
			require.False(t, seen[v], "item %d delivered twice", v)
			seen[v] = true
			if ordered {
				require.Equal(t, prev+1, v)
				prev = v
			}
		}
		require.NoError(t, wait())
		assert.NotContains(t, seen, false, "an item was lost")
	}
}

// TestStageOrderedReorderMemoryIsBounded holds the first item in a worker
// and checks that the rest of the pool stops taking input after a bounded
// number of items instead of buffering the stream. synctest.Wait returns
// once every goroutine of the run is blocked, that is, once the pool has
// stalled behind item 0.
func TestStageOrderedReorderMemoryIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, workers = 100000, 4
		gate := make(chan struct{})
		var started atomic.Int64
		s := Map(func(ctx context.Context, v int) (int, error) {
			started.Add(1)
			if v == 0 {
				<-gate
			}
			return v, nil
		}, Workers(workers), Ordered())
		ctx := context.Background()
		out, wait := s.Run(ctx, FromSeq(ctx, stageInts(n)))
		synctest.Wait()
		assert.LessOrEqual(t, started.Load(), int64(stagePoolLimit(workers)*stagePoolChunk))
		close(gate)
		i := 0
		for v := range out {
			require.Equal(t, i, v)
			i++
		}
		require.NoError(t, wait())
		assert.Equal(t, n, i)
	})
}

func TestStageBadInputPanicsWithConcMessage(t *testing.T) {
	id := Map(func(_ context.Context, v int) (int, error) { return v, nil })
	for _, tc := range []struct {
		name string
		want string
		fn   func()
	}{
		{"Workers(0)", "conc: Workers must be at least 1, got 0", func() { Workers(0) }},
		{"Workers(-3)", "conc: Workers must be at least 1, got -3", func() { Workers(-3) }},
		{"Buffer(-1)", "conc: Buffer must not be negative, got -1", func() { StageBuffer(-1) }},
		{"Batch(0)", "conc: Batch size must be at least 1, got 0", func() { Batch[int](0, 0) }},
		{"Batch(1,-1s)", "conc: Batch maxWait must not be negative, got -1s", func() { Batch[int](1, -1e9) }},
		{"Map(nil)", "conc: Map function must not be nil", func() { Map[int, int](nil) }},
		{"Filter(nil)", "conc: Filter function must not be nil", func() { Filter[int](nil) }},
		{"FlatMap(nil)", "conc: FlatMap function must not be nil", func() { FlatMap[int, int](nil) }},
		{"nil option", "conc: Stage option 0 must not be nil", func() { Map(func(_ context.Context, v int) (int, error) { return v, nil }, nil) }},
		{"Then(zero)", "conc: zero Stage; build stages with Map, Filter, FlatMap or Batch", func() { Then(Stage[int, int]{}, id) }},
		{"Run(zero)", "conc: zero Stage; build stages with Map, Filter, FlatMap or Batch", func() { Stage[int, int]{}.Run(context.Background(), nil) }},
		{"Run(nil chan)", "conc: Run input must not be a nil channel", func() {
			// Before the check a nil in was accepted and out stayed open
			// until ctx ended: cancel, so that the old code fails without
			// leaking.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, wait := id.Run(ctx, nil)
			cancel()
			_ = wait()
		}},
		{"Collect(nil seq)", "conc: Collect input must not be nil", func() { _, _ = Collect(context.Background(), id, nil) }},
		{"All(nil seq)", "conc: All input must not be nil", func() { All(context.Background(), id, nil) }},
		{"FromSeq(nil)", "conc: FromSeq input must not be nil", func() { FromSeq[int](context.Background(), nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tc.want, tc.fn)
		})
	}
}

func TestStageNamedPrefixesErrorsAndKeepsThem(t *testing.T) {
	boom := errors.New("boom")
	for _, w := range []int{1, 2} {
		s := Map(func(_ context.Context, v int) (int, error) { return 0, boom }, Named("parse"), Workers(w))
		_, err := Collect(context.Background(), s, slices.Values([]int{1}))
		require.ErrorIs(t, err, boom)
		assert.Equal(t, "conc: stage parse: boom", err.Error())
	}
}

func TestFromBuffersShortListsAndStreamsLongOnes(t *testing.T) {
	ctx := context.Background()
	assert.Equal(t, []int{1, 2, 3}, slices.Collect(stageChanValues(From(ctx, 1, 2, 3))))
	long := slices.Collect(stageInts(1000))
	assert.Equal(t, long, slices.Collect(stageChanValues(From(ctx, long...))))
	assert.Empty(t, slices.Collect(stageChanValues(From[int](ctx))))
}

func TestFromAndFromSeqStopWhenCtxIsCancelled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	a := From(ctx, slices.Collect(stageInts(1000))...)
	b := FromSeq(ctx, stageInts(1<<40))
	<-a
	<-b
	cancel()
	// Both close after at most the items already buffered.
	assert.LessOrEqual(t, len(slices.Collect(stageChanValues(a))), stageChunk+1)
	assert.LessOrEqual(t, len(slices.Collect(stageChanValues(b))), stageChunk+1)
}

// stageInts yields 0..n-1.
func stageInts(n int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// stageChanValues ranges over a channel as an iterator.
func stageChanValues[T any](ch <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for v := range ch {
			if !yield(v) {
				return
			}
		}
	}
}
