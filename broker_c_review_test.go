package conc

import (
	"context"
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
