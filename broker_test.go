package conc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// drain receives everything buffered in ch without waiting.
func drainC[E any](ch <-chan E) []E {
	var out []E
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, v)
		default:
			return out
		}
	}
}

// requireBrokerIdentity checks the BrokerStats identity on a quiet broker.
func requireBrokerIdentity(t *testing.T, st BrokerStats) {
	t.Helper()
	require.Equal(t, st.Deliveries, st.Delivered+st.DroppedNewest+st.DroppedOldest+st.DroppedBlock, "%+v", st)
}

// pubMsg identifies one message of one publisher.
type pubMsg struct{ pub, seq int }

func TestBrokerDeliversEveryMessageInOrderPerPublisher(t *testing.T) {
	const pubs, subs, perPub = 8, 50, 200
	for _, policy := range []Overflow{BlockPublisher, DropNewest, DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			b := NewBroker[pubMsg](SubBuffer(8), SubPolicy(policy))
			var consumers sync.WaitGroup
			var received atomic.Uint64
			for range subs {
				s := b.Subscribe("orders.created")
				consumers.Go(func() {
					last := make([]int, pubs)
					for i := range last {
						last[i] = -1
					}
					for m := range s.C() {
						// FIFO per publisher: gaps only where the policy drops.
						if m.seq <= last[m.pub] || (policy == BlockPublisher && m.seq != last[m.pub]+1) {
							t.Errorf("publisher %d: got %d after %d", m.pub, m.seq, last[m.pub])
						}
						last[m.pub] = m.seq
						received.Add(1)
					}
				})
			}
			var publishers sync.WaitGroup
			for p := range pubs {
				publishers.Go(func() {
					for i := range perPub {
						assert.NoError(t, b.Publish(context.Background(), "orders.created", pubMsg{p, i}))
					}
				})
			}
			publishers.Wait()
			if policy == BlockPublisher {
				// Block loses nothing while the subscriptions are live;
				// once Close ends them, C's goroutine waits for nobody
				// and drops what does not fit in the channel (C's
				// contract), so the consumers get everything first.
				for received.Load() < pubs*perPub*subs {
					runtime.Gosched()
				}
			}
			require.NoError(t, b.Close())
			consumers.Wait()

			st := b.Stats()
			requireBrokerIdentity(t, st)
			assert.Equal(t, uint64(pubs*perPub), st.Published)
			assert.Equal(t, uint64(pubs*perPub*subs), st.Deliveries)
			assert.Equal(t, received.Load(), st.Delivered, "consumers drained every channel")
			if policy == BlockPublisher {
				assert.Equal(t, uint64(pubs*perPub*subs), st.Delivered)
			}
		})
	}
}

func TestBrokerDropPoliciesKeepTheRightMessages(t *testing.T) {
	tests := []struct {
		policy  Overflow
		buffer  int
		want    []int
		dropped func(BrokerStats) uint64
	}{
		{DropNewest, 3, []int{0, 1, 2}, func(s BrokerStats) uint64 { return s.DroppedNewest }},
		{DropOldest, 3, []int{7, 8, 9}, func(s BrokerStats) uint64 { return s.DroppedOldest }},
		// SubBuffer(0) holds one event: a ring needs a slot.
		{DropNewest, 0, []int{0}, func(s BrokerStats) uint64 { return s.DroppedNewest }},
		{DropOldest, 0, []int{9}, func(s BrokerStats) uint64 { return s.DroppedOldest }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/buffer=%d", tt.policy, tt.buffer), func(t *testing.T) {
			b := NewBroker[int]()
			defer b.Close() // ends C's goroutine
			s := b.Subscribe("t", SubBuffer(tt.buffer), SubPolicy(tt.policy))
			for i := range 10 {
				require.NoError(t, b.Publish(context.Background(), "t", i))
			}
			st := b.Stats()
			assert.Equal(t, len(tt.want), st.Buffered)
			assert.Equal(t, tt.want, drainC(s.C()))
			dropped := uint64(10 - len(tt.want))
			assert.Equal(t, dropped, s.Dropped())
			assert.Equal(t, dropped, tt.dropped(st))
			assert.Equal(t, uint64(len(tt.want)), st.Delivered)
			assert.Equal(t, uint64(10), st.Deliveries)
			requireBrokerIdentity(t, st)
		})
	}
}

