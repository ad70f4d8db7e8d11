package conc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goroutinesIn counts the goroutines whose stack shows a frame of fn (a
// function of this package, such as "orWait"). It reads the full stack dump
// rather than runtime.NumGoroutine, so that goroutines of other tests, of
// the testing package or of the runtime cannot blur the count; inside a
// synctest bubble, after synctest.Wait, the count is exact.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		// The "created by" line names the creator, not the goroutine, so
		// only frames above it count.
		if i := bytes.Index(g, []byte("\ncreated by ")); i >= 0 {
			g = g[:i]
		}
		if bytes.Contains(g, []byte("conc."+fn)) {
			count++
		}
	}
	return count
}

// orFired reports whether a signal channel is closed, without blocking.
func orFired(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestOrFiresOnCloseOrValueWithOneGoroutineAtMost(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 16, 17, 128, 10_000} {
		for _, how := range []string{"close", "value"} {
			for _, pos := range []string{"first", "last"} {
				t.Run(fmt.Sprintf("n=%d/%s/%s", n, how, pos), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						chans := make([]chan int, n)
						ins := make([]<-chan int, n)
						for i := range chans {
							chans[i] = make(chan int)
							ins[i] = chans[i]
						}
						out := Or(ins...)
						synctest.Wait()
						require.False(t, orFired(out), "closed before any input fired")
						require.Equal(t, 1, goroutinesIn("orWait"), "goroutines while waiting")

						k := 0
						if pos == "last" {
							k = n - 1
						}
						if how == "close" {
							close(chans[k])
						} else {
							// Unbuffered: the send completes only once Or's
							// goroutine has taken the value.
							chans[k] <- 42
						}
						synctest.Wait()
						assert.True(t, orFired(out), "not closed after input %d fired", k)
						assert.Zero(t, goroutinesIn("orWait"), "goroutines after firing")
					})
				})
			}
		}
	}
}

func TestOrWithNoInputsNeverClosesAndStartsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := Or[int]()
		require.NotNil(t, out)
		synctest.Wait()
		assert.False(t, orFired(out))
		assert.Zero(t, goroutinesIn("orWait"))
	})
}

func TestOrWithOneDoneChannelReturnsItUnchanged(t *testing.T) {
	c := make(chan struct{})
	out := Or[struct{}](c)
	assert.Equal(t, (<-chan struct{})(c), out)
	assert.Zero(t, goroutinesIn("orWait"))
}

func TestOrWithInputAlreadyFiredReturnsClosedWithoutGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, n := range []int{1, 2, 8, 16} {
			chans := make([]<-chan string, n)
			for i := range chans {
				chans[i] = make(chan string)
			}
			ready := make(chan string, 1)
			ready <- "value"
			chans[n/2] = ready
			out := Or(chans...)
			assert.True(t, orFired(out), "n=%d", n)
			assert.Zero(t, len(ready), "n=%d: the value that fired Or is consumed", n)
			assert.Zero(t, goroutinesIn("orWait"), "n=%d", n)
		}
	})
}

func TestOrWithManyInputsOneAlreadyFiredClosesWithoutSelect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chans := make([]<-chan int, 40)
		for i := range chans {
			chans[i] = make(chan int)
		}
		ready := make(chan int)
		close(ready)
		chans[39] = ready
		out := Or(chans...)
		synctest.Wait() // the goroutine's poll finds input 39
		assert.True(t, orFired(out))
		assert.Zero(t, goroutinesIn("orWait"))
	})
}

func TestOrIgnoresNilInputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, n := range []int{2, 6, 30} {
			ins := make([]<-chan struct{}, n)
			c := make(chan struct{})
			ins[n-1] = c
			out := Or(ins...)
			synctest.Wait()
			assert.False(t, orFired(out), "n=%d: fired on a nil input", n)
			close(c)
			synctest.Wait()
			assert.True(t, orFired(out), "n=%d", n)
		}
	})
}

func TestOrKeepsNoReferenceToCallerSlice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, n := range []int{3, 12, 64} {
			chans := make([]chan struct{}, n)
			ins := make([]<-chan struct{}, n)
			for i := range chans {
				chans[i] = make(chan struct{})
				ins[i] = chans[i]
			}
			out := Or(ins...)
			// Reuse the slice for something else: Or must not see it.
			never := make(chan struct{})
			for i := range ins {
				ins[i] = never
			}
			close(chans[n-1])
			synctest.Wait()
			assert.True(t, orFired(out), "n=%d", n)
		}
	})
}

func TestOrContextClosesAndEndsGoroutineWhenCtxEnds(t *testing.T) {
	for _, n := range []int{1, 2, 9, 100} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				ins := make([]<-chan struct{}, n)
				for i := range ins {
					ins[i] = make(chan struct{})
				}
				out := OrContext(ctx, ins...)
				synctest.Wait()
				require.False(t, orFired(out))
				require.Equal(t, 1, goroutinesIn("orWait"))
				cancel()
				synctest.Wait()
				assert.True(t, orFired(out))
				assert.Zero(t, goroutinesIn("orWait"))
			})
		})
	}
}

func TestOrContextSpecialCases(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	assert.Equal(t, ctx.Done(), OrContext[int](ctx), "no inputs: ctx.Done itself")

	c := make(chan struct{})
	assert.Equal(t, (<-chan struct{})(c), OrContext(context.Background(), (<-chan struct{})(c)),
		"a ctx that never ends adds nothing")

	cancel()
	out := OrContext(ctx, (<-chan int)(make(chan int)))
	assert.True(t, orFired(out), "ctx already done")
	assert.Zero(t, goroutinesIn("orWait"))
}

