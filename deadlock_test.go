package conc

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSendDeliversOrReturnsCtxError(t *testing.T) {
	cause := errors.New("shutting down")
	tests := []struct {
		name    string
		ch      func() chan int
		ctx     func() (context.Context, context.CancelFunc)
		wantErr []error
	}{
		{
			name: "room in buffer",
			ch:   func() chan int { return make(chan int, 1) },
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		},
		{
			name: "ready channel wins over done ctx",
			ch:   func() chan int { return make(chan int, 1) },
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
		},
		{
			name: "full channel, deadline",
			ch:   func() chan int { return make(chan int) },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Second)
			},
			wantErr: []error{context.DeadlineExceeded},
		},
		{
			name: "nil channel blocks until ctx ends, cause kept",
			ch:   func() chan int { return nil },
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, cause)
				return ctx, cancel
			},
			wantErr: []error{context.DeadlineExceeded, cause},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := tt.ctx()
				defer cancel()
				ch := tt.ch()
				start := time.Now()
				err := Send(ctx, ch, 5)
				if tt.wantErr == nil {
					require.NoError(t, err)
					assert.Equal(t, 5, <-ch)
					return
				}
				for _, want := range tt.wantErr {
					assert.ErrorIs(t, err, want)
				}
				assert.Equal(t, time.Second, time.Since(start), "gave up before the deadline")
			})
		})
	}
}

func TestSendOnClosedChannelPanicsLikeTheSendStatement(t *testing.T) {
	ch := make(chan int)
	close(ch)
	assert.PanicsWithError(t, "send on closed channel", func() {
		_ = Send(context.Background(), ch, 1)
	})
}

func TestRecvReturnsValuesThenErrChanClosed(t *testing.T) {
	ch := make(chan int, 2)
	ch <- 1
	ch <- 2
	close(ch)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // ready values and the close still win over a done ctx
	for _, want := range []int{1, 2} {
		v, err := Recv(ctx, ch)
		require.NoError(t, err)
		assert.Equal(t, want, v)
	}
	v, err := Recv(ctx, ch)
	assert.ErrorIs(t, err, ErrChanClosed)
	assert.Zero(t, v)
}

func TestRecvBlocksUntilValueCloseOrCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan string)
		go func() {
			time.Sleep(time.Second)
			ch <- "late"
			time.Sleep(time.Second)
			close(ch)
		}()
		v, err := Recv(t.Context(), ch)
		require.NoError(t, err)
		assert.Equal(t, "late", v)
		_, err = Recv(t.Context(), ch)
		assert.ErrorIs(t, err, ErrChanClosed)

		cause := errors.New("stop")
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(time.Second, func() { cancel(cause) })
		_, err = Recv(ctx, (chan string)(nil))
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, cause)
	})
}

// logLocker records the order of Lock and Unlock calls on a shared log.
type logLocker struct {
	mu   sync.Mutex
	name string
	log  *[]string
}

func (l *logLocker) Lock()   { l.mu.Lock(); *l.log = append(*l.log, "+"+l.name) }
func (l *logLocker) Unlock() { *l.log = append(*l.log, "-"+l.name); l.mu.Unlock() }

func TestLockAllLocksInAddressOrderOnceAndUnlocksInReverse(t *testing.T) {
	for _, n := range []int{1, 2, 3, 8, 9, 20} {
		var log []string
		ls := make([]logLocker, n) // one array: addresses ascend with the index
		args := make([]sync.Locker, 0, 2*n)
		var wantLock, wantUnlock []string
		for i := range ls {
			ls[i] = logLocker{name: string(rune('a' + i)), log: &log}
			wantLock = append(wantLock, "+"+ls[i].name)
			wantUnlock = append([]string{"-" + ls[i].name}, wantUnlock...)
		}
		for _, i := range rand.Perm(n) {
			args = append(args, &ls[i], &ls[i]) // every Locker twice
		}
		rand.Shuffle(len(args), func(i, j int) { args[i], args[j] = args[j], args[i] })

		unlock := LockAll(args...)
		assert.Equal(t, wantLock, log, "n=%d: lock order", n)
		log = nil
		unlock()
		unlock()
		assert.Equal(t, wantUnlock, log, "n=%d: unlock order, once", n)
	}
}

func TestLockAllTellsLockersAtOneAddressApartByType(t *testing.T) {
	var rw sync.RWMutex
	a, b := sync.Locker(&rw), rw.RLocker()
	assert.True(t, lockLess(&a, &b) != lockLess(&b, &a), "neither orders before the other")
	unlock := LockAll(rw.RLocker(), rw.RLocker())
	assert.False(t, rw.TryLock(), "the read lock is held")
	unlock()
	assert.True(t, rw.TryLock(), "the read lock was taken once and released once")
	rw.Unlock()
}