func TestBrokerDropOldestUnderConcurrentPublishersKeepsOrderAndNewest(t *testing.T) {
	b := NewBroker[pubMsg]()
	s := b.Subscribe("t", SubBuffer(4), SubPolicy(DropOldest))
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range 500 {
				require.NoError(t, b.Publish(context.Background(), "t", pubMsg{p, i}))
			}
		})
	}
	// A slow consumer, racing with the evictions.
	got := make(chan []pubMsg)
	var n atomic.Uint64
	go func() {
		var out []pubMsg
		for m := range s.C() {
			out = append(out, m)
			n.Add(1)
		}
		got <- out
	}()
	wg.Wait()
	// The last message of every publisher was pushed after all of its
	// earlier ones, so whatever else is evicted, the final buffer ends the
	// way the publishers ended. The consumer gets all that C's goroutine
	// took before Close: after it, C's goroutine drops what does not fit
	// in the channel (C's contract).
	for st := s.Stats(); st.Buffered != 0 || n.Load() != st.Delivered; st = s.Stats() {
		runtime.Gosched()
	}
	require.NoError(t, b.Close())
	out := <-got
	require.NotEmpty(t, out)
	assert.Equal(t, 499, out[len(out)-1].seq, "the newest message is never the one lost")
	last := map[int]int{}
	for _, m := range out {
		if prev, ok := last[m.pub]; ok {
			require.Greater(t, m.seq, prev, "publisher %d out of order", m.pub)
		}
		last[m.pub] = m.seq
	}
	st := b.Stats()
	requireBrokerIdentity(t, st)
	assert.Equal(t, uint64(len(out)), st.Delivered)
	assert.Equal(t, uint64(2000), st.Deliveries)
	assert.Equal(t, st.DroppedOldest, s.Dropped())
}

func TestBrokerBlockWithStuckSubscriberReturnsWhenContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker[int](SubPolicy(BlockPublisher), SubBuffer(1))
		stuck := b.Subscribe("t")
		// Another buffer, another group: its ring is not held back by
		// stuck (TestBrokerBlockGroupDropsForEveryMember covers one group).
		live := b.Subscribe("t", SubBuffer(2))
		var got []int
		done := make(chan struct{})
		go func() {
			defer close(done)
			for v := range live.C() {
				got = append(got, v)
			}
		}()

		require.NoError(t, b.Publish(context.Background(), "t", 1)) // fills stuck's buffer
		cause := errors.New("publisher gave up")
		ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, cause)
		defer cancel()
		start := time.Now()
		err := b.Publish(ctx, "t", 2)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, cause)
		assert.Equal(t, time.Second, time.Since(start))

		synctest.Wait()
		assert.Equal(t, []int{1, 2}, got, "the live subscriber received while the stuck one blocked")
		assert.Equal(t, uint64(1), stuck.Dropped())
		st := b.Stats()
		assert.Equal(t, uint64(1), st.DroppedBlock)
		requireBrokerIdentity(t, st)
		require.NoError(t, b.Close())
		<-done
	})
}

func TestBrokerBlockServesOtherSubscribersBeforeWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker[int](SubBuffer(1))
		stuck := b.Subscribe("t", SubPolicy(BlockPublisher)) // first in the walk
		other := b.Subscribe("t")
		require.NoError(t, b.Publish(context.Background(), "t", 1))
		assert.Equal(t, []int{1}, drainC(other.C()))

		published := make(chan error)
		go func() { published <- b.Publish(context.Background(), "t", 2) }()
		synctest.Wait() // the publisher is now durably blocked on stuck
		assert.Equal(t, []int{2}, drainC(other.C()), "delivered before the publisher waited")

		assert.Equal(t, 1, <-stuck.C()) // room: the publisher finishes
		require.NoError(t, <-published)
		synctest.Wait() // C's goroutine forwards 2
		assert.Equal(t, []int{2}, drainC(stuck.C()))
		require.NoError(t, b.Close())
	})
}

func TestBrokerUnsubscribeWakesBlockedPublisher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker[int](SubPolicy(BlockPublisher), SubBuffer(1))
		s := b.Subscribe("t")
		require.NoError(t, b.Publish(context.Background(), "t", 1))
		published := make(chan error)
		go func() { published <- b.Publish(context.Background(), "t", 2) }()
		synctest.Wait()
		s.Unsubscribe()
		require.NoError(t, <-published)
		assert.Equal(t, []int{1}, drainC(s.C()), "buffered messages stay readable")
		_, open := <-s.C()
		assert.False(t, open)
		st := b.Stats()
		assert.Equal(t, uint64(1), st.DroppedBlock)
		assert.Equal(t, 0, st.Subscribers)
		requireBrokerIdentity(t, st)
	})
}

