package conc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The tests in this file cover ops chains (see opsCall): chains of
// single-worker Map[T, T] and Filter[T] stages, which All and Collect run
// in one closure per item, split into closures of stageOpsMax stages.

// Which stages make an ops chain: only single-worker, unmonitored Maps that
// keep the item type and Filters, chained without a Buffer between them.
func TestOpsChainIsBuiltOnlyForSameTypeFusedStages(t *testing.T) {
	keep := Filter(func(context.Context, int) (bool, error) { return true, nil })
	itoa := Map(func(_ context.Context, v int) (string, error) { return strconv.Itoa(v), nil })
	for _, tc := range []struct {
		name string
		ops  int // len(s.ops)
		s    interface{ opsLen() int }
	}{
		{"map", 1, Map(stageIdentity)},
		{"filter", 1, keep},
		{"map filter map", 3, Then(Then(Map(stageIdentity), keep), Map(stageIdentity))},
		{"nested right", 3, Then(Map(stageIdentity), Then(keep, Map(stageIdentity)))},
		{"type change", 0, itoa},
		{"flatmap", 0, FlatMap(func(_ context.Context, v int) ([]int, error) { return []int{v}, nil })},
		{"workers", 0, Map(stageIdentity, Workers(2))},
		{"workers in chain", 0, Then(Map(stageIdentity), Map(stageIdentity, Workers(2)))},
		{"buffer between", 0, Then(Map(stageIdentity, StageBuffer(4)), keep)},
		{"buffer last", 2, Then(keep, Map(stageIdentity, StageBuffer(4)))},
		{"monitored", 0, Monitored(NewMonitor(), "m", Then(keep, keep))},
		{"monitored in chain", 0, Then(keep, Monitored(NewMonitor(), "m", keep))},
		{"after a type change", 0, Then(itoa, Map(func(_ context.Context, s string) (string, error) { return s, nil }))},
	} {
		assert.Equal(t, tc.ops, tc.s.opsLen(), tc.name)
	}
}

func (s Stage[T, U]) opsLen() int {
	if s.ops != nil && s.calls == nil {
		panic("an ops chain without its calls")
	}
	return len(s.ops)
}

// stageOpsSpecs makes a random chain of n Map and Filter specs.
func stageOpsSpecs(rng *rand.Rand, n int) []stageSpec {
	specs := make([]stageSpec, n)
	for i := range specs {
		specs[i] = stageSpec{kind: rng.IntN(2), param: rng.IntN(5), workers: 1}
	}
	return specs
}

// Chains on both sides of stageOpsMax, over inputs on both sides of
// stageChunk, give the sequential result through All and Collect.
func TestOpsChainMatchesTheSequentialLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n <= 3*stageOpsMax+1; n++ {
		for _, items := range []int{0, 1, stageChunk - 1, stageChunk, stageChunk + 1, 1000} {
			specs := stageOpsSpecs(rng, n)
			s := stageComposeSpecs(specs)
			require.Len(t, s.ops, n)
			in := make([]int, items)
			for i := range in {
				in[i] = rng.IntN(1000)
			}
			want := stageSequentialSpecs(specs, in)
			got, err := Collect(context.Background(), s, slices.Values(in))
			require.NoError(t, err)
			require.Equal(t, want, got, "Collect: %d items, %+v", items, specs)
			got, err = stageAllItems(context.Background(), s, in)
			require.NoError(t, err)
			if want == nil {
				want = []int{}
			}
			if got == nil {
				got = []int{}
			}
			require.Equal(t, want, got, "All: %d items, %+v", items, specs)
		}
	}
}

