package conc

import (
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/concpatterns/conc/internal/benchkit"
)

// ringFloorBroker is the floor of a broker that delivers through rings, as
// the Broker does, written by hand for the one shape of the broker suites
// (one topic, one Block group, every subscriber known before the first
// event, nothing lost, no subscriber leaving before Close). It is not a
// usable broker and it skips what conc does for its contracts: topics,
// policies and counters, the hold on a reader's cursor while it copies
// (conc's readers take it with a CAS so that an eviction cannot move the
// cursor under a copy), the end of a subscription, the check for
// publishers waiting for room after each batch, the recomputation of the
// gate under a mutex, and knowing which readers are parked (conc's park
// set, loaded by every publish).
//
// direct-ring has one ring shared by every publisher, as conc has: a
// publisher claims a sequence with a CAS on the tail, writes the slot and
// stores its stamp. direct-lanes (BenchmarkBroker only) gives each
// publisher a ring of its own through benchkit.PublisherBroker, which the
// Broker's API has no counterpart for (a Publish call has no publisher
// identity): a publisher then owns its tail, which it stores without a
// CAS, and writes lines no other publisher writes, and readers take from
// every ring. Either way a ring has as many slots as conc's for
// SubBuffer(benchkit.BrokerBuffer), and a publisher a whole buffer ahead
// of the slowest reader recomputes the least cursor and yields until
// there is room.
//
// In the streaming suite (BenchmarkBroker) a reader that finds nothing
// yields and looks again, for good, where conc's reader yields once and
// then parks: the floor pays for no park and no wake-up, but its readers
// keep loading the slot line a publisher is writing. In the parked suite
// (BenchmarkBrokerParked, tokens set) each publish sends every reader a
// token on its own channel, in order, and a reader that finds nothing
// waits for one: the ring plus the one channel operation per parked
// reader that waking a goroutine takes.
type ringFloorBroker struct {
	lanes    []*ringFloorLane // one shared by all publishers, or one each
	laned    bool             // a lane per Publisher handle
	tokens   bool             // readers wait for a token when there is nothing to read
	nextLane int              // Publisher handles given; before the timed region
	// readers is filled before the timed region and only read after.
	readers []*ringFloorReader
	closed  atomic.Bool
}

// ringFloorLanes is the most publishers direct-lanes serves.
const ringFloorLanes = 2

// A ringFloorLane is one ring of the floor: its tail and its gate each on
// a line of their own, so that the publishers' writes to them do not take
// from the readers the line with slots and mask.
type ringFloorLane struct {
	tail  atomic.Uint64
	_     [56]byte
	gate  atomic.Uint64 // every reader's cursor on this lane is at least gate
	_     [56]byte
	slots []ringFloorSlot
	mask  uint64
	_     [96]byte // to 256 bytes, a size class whose objects start on a line
}

// A ringFloorSlot is one event of a lane and its stamp.
type ringFloorSlot struct {
	stamp atomic.Uint64 // sequence+1 once written
	val   int
}

// A ringFloorReader is one subscriber of the floor.
type ringFloorReader struct {
	cursors [ringFloorLanes]atomic.Uint64 // one per lane, written by the reader only
	wake    chan struct{}                 // tokens, when the floor's readers wait for them
	_       [40]byte
}

// newRingFloorBroker returns direct-ring (laned false) or direct-lanes,
// whose readers wait for tokens when tokens is set and yield otherwise.
func newRingFloorBroker(tokens, laned bool) *ringFloorBroker {
	r := &ringFloorBroker{tokens: tokens, laned: laned}
	n := 1
	if laned {
		n = ringFloorLanes
	}
	for range n {
		// Like conc's ring for SubBuffer(BrokerBuffer): the least power of
		// two that holds the buffer.
		size := uint64(1) << bits.Len64(benchkit.BrokerBuffer-1)
		r.lanes = append(r.lanes, &ringFloorLane{slots: make([]ringFloorSlot, size), mask: size - 1})
	}
	return r
}

// Subscribe is not used: the floor is read through SubscribePull.
func (r *ringFloorBroker) Subscribe() (<-chan int, func(int)) {
	panic("the ring floor is read through SubscribePull")
}

// SubscribePull adds a reader; it is called before the timed region.
func (r *ringFloorBroker) SubscribePull() benchkit.Puller[int] {
	rd := &ringFloorReader{wake: make(chan struct{}, 1)}
	r.readers = append(r.readers, rd)
	return func(buf []int) int {
		for {
			n := 0
			for li, l := range r.lanes {
				c := rd.cursors[li].Load()
				k := 0
				for n+k < len(buf) {
					sl := &l.slots[(c+uint64(k))&l.mask]
					if sl.stamp.Load() != c+uint64(k)+1 {
						break
					}
					buf[n+k] = sl.val
					k++
				}
				if k > 0 {
					rd.cursors[li].Store(c + uint64(k))
					n += k
				}
			}
			if n > 0 {
				return n
			}
			if r.closed.Load() {
				return 0 // RunBroker closes once every reader has everything
			}
			if r.tokens {
				<-rd.wake
			} else {
				runtime.Gosched()
			}
		}
	}
}