func TestBrokerUnsubscribeFromInsideConsumerLoop(t *testing.T) {
	for _, policy := range []Overflow{BlockPublisher, DropNewest, DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			b := NewBroker[int](SubBuffer(2), SubPolicy(policy))
			s := b.Subscribe("t")
			stop := make(chan struct{})
			var publisher sync.WaitGroup
			publisher.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					assert.NoError(t, b.Publish(context.Background(), "t", i))
				}
			})
			n := 0
			for range s.C() { // ends only if Unsubscribe closes C
				if n++; n == 5 {
					s.Unsubscribe()
					s.Unsubscribe() // idempotent
				}
			}
			close(stop)
			publisher.Wait()
			assert.GreaterOrEqual(t, n, 5)
			assert.Equal(t, 0, b.Stats().Subscribers)
			requireBrokerIdentity(t, b.Stats())
		})
	}
}

func TestBrokerPublishFromInsideSubscriberDoesNotDeadlock(t *testing.T) {
	for _, policy := range []Overflow{DropNewest, DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			b := NewBroker[int](SubBuffer(1), SubPolicy(policy))
			s := b.Subscribe("echo")
			require.NoError(t, b.Publish(context.Background(), "echo", 0))
			for v := range s.C() {
				if v == 100 {
					break
				}
				// Twice per message: the buffer of one is full on the second.
				require.NoError(t, b.Publish(context.Background(), "echo", v+1))
				require.NoError(t, b.Publish(context.Background(), "echo", v+1))
			}
			require.NoError(t, b.Close())
		})
	}
	t.Run("Block", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := NewBroker[int](SubBuffer(1), SubPolicy(BlockPublisher))
			s := b.Subscribe("echo")
			require.NoError(t, b.Publish(context.Background(), "echo", 0))
			<-s.C()
			// The consumer publishes to itself without reading: the ring,
			// C's goroutine and C's buffer fill, then Publish waits
			// until its context ends.
			var err error
			n := 0
			for ; err == nil && n < 10; n++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err = b.Publish(ctx, "echo", n+1)
				cancel()
			}
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.LessOrEqual(t, n, 4, "ring 1 + forwarder 1 + channel 1, then the wait")
			// Read while the subscription is live: once Close ends it,
			// C's goroutine waits for nobody and drops what does not
			// fit in the channel (C's contract). A missing event leaves
			// this loop blocked, which synctest reports.
			got := 0
			for got < n-1 {
				<-s.C()
				got++
			}
			require.NoError(t, b.Close())
			for range s.C() {
				got++
			}
			assert.Equal(t, n-1, got, "what was accepted is all there")
		})
	})
}

func TestBrokerCloseClosesSubscriptionsAndRejectsUse(t *testing.T) {
	b := NewBroker[int]()
	s := b.Subscribe("t")
	w := b.Subscribe("t.>")
	require.NoError(t, b.Publish(context.Background(), "t", 1))
	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "idempotent")

	assert.Equal(t, []int{1}, drainC(s.C()))
	for _, sub := range []*Subscription[int]{s, w} {
		_, open := <-sub.C()
		assert.False(t, open)
		assert.ErrorIs(t, sub.Err(), ErrClosed)
	}
	assert.ErrorIs(t, b.Publish(context.Background(), "t", 2), ErrClosed)

	late := b.Subscribe("t")
	_, open := <-late.C()
	assert.False(t, open, "a subscription on a closed broker is closed")
	assert.ErrorIs(t, late.Err(), ErrClosed)
	late.Unsubscribe()
	s.Unsubscribe()
	assert.Equal(t, 0, b.Stats().Subscribers)
}

func TestBrokerUnsubscribedSubscriptionErrIsNil(t *testing.T) {
	b := NewBroker[int]()
	s := b.Subscribe("t")
	assert.NoError(t, s.Err())
	s.Unsubscribe()
	_, open := <-s.C()
	assert.False(t, open)
	assert.NoError(t, s.Err())
	require.NoError(t, b.Publish(context.Background(), "t", 1))
	assert.Equal(t, uint64(0), b.Stats().Deliveries)
}