// A stage at any position of a chain, in any of its closures, that fails or
// panics on an item ends the run there: the error is the failing stage's,
// prefixed with its name, the items before it are delivered, no stage sees
// the failing item after the failing one, and no stage sees a later item.
func TestOpsChainFailsAtTheFailingStage(t *testing.T) {
	boom := errors.New("boom")
	const failAt = 70 // past the first check of the context, at item 64
	for n := 1; n <= 2*stageOpsMax+1; n++ {
		for pos := range n {
			for _, panics := range []bool{false, true} {
				name := fmt.Sprintf("%d stages, fails at %d, panics %v", n, pos, panics)
				var seen [][]int // seen[i]: the items stage i was called with
				build := func() Stage[int, int] {
					seen = make([][]int, n)
					var s Stage[int, int]
					for i := range n {
						call := func(v int) error {
							seen[i] = append(seen[i], v)
							if i == pos && v == failAt {
								if panics {
									panic(boom)
								}
								return boom
							}
							return nil
						}
						var st Stage[int, int]
						if i%2 == 0 {
							st = Map(func(_ context.Context, v int) (int, error) { return v, call(v) }, Named(fmt.Sprint("s", i)))
						} else {
							st = Filter(func(_ context.Context, v int) (bool, error) { return true, call(v) }, Named(fmt.Sprint("s", i)))
						}
						if i == 0 {
							s = st
						} else {
							s = Then(s, st)
						}
					}
					require.Len(t, s.ops, n)
					return s
				}
				in := make([]int, 200)
				for i := range in {
					in[i] = i
				}
				check := func(how string, err error) {
					if panics {
						var pe *PanicError
						require.ErrorAs(t, err, &pe, name)
						assert.Equal(t, boom, pe.Value, name)
						assert.Contains(t, string(pe.Stack), "TestOpsChainFailsAtTheFailingStage", name)
					} else {
						require.ErrorIs(t, err, boom, name)
						assert.Equal(t, fmt.Sprintf("conc: stage s%d: boom", pos), err.Error(), how+": "+name)
					}
					for i := range n {
						last := failAt
						if i > pos {
							last = failAt - 1
						}
						require.Len(t, seen[i], last+1, "%s: %s: stage %d", how, name, i)
						require.Equal(t, last, seen[i][len(seen[i])-1], "%s: %s: stage %d", how, name, i)
					}
				}
				got, err := stageAllItems(context.Background(), build(), in)
				check("All", err)
				assert.Equal(t, in[:failAt], got, name)
				got, err = Collect(context.Background(), build(), slices.Values(in))
				check("Collect", err)
				assert.Nil(t, got, name)
			}
		}
	}
}

// A chain that changes the item type runs its same-type parts as ops
// chains, joined to the other stages by the call path.
func TestOpsChainAroundATypeChange(t *testing.T) {
	double := Map(func(_ context.Context, v int) (int, error) { return 2 * v, nil })
	odd := Filter(func(_ context.Context, v int) (bool, error) { return v%3 != 0, nil })
	itoa := Map(func(_ context.Context, v int) (string, error) { return strconv.Itoa(v), nil })
	bang := Map(func(_ context.Context, s string) (string, error) { return s + "!", nil })
	short := Filter(func(_ context.Context, s string) (bool, error) { return len(s) < 4, nil })
	s := Then(Then(Then(double, odd), itoa), Then(bang, short))
	require.NotNil(t, s.calls)
	require.Nil(t, s.ops)
	var want []string
	for v := range 200 {
		if w := strconv.Itoa(2*v) + "!"; (2*v)%3 != 0 && len(w) < 4 {
			want = append(want, w)
		}
	}
	got, err := Collect(context.Background(), s, func(yield func(int) bool) {
		for v := range 200 {
			if !yield(v) {
				return
			}
		}
	})
	require.NoError(t, err)
	assert.Equal(t, want, got)
	got = got[:0]
	for v, err := range All(context.Background(), s, slices.Values(slices.Collect(func(yield func(int) bool) {
		for v := range 200 {
			yield(v)
		}
	}))) {
		require.NoError(t, err)
		got = append(got, v)
	}
	assert.Equal(t, want, got)
}

// A stage function that cancels the caller's context: All and Collect
// report the cancellation and read at most a chunk of items more.
func TestOpsChainStopsWithinAChunkOfACancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, how := range []string{"All", "Collect"} {
		ctx, cancel := context.WithCancel(context.Background())
		read := 0
		src := endlessCount(&read)
		s := cancelAt100(cancel)
		require.NotNil(t, s.ops)
		var err error
		if how == "All" {
			for _, e := range All(ctx, s, src) {
				err = e
			}
		} else {
			_, err = Collect(ctx, s, src)
		}
		cancel()
		require.ErrorIs(t, err, context.Canceled, how)
		assert.LessOrEqual(t, read, 100+stageChunk, how)
	}
}
