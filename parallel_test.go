package conc

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// concurrencyProbe records the highest number of calls running at once.
type concurrencyProbe struct{ now, peak atomic.Int32 }

func (c *concurrencyProbe) enter() {
	n := c.now.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			return
		}
	}
}
func (c *concurrencyProbe) exit() { c.now.Add(-1) }

func TestMapNKeepsResultsAlignedWithInputs(t *testing.T) {
	for _, tt := range []struct{ n, limit int }{{0, 1}, {1, 4}, {10, 1}, {1000, 3}, {5000, 16}} {
		t.Run(fmt.Sprintf("n=%d/limit=%d", tt.n, tt.limit), func(t *testing.T) {
			items := make([]int, tt.n)
			for i := range items {
				items[i] = i
			}
			var probe concurrencyProbe
			out, err := MapN(context.Background(), items, tt.limit, func(_ context.Context, v int) (string, error) {
				probe.enter()
				defer probe.exit()
				runtime.Gosched()
				return fmt.Sprint(v), nil
			})
			require.NoError(t, err)
			require.Len(t, out, tt.n)
			for i, s := range out {
				require.Equal(t, fmt.Sprint(i), s)
			}
			assert.LessOrEqual(t, int(probe.peak.Load()), tt.limit)
		})
	}
}

// The first error must come back as itself, not as the context.Canceled
// it caused in the other running calls, and the calls must see it as their
// context's cause.
func TestMapNReturnsFirstErrorNotTheCancellationItCaused(t *testing.T) {
	boom := errors.New("boom")
	var causes sync.Map
	items := []int{0, 1, 2, 3}
	_, err := MapN(context.Background(), items, len(items), func(ctx context.Context, v int) (int, error) {
		if v == 2 {
			return 0, boom
		}
		<-ctx.Done()
		causes.Store(v, context.Cause(ctx))
		return 0, ctx.Err()
	})
	require.Equal(t, boom, err)
	causes.Range(func(_, c any) bool {
		assert.Equal(t, boom, c)
		return true
	})
}

// After the first error no further item starts: a naive errgroup loop that
// checks nothing keeps launching the rest.
func TestMapNStartsNoItemAfterFirstError(t *testing.T) {
	var ran atomic.Int32
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	out, err := MapN(context.Background(), items, 1, func(_ context.Context, v int) (int, error) {
		ran.Add(1)
		if v == 10 {
			return 0, errors.New("stop here")
		}
		return v + 1, nil
	})
	require.EqualError(t, err, "stop here")
	assert.Equal(t, int32(11), ran.Load())
	assert.Equal(t, 10, out[9], "results gathered before the error are kept")
	assert.Zero(t, out[11])
}

// MapAll keeps every successful result in its slot when some items fail and
// reports each failure with its index.
func TestMapAllCollectsEveryErrorWithItsIndex(t *testing.T) {
	items := []int{0, 1, 2, 3, 4, 5, 6, 7}
	out, err := MapAll(context.Background(), items, 3, func(_ context.Context, v int) (int, error) {
		switch v {
		case 2, 5:
			return -1, fmt.Errorf("bad %d", v)
		case 6:
			panic("six")
		}
		return v * 10, nil
	})
	require.Error(t, err)
	assert.Equal(t, []int{0, 10, 0, 30, 40, 0, 0, 70}, out)
	var indexes []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ie *ItemError
		require.ErrorAs(t, e, &ie)
		indexes = append(indexes, ie.Index)
	}
	assert.Equal(t, []int{2, 5, 6}, indexes)
	assert.Contains(t, err.Error(), "conc: item 2: bad 2")
	var pe *PanicError
	assert.ErrorAs(t, err, &pe)
}

func TestMapNPanicBecomesPanicError(t *testing.T) {
	_, err := MapN(context.Background(), []int{1, 2, 3}, 2, func(_ context.Context, v int) (int, error) {
		if v == 2 {
			panic(panicVal(v))
		}
		return v, nil
	})
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, panicVal(2), pe.Value)
}

type panicVal int

func TestMapNAndMapAllReportGoexitWithoutHanging(t *testing.T) {
	fn := func(_ context.Context, v int) (int, error) {
		if v%3 == 0 {
			runtime.Goexit()
		}
		return v, nil
	}
	items := []int{1, 2, 3, 4, 5, 6, 7}
	_, err := MapN(context.Background(), items, 2, fn)
	assert.ErrorIs(t, err, errGoexit)

	out, err := MapAll(context.Background(), items, 1, fn)
	assert.ErrorIs(t, err, errGoexit)
	assert.Equal(t, []int{1, 2, 0, 4, 5, 0, 7}, out, "the pool of workers survives every Goexit")
}

func TestMapNReturnsCtxErrorWhenCancelledBeforeTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		items := make([]int, 20)
		var ran atomic.Int32
		_, err := MapN(ctx, items, 2, func(context.Context, int) (int, error) {
			ran.Add(1)
			time.Sleep(time.Second) // ignores ctx: MapN must stop starting items
			return 0, nil
		})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, ran.Load(), int32(20))

		_, err = MapAll(ctx, items, 2, func(context.Context, int) (int, error) { return 0, nil })
		assert.ErrorIs(t, err, context.DeadlineExceeded, "MapAll reports skipped items too")
	})
}