func TestBrokerZeroValueIsReady(t *testing.T) {
	var b Broker[string]
	require.NoError(t, b.Publish(context.Background(), "nobody.listens", "x"))
	s := b.Subscribe("a.*")
	assert.Equal(t, DefaultSubBuffer, cap(s.C()))
	require.NoError(t, b.Publish(context.Background(), "a.b", "y"))
	assert.Equal(t, "y", <-s.C())
	require.NoError(t, b.Close())
	var zero Subscription[string]
	zero.Unsubscribe() // harmless
}

func TestBrokerWildcardMatching(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"orders.created", []string{"orders.created"}, []string{"orders", "orders.created.eu", "orders.deleted"}},
		{"orders.*", []string{"orders.created", "orders.x"}, []string{"orders", "orders.a.b", "order.a"}},
		{"orders.>", []string{"orders.a", "orders.a.b.c"}, []string{"orders", "other.a"}},
		{"*.created", []string{"orders.created", "users.created"}, []string{"created", "a.b.created"}},
		{"*", []string{"a", "orders"}, []string{"a.b"}},
		{">", []string{"a", "a.b.c"}, nil},
		{"a.*.c.>", []string{"a.b.c.d", "a.x.c.d.e"}, []string{"a.b.c", "a.b.x.d", "b.b.c.d"}},
		{"*.*", []string{"a.b"}, []string{"a", "a.b.c"}},
		{"a.*.>", []string{"a.b.c", "a.b.c.d"}, []string{"a.b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			b := NewBroker[string](SubBuffer(16))
			s := b.Subscribe(tt.pattern)
			// Neighbours on the same trie paths must not disturb matching.
			b.Subscribe("orders.*.eu")
			b.Subscribe("zz.>")
			for _, topic := range append(append([]string{}, tt.match...), tt.miss...) {
				require.NoError(t, b.Publish(context.Background(), topic, topic))
			}
			assert.Equal(t, tt.match, drainC(s.C()))
			require.NoError(t, b.Close())
		})
	}
}

func TestBrokerMatchesOverlappingPatternsOncePerSubscription(t *testing.T) {
	b := NewBroker[int]()
	subs := []*Subscription[int]{
		b.Subscribe("a.b.c"), b.Subscribe("a.b.c"), b.Subscribe("a.*.c"),
		b.Subscribe("a.>"), b.Subscribe(">"), b.Subscribe("*.b.*"), b.Subscribe("a.b.>"),
	}
	require.NoError(t, b.Publish(context.Background(), "a.b.c", 7))
	for _, s := range subs {
		assert.Equal(t, []int{7}, drainC(s.C()), s.String())
	}
	assert.Equal(t, uint64(len(subs)), b.Stats().Deliveries)
	require.NoError(t, b.Close())
}

func TestBrokerUnsubscribeAllLeavesEmptySnapshot(t *testing.T) {
	b := NewBroker[int]()
	patterns := []string{"a", "a.b", "a.*", "a.>", "*.b.>", "x.y.z", "x.*.z", "a.b"}
	var subs []*Subscription[int]
	for _, p := range patterns {
		subs = append(subs, b.Subscribe(p))
	}
	assert.Equal(t, len(patterns), b.Stats().Subscribers)
	for _, i := range rand.Perm(len(subs)) {
		subs[i].Unsubscribe()
	}
	sn := b.snap.Load()
	assert.Nil(t, sn.wild, "trie pruned")
	assert.Empty(t, sn.exact)
	assert.Equal(t, 0, sn.n)
}

func TestBrokerRejectsInvalidTopics(t *testing.T) {
	b := NewBroker[int]()
	b.Subscribe("a.b") // an exact subscriber must not let a bad topic through
	for _, topic := range []string{"", ".", "a..b", ".a", "a.", "a.*", "a.>", ">", "a*", "a.b>"} {
		err := b.Publish(context.Background(), topic, 1)
		assert.ErrorIs(t, err, ErrInvalidTopic, "topic %q", topic)
	}
	for _, pattern := range []string{"", "a..b", "a.>.b", "*x", "a.b*", ">.a", ".", "a."} {
		assert.PanicsWithValue(t, fmt.Sprintf("conc: invalid subscription pattern %q: %s", pattern, func() string {
			_, p := parseTopic(pattern, true)
			return p
		}()), func() { b.Subscribe(pattern) }, "pattern %q", pattern)
	}
	assert.PanicsWithValue(t, "conc: invalid subscription pattern \"a.>.b\": \">\" must be the last token",
		func() { b.Subscribe("a.>.b") })
	require.NoError(t, b.Close())
}

