package conc

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrokerLayout checks the sizes that keep the hot fields of a
// subscription and of a group on lines of their own: both sizes are size
// classes whose objects start on a cache line.
func TestBrokerLayout(t *testing.T) {
	var s Subscription[int]
	var g brokerGroup[int]
	assert.Equal(t, uintptr(256), unsafe.Sizeof(s))
	assert.Less(t, unsafe.Offsetof(s.parkIndex), uintptr(64), "what a reader touches per park fits the first line")
	assert.Equal(t, uintptr(320), unsafe.Sizeof(g))
	assert.Equal(t, uintptr(64), unsafe.Offsetof(g.parkMask), "the parking line follows the publishers' line")
	assert.Equal(t, uintptr(128), unsafe.Offsetof(g.slots))
}

// TestBrokerParkIndexesAreReusedLowestFirst checks that a subscription
// keeps its park index until its reader is done with it, and that indexes
// given back are taken again lowest first, so the wake order stays the
// order of subscription as far as it can.
func TestBrokerParkIndexesAreReusedLowestFirst(t *testing.T) {
	b := NewBroker[int](SubPolicy(BlockPublisher), SubBuffer(2))
	var subs []*Subscription[int]
	for range 70 {
		subs = append(subs, b.Subscribe("t"))
	}
	g := subs[0].g
	for i, s := range subs {
		require.Equal(t, int32(i), s.parkIndex)
		assert.Same(t, s, (*g.parkWords.Load())[i/64].subs[i%64].Load())
	}
	require.Len(t, *g.parkWords.Load(), 2)
	subs[65].Unsubscribe()
	subs[3].Unsubscribe()
	// Ended with nothing to read: a publisher that needs room lets them go.
	for i := range 3 {
		require.NoError(t, b.Publish(context.Background(), "t", i))
		for _, s := range subs {
			if s != subs[3] && s != subs[65] {
				_, err := s.Next(context.Background())
				require.NoError(t, err)
			}
		}
	}
	assert.Equal(t, int32(-1), subs[3].parkIndex)
	assert.Equal(t, int32(-1), subs[65].parkIndex)
	assert.Nil(t, (*g.parkWords.Load())[0].subs[3].Load())
	assert.Equal(t, int32(3), b.Subscribe("t").parkIndex)
	assert.Equal(t, int32(65), b.Subscribe("t").parkIndex)
	assert.Equal(t, int32(70), b.Subscribe("t").parkIndex)
	require.NoError(t, b.Close())
}

// TestBrokerReaderWokenWhenItsParkIndexIsGivenBack parks the reader of
// an ended subscription on an event whose publisher has claimed its slot
// but not written it yet, then lets another publisher evict what the
// subscription still held, which gives its park index back: the reader,
// whose bit no longer names it, must be woken and see its end rather than
// wait forever.
func TestBrokerReaderWokenWhenItsParkIndexIsGivenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker[int](SubPolicy(DropOldest), SubBuffer(1))
		s := b.Subscribe("t")
		other := b.Subscribe("t") // keeps the group, and its ring, open
		g := s.g
		// A publisher that claimed sequence 0 and is slow to write it.
		require.True(t, g.tail.CompareAndSwap(0, 1))
		s.Unsubscribe() // its end is 1: it waits for sequence 0
		var wg sync.WaitGroup
		var err error
		wg.Go(func() { _, err = s.Next(context.Background()) })
		synctest.Wait() // parked
		require.NotZero(t, s.park.word.bits.Load()&s.park.bit)
		// The publisher of the next event needs room: it evicts both
		// (DropOldest), and s, ended with nothing left, gives its index
		// back.
		g.mu.Lock()
		g.recompute(1)
		g.mu.Unlock()
		assert.Equal(t, int32(-1), s.parkIndex)
		wg.Wait()
		assert.ErrorIs(t, err, ErrClosed)
		g.write(0, 7) // the slow publisher ends its write
		assert.Equal(t, uint64(1), other.Dropped())
		require.NoError(t, b.Close())
	})
}

// TestBrokerReaderLeavesNoBitWhenItsContextEnds checks that a reader
// whose context ends while it is parked takes its bit back, so that the
// next event does not send a token it would find at its next wait.
func TestBrokerReaderLeavesNoBitWhenItsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker[int](SubPolicy(BlockPublisher))
		s := b.Subscribe("t")
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var err error
		wg.Go(func() { _, err = s.Next(ctx) })
		synctest.Wait()
		require.NotZero(t, s.park.word.bits.Load()&s.park.bit)
		cancel()
		wg.Wait()
		assert.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, s.park.word.bits.Load()&s.park.bit)
		require.NoError(t, b.Publish(context.Background(), "t", 1))
		assert.Empty(t, s.wake, "no token left for the next wait")
		require.NoError(t, b.Close())
	})
}

