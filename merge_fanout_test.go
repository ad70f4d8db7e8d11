package conc

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/concpatterns/conc/internal/benchkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// ints returns a channel of capacity inCap carrying 0..n-1, then closed.
func ints(n, inCap int) <-chan int {
	c := make(chan int, inCap)
	go benchkit.Produce(c, n)
	return c
}

// drainAll reads every output concurrently (a consumer per output, as a
// real caller would have) and returns what each one received.
func drainAll[T any](outs []<-chan T) [][]T {
	got := make([][]T, len(outs))
	var wg sync.WaitGroup
	for i, o := range outs {
		wg.Go(func() { got[i] = collect(o) })
	}
	wg.Wait()
	return got
}

func TestFanOutDeliversEachItemToExactlyOneOutputInOrder(t *testing.T) {
	tests := []struct{ items, n, buffer, inCap int }{
		{0, 3, 64, 0},
		{1000, 1, 64, 0},
		{5000, 4, 64, 64},
		{2000, 7, 0, 0},
		{2000, 2, 1, 16},
	}
	for _, tt := range tests {
		name := strconv.Itoa(tt.items) + "/n=" + strconv.Itoa(tt.n) + "/buffer=" + strconv.Itoa(tt.buffer)
		t.Run(name, func(t *testing.T) {
			outs := FanOut(context.Background(), ints(tt.items, tt.inCap), tt.n, MergeBuffer(tt.buffer))
			require.Len(t, outs, tt.n)
			var all []int
			for _, got := range drainAll(outs) {
				assert.IsIncreasing(t, got, "each output keeps input order")
				all = append(all, got...)
			}
			assert.ElementsMatch(t, seq(tt.items), all, "each item exactly once")
		})
	}
}

func TestFanOutKeepsFlowingWhileOneOutputStalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const items = 100
		outs := FanOut(context.Background(), ints(items, 0), 3, MergeBuffer(0))
		// Outputs 1 and 2 are read; output 0 is not read until they close.
		got := drainAll(outs[1:])
		synctest.Wait()
		stalled := collect(outs[0])
		assert.LessOrEqual(t, len(stalled), 1, "a stalled output holds back at most the item in hand")
		assert.Equal(t, items, len(got[0])+len(got[1])+len(stalled))
	})
}

func TestTeeDeliversEveryItemToEveryOutputInOrder(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		t.Run("n="+strconv.Itoa(n), func(t *testing.T) {
			outs := Tee(context.Background(), ints(3000, 8), n, MergeBuffer(n-1))
			for i, got := range drainAll(outs) {
				assert.Equal(t, seq(3000), got, "output %d", i)
			}
		})
	}
}

// The documented cost of Tee: an output that is not read stalls the others
// once its buffer is full.
func TestTeeSlowOutputStallsTheOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		outs := Tee(ctx, ints(10, 10), 2, MergeBuffer(1))
		var fast []int
		done := make(chan struct{})
		go func() {
			defer close(done)
			fast = collect(outs[0])
		}()
		synctest.Wait()
		// Item 0 sits in output 1's buffer, item 1 is in hand, blocked on
		// output 1: output 0 has received exactly items 0 and 1.
		cancel()
		<-done
		assert.Equal(t, []int{0, 1}, fast)
		assert.Equal(t, []int{0}, collect(outs[1]))
	})
}

func TestPartitionSendsEqualKeysToOneOutputInOrder(t *testing.T) {
	const keys, perKey = 37, 200
	in := make(chan item, 16)
	go func() {
		defer close(in)
		for seq := range perKey {
			for k := range keys {
				in <- item{k, seq}
			}
		}
	}()
	outs, wait := Partition(context.Background(), in, 4, func(it item) string {
		return "key-" + strconv.Itoa(it.src) // a string key, as real keys often are
	})
	owner := map[int]int{}
	for o, got := range drainAll(outs) {
		want := map[int]int{}
		for _, it := range got {
			if prev, seen := owner[it.src]; seen {
				require.Equal(t, prev, o, "key %d reached two outputs", it.src)
			}
			owner[it.src] = o
			want[it.src] = perKey
		}
		requireComplete(t, want, got) // per key: every item, once, in order
	}
	assert.Len(t, owner, keys)
	assert.NoError(t, wait())
	assert.NoError(t, wait(), "wait may be called again")
}

func TestPartitionKeyPanicBecomesPanicError(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run("n="+strconv.Itoa(n), func(t *testing.T) {
			boom := errors.New("boom")
			in := ints(100, 0)
			outs, wait := Partition(context.Background(), in, n, func(v int) int {
				if v == 50 {
					panic(boom)
				}
				return v
			})
			got := drainAll(outs) // the outputs close after the panic
			var pe *PanicError
			err := wait()
			require.ErrorAs(t, err, &pe)
			assert.ErrorIs(t, err, boom)
			assert.Contains(t, string(pe.Stack), "TestPartitionKeyPanicBecomesPanicError")
			total := 0
			for _, g := range got {
				total += len(g)
			}
			assert.Equal(t, 50, total, "items before the panic are delivered, none after")
			assert.Len(t, collect(in), 49, "after a panic the input is no longer read")
		})
	}
}