func TestBrokerOptionsRejectBadValues(t *testing.T) {
	assert.PanicsWithValue(t, "conc: subscription buffer must not be negative, got -1", func() { SubBuffer(-1) })
	assert.PanicsWithValue(t, "conc: unknown subscription policy 7", func() { SubPolicy(Overflow(7)) })
	assert.Equal(t, "Overflow(7)", Overflow(7).String())
	assert.PanicsWithValue(t, "conc: NewBroker option 0 must not be nil", func() { NewBroker[int](nil) })
	b := NewBroker[int]()
	assert.PanicsWithValue(t, "conc: Subscribe option 1 must not be nil", func() { b.Subscribe("t", SubBuffer(1), nil) })
	assert.Zero(t, b.Stats().Subscribers)
}

func TestBrokerOptionsSetDefaultsAndOverride(t *testing.T) {
	b := NewBroker[int](SubBuffer(2), SubPolicy(DropOldest))
	d := b.Subscribe("t")
	o := b.Subscribe("t", SubBuffer(5), SubPolicy(BlockPublisher))
	assert.Equal(t, 2, cap(d.C()))
	assert.Equal(t, DropOldest, d.policy)
	assert.Equal(t, 5, cap(o.C()))
	assert.Equal(t, BlockPublisher, o.policy)
	require.NoError(t, b.Close())
}

func TestBrokerPublishDoesNotAllocate(t *testing.T) {
	b := NewBroker[int](SubBuffer(1))
	b.Subscribe("a.b")
	b.Subscribe("a.*")
	b.Subscribe("a.>")
	ctx := context.Background()
	for _, topic := range []string{"a.b", "a.c", "x.y", "a.b.c"} {
		allocs := testing.AllocsPerRun(100, func() { _ = b.Publish(ctx, topic, 1) })
		assert.Zero(t, allocs, topic)
	}
	require.NoError(t, b.Close())
	var zero Broker[int]
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = zero.Publish(ctx, "a.b", 1) }), "zero Broker")
}

// The patterns, topics and policies the stress tests draw from: literal
// and wildcard patterns that match some topics and not others.
var (
	stressPatterns = []string{"s.a", "s.b", "s.*", "s.>", ">", "s.a.x", "*.a"}
	stressTopics   = []string{"s.a", "s.b", "s.a.x", "t.a"}
	stressPolicies = []Overflow{DropNewest, DropOldest, BlockPublisher}
)

// TestBrokerStressConcurrentUse runs subscribers that come and go, publishers
// and a Close, all at once, then checks that nothing panicked or leaked
// (goleak in TestMain), that each consumer saw every publisher's messages
// in order, and that the counters add up against what consumers received.
func TestBrokerStressConcurrentUse(t *testing.T) {
	b := NewBroker[pubMsg](SubBuffer(4))
	patterns, topics, policies := stressPatterns, stressTopics, stressPolicies
	var received atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for c := range 12 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := b.Subscribe(patterns[rng.IntN(len(patterns))], SubPolicy(policies[rng.IntN(3)]))
				last := map[int]int{}
				quit := rng.IntN(50)
				n := 0
				for m := range s.C() {
					if prev, ok := last[m.pub]; ok && m.seq <= prev {
						t.Errorf("publisher %d: %d after %d", m.pub, m.seq, prev)
					}
					last[m.pub] = m.seq
					received.Add(1)
					if n++; n == quit {
						s.Unsubscribe() // from inside the loop; keep draining
					}
				}
				if s.Err() != nil {
					return // broker closed
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
				if i%7 == 0 {
					cancel() // Block subscribers that are full drop this one
				}
				err := b.Publish(ctx, topics[i%len(topics)], pubMsg{p, i})
				cancel()
				if errors.Is(err, ErrClosed) {
					return
				}
				published.Add(1)
			}
		})
	}
	for published.Load() < 20000 {
		s := b.Subscribe(patterns[0])
		s.Unsubscribe()
		for range s.C() { // closes as soon as the publishers inside leave
			received.Add(1)
		}
	}
	close(stop)
	require.NoError(t, b.Close())
	publishers.Wait()
	wg.Wait()

	st := b.Stats()
	requireBrokerIdentity(t, st)
	assert.Equal(t, published.Load(), st.Published)
	assert.Equal(t, received.Load(), st.Delivered, "every delivered message was received")
	assert.Equal(t, 0, st.Subscribers)
}