func TestParallelHelpersPanicOnBadInput(t *testing.T) {
	nop := func(context.Context, int) error { return nil }
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	tests := []struct {
		name string
		call func()
		want string
	}{
		{"MapN limit 0", func() { _, _ = MapN(context.Background(), []int{1}, 0, id) }, "conc: limit must be at least 1, got 0"},
		{"MapAll nil fn", func() { _, _ = MapAll[int, int](context.Background(), nil, 1, nil) }, "conc: fn must not be nil"},
		{"ForEach limit -1", func() { _ = ForEach(context.Background(), seqN(1), -1, nop) }, "conc: limit must be at least 1, got -1"},
		{"ForEach nil items", func() { _ = ForEach(context.Background(), nil, 1, nop) }, "conc: items must not be nil"},
		{"ForEachAll nil fn", func() { _ = ForEachAll[int](context.Background(), seqN(1), 1, nil) }, "conc: fn must not be nil"},
		{"MapN nil ctx", func() { _, _ = MapN(nilCtx, nil, 1, id) }, "conc: context must not be nil"},
		{"MapAll nil ctx", func() { _, _ = MapAll(nilCtx, []int{1}, 1, id) }, "conc: context must not be nil"},
		{"ForEach nil ctx", func() { _ = ForEach(nilCtx, seqN(1), 1, nop) }, "conc: context must not be nil"},
		{"ForEachAll nil ctx", func() { _ = ForEachAll(nilCtx, seqN(1), 1, nop) }, "conc: context must not be nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.PanicsWithValue(t, tt.want, tt.call) })
	}
}

var nilCtx context.Context // a literal nil would draw a vet warning per call

// A huge limit must cost nothing up front: the free list of batch buffers
// is bounded, not sized by limit (limit+1 overflowed at math.MaxInt).
func TestForEachWithHugeLimitRunsEveryItem(t *testing.T) {
	for _, each := range []func(context.Context, iter.Seq[int], int, func(context.Context, int) error) error{ForEach[int], ForEachAll[int]} {
		var sum atomic.Int64
		require.NoError(t, each(context.Background(), seqN(100), math.MaxInt, func(_ context.Context, v int) error { sum.Add(int64(v)); return nil }))
		assert.Equal(t, int64(99*100/2), sum.Load())
	}
}

// An fn that returns ctx.Err() after the caller cancelled with a cause must
// not hide the cause behind a bare context.Canceled, in any of the four.
func TestParallelHelpersKeepCancelCauseOfFnErrors(t *testing.T) {
	type mapFn = func(context.Context, int) (int, error)
	fe := func(fn mapFn) func(context.Context, int) error {
		return func(ctx context.Context, v int) error { _, err := fn(ctx, v); return err }
	}
	calls := map[string]func(context.Context, mapFn) error{
		"MapN":       func(ctx context.Context, fn mapFn) error { _, err := MapN(ctx, []int{0, 1, 2, 3}, 4, fn); return err },
		"MapAll":     func(ctx context.Context, fn mapFn) error { _, err := MapAll(ctx, []int{0, 1, 2, 3}, 4, fn); return err },
		"ForEach":    func(ctx context.Context, fn mapFn) error { return ForEach(ctx, seqN(4), 4, fe(fn)) },
		"ForEachAll": func(ctx context.Context, fn mapFn) error { return ForEachAll(ctx, seqN(4), 4, fe(fn)) },
	}
	errShutdown := errors.New("shutting down")
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			err := call(ctx, func(ctx context.Context, v int) (int, error) {
				if v == 0 {
					cancel(errShutdown)
				}
				<-ctx.Done()
				return 0, ctx.Err()
			})
			require.ErrorIs(t, err, context.Canceled)
			require.ErrorIs(t, err, errShutdown)
			// In the *All forms every item error carries the cause too.
			var ie *ItemError
			if errors.As(err, &ie) {
				assert.ErrorIs(t, ie.Err, errShutdown)
			}
		})
	}
}

// A watch on parent that fired must have finished by the time the call
// returns: not even that goroutine outlives MapN or ForEach.
func TestParRunWaitsForAFiredWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := newParRun(ctx, false)
	cancel() // starts the watch's goroutine
	require.NoError(t, r.finish(0, false))
	select {
	case <-r.watched:
	default:
		t.Fatal("finish returned while the watch on parent was still running")
	}
}

// Nil options and nil contexts are programmer errors: a conc: panic naming
// them, not a nil dereference somewhere inside the pool.
func TestPoolPanicsOnNilOptionOrContext(t *testing.T) {
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	tests := []struct {
		name string
		call func(p *Pool[int, int])
		want string
	}{
		{"nil option", func(*Pool[int, int]) { NewPool(1, id, QueueSize(1), nil) }, "conc: NewPool option 1 must not be nil"},
		{"Submit nil ctx", func(p *Pool[int, int]) { _ = p.Submit(nilCtx, 1) }, "conc: context must not be nil"},
		{"Stop nil ctx", func(p *Pool[int, int]) { _ = p.Stop(nilCtx) }, "conc: context must not be nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPool(1, id, OnResult(func(Result[int, int]) {}))
			defer p.Close()
			assert.PanicsWithValue(t, tt.want, func() { tt.call(p) })
			// The pool is untouched by the bad call: it still accepts work.
			require.NoError(t, p.Submit(context.Background(), 1))
		})
	}
}