func TestPartitionKeyGoexitIsReported(t *testing.T) {
	in := ints(10, 0)
	outs, wait := Partition(context.Background(), in, 2, func(int) int {
		runtime.Goexit()
		return 0
	})
	assert.Equal(t, [][]int{nil, nil}, drainAll(outs))
	assert.ErrorIs(t, wait(), errGoexit)
	assert.Len(t, collect(in), 9)
}

func TestPartitionCancelReturnsContextErrorWithCause(t *testing.T) {
	cause := errors.New("deploy")
	ctx, cancel := context.WithCancelCause(context.Background())
	in := make(chan int) // never closed
	outs, wait := Partition(ctx, in, 2, func(v int) int { return v })
	in <- 1
	cancel(cause)
	drainAll(outs)
	err := wait()
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, cause)
}

// partitionKey is a key type holding pointers: maphash.Comparable forces
// such values to escape, which must not turn into an allocation per item.
type partitionKey struct {
	p *int
	s string
}

// Routing must not allocate per item, whatever the key type: the
// allocations of a whole run do not grow with the number of items.
func TestPartitionDoesNotAllocatePerItem(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters change allocations")
	}
	strs := make([]string, 64)
	ptrs := make([]*int, 64)
	for i := range strs {
		strs[i] = "k" + strconv.Itoa(i)
		ptrs[i] = new(int)
	}
	tests := []struct {
		name string
		run  func(in <-chan int) ([]<-chan int, func() error)
	}{
		{"int", func(in <-chan int) ([]<-chan int, func() error) {
			return Partition(context.Background(), in, 4, func(v int) int { return v }, MergeBuffer(10_000))
		}},
		{"string", func(in <-chan int) ([]<-chan int, func() error) {
			return Partition(context.Background(), in, 4, func(v int) string { return strs[v%64] }, MergeBuffer(10_000))
		}},
		{"struct with pointer", func(in <-chan int) ([]<-chan int, func() error) {
			return Partition(context.Background(), in, 4, func(v int) partitionKey { return partitionKey{ptrs[v%64], strs[v%64]} }, MergeBuffer(10_000))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allocs := func(items int) float64 {
				return testing.AllocsPerRun(5, func() {
					in := make(chan int, items)
					for i := range items {
						in <- i
					}
					close(in)
					outs, wait := tt.run(in)
					_ = wait() // the buffers hold every item: wait returns
					for _, o := range outs {
						for range o {
						}
					}
				})
			}
			small, large := allocs(10), allocs(10_000)
			assert.Less(t, large-small, 10.0, "allocations grew from %v to %v with 1000x the items", small, large)
		})
	}
}

// Cancelling while nobody reads the outputs and the input never closes:
// every output closes and no goroutine is left behind.
func TestFanOutFunctionsCancelCloseOutputsAndLeakNothing(t *testing.T) {
	key := func(v int) int { return v }
	tests := []struct {
		name  string
		split func(ctx context.Context, in <-chan int) []<-chan int
	}{
		{"FanOut", func(ctx context.Context, in <-chan int) []<-chan int { return FanOut(ctx, in, 3) }},
		{"Tee", func(ctx context.Context, in <-chan int) []<-chan int { return Tee(ctx, in, 3, MergeBuffer(0)) }},
		{"Partition", func(ctx context.Context, in <-chan int) []<-chan int {
			outs, _ := Partition(ctx, in, 3, key, MergeBuffer(2))
			return outs
		}},
	}
	for _, tt := range tests {
		for _, stage := range []string{"before start", "while stalled"} {
			t.Run(tt.name+"/"+stage, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				ctx, cancel := context.WithCancel(context.Background())
				in := make(chan int, 100)
				for i := range 100 {
					in <- i
				}
				if stage == "before start" {
					cancel()
				}
				outs := tt.split(ctx, in)
				cancel()
				got := drainAll(outs) // returns only if every output closes
				for _, g := range got {
					assert.LessOrEqual(t, len(g), 100)
				}
			})
		}
	}
}

func TestFanOutStressUnderRace(t *testing.T) {
	const items = 20_000
	outs := FanOut(context.Background(), ints(items, 32), 8)
	total := 0
	for _, got := range drainAll(outs) {
		assert.IsIncreasing(t, got)
		total += len(got)
	}
	assert.Equal(t, items, total)
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
