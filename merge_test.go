package conc

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// item identifies one sent value: which input (or key) and its sequence
// number there, so tests can check both the multiset and the order.
type item struct{ src, seq int }

// sendItems sends n items of source src on a fresh channel of capacity
// cap, then closes it.
func sendItems(src, n, capacity int) <-chan item {
	c := make(chan item, capacity)
	go func() {
		defer close(c)
		for i := range n {
			c <- item{src, i}
		}
	}()
	return c
}

func collect[T any](c <-chan T) []T {
	var got []T
	for v := range c {
		got = append(got, v)
	}
	return got
}

// requireComplete checks that got holds, for every source s, exactly the
// items 0..want[s]-1, each once and in order.
func requireComplete(t *testing.T, want map[int]int, got []item) {
	t.Helper()
	next := map[int]int{}
	for _, it := range got {
		require.Equal(t, next[it.src], it.seq, "source %d: item out of order, duplicated or lost", it.src)
		next[it.src]++
	}
	for src, n := range want {
		require.Equal(t, n, next[src], "source %d: items delivered", src)
	}
	require.Len(t, got, sum(want))
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestMergeDeliversEveryItemOnceInOrderPerInput(t *testing.T) {
	tests := []struct {
		name     string
		ins      int
		perInput int
		inCap    int
	}{
		{"no inputs", 0, 0, 0},
		{"one input", 1, 100, 0},
		{"empty inputs", 4, 0, 0},
		{"unbuffered inputs", 8, 500, 0},
		{"buffered inputs", 16, 1000, 64},
		{"more items than the output buffer", 3, 5 * defaultOutBuffer, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins := make([]<-chan item, tt.ins)
			want := map[int]int{}
			for i := range ins {
				ins[i] = sendItems(i, tt.perInput, tt.inCap)
				want[i] = tt.perInput
			}
			requireComplete(t, want, collect(Merge(context.Background(), ins...)))
		})
	}
}

func TestMergeCancelClosesOutputAndLeaksNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	// Inputs that never close: only cancellation can end the merge. One
	// keeps sending, so a forwarder is busy when ctx ends; one is silent.
	busy := make(chan int)
	silent := make(chan int)
	stopProducer := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case busy <- i:
			case <-stopProducer:
				return
			}
		}
	}()
	defer close(stopProducer)
	out := Merge(ctx, busy, silent)
	for range 10 {
		<-out
	}
	cancel()
	// Out must close; whatever was buffered may still come out first.
	for range out {
	}
}

func TestMergeWithCancelledContextClosesWithoutReading(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := make(chan int, 1)
	in <- 1
	_, open := <-Merge(ctx, in)
	assert.False(t, open, "Merge output must be closed and empty")
	assert.Len(t, in, 1, "a cancelled Merge must not read its inputs")
}

// With a context that is already done, the sealing AfterFunc may run before
// NewFanIn returns; repeated, this once caught a nil stop function.
func TestFanInWithCancelledContextClosesOutRepeatedly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 2000 {
		f := NewFanIn[int](ctx)
		_, open := <-f.Out()
		require.False(t, open)
		require.ErrorIs(t, f.Add(make(chan int)), context.Canceled)
	}
}

func TestFanInAddAfterSealReturnsErrClosed(t *testing.T) {
	f := NewFanIn[int](context.Background())
	in := make(chan int)
	require.NoError(t, f.Add(in))
	f.Seal()
	f.Seal() // idempotent
	rejected := make(chan int, 1)
	rejected <- 1
	err := f.Add(rejected)
	assert.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, 1, f.Stats().Inputs)
	close(in)
	assert.Empty(t, collect(f.Out()))
	assert.Len(t, rejected, 1, "a rejected input must not be read")
}

func TestFanInAddAfterCancelReturnsErrClosedWithCause(t *testing.T) {
	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	f := NewFanIn[int](ctx)
	cancel(cause)
	err := f.Add(make(chan int))
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, cause)
	for range f.Out() { // closes although Seal was never called
	}
}

func TestFanInOutClosesOnlyAfterSealAndEveryInputDrained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFanIn[int](context.Background(), MergeBuffer(0))
		a, b := make(chan int), make(chan int)
		require.NoError(t, f.Add(a))
		require.NoError(t, f.Add(b))
		go func() { a <- 1; close(a) }()
		assert.Equal(t, 1, <-f.Out())
		synctest.Wait()
		assert.Equal(t, FanInStats{Inputs: 2, Open: 1, Forwarded: 1}, f.Stats())

		f.Seal()
		synctest.Wait()
		select {
		case <-f.Out():
			t.Fatal("Out closed or yielded while input b is still open")
		default:
		}
		close(b)
		_, open := <-f.Out()
		assert.False(t, open, "Out must close once the last input is drained")
		assert.Equal(t, FanInStats{Inputs: 2, Open: 0, Forwarded: 1}, f.Stats())
	})
}

