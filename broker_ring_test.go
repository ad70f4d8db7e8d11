package conc

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ringMsg carries a check word, so that a slot read while a publisher
// rewrote it would show as a mismatch even if the race detector missed it.
type ringMsg struct {
	pub, seq int
	check    uint64
}

func newRingMsg(pub, seq int) ringMsg {
	return ringMsg{pub, seq, uint64(pub)*0x9E3779B97F4A7C15 ^ uint64(seq)*0xBF58476D1CE4E5B9}
}

func (m ringMsg) ok() bool { return m == newRingMsg(m.pub, m.seq) }

// readMode is how a stress subscriber reads.
type readMode int

const (
	readNext readMode = iota
	readBatch
	readEvents
	readC
)

// TestBrokerRingStress runs publishers, subscribers of every policy and
// every way of reading, with small rings so that they lap, while
// subscriptions come and go (Unsubscribe from inside the reader) and the
// broker closes under them. Each subscriber checks every event's check
// word and that each publisher's events arrive in order; when it has read
// everything, that its counters add up (published = delivered + dropped)
// and that Delivered is what it received. The broker's totals must match
// the sum of what every subscriber received.
func TestBrokerRingStress(t *testing.T) {
	b := NewBroker[ringMsg]()
	patterns, topics, policies := stressPatterns, stressTopics, stressPolicies
	buffers := []int{1, 2, 4, 8}
	var received atomic.Uint64
	var endedMu sync.Mutex
	var ended []*Subscription[ringMsg] // checked once publishers stop
	var readers sync.WaitGroup
	stop := make(chan struct{})
	for r := range 10 {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := b.Subscribe(patterns[rng.IntN(len(patterns))],
					SubPolicy(policies[rng.IntN(len(policies))]), SubBuffer(buffers[rng.IntN(len(buffers))]))
				got := ringStressRead(t, s, readMode(rng.IntN(4)), rng.IntN(200))
				received.Add(got)
				if st := s.Stats(); st.Delivered != got || st.Buffered != 0 || !st.Ended {
					t.Errorf("%v: received %d, %+v", s, got, st)
				}
				endedMu.Lock()
				ended = append(ended, s)
				endedMu.Unlock()
				if s.Err() != nil {
					return // the broker closed
				}
			}
		})
	}
	var published atomic.Uint64
	var publishers sync.WaitGroup
	for p := range 4 {
		publishers.Go(func() {
			for i := 0; ; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				if i%5 == 0 {
					cancel() // a full Block group drops this one
				}
				err := b.Publish(ctx, topics[i%len(topics)], newRingMsg(p, i))
				cancel()
				if errors.Is(err, ErrClosed) {
					return
				}
				published.Add(1)
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	for published.Load() < 30000 {
		runtime.Gosched()
	}
	close(stop)
	require.NoError(t, b.Close())
	require.NoError(t, b.Close())
	publishers.Wait()
	readers.Wait()

	// A publisher that loaded a snapshot before an Unsubscribe may still
	// charge the subscription a drop after its reader finished; now that
	// every publisher has returned, each subscription's counters add up.
	for _, s := range ended {
		if st := s.Stats(); st.Published != st.Delivered+st.Dropped {
			t.Errorf("%v: counters do not add up: %+v", s, st)
		}
	}
	st := b.Stats()
	requireBrokerIdentity(t, st)
	assert.Equal(t, published.Load(), st.Published)
	assert.Equal(t, received.Load(), st.Delivered, "%+v", st)
	assert.Zero(t, st.Subscribers)
	assert.Zero(t, st.Buffered)
}

// ringStressRead reads s in the given mode until it ends, unsubscribing
// after quit events, and returns how many events it received.
func ringStressRead(t *testing.T, s *Subscription[ringMsg], mode readMode, quit int) uint64 {
	last := map[int]int{}
	var n uint64
	check := func(m ringMsg) {
		if !m.ok() {
			t.Errorf("%v: torn event %+v", s, m)
		}
		if prev, ok := last[m.pub]; ok && m.seq <= prev {
			t.Errorf("%v: publisher %d: %d after %d", s, m.pub, m.seq, prev)
		}
		last[m.pub] = m.seq
		if n++; n == uint64(quit) {
			s.Unsubscribe() // from inside; keep reading what it holds
		}
	}
	ctx := context.Background()
	switch mode {
	case readNext:
		for {
			m, err := s.Next(ctx)
			if err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
				return n
			}
			check(m)
		}
	case readBatch:
		buf := make([]ringMsg, 3)
		for {
			k, err := s.NextBatch(ctx, buf)
			if err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
				return n
			}
			for _, m := range buf[:k] {
				check(m)
			}
		}
	case readEvents:
		for m := range s.Events(ctx) {
			check(m)
		}
		return n
	default:
		for m := range s.C() {
			check(m)
		}
		return n
	}
}

func TestBrokerBlockGroupDropsForEveryMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Same pattern, policy and buffer: one ring, held back by stuck.
		b := NewBroker[int](SubPolicy(BlockPublisher), SubBuffer(1))
		stuck := b.Subscribe("t")
		live := b.Subscribe("t")
		require.NoError(t, b.Publish(context.Background(), "t", 1))
		v, err := live.Next(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, v)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.ErrorIs(t, b.Publish(ctx, "t", 2), context.DeadlineExceeded)
		for _, s := range []*Subscription[int]{stuck, live} {
			st := s.Stats()
			assert.Equal(t, uint64(1), st.Dropped, "%v", s)
			assert.Equal(t, st.Published, st.Delivered+st.Dropped+st.Buffered)
		}
		assert.Equal(t, uint64(2), b.Stats().DroppedBlock)

		// Once stuck reads, both get the next event.
		v, err = stuck.Next(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		require.NoError(t, b.Publish(context.Background(), "t", 3))
		for _, s := range []*Subscription[int]{stuck, live} {
			v, err := s.Next(context.Background())
			require.NoError(t, err)
			assert.Equal(t, 3, v)
		}
		require.NoError(t, b.Close())
	})
}

func TestBrokerDropOldestCountsExactlyWhatItMissed(t *testing.T) {
	b := NewBroker[int](SubPolicy(DropOldest), SubBuffer(4))
	slow := b.Subscribe("t")
	fast := b.Subscribe("t")
	buf := make([]int, 16)
	for i := range 100 {
		require.NoError(t, b.Publish(context.Background(), "t", i))
		n, err := fast.NextBatch(context.Background(), buf)
		require.NoError(t, err)
		assert.Equal(t, []int{i}, buf[:n])
	}
	n, err := slow.NextBatch(context.Background(), buf)
	require.NoError(t, err)
	assert.Equal(t, []int{96, 97, 98, 99}, buf[:n], "the newest SubBuffer events")
	st := slow.Stats()
	assert.Equal(t, SubStats{Pattern: "t", Policy: DropOldest, Buffer: 4, Published: 100, Delivered: 4, Dropped: 96}, st)
	assert.Equal(t, uint64(96), slow.Dropped())
	assert.Zero(t, fast.Dropped())
	require.NoError(t, b.Close())
	_, err = slow.Next(context.Background())
	assert.ErrorIs(t, err, ErrClosed)
}

func TestBrokerDropNewestKeepsTheOldestUntilTheReaderCatchesUp(t *testing.T) {
	b := NewBroker[int](SubBuffer(3))
	s := b.Subscribe("t")
	other := b.Subscribe("t") // its own ring: reading it changes nothing for s
	for i := range 10 {
		require.NoError(t, b.Publish(context.Background(), "t", i))
	}
	buf := make([]int, 8)
	n, _ := other.NextBatch(context.Background(), buf)
	assert.Equal(t, []int{0, 1, 2}, buf[:n])
	n, _ = s.NextBatch(context.Background(), buf)
	assert.Equal(t, []int{0, 1, 2}, buf[:n])
	require.NoError(t, b.Publish(context.Background(), "t", 10))
	n, _ = s.NextBatch(context.Background(), buf)
	assert.Equal(t, []int{10}, buf[:n], "room again after the reader caught up")
	st := s.Stats()
	assert.Equal(t, uint64(11), st.Published)
	assert.Equal(t, uint64(7), st.Dropped)
	require.NoError(t, b.Close())
}

func TestBrokerNextWaitsForPublishAndHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker[string]()
		s := b.Subscribe("a.*")
		got := make(chan string)
		go func() {
			v, err := s.Next(context.Background())
			assert.NoError(t, err)
			got <- v
		}()
		synctest.Wait() // parked
		require.NoError(t, b.Publish(context.Background(), "a.b", "x"))
		assert.Equal(t, "x", <-got)

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := s.Next(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))

		// A ready event is returned even with a context that has ended.
		require.NoError(t, b.Publish(context.Background(), "a.c", "y"))
		v, err := s.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, "y", v)

		// Unsubscribe wakes a parked reader, which then ends.
		done := make(chan error)
		go func() { _, err := s.Next(context.Background()); done <- err }()
		synctest.Wait()
		s.Unsubscribe()
		assert.ErrorIs(t, <-done, ErrClosed)
		assert.NoError(t, s.Err(), "ended by Unsubscribe, not Close")
		require.NoError(t, b.Close())
	})
}

func TestBrokerEventsEndsOnCloseAfterWhatIsHeld(t *testing.T) {
	b := NewBroker[int](SubBuffer(8))
	s := b.Subscribe("t")
	for i := range 5 {
		require.NoError(t, b.Publish(context.Background(), "t", i))
	}
	require.NoError(t, b.Close())
	var got []int
	for v := range s.Events(context.Background()) {
		got = append(got, v)
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4}, got)
	assert.ErrorIs(t, s.Err(), ErrClosed)
	n, err := s.NextBatch(context.Background(), make([]int, 1))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, ErrClosed)
}

