package conc

import (
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

// How delivery works. Subscriptions with the same pattern, policy and
// buffer form a group, and a group owns one ring of slots, written once per
// event whatever the number of subscriptions in it (DropNewest is the
// exception: each of its subscriptions is a group of one, see below). A
// publisher claims the next sequence number of the ring with a CAS on its
// tail, writes the slot and then stores the slot's stamp (sequence + 1),
// which is what readers wait for. Each subscription keeps its own cursor
// and copies, in one batch, every stamped slot from its cursor on.
//
// The rule that keeps writers and readers apart: a publisher claims
// sequence t, whose slot last held t-size, only when every subscription of
// the group has moved its cursor past t-cap (cap <= size), so nobody still
// reads that slot; and it writes the slot only once the stamp shows that
// the writer of t-size has finished (a DropOldest eviction may skip a
// reader past a sequence whose writer is still at work). The minimum of
// the cursors is cached in gate, recomputed under the group's mutex only
// when a claim would pass gate+cap, so with readers that keep up the
// recomputation (a walk over the group's subscriptions) happens about once
// per cap events.
//
// What a publisher does when the ring is full for some subscription is the
// policy: BlockPublisher waits for that reader (or ctx); DropOldest moves
// the lagging cursors forward itself, counting for each subscription
// exactly the events it skipped; DropNewest, whose ring serves one
// subscription only, refuses the event for it. A reader holds its cursor
// with a busy bit while it copies, so an eviction never moves a cursor
// under a copy in progress, and so the slots it copies cannot be claimed
// again before it is done.
//
// A reader that finds nothing parks (see broker_park.go); a publisher, after
// stamping, loads parkMask and only when a bit is set wakes the parked
// readers, each once. With readers that keep up, publishing costs one CAS,
// one slot write, one stamp store and four loads (tail, gate, the slot's
// previous stamp, parkMask).

const (
	ringClosed  = 1 << 63 // in ring.tail: no claim succeeds any more
	cursorBusy  = 1 << 63 // in Subscription.cursor: held by a copy or an eviction
	seqMask     = 1<<63 - 1
	seqInfinity = seqMask
)

// MaxSubBuffer is the largest buffer SubBuffer accepts.
const MaxSubBuffer = maxBuffer

type ringSlot[E any] struct {
	stamp atomic.Uint64 // sequence+1 once written; (i+1-size) mod 2^64 before
	val   E
}

// A brokerGroup is a ring and the subscriptions that read it.
type brokerGroup[E any] struct {
	// The first line is the publishers': tail is the next sequence to
	// claim, with ringClosed; gate: every subscription's cursor is at
	// least gate, recomputed by a publisher about once per cap events.
	// Readers never read them, so a reader that parks does not take the
	// line away from the publisher.
	tail atomic.Uint64
	gate atomic.Uint64
	_    [48]byte
	// parkMask: a bit per word of the park set with readers parked
	// (broker_park.go), written by readers that park and read by every
	// publish. pubWaiting: Block publishers waiting for room, read by
	// readers after each batch.
	parkMask   atomic.Uint64
	pubWaiting atomic.Int32
	_          [52]byte

	slots  []ringSlot[E]
	mask   uint64
	cap    uint64 // SubBuffer: how far a claim may run ahead of gate
	policy Overflow
	// The park set; the list is replaced, never changed, under mu.
	parkWords atomic.Pointer[[]*parkWord[E]]

	mu       sync.Mutex         // guards subs, the park indexes and the recomputation of gate
	subs     []*Subscription[E] // every reader: live, or ended with events left
	active   int                // live subscriptions; the ring closes at 0
	parkNext int                // the next park index never given
	parkFree []int              // park indexes given back, ascending

	roomMu sync.Mutex
	room   chan struct{} // closed to wake Block publishers; nil if none wait
	_      [48]byte      // to 320 bytes, a size class whose objects start on a line
}

func newBrokerGroup[E any](capacity int, policy Overflow) *brokerGroup[E] {
	if capacity < 1 {
		capacity = 1
	}
	size := uint64(1) << bits.Len64(uint64(capacity-1))
	g := &brokerGroup[E]{slots: make([]ringSlot[E], size), mask: size - 1, cap: uint64(capacity), policy: policy}
	for i := range g.slots {
		g.slots[i].stamp.Store(uint64(i) + 1 - size)
	}
	return g
}

type offerResult int

const (
	offered offerResult = iota
	offerFull
	offerClosed
)

// offer puts e in the ring without waiting for a reader; offerFull means
// a Block or DropNewest subscription has no room.
func (g *brokerGroup[E]) offer(e E) offerResult {
	for {
		t := g.tail.Load()
		if t&ringClosed != 0 {
			return offerClosed
		}
		if t >= g.gate.Load()+g.cap {
			if res := g.makeRoom(t); res != offered {
				return res
			}
			continue
		}
		if g.tail.CompareAndSwap(t, t+1) {
			g.write(t, e)
			return offered
		}
	}
}

// write fills the claimed slot t and wakes parked readers, if any.
func (g *brokerGroup[E]) write(t uint64, e E) {
	sl := &g.slots[t&g.mask]
	// The writer of t-size may still be at work when an eviction let
	// this claim through; it is running (it claimed and only writes), so
	// it is waited for by yielding.
	for prev := t + 1 - uint64(len(g.slots)); sl.stamp.Load() != prev; {
		runtime.Gosched()
	}
	sl.val = e
	sl.stamp.Store(t + 1)
	if g.parkMask.Load() != 0 {
		g.wakeParked()
	}
}

// makeRoom recomputes gate for a claim of t, evicting what the policy
// allows, and reports whether the claim may proceed.
func (g *brokerGroup[E]) makeRoom(t uint64) offerResult {
	g.mu.Lock()
	min := g.recompute(t + 1 - g.cap)
	g.mu.Unlock()
	switch {
	case g.tail.Load()&ringClosed != 0:
		return offerClosed
	case t < min+g.cap:
		return offered
	}
	return offerFull
}

// recompute sets gate to the least cursor of the group and returns it,
// after moving forward to target the cursors that may be moved: those of
// DropOldest subscriptions and of subscriptions that ended (they no longer
// hold a publisher back, but keep what they can still read). An ended
// subscription loses events only when that lets the claim through: not
// while a live Block subscription holds the publisher back anyway, nor
// once the ring is closed.
// Readers that reached their end leave the group. The caller holds g.mu.
func (g *brokerGroup[E]) recompute(target uint64) uint64 {
	if g.tail.Load()&ringClosed != 0 {
		target = 0 // no claim will follow: evict nobody
	} else if g.policy != DropOldest {
		for _, s := range g.subs {
			if s.end.Load() == seqInfinity && s.cursor.Load()&seqMask < target {
				target = 0 // a live reader blocks the claim: evict nobody
				break
			}
		}
	}
	min := uint64(seqInfinity)
	kept := g.subs[:0]
	for _, s := range g.subs {
		end := s.end.Load()
		evictable := g.policy == DropOldest || end != seqInfinity
		c := s.cursor.Load() & seqMask
		if evictable && c < target && c < end {
			c = s.evict(min64(target, end))
		}
		if c >= end {
			g.dropParked(s)
			continue // finished: nothing left to read
		}
		kept = append(kept, s)
		if c < min {
			min = c
		}
	}
	clear(g.subs[len(kept):])
	g.subs = kept
	if min == seqInfinity {
		min = g.tail.Load() & seqMask
	}
	if min > g.gate.Load() {
		g.gate.Store(min)
	}
	return g.gate.Load()
}

func min64(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}

// offerWait is offer for a Block group: it waits for room until ctx ends
// (returning its error) or the ring closes.
func (g *brokerGroup[E]) offerWait(p *publication[E], e E) offerResult {
	for {
		if res := g.offer(e); res != offerFull {
			return res
		}
		if p.err != nil {
			return offerFull // the context ended on an earlier wait
		}
		g.roomMu.Lock()
		if g.room == nil {
			g.room = make(chan struct{})
		}
		ch := g.room
		g.pubWaiting.Add(1)
		g.roomMu.Unlock()
		// Registered before looking again: a reader that moves its
		// cursor after this recomputation sees pubWaiting and wakes ch.
		t := g.tail.Load()
		if t&ringClosed == 0 && g.makeRoom(t&seqMask) == offerFull {
			select {
			case <-ch:
			case <-p.ctx.Done():
				p.err = ctxErr(p.ctx)
			}
		}
		g.pubWaiting.Add(-1)
	}
}

// wakeRoom wakes the Block publishers waiting for room.
func (g *brokerGroup[E]) wakeRoom() {
	g.roomMu.Lock()
	if g.room != nil {
		close(g.room)
		g.room = nil
	}
	g.roomMu.Unlock()
}

// closeRing stops every later claim and returns the final tail. The
// caller holds g.mu.
func (g *brokerGroup[E]) closeRing() uint64 {
	for {
		t := g.tail.Load()
		if t&ringClosed != 0 || g.tail.CompareAndSwap(t, t|ringClosed) {
			return t & seqMask
		}
	}
}