// Publish publishes on the shared lane of direct-ring; direct-lanes is
// published to through Publisher only.
func (r *ringFloorBroker) Publish(v int) {
	if r.laned {
		panic("direct-lanes is published to through Publisher")
	}
	r.publish(0, v)
}

// Publisher gives each publisher a lane of its own under direct-lanes and
// the shared one otherwise. It is called before the timed region.
func (r *ringFloorBroker) Publisher() func(int) {
	if !r.laned {
		return r.Publish
	}
	if r.nextLane == len(r.lanes) {
		panic(fmt.Sprintf("direct-lanes serves at most %d publishers", len(r.lanes)))
	}
	li := r.nextLane
	r.nextLane++
	return func(v int) { r.publish(li, v) }
}

// publish claims the next sequence of lane li, writes v there and, with
// tokens, wakes every reader.
func (r *ringFloorBroker) publish(li, v int) {
	l := r.lanes[li]
	var t uint64
	for {
		t = l.tail.Load()
		if t >= l.gate.Load()+benchkit.BrokerBuffer {
			least := t
			for _, rd := range r.readers {
				least = min(least, rd.cursors[li].Load())
			}
			l.gate.Store(least)
			if t >= least+benchkit.BrokerBuffer {
				runtime.Gosched()
			}
			continue
		}
		if r.laned {
			l.tail.Store(t + 1) // the lane's only publisher
			break
		}
		if l.tail.CompareAndSwap(t, t+1) {
			break
		}
	}
	sl := &l.slots[t&l.mask]
	// The writer of the sequence a lap before may still be at work.
	for prev := t + 1 - uint64(len(l.slots)); t >= uint64(len(l.slots)) && sl.stamp.Load() != prev; {
		runtime.Gosched()
	}
	sl.val = v
	sl.stamp.Store(t + 1)
	if r.tokens {
		r.wakeAll()
	}
}

// wakeAll leaves a token for every reader that has none waiting.
func (r *ringFloorBroker) wakeAll() {
	for _, rd := range r.readers {
		select {
		case rd.wake <- struct{}{}:
		default:
		}
	}
}

// Close ends the readers once they have read everything; RunBroker calls
// it after every reader has had every event.
func (r *ringFloorBroker) Close() {
	r.closed.Store(true)
	r.wakeAll()
}

func (r *ringFloorBroker) Dropped() int64 { return 0 } // nothing: a full ring makes the publisher wait

// TestRingFloorBrokerDeliversEverything checks the floors that the broker
// benchmarks compare conc with: a floor that lost or reordered events would
// measure less work than conc does.
func TestRingFloorBrokerDeliversEverything(t *testing.T) {
	for _, mode := range []struct{ tokens, laned bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("tokens=%v/laned=%v", mode.tokens, mode.laned), func(t *testing.T) {
			const pubs, per, readers = 2, 3000, 3
			r := newRingFloorBroker(mode.tokens, mode.laned)
			pullers := make([]benchkit.Puller[int], readers)
			for i := range pullers {
				pullers[i] = r.SubscribePull()
			}
			got := make([][]int, readers)
			var wg sync.WaitGroup
			for i, pull := range pullers {
				wg.Go(func() {
					buf := make([]int, 7)
					for {
						n := pull(buf)
						if n == 0 {
							return
						}
						got[i] = append(got[i], buf[:n]...)
					}
				})
			}
			var pw sync.WaitGroup
			for p := range pubs {
				publish := r.Publisher()
				pw.Go(func() {
					for k := range per {
						publish(p*per + k)
					}
				})
			}
			pw.Wait()
			for _, rd := range r.readers {
				for {
					total := uint64(0)
					for li := range r.lanes {
						total += rd.cursors[li].Load()
					}
					if total == pubs*per {
						break
					}
					runtime.Gosched()
				}
			}
			r.Close()
			wg.Wait()
			for i := range got {
				require.Equal(t, pubs*per, len(got[i]), "events reader %d received", i)
				next := make([]int, pubs)
				for _, v := range got[i] {
					p := v / per
					require.Equal(t, next[p], v%per, "reader %d, publisher %d out of order", i, p)
					next[p]++
				}
			}
		})
	}
}