func TestBrokerUnsubscribedReaderIsEvictedRatherThanBlocking(t *testing.T) {
	b := NewBroker[int](SubPolicy(BlockPublisher), SubBuffer(2))
	gone := b.Subscribe("t")
	live := b.Subscribe("t")
	require.NoError(t, b.Publish(context.Background(), "t", 1))
	require.NoError(t, b.Publish(context.Background(), "t", 2))
	gone.Unsubscribe() // holds 1 and 2, reads neither
	buf := make([]int, 4)
	for i := 3; i < 6; i++ {
		n, err := live.NextBatch(context.Background(), buf)
		require.NoError(t, err)
		assert.NotZero(t, n)
		// Would block forever if gone still held the ring.
		require.NoError(t, b.Publish(context.Background(), "t", i))
	}
	st := gone.Stats()
	assert.Equal(t, uint64(2), st.Published)
	assert.Equal(t, uint64(2), st.Dropped, "evicted when the room was needed")
	_, err := gone.Next(context.Background())
	assert.ErrorIs(t, err, ErrClosed)
	requireBrokerIdentity(t, b.Stats())
	require.NoError(t, b.Close())
}

func TestBrokerAppendSubStatsAndMaxSubBuffer(t *testing.T) {
	b := NewBroker[int]()
	b.Subscribe("a", SubBuffer(2))
	b.Subscribe("a.>", SubPolicy(BlockPublisher))
	require.NoError(t, b.Publish(context.Background(), "a", 1))
	all := b.AppendSubStats(nil)
	require.Len(t, all, 2)
	for _, st := range all {
		assert.Equal(t, st.Published, st.Delivered+st.Dropped+st.Buffered, "%+v", st)
	}
	assert.Panics(t,
		func() { SubBuffer(MaxSubBuffer + 1) })
	assert.NotPanics(t, func() { SubBuffer(MaxSubBuffer) })
	require.NoError(t, b.Close())
	assert.Empty(t, b.AppendSubStats(nil))
}

// TestBrokerRingMemoryForManySubscriptions measures the heap that 10,000
// subscriptions of one group, with SubBuffer(1024), take: one ring and a
// cursor each, against 80 MB for a channel of 1024 eight-byte events each.
func TestBrokerRingMemoryForManySubscriptions(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	for _, policy := range []Overflow{BlockPublisher, DropOldest} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b := NewBroker[int](SubBuffer(1024), SubPolicy(policy))
		for range 10000 {
			b.Subscribe("t")
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		used := after.HeapAlloc - before.HeapAlloc
		t.Logf("%v: %.1f MB for 10,000 subscriptions", policy, float64(used)/(1<<20))
		assert.Less(t, used, uint64(16<<20))
		require.NoError(t, b.Publish(context.Background(), "t", 1))
		require.NoError(t, b.Close())
		runtime.KeepAlive(b)
	}
}

// A parked reader waits on its own wake channel, with a select on ctx's
// Done beside it when its context can end, and publishers wake the
// parked readers bit by bit of the group's park set (broker_park.go).
// TestBrokerEveryParkedReaderWokenOncePerEvent publishes to 300 readers
// that are all parked (synctest.Wait) when each event comes, over five
// words of the park set, two in three with a context that never ends and
// the others with one that can. Each event must wake every reader, and
// wake it once: one batch per event, holding that event.
func TestBrokerEveryParkedReaderWokenOncePerEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const subs, events = 300, 20
		b := NewBroker[int](SubBuffer(4), SubPolicy(BlockPublisher))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		batches := make([]atomic.Int64, subs)
		var wg sync.WaitGroup
		for j := range subs {
			s := b.Subscribe("t")
			readCtx := context.Background()
			if j%3 == 2 {
				readCtx = ctx // Done is not nil: waits in a select
			}
			wg.Go(func() {
				buf := make([]int, 8)
				for {
					n, err := s.NextBatch(readCtx, buf)
					if err != nil {
						return
					}
					k := batches[j].Add(1)
					assert.Equal(t, []int{int(k - 1)}, buf[:n], "reader %d", j)
				}
			})
		}
		synctest.Wait()
		for i := range events {
			require.NoError(t, b.Publish(context.Background(), "t", i))
			synctest.Wait()
			for j := range batches {
				require.Equal(t, int64(i+1), batches[j].Load(), "reader %d after event %d", j, i)
			}
		}
		require.NoError(t, b.Close())
		wg.Wait()
		assert.Equal(t, uint64(subs*events), b.Stats().Delivered)
	})
}
