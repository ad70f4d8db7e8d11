package conc

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForEachRunsEveryItemWithinTheLimit(t *testing.T) {
	for _, limit := range []int{1, 2, 7} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			var probe concurrencyProbe
			var sum atomic.Int64
			err := ForEach(context.Background(), seqN(3000), limit, func(_ context.Context, v int) error {
				probe.enter()
				defer probe.exit()
				if v%100 == 0 {
					runtime.Gosched()
				}
				sum.Add(int64(v))
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, int64(3000*2999/2), sum.Load())
			assert.LessOrEqual(t, int(probe.peak.Load()), limit)
		})
	}
}

// seqN yields 0..n-1 and counts how many values were pulled.
func seqN(n int) iter.Seq[int] { return slices.Values(countUp(n)) }

func countUp(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestForEachFailsFastAndStopsReadingTheSequence(t *testing.T) {
	boom := errors.New("boom")
	var pulled, ran atomic.Int32
	seq := func(yield func(int) bool) {
		for i := 0; ; i++ { // endless: only fail-fast ends it
			pulled.Add(1)
			if !yield(i) {
				return
			}
		}
	}
	err := ForEach(context.Background(), seq, 1, func(ctx context.Context, v int) error {
		ran.Add(1)
		if v == 50 {
			return boom
		}
		return nil
	})
	require.Equal(t, boom, err)
	assert.Equal(t, int32(51), ran.Load(), "no item starts after the first error")
	assert.Less(t, pulled.Load(), int32(51+2*feChunkCap))
}

func TestForEachAllCollectsEveryErrorWithItsIndex(t *testing.T) {
	err := ForEachAll(context.Background(), seqN(100), 4, func(_ context.Context, v int) error {
		if v%25 == 3 {
			return fmt.Errorf("e%d", v)
		}
		if v == 99 {
			panic("last")
		}
		return nil
	})
	require.Error(t, err)
	var idx []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ie *ItemError
		require.ErrorAs(t, e, &ie)
		idx = append(idx, ie.Index)
	}
	assert.Equal(t, []int{3, 28, 53, 78, 99}, idx)
}

func TestForEachPanicAndGoexitBecomeErrors(t *testing.T) {
	err := ForEach(context.Background(), seqN(10), 3, func(_ context.Context, v int) error {
		if v == 4 {
			panic("four")
		}
		return nil
	})
	var pe *PanicError
	assert.ErrorAs(t, err, &pe)

	var ran atomic.Int32
	err = ForEachAll(context.Background(), seqN(10), 2, func(_ context.Context, v int) error {
		ran.Add(1)
		if v%2 == 0 {
			runtime.Goexit()
		}
		return nil
	})
	assert.ErrorIs(t, err, errGoexit)
	assert.Equal(t, int32(10), ran.Load())
}

func TestForEachReturnsCtxErrorWhenCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cause := errors.New("user hit ^C")
		var ran atomic.Int32
		err := ForEach(ctx, seqN(1000), 2, func(ctx context.Context, v int) error {
			if ran.Add(1) == 10 {
				cancel(cause)
			}
			time.Sleep(time.Millisecond)
			return nil
		})
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, cause)
		assert.Less(t, ran.Load(), int32(1000))
	})
}

// A panic in the sequence itself is reported as a *PanicError, as Collect
// and All report one in their input, and the workers do not outlive the
// call (goleak checks at the end of the package). ForEach stops at it;
// ForEachAll still runs every item the sequence yielded before it.
func TestForEachSequencePanicBecomesPanicError(t *testing.T) {
	seq := func(yield func(int) bool) {
		for i := range 100 {
			if i == 40 {
				panic("bad source")
			}
			if !yield(i) {
				return
			}
		}
	}
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprint("all=", all), func(t *testing.T) {
			var ran atomic.Int32
			fn := func(context.Context, int) error { ran.Add(1); return nil }
			var err error
			require.NotPanics(t, func() {
				if all {
					err = ForEachAll(context.Background(), seq, 4, fn)
				} else {
					err = ForEach(context.Background(), seq, 4, fn)
				}
			})
			var pe *PanicError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "bad source", pe.Value)
			if all {
				assert.Equal(t, int32(40), ran.Load())
			} else {
				assert.LessOrEqual(t, ran.Load(), int32(40))
			}
		})
	}
}

// A sequence that calls runtime.Goexit ends the caller's goroutine, as in a
// plain loop, but only after the workers are gone.
func TestForEachSequenceGoexitEndsTheCallerOnly(t *testing.T) {
	returned, done := false, make(chan struct{})
	go func() {
		defer close(done)
		seq := func(yield func(int) bool) { _ = yield(1) && yield(2); runtime.Goexit() }
		_ = ForEach(context.Background(), seq, 2, func(context.Context, int) error { return nil })
		returned = true
	}()
	<-done
	assert.False(t, returned)
}