func TestBrokerBlockedPublisherDoesNotDelayOtherUnsubscribes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBroker[int](SubBuffer(1))
		stuck := b.Subscribe("a", SubPolicy(BlockPublisher))
		other := b.Subscribe("b")
		require.NoError(t, b.Publish(context.Background(), "a", 1))
		published := make(chan error)
		go func() { published <- b.Publish(context.Background(), "a", 2) }()
		synctest.Wait() // blocked on stuck, outside the epoch
		other.Unsubscribe()
		_, open := <-other.C()
		assert.False(t, open, "closed at once")
		stuck.Unsubscribe()
		require.NoError(t, <-published)
		require.NoError(t, b.Close())
	})
}

func TestBrokerUnsubscribeTwiceKeepsOtherSubscriptions(t *testing.T) {
	for _, pattern := range []string{"a.b", "a.*", "a.>", "*.b"} {
		t.Run(pattern, func(t *testing.T) {
			b := NewBroker[int]()
			first := b.Subscribe(pattern)
			second := b.Subscribe(pattern)
			first.Unsubscribe()
			first.Unsubscribe()
			assert.Equal(t, 1, b.Stats().Subscribers)
			require.NoError(t, b.Publish(context.Background(), "a.b", 1))
			assert.Equal(t, []int{1}, drainC(second.C()))
			second.Unsubscribe()
			assert.Equal(t, 0, b.Stats().Subscribers)
		})
	}
}

// topicMatchRef is the obvious matcher, for checking the trie against.
func topicMatchRef(pattern, topic string) bool {
	ps, ts := strings.Split(pattern, "."), strings.Split(topic, ".")
	for i, p := range ps {
		switch {
		case p == ">":
			return len(ts) > i
		case i >= len(ts):
			return false
		case p != "*" && p != ts[i]:
			return false
		}
	}
	return len(ps) == len(ts)
}

func TestBrokerTrieAgreesWithReferenceMatcher(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	token := func(wild bool) string {
		if wild {
			switch rng.IntN(4) {
			case 0:
				return "*"
			case 1:
				return ">"
			}
		}
		return []string{"a", "b", "c"}[rng.IntN(3)]
	}
	topicOf := func(wild bool) string {
		n := 1 + rng.IntN(4)
		toks := make([]string, n)
		for i := range toks {
			toks[i] = token(wild)
			if toks[i] == ">" {
				toks = toks[:i+1]
				break
			}
		}
		return strings.Join(toks, ".")
	}
	b := NewBroker[string](SubBuffer(1000))
	subs := map[*Subscription[string]]string{}
	for range 60 {
		p := topicOf(true)
		subs[b.Subscribe(p)] = p
	}
	// Churn, so that the trie has been path-copied both ways.
	for s := range subs {
		if rng.IntN(3) == 0 {
			s.Unsubscribe()
			delete(subs, s)
		}
	}
	var topics []string
	for range 300 {
		topic := topicOf(false)
		topics = append(topics, topic)
		require.NoError(t, b.Publish(context.Background(), topic, topic))
	}
	for s, p := range subs {
		var want []string
		for _, topic := range topics {
			if topicMatchRef(p, topic) {
				want = append(want, topic)
			}
		}
		assert.Equal(t, want, drainC(s.C()), "pattern %q", p)
	}
	require.NoError(t, b.Close())
}

func FuzzBrokerMatch(f *testing.F) {
	f.Add("a.*.c", "a.b.c")
	f.Add("a.>", "a")
	f.Add("*", "x.y")
	f.Add("a..b", "a.b")
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		b := NewBroker[int]()
		defer b.Close()
		_, problem := parseTopic(pattern, true)
		if problem != "" {
			assert.Panics(t, func() { b.Subscribe(pattern) })
			return
		}
		s := b.Subscribe(pattern)
		err := b.Publish(context.Background(), topic, 1)
		if _, problem := parseTopic(topic, false); problem != "" {
			require.ErrorIs(t, err, ErrInvalidTopic)
			return
		}
		require.NoError(t, err)
		assert.Equal(t, topicMatchRef(pattern, topic), len(drainC(s.C())) == 1, "%q on %q", pattern, topic)
	})
}

