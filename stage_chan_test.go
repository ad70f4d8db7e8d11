package conc

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The tests in this file cover Run fed by a channel when its context can
// never be done: a chain with no goroutine boundary then waits on its input
// and output with plain channel operations (see Run), and must still deliver
// everything in order, end when the input closes, and stop at a failure.

// stageGen sends 0..n-1 on an unbuffered channel, as a tutorial generator
// does, and gives up when stop is closed.
func stageGen(n int, stop <-chan struct{}) <-chan int {
	out := make(chan int)
	go func() {
		defer close(out)
		for i := range n {
			select {
			case out <- i:
			case <-stop:
				return
			}
		}
	}()
	return out
}

func TestRunWithAContextThatCannotEndDeliversInOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	double := Map(func(_ context.Context, v int) (int, error) { return 2 * v, nil })
	keep := Filter(func(_ context.Context, v int) (bool, error) { return v%3 != 0, nil })
	var want []int
	for v := range 1000 {
		if 2*v%3 != 0 {
			want = append(want, 2*v)
		}
	}
	for _, tc := range []struct {
		name string
		s    Stage[int, int]
	}{
		{"fused", Then(double, keep)},
		{"unbuffered out", Then(double, Filter(func(_ context.Context, v int) (bool, error) { return v%3 != 0, nil }, StageBuffer(0)))},
		{"workers", Then(double, Filter(func(_ context.Context, v int) (bool, error) { return v%3 != 0, nil }, Workers(2), Ordered()))},
	} {
		stop := make(chan struct{})
		out, wait := tc.s.Run(context.Background(), stageGen(1000, stop))
		var got []int
		for v := range out {
			got = append(got, v)
		}
		require.NoError(t, wait(), tc.name)
		assert.Equal(t, want, got, tc.name)
		close(stop)
	}
}

// The end of the input reaches the stages: a Batch passes on its last,
// partial batch.
func TestRunWithAContextThatCannotEndEndsTheStages(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stop := make(chan struct{})
	defer close(stop)
	out, wait := Then(Map(stageIdentity), Batch[int](64, 0)).Run(context.Background(), stageGen(1000, stop))
	var sizes []int
	n := 0
	for b := range out {
		sizes = append(sizes, len(b))
		for _, v := range b {
			require.Equal(t, n, v)
			n++
		}
	}
	require.NoError(t, wait())
	assert.Equal(t, 1000, n)
	assert.Equal(t, 1000%64, sizes[len(sizes)-1])
}

func TestRunWithAContextThatCannotEndStopsAtAFailure(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	boom := errors.New("boom")
	fails := Map(func(_ context.Context, v int) (int, error) {
		if v == 500 {
			return 0, boom
		}
		return v, nil
	}, Named("m"))
	panics := Filter(func(_ context.Context, v int) (bool, error) {
		if v == 300 {
			panic("three hundred")
		}
		return true, nil
	})
	for _, tc := range []struct {
		name  string
		s     Stage[int, int]
		until int
		check func(error)
	}{
		{"error", Then(Map(stageIdentity), fails), 500, func(err error) {
			require.ErrorIs(t, err, boom)
			assert.Equal(t, "conc: stage m: boom", err.Error())
		}},
		{"panic", Then(panics, Map(stageIdentity)), 300, func(err error) {
			var pe *PanicError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "three hundred", pe.Value)
		}},
	} {
		stop := make(chan struct{})
		out, wait := tc.s.Run(context.Background(), stageGen(1000, stop))
		var got []int
		for v := range out {
			got = append(got, v)
		}
		tc.check(wait())
		want := make([]int, tc.until)
		for i := range want {
			want[i] = i
		}
		assert.Equal(t, want, got, tc.name)
		close(stop) // the generator waits: Run stopped reading
	}
}