// Every Add that returned nil has all its items delivered, every Add that
// returned an error has none, whatever the interleaving with Seal.
func TestFanInAddRacingWithSealDeliversEveryAcceptedInput(t *testing.T) {
	const rounds, adders, perInput = 50, 8, 20
	for round := range rounds {
		f := NewFanIn[item](context.Background(), MergeBuffer(round%3))
		var accepted sync.Map // src -> true
		var wg sync.WaitGroup
		for a := range adders {
			wg.Go(func() {
				for i := range 4 {
					src := a*4 + i
					in := sendItems(src, perInput, i%2)
					if err := f.Add(in); err != nil {
						require.ErrorIs(t, err, ErrClosed)
						for range in { // let the producer finish
						}
						continue
					}
					accepted.Store(src, true)
				}
			})
		}
		go func() {
			runtime.Gosched()
			f.Seal()
		}()
		got := collect(f.Out()) // returns only once sealed and drained
		wg.Wait()
		want := map[int]int{}
		accepted.Range(func(k, _ any) bool {
			want[k.(int)] = perInput
			return true
		})
		requireComplete(t, want, got)
		s := f.Stats()
		assert.Equal(t, len(want), s.Inputs)
		assert.Equal(t, uint64(len(got)), s.Forwarded)
		assert.Zero(t, s.Dropped)
	}
}

// When ctx ends mid-stream, every item taken from an input is either
// readable from Out or counted as dropped, never silently lost.
func TestFanInStatsAccountForEveryItemTakenOnCancel(t *testing.T) {
	for _, buffer := range []int{0, 1, 8} {
		t.Run("buffer="+strconv.Itoa(buffer), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			f := NewFanIn[int](ctx, MergeBuffer(buffer))
			var sent atomic.Uint64
			var producers sync.WaitGroup
			for range 4 {
				in := make(chan int) // unbuffered: a completed send is an item taken
				require.NoError(t, f.Add(in))
				producers.Go(func() {
					for {
						select {
						case in <- 1:
							sent.Add(1)
						case <-ctx.Done():
							return
						}
					}
				})
			}
			received := 0
			for range 100 {
				<-f.Out()
				received++
			}
			cancel()
			received += len(collect(f.Out()))
			producers.Wait()
			s := f.Stats()
			assert.Equal(t, uint64(received), s.Forwarded)
			assert.Equal(t, sent.Load(), s.Forwarded+s.Dropped)
			assert.LessOrEqual(t, s.Dropped, uint64(4), "at most one item in hand per input")
			assert.Zero(t, s.Open)
		})
	}
}

func TestMergeStressManyInputs(t *testing.T) {
	const ins, perInput = 64, 2000
	chans := make([]<-chan item, ins)
	want := map[int]int{}
	for i := range chans {
		chans[i] = sendItems(i, perInput, i%4*16)
		want[i] = perInput
	}
	requireComplete(t, want, collect(Merge(context.Background(), chans...)))
}

func TestMergeFunctionsPanicOnBadInput(t *testing.T) {
	ok := make(chan int)
	close(ok)
	key := func(v int) int { return v }
	var nilCtx context.Context
	bg := context.Background()
	tests := []struct {
		name string
		want string
		fn   func()
	}{
		{"Merge nil ctx", "conc: context must not be nil", func() { Merge(nilCtx, ok) }},
		{"Merge nil input", "conc: Merge: input 1 is a nil channel", func() { Merge(bg, ok, nil) }},
		{"NewFanIn nil ctx", "conc: context must not be nil", func() { NewFanIn[int](nilCtx) }},
		{"FanIn.Add nil", "conc: FanIn.Add: in must not be a nil channel", func() { NewFanIn[int](bg).Add(nil) }},
		{"MergeBuffer negative", "conc: MergeBuffer n must not be negative, got -1", func() { MergeBuffer(-1) }},
		{"FanOut n=0", "conc: FanOut n must be at least 1, got 0", func() { FanOut(bg, ok, 0) }},
		{"FanOut nil in", "conc: FanOut: in must not be a nil channel", func() { FanOut[int](bg, nil, 2) }},
		{"Tee n=-1", "conc: Tee n must be at least 1, got -1", func() { Tee(bg, ok, -1) }},
		{"Tee nil ctx", "conc: context must not be nil", func() { Tee(nilCtx, ok, 1) }},
		{"Partition n=0", "conc: Partition n must be at least 1, got 0", func() { Partition(bg, ok, 0, key) }},
		{"Partition nil key", "conc: Partition key must not be nil", func() { Partition[int, int](bg, ok, 2, nil) }},
		{"Partition nil in", "conc: Partition: in must not be a nil channel", func() { Partition(bg, nil, 2, key) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.fn)
		})
	}
}

// A nil MergeOption is a programmer error, refused like a nil option of any
// other constructor rather than silently ignored.
func TestNilMergeOptionPanics(t *testing.T) {
	in := make(chan int)
	const want = "conc: Merge option 1 must not be nil"
	assert.PanicsWithValue(t, want, func() { NewFanIn[int](t.Context(), MergeBuffer(1), nil) })
	assert.PanicsWithValue(t, want, func() { FanOut(t.Context(), in, 2, MergeBuffer(1), nil) })
	assert.PanicsWithValue(t, want, func() { Tee(t.Context(), in, 2, MergeBuffer(1), nil) })
	assert.PanicsWithValue(t, want, func() {
		Partition(t.Context(), in, 2, func(v int) int { return v }, MergeBuffer(1), nil)
	})
}
