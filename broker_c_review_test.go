package conc

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A consumer of C that stops reading and then ends the subscription must
// not leave C's goroutine behind (contract 3), and what it never got counts
// as dropped (contract 4). Before, the goroutine waited forever on a full
// channel after Unsubscribe or Close.
func TestBrokerCGoroutineEndsWithSubscription(t *testing.T) {
	for _, end := range []string{"Unsubscribe", "Close"} {
		for _, policy := range []Overflow{BlockPublisher, DropNewest, DropOldest} {
			t.Run(end+"/"+policy.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { testCEnds(t, end, policy) })
			})
		}
	}
}

func testCEnds(t *testing.T, end string, policy Overflow) {
	b := NewBroker[int]()
	s := b.Subscribe("t", SubBuffer(3), SubPolicy(policy))
	ch := s.C()
	// A full Block ring makes a publisher with an ended context
	// give up (counted): nobody waits here.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 20 {
		b.Publish(ctx, "t", i)
		synctest.Wait() // C's goroutine moves what it can
	}
	last := <-ch // the reader takes one, then walks away
	synctest.Wait()
	if end == "Close" {
		require.NoError(t, b.Close())
	} else {
		s.Unsubscribe()
	}
	// The reader does not come back: C's goroutine must be gone all the
	// same (synctest.Test fails on a goroutine left blocked), and the
	// channel closed once what it holds is read.
	synctest.Wait()
	n := 1 + len(ch)
	rest := drainC(ch)
	require.Len(t, rest, n-1, "C's goroutine still sends after the end")
	for _, v := range rest {
		require.Greater(t, v, last, "in order, once each")
		last = v
	}
	_, open := <-ch
	assert.False(t, open, "C is closed")
	st := b.Stats()
	assert.Equal(t, st.Published, st.Delivered+st.DroppedNewest+st.DroppedOldest+st.DroppedBlock, "%+v", st)
	assert.Equal(t, uint64(n), st.Delivered, "%+v", st)
	sub := s.Stats()
	assert.Equal(t, sub.Published, sub.Delivered+sub.Dropped+sub.Buffered, "%+v", sub)
}

// Events copies a batch out of the ring; the events of it that a broken
// loop never saw were not delivered to anybody and count as dropped.
// Before, they counted as delivered: Delivered said 10 with 2 yielded.
func TestBrokerEventsBreakCountsTheRestAsDropped(t *testing.T) {
	for _, unsubscribe := range []bool{false, true} {
		b := NewBroker[int]()
		s := b.Subscribe("t", SubPolicy(DropOldest))
		for i := range 10 {
			require.NoError(t, b.Publish(context.Background(), "t", i))
		}
		if unsubscribe {
			s.Unsubscribe()
		}
		n := 0
		for range s.Events(context.Background()) {
			if n++; n == 2 {
				break
			}
		}
		sub := s.Stats()
		assert.Equal(t, SubStats{Pattern: "t", Policy: DropOldest, Buffer: DefaultSubBuffer, Published: 10, Delivered: 2, Dropped: 8, Ended: unsubscribe}, sub)
		st := b.Stats()
		assert.Equal(t, uint64(2), st.Delivered, "%+v", st)
		assert.Equal(t, uint64(8), st.DroppedOldest, "%+v", st)
		assert.Equal(t, uint64(10), st.Deliveries, "%+v", st)
	}
}

// Under publishers (some of whose contexts end), readers of every kind
// (Next, NextBatch, C), Unsubscribe mid-read and Close, what each reader got
// is what its Stats call delivered, and the broker's figures are the sums
// (with what ended subscriptions still hold counted as delivered).
func TestBrokerCountsMatchWhatReadersGot(t *testing.T) {
	for iter := 0; iter < 8; iter++ {
		b := NewBroker[int]()
		const nsub = 24 // two of each kind: a group with one ended and one live
		subs := make([]*Subscription[int], nsub)
		got := make([]int, nsub)
		var rd sync.WaitGroup
		for i := range subs {
			j := i % 12
			pol := []Overflow{DropNewest, DropOldest, BlockPublisher}[j%3]
			pat := []string{"a.b", "a.*", ">"}[j/3%3]
			subs[i] = b.Subscribe(pat, SubBuffer(1+j%4), SubPolicy(pol))
			rd.Add(1)
			go func(i int) {
				defer rd.Done()
				s := subs[i]
				buf := make([]int, 3)
				for k := 0; ; k++ {
					if i%4 == 0 && k == 50 {
						s.Unsubscribe()
						if i >= 12 {
							return // and walks away: the rest is evicted
						}
					}
					var n int
					var err error
					switch i % 3 {
					case 0:
						_, err = s.Next(context.Background())
						if err == nil {
							n = 1
						}
					case 1:
						n, err = s.NextBatch(context.Background(), buf)
					case 2:
						for range s.C() {
							got[i]++
						}
						return
					}
					if err != nil {
						return
					}
					got[i] += n
				}
			}(i)
		}
		var pw sync.WaitGroup
		for p := 0; p < 4; p++ {
			pw.Add(1)
			go func() {
				defer pw.Done()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				for k := 0; k < 500; k++ {
					if rand.IntN(100) == 0 {
						cancel()
					}
					b.Publish(ctx, "a.b", k)
				}
			}()
		}
		pw.Wait()
		require.NoError(t, b.Close())
		rd.Wait()
		st := b.Stats()
		var pub, del uint64
		for i, s := range subs {
			ss := s.Stats()
			assert.Equal(t, ss.Published, ss.Delivered+ss.Dropped+ss.Buffered, "sub %d %+v", i, ss)
			assert.Equal(t, uint64(got[i]), ss.Delivered, "sub %d %+v", i, ss)
			pub += ss.Published
			// What an ended subscription still holds counts as
			// delivered for the broker: it may still be read.
			del += uint64(got[i]) + ss.Buffered
		}
		assert.Equal(t, pub, st.Deliveries, "%+v", st)
		assert.Equal(t, del, st.Delivered, "%+v", st)
		if t.Failed() {
			return
		}
	}
}