func TestOrDoneForwardsInOrderUntilInputCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(chan int)
		go func() {
			defer close(in)
			for i := range 100 {
				in <- i
			}
		}()
		var got []int
		for v := range OrDone(t.Context(), in) {
			got = append(got, v)
		}
		require.Len(t, got, 100)
		for i, v := range got {
			require.Equal(t, i, v)
		}
	})
}

func TestOrDoneStopsWhenCtxEndsEvenWithoutReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		in := make(chan int, 1)
		in <- 1 // taken by OrDone, which then blocks: nobody reads out
		out := OrDone(ctx, in)
		synctest.Wait()
		require.Equal(t, 1, goroutinesIn("orForward"))
		cancel()
		synctest.Wait()
		assert.Zero(t, goroutinesIn("orForward"))
		_, ok := <-out
		assert.False(t, ok, "out is closed once OrDone gave up")
	})
}

func TestOrDoneWithBackgroundReturnsInput(t *testing.T) {
	in := make(chan int)
	assert.Equal(t, (<-chan int)(in), OrDone(context.Background(), in))
}

func TestRaceReturnsFirstSuccessCancelsAndWaitsForLosers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var loserDone atomic.Int32
		var loserCause atomic.Value
		loser := func(ctx context.Context) (string, error) {
			<-ctx.Done()
			loserCause.Store(context.Cause(ctx))
			loserDone.Add(1)
			return "", ctx.Err()
		}
		winner := func(ctx context.Context) (string, error) { return "won", nil }
		failer := func(ctx context.Context) (string, error) { return "", errors.New("nope") }

		got, err := Race(t.Context(), loser, failer, winner, loser)
		require.NoError(t, err)
		assert.Equal(t, "won", got)
		assert.Equal(t, int32(2), loserDone.Load(), "Race returned before its losers")
		assert.Equal(t, errRaceWon, loserCause.Load())
	})
}

func TestRaceAllFailReturnsEveryErrorInOrder(t *testing.T) {
	errA, errB := errors.New("a"), errors.New("b")
	fail := func(e error) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { return 7, e }
	}
	_, err := Race(context.Background(), fail(errA), fail(errB),
		func(context.Context) (int, error) { panic("boom") })
	require.Error(t, err)
	assert.ErrorIs(t, err, errA)
	assert.ErrorIs(t, err, errB)
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "boom", pe.Value)
	assert.Equal(t, "conc: race fns[0]: a\nconc: race fns[1]: b\nconc: race fns[2]: conc: panic: boom", err.Error())
}

// A racer ending in runtime.Goexit neither returns nor panics; it must still
// count as a failure, or Race would wait forever for its result. synctest
// turns such a hang into a deadlock failure instead of a stuck test.
func TestRaceRacerCallingGoexitCountsAsFailure(t *testing.T) {
	errB := errors.New("b")
	tests := []struct {
		name    string
		other   func(exited <-chan struct{}) func(context.Context) (string, error)
		want    string
		wantErr []error
	}{
		{"other fails", func(exited <-chan struct{}) func(context.Context) (string, error) {
			return func(context.Context) (string, error) { <-exited; return "", errB }
		}, "", []error{errGoexit, errB}},
		{"other wins", func(exited <-chan struct{}) func(context.Context) (string, error) {
			return func(context.Context) (string, error) { <-exited; return "won", nil }
		}, "won", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				exited := make(chan struct{})
				goexiter := func(context.Context) (string, error) {
					defer close(exited)
					runtime.Goexit()
					return "", nil
				}
				got, err := Race(t.Context(), goexiter, tt.other(exited))
				assert.Equal(t, tt.want, got)
				if tt.wantErr == nil {
					require.NoError(t, err)
					return
				}
				for _, e := range tt.wantErr {
					assert.ErrorIs(t, err, e)
				}
			})
		})
	}
}

func TestRaceWithCancelledCtxKeepsCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cause := errors.New("caller gave up")
		ctx, cancel := context.WithCancelCause(t.Context())
		wait := func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, errors.New("stopped")
		}
		go func() {
			synctest.Wait()
			cancel(cause)
		}()
		_, err := Race(ctx, wait, wait)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, cause)
	})
}

func TestRaceSpecialCases(t *testing.T) {
	ok := func(context.Context) (int, error) { return 1, nil }

	_, err := Race[int](context.Background())
	assert.ErrorIs(t, err, errRaceEmpty)

	assert.PanicsWithValue(t, "conc: Race fns[1] must not be nil", func() {
		_, _ = Race(context.Background(), ok, nil)
	})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	started := false
	_, err = Race(ctx, func(context.Context) (int, error) { started = true; return 1, nil })
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, started, "a function started although ctx was done")

	v, err := Race(context.Background(), ok)
	assert.NoError(t, err)
	assert.Equal(t, 1, v)

	_, err = Race(context.Background(), func(context.Context) (int, error) { return 0, errors.New("x") })
	assert.EqualError(t, err, "conc: race fns[0]: x")
}

// TestOrBeyondOneSelectChainsASecondGoroutine covers the inputs past the
// 65534 one reflect.Select can take: they are waited on by a second Or, and
// whichever side fires, both goroutines end.
func TestOrBeyondOneSelectChainsASecondGoroutine(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 70 000 channels")
	}
	const n = orMaxCases + 4
	for _, k := range []int{0, n - 1} {
		synctest.Test(t, func(t *testing.T) {
			chans := make([]chan struct{}, n)
			ins := make([]<-chan struct{}, n)
			for i := range chans {
				chans[i] = make(chan struct{})
				ins[i] = chans[i]
			}
			out := Or(ins...)
			synctest.Wait()
			require.Equal(t, 2, goroutinesIn("orWait"))
			close(chans[k])
			synctest.Wait()
			assert.True(t, orFired(out), "input %d fired", k)
			assert.Zero(t, goroutinesIn("orWait"))
		})
	}
}
