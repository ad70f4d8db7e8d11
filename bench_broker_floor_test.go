package conc

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/concpatterns/conc/internal/benchkit"
)

// ringFloorBroker is the floor of a broker that delivers through one ring
// shared by every publisher, as the Broker does: the least such a ring can
// do per event, written by hand for the one shape of the broker suites (one
// topic, every subscriber known before the first event, nothing lost, no
// subscriber leaving before Close). It is not a usable broker: it has no
// topics, policies, counters or unsubscribing, and its readers never park.
//
// Publishing is what conc's is at the least: a CAS on the shared tail to
// claim a sequence (the multi-publisher sequence), the slot write and the
// stamp store; a publisher a whole buffer ahead of the slowest reader
// recomputes the least cursor and yields until there is room. In the
// streaming suite (BenchmarkBroker) a reader that finds nothing yields
// and looks again, so it costs no park and no wake-up: what is left is the
// ring's own traffic, and it shows what a second publisher can gain on one
// tail. In the parked suite (BenchmarkBrokerParked, tokens set) each
// publish sends every reader a token on its own channel, in order, and a
// reader that finds nothing waits for one: the ring plus the one channel
// operation per parked reader that waking a goroutine takes, with no
// bookkeeping of who is parked.
type ringFloorBroker struct {
	tail   atomic.Uint64
	_      [56]byte
	gate   atomic.Uint64 // every reader's cursor is at least gate
	_      [56]byte
	slots  []ringFloorSlot
	mask   uint64
	tokens bool // readers wait for a token when there is nothing to read
	// readers is filled before the timed region and only read after.
	readers []*ringFloorReader
	closed  atomic.Bool
}

type ringFloorSlot struct {
	stamp atomic.Uint64 // sequence+1 once written
	val   int
}

type ringFloorReader struct {
	cursor atomic.Uint64 // written by its reader only
	wake   chan struct{}
	_      [48]byte
}

func newRingFloorBroker(tokens bool) *ringFloorBroker {
	size := uint64(1) << 11 // at least benchkit.BrokerBuffer, a power of two
	return &ringFloorBroker{slots: make([]ringFloorSlot, size), mask: size - 1, tokens: tokens}
}

func (r *ringFloorBroker) Subscribe() (<-chan int, func(int)) {
	panic("direct-ring is read through SubscribePull")
}

func (r *ringFloorBroker) SubscribePull() benchkit.Puller[int] {
	rd := &ringFloorReader{wake: make(chan struct{}, 1)}
	r.readers = append(r.readers, rd)
	return func(buf []int) int {
		for {
			c := rd.cursor.Load()
			n := 0
			for n < len(buf) {
				sl := &r.slots[(c+uint64(n))&r.mask]
				if sl.stamp.Load() != c+uint64(n)+1 {
					break
				}
				buf[n] = sl.val
				n++
			}
			if n > 0 {
				rd.cursor.Store(c + uint64(n))
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

func (r *ringFloorBroker) Publish(v int) {
	var t uint64
	for {
		t = r.tail.Load()
		if t >= r.gate.Load()+benchkit.BrokerBuffer {
			least := t
			for _, rd := range r.readers {
				least = min(least, rd.cursor.Load())
			}
			r.gate.Store(least)
			if t >= least+benchkit.BrokerBuffer {
				runtime.Gosched()
			}
			continue
		}
		if r.tail.CompareAndSwap(t, t+1) {
			break
		}
	}
	sl := &r.slots[t&r.mask]
	// The writer of the sequence a lap before may still be at work.
	for prev := t + 1 - uint64(len(r.slots)); t >= uint64(len(r.slots)) && sl.stamp.Load() != prev; {
		runtime.Gosched()
	}
	sl.val = v
	sl.stamp.Store(t + 1)
	if r.tokens {
		for _, rd := range r.readers {
			select {
			case rd.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (r *ringFloorBroker) Close() {
	r.closed.Store(true)
	for _, rd := range r.readers {
		select {
		case rd.wake <- struct{}{}:
		default:
		}
	}
}

func (r *ringFloorBroker) Dropped() int64 { return 0 } // nothing: a full ring makes the publisher wait

// TestRingFloorBrokerDeliversEverything checks the floor that the broker
// benchmarks compare conc with: a floor that lost or reordered events would
// measure less work than conc does.
func TestRingFloorBrokerDeliversEverything(t *testing.T) {
	for _, tokens := range []bool{false, true} {
		t.Run(fmt.Sprintf("tokens=%v", tokens), func(t *testing.T) {
			const pubs, per, readers = 2, 3000, 3
			r := newRingFloorBroker(tokens)
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
				pw.Go(func() {
					for k := range per {
						r.Publish(p*per + k)
					}
				})
			}
			pw.Wait()
			for i := range r.readers {
				for r.readers[i].cursor.Load() < pubs*per {
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