func TestLockAllWithNoLockersDoesNothing(t *testing.T) {
	unlock := LockAll()
	assert.NotPanics(t, unlock)
}

func TestLockAllPanicsOnNilLocker(t *testing.T) {
	var mu sync.Mutex
	assert.PanicsWithValue(t, "conc: LockAll mus[1] must not be nil", func() { LockAll(&mu, nil) })
	assert.True(t, mu.TryLock(), "nothing is locked when the arguments are rejected")
	big := make([]sync.Locker, 12)
	for i := range big {
		big[i] = new(sync.Mutex)
	}
	big[11] = nil
	assert.PanicsWithValue(t, "conc: LockAll mus[11] must not be nil", func() { LockAll(big...) })

	// A typed nil is as nil: without the check it would be sorted first
	// and fail inside Lock with a bare nil dereference.
	var none *sync.Mutex
	mu.Unlock()
	assert.PanicsWithValue(t, "conc: LockAll mus[1] must not be nil", func() { LockAll(&mu, none) })
	assert.True(t, mu.TryLock(), "nothing is locked when the arguments are rejected")
	big[11] = none
	assert.PanicsWithValue(t, "conc: LockAll mus[11] must not be nil", func() { LockAll(big...) })
}

func TestLockAllDoesNotAllocateForFewLockers(t *testing.T) {
	var a, b, c sync.Mutex
	allocs := testing.AllocsPerRun(100, func() {
		unlock := LockAll(&c, &a, &b)
		unlock()
	})
	assert.Zero(t, allocs)
}

// TestLockAllFromManyGoroutinesInRandomOrdersFinishes locks random subsets
// of ten mutexes, each passed in a random order and some twice, from 100
// goroutines. By hand that deadlocks within a few iterations; each mutex
// also guards a plain counter, so the race detector checks that the locks
// really exclude, and the totals check that no increment was lost.
func TestLockAllFromManyGoroutinesInRandomOrdersFinishes(t *testing.T) {
	const goroutines, rounds, mutexes = 100, 200, 10
	var mus [mutexes]sync.Mutex
	var counters [mutexes]int
	var want [mutexes]int
	var wantMu sync.Mutex

	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			var mine [mutexes]int
			for range rounds {
				perm := rand.Perm(mutexes)[:1+rand.IntN(mutexes)]
				args := make([]sync.Locker, 0, len(perm)+1)
				for _, i := range perm {
					args = append(args, &mus[i])
				}
				args = append(args, args[rand.IntN(len(args))]) // a duplicate
				unlock := LockAll(args...)
				for _, i := range perm {
					counters[i]++
					mine[i]++
				}
				unlock()
			}
			wantMu.Lock()
			for i := range want {
				want[i] += mine[i]
			}
			wantMu.Unlock()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	guard := time.NewTimer(45 * time.Second) // generous: -race on 2 busy cores
	defer guard.Stop()
	select {
	case <-done:
	case <-guard.C:
		t.Fatal("LockAll deadlocked") // the stuck goroutines then fail goleak too
	}
	assert.Equal(t, want, counters)
}

// LockAll orders Lockers by reading the two words of an interface value
// through unsafe (lockWords): the type word, then the data word, which for
// a pointer-shaped Locker is the pointer itself. The runtime does not
// promise that layout; this test fails loudly if a Go release changes it,
// before LockAll would silently order by the wrong word.
func TestLockWordsLayout(t *testing.T) {
	var a, b sync.Mutex
	var rw sync.RWMutex
	lockers := []sync.Locker{&a, &b, &rw, rw.RLocker()}
	for i, l := range lockers {
		typ, data := lockWords(&l)
		require.Equal(t, reflect.ValueOf(l).Pointer(), data, "locker %d: the data word is the pointer", i)
		require.NotZero(t, typ, "locker %d: the type word is set", i)
	}
	typ0, _ := lockWords(&lockers[0])
	typ1, _ := lockWords(&lockers[1])
	typ2, data2 := lockWords(&lockers[2])
	typ3, data3 := lockWords(&lockers[3])
	require.Equal(t, typ0, typ1, "two *sync.Mutex share their type word")
	require.NotEqual(t, typ0, typ2, "*sync.Mutex and *sync.RWMutex differ in the type word")
	require.Equal(t, data2, data3, "an RWMutex and its RLocker share the data word")
	require.NotEqual(t, typ2, typ3, "an RWMutex and its RLocker differ in the type word")

	var none sync.Locker
	typ, data := lockWords(&none)
	require.Zero(t, typ, "a nil interface has a zero type word")
	require.Zero(t, data, "a nil interface has a zero data word")
	var typedNil sync.Locker = (*sync.Mutex)(nil)
	typ, data = lockWords(&typedNil)
	require.NotZero(t, typ, "a typed nil has its type word")
	require.Zero(t, data, "a typed nil has a zero data word")
}
