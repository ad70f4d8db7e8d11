package conc

import (
	"sync/atomic"
	"unsafe"
)

// Why a grace period. A publisher walks a snapshot that may list a
// subscription which Unsubscribe (or Close) has removed a moment ago. The
// removed subscription's channel must be closed, but not while such a
// publisher may still send to it: that would panic with "send on closed
// channel". Guarding every send with a per-subscription count of senders
// works, but costs two atomic read-modify-writes per subscriber per message
// (a hundred subscribers, two hundred atomics per Publish), on cache lines
// that concurrent publishers fight over.
//
// Instead, a publisher registers once per Publish as a reader of the
// current epoch, as in user-space RCU: counts of entries and exits per
// epoch parity, kept in per-publisher slots (see pubSlot). Retiring
// subscriptions flips the epoch, so that new publishers count themselves
// under the other parity, and closes the retired channels once every
// reader of the old parity has left:
// every publisher that could have seen them has left by then. Nobody waits
// for that moment. Whoever observes it (the retiring goroutine itself, or
// the last old publisher on its way out) closes the channels. Only one
// grace period runs at a time; subscriptions retired meanwhile queue for
// the next one, so a steady stream of publishers can never keep a count
// from draining: after a flip the old parity only loses members.
//
// A publisher stays registered only while it does not wait: a Block
// publisher that must wait for room first registers on that one
// subscription (Subscription.enter, the per-subscription count that
// remains for this slow path), then leaves the epoch, so that a stuck
// subscriber never holds up the closing of others.

// brokerSlots is the number of publisher slots. Two publishers whose stacks
// hash to the same slot merely share its cache line.
const brokerSlots = 8

// A pubSlot holds, on a cache line of its own, the epoch counters and the
// Delivered counter for the publishers that hash to it. A publisher thus
// writes one line that is, with few publishers, its own: joining and
// leaving the epoch and counting what it sent cost three uncontended
// atomic adds, not lines bouncing between cores. The counters only grow:
// entered minus left is the number of publishers inside, and entered also
// numbers the publications (Stats derives Published from it, and Publish
// its starting point in the walk).
type pubSlot struct {
	entered [2]atomic.Uint64 // by epoch parity
	left    [2]atomic.Uint64
	sent    atomic.Uint64 // messages placed in a channel
	// 128 bytes a slot: whatever the Broker's alignment, the hot words
	// of two slots are never on the same 64-byte line.
	_ [88]byte
}

// slotOf picks a publisher's slot from an address on its stack. Goroutines
// have distinct stacks, so concurrent publishers tend to land in distinct
// slots; Go offers no cheaper per-goroutine or per-P identity. A stack
// may move while it grows, so the choice is made once per Publish and kept
// in the ticket.
func slotOf(stack unsafe.Pointer) uint32 {
	return uint32((uint64(uintptr(stack))>>13)*0x9E3779B97F4A7C15>>61) % brokerSlots
}

// readLock registers the caller as a reader of the current epoch. It
// returns a ticket (slot<<1 | parity) for readUnlock and the slot's entry
// count. The second load of the epoch catches a flip that happened between
// choosing a parity and joining it: such a reader could otherwise sit
// unseen under a parity that the next grace period but one does not wait
// for.
func (b *Broker[E]) readLock(stack unsafe.Pointer) (ticket uint32, seq uint64) {
	slot := slotOf(stack)
	for {
		i := b.epoch.Load() & 1
		seq := b.slots[slot].entered[i].Add(1)
		if b.epoch.Load()&1 == i {
			return slot<<1 | i, seq
		}
		b.readUnlock(slot<<1 | i)
		b.reentries.Add(1)
	}
}

// readUnlock ends what readLock began. A reader of the parity that a grace
// period is draining checks whether it was the last one.
func (b *Broker[E]) readUnlock(ticket uint32) {
	b.slots[ticket>>1].left[ticket&1].Add(1)
	if b.graceWaiting.Load() && ticket&1 == b.graceOld.Load() {
		b.mu.Lock()
		b.endGrace()
		b.mu.Unlock()
	}
}

// drained reports whether no reader of the given parity is left. All the
// left counts are read before all the entered counts, so that a reader
// caught between the two reads can only make the sums differ: each reader
// adds to entered before it adds to left, hence it is counted as left only
// if it is also counted as entered. A reader that joins after its slot's
// entered count was read did so after the retired subscriptions left the
// snapshot, so it never sees them.
func (b *Broker[E]) drained(parity uint32) bool {
	var left, entered uint64
	for i := range b.slots {
		left += b.slots[i].left[parity].Load()
	}
	for i := range b.slots {
		entered += b.slots[i].entered[parity].Load()
	}
	return left == entered
}

// retire starts closing subs, which the caller has just removed from the
// published snapshot, holding b.mu. Their channels close once the
// publishers that may still hold an older snapshot have left.
func (b *Broker[E]) retire(subs []*Subscription[E]) {
	keep := subs[:0:0]
	for _, s := range subs {
		// The grace period holds the channel open like a sender does,
		// so a Block publisher leaving it cannot close it too early.
		if s.startClose(1) {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return
	}
	if b.graceWaiting.Load() {
		b.queued = append(b.queued, keep...)
		return
	}
	b.startGrace(keep)
}

// startGrace flips the epoch and waits, without blocking, for the readers
// of the old one to leave. b.mu is held.
func (b *Broker[E]) startGrace(subs []*Subscription[E]) {
	b.grace = subs
	b.graceOld.Store(b.epoch.Add(1)&1 ^ 1) // the parity before the flip
	b.graceWaiting.Store(true)
	b.endGrace()
}

// endGrace finishes the running grace period if the old parity has
// drained, then starts the queued one. b.mu is held. The counts are read
// after the retired subscriptions left the snapshot, so a publisher that
// joins later (readLock's check sends it to the new parity, unless the
// epoch has flipped back since) loads a snapshot without them.
func (b *Broker[E]) endGrace() {
	for b.graceWaiting.Load() && b.drained(b.graceOld.Load()) {
		for _, s := range b.grace {
			s.leave() // the grace period's hold; may close the channel
		}
		b.grace = nil
		b.graceWaiting.Store(false)
		if len(b.queued) > 0 {
			next := b.queued
			b.queued = nil
			b.grace = next
			b.graceOld.Store(b.epoch.Add(1)&1 ^ 1)
			b.graceWaiting.Store(true)
		}
	}
}