// TestBrokerStaleReaderDoesNotTakeTheNewOwnersBit plays a reader that is
// still on its way through NextBatch when its subscription has ended and
// its park index has been given back and taken by a new subscription,
// whose reader parks: the old reader's look at the park set (it finds its
// end, and takes back what it takes for its own bit) must not leave the
// new reader unwoken by the next event.
func TestBrokerStaleReaderDoesNotTakeTheNewOwnersBit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := NewBroker[int](SubPolicy(DropOldest), SubBuffer(1))
		old := b.Subscribe("t")
		keep := b.Subscribe("t") // keeps the group open
		n, done := old.read(make([]int, 1))
		require.Zero(t, n)
		require.False(t, done)
		// The old reader is between its read and setParked when its
		// subscription ends and a publisher making room gives its index
		// back.
		old.Unsubscribe()
		require.NoError(t, b.Publish(ctx, "t", 1))
		require.NoError(t, b.Publish(ctx, "t", 2))
		require.Equal(t, int32(-1), old.parkIndex)
		s := b.Subscribe("t")
		require.Equal(t, int32(0), s.parkIndex, "the index given back")
		got := make(chan int, 1)
		go func() {
			v, err := s.Next(ctx)
			if err == nil {
				got <- v
			}
			close(got)
		}()
		synctest.Wait() // s's reader is parked, its bit set
		require.NotZero(t, s.park.word.bits.Load()&s.park.bit)
		assert.True(t, old.setParked(), "the old reader finds its end")
		synctest.Wait()
		require.NoError(t, b.Publish(ctx, "t", 3))
		synctest.Wait()
		select {
		case v := <-got:
			assert.Equal(t, 3, v)
		default:
			t.Errorf("the new reader was not woken by the event (buffered %d)", s.Stats().Buffered)
			s.Unsubscribe()
			<-got
		}
		assert.Equal(t, uint64(3), keep.Stats().Published)
		require.NoError(t, b.Close())
	})
}

// TestBrokerParkSetChurn keeps about 150 subscriptions of one Block group
// (three words of the park set) coming and going while two publishers
// publish, so that park indexes are given back and taken again all the
// time; half the readers wait with a context that never ends, half with
// one that can, and one in four of those is cancelled and unsubscribed
// from another goroutine while its reader waits. The publishers pause now and then until every goroutine is
// blocked, so that the readers park. A lost wake-up leaves a Block
// publisher waiting for a reader that waits too, which synctest reports
// as a deadlock; each reader also checks each publisher's order.
func TestBrokerParkSetChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const readers, rounds = 150, 20
		b := NewBroker[int](SubPolicy(BlockPublisher), SubBuffer(2))
		stop := make(chan struct{})
		var pubs sync.WaitGroup
		for p := range 2 {
			pubs.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if !assert.NoError(t, b.Publish(context.Background(), "t", p<<32|i)) {
						return
					}
					if i%32 == 31 {
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
		var rs sync.WaitGroup
		for r := range readers {
			rs.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(r), 16))
				for range rounds {
					s := b.Subscribe("t")
					ctx, cancel := context.WithCancel(context.Background())
					if r%2 == 0 {
						ctx = context.Background()
					} else if rng.IntN(4) == 0 {
						// Cancelled and ended from outside while its
						// reader waits, or about to.
						time.AfterFunc(time.Duration(rng.IntN(3))*time.Millisecond, func() {
							cancel()
							s.Unsubscribe()
						})
					}
					last := [2]int{-1, -1}
					for range 1 + rng.IntN(12) {
						v, err := s.Next(ctx)
						if errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) {
							break
						}
						if !assert.NoError(t, err) {
							break
						}
						p, i := v>>32, v&(1<<32-1)
						assert.Greater(t, i, last[p], "publisher %d's order", p)
						last[p] = i
					}
					s.Unsubscribe()
					cancel()
				}
			})
		}
		rs.Wait()
		close(stop)
		pubs.Wait()
		require.NoError(t, b.Close())
	})
}

// TestBrokerParkWordIsSizedToItsGroup checks that the group of a
// DropNewest subscription, which never has another, gets a park word of
// one entry rather than 64 (512 bytes less per such subscription).
func TestBrokerParkWordIsSizedToItsGroup(t *testing.T) {
	b := NewBroker[int]()
	for _, c := range []struct {
		policy Overflow
		n      int
	}{{DropNewest, 1}, {DropOldest, 64}, {BlockPublisher, 64}} {
		s := b.Subscribe("t", SubPolicy(c.policy))
		assert.Len(t, (*s.g.parkWords.Load())[0].subs, c.n, "%v", c.policy)
	}
	require.NoError(t, b.Close())
}