func TestBrokerBlockWithMoreFullSubscribersThanNotedStillEndsWithContext(t *testing.T) {
	const n = maxWaits + 44 // past what the first pass can note
	b := NewBroker[int](SubBuffer(1), SubPolicy(BlockPublisher))
	subs := make([]*Subscription[int], n)
	for i := range subs {
		subs[i] = b.Subscribe("t")
	}
	require.NoError(t, b.Publish(context.Background(), "t", 1)) // fills every buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, b.Publish(ctx, "t", 2), context.Canceled)
	st := b.Stats()
	assert.Equal(t, uint64(n), st.DroppedBlock)
	requireBrokerIdentity(t, st)

	// With room again, every subscriber gets the next message, in order.
	for _, s := range subs {
		assert.Equal(t, []int{1}, drainC(s.C()))
	}
	require.NoError(t, b.Publish(ctx, "t", 3))
	for _, s := range subs {
		assert.Equal(t, 3, <-s.C()) // forwarded by C's goroutine
	}
	require.NoError(t, b.Close())
}

func TestBrokerUnsubscribeRacingPublishersClosesEveryChannel(t *testing.T) {
	b := NewBroker[int](SubBuffer(1))
	stop := make(chan struct{})
	var publishers sync.WaitGroup
	for range 4 {
		publishers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := b.Publish(context.Background(), "t", i); err != nil {
					t.Error(err) // testify's helpers would dominate the loop
					return
				}
				// Publishers that never block keep the woken test
				// goroutine waiting for a preemption (10 ms) each time.
				runtime.Gosched()
			}
		})
	}
	policies := []Overflow{DropNewest, DropOldest, BlockPublisher}
	for i := range 5000 {
		s := b.Subscribe("t", SubPolicy(policies[i%3]))
		if i%2 == 0 {
			<-s.C() // let a publisher in, sometimes
		}
		s.Unsubscribe()
		for range s.C() { // must end: C is closed once publishers move on
		}
	}
	close(stop)
	publishers.Wait()
	st := b.Stats()
	requireBrokerIdentity(t, st)
	assert.Equal(t, 0, st.Subscribers)
}

func TestBrokerStatsPublishedNeverExceedsPublishCallsUnderRefusals(t *testing.T) {
	// Refused publishes enter the epoch and then count themselves as
	// refused; a Stats that read the refusals after the entries could
	// subtract more than it added and wrap Published round to ~1.8e19.
	b := NewBroker[int]()
	require.NoError(t, b.Close())
	const perPublisher = 20000
	var calls atomic.Uint64
	var publishers sync.WaitGroup
	for range 2 {
		publishers.Go(func() {
			for i := range perPublisher {
				calls.Add(1)
				if err := b.Publish(context.Background(), "t", i); !errors.Is(err, ErrClosed) {
					t.Errorf("Publish on a closed broker: %v", err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { publishers.Wait(); close(done) }()
	for {
		// A refused Publish counts as published between its entry and
		// its refusal, so only the bound is certain mid-flight: never
		// more than the calls made (each call is counted before it runs).
		st := b.Stats()
		if n := calls.Load(); st.Published > n {
			t.Fatalf("Published = %d after %d calls", st.Published, n)
		}
		select {
		case <-done:
			assert.Zero(t, b.Stats().Published)
			return
		default:
		}
	}
}

func TestBrokerBlockPublisherCountsSubscriptionsItSkipsAfterReentering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One more full Block subscription than the first pass can note
		// makes the publisher wait outside the epoch; the one after it is
		// then found closing and skipped, which must count as a drop.
		const n = maxWaits + 2
		b := NewBroker[int](SubBuffer(1), SubPolicy(BlockPublisher))
		subs := make([]*Subscription[int], n)
		for i := range subs {
			subs[i] = b.Subscribe("t")
		}
		require.NoError(t, b.Publish(context.Background(), "t", 1)) // fills every buffer
		done := make(chan error, 1)
		go func() { done <- b.Publish(context.Background(), "t", 2) }()
		synctest.Wait() // blocked on the first unnoted subscription
		for _, s := range subs {
			s.Unsubscribe()
		}
		require.NoError(t, <-done)
		st := b.Stats()
		assert.Equal(t, uint64(2), st.Published)
		assert.Equal(t, uint64(n), st.Delivered, "the first message, in every buffer")
		assert.Equal(t, uint64(n), st.DroppedBlock, "the second, to nobody: %+v", st)
		assert.Equal(t, uint64(2*n), st.Deliveries)
		requireBrokerIdentity(t, st)
	})
}
