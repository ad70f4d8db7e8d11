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
// current epoch, as in user-space RCU: one counter per epoch parity (kept
// in per-publisher slots, see pubSlot). Retiring subscriptions flips the
// epoch, so that new publishers count themselves under the other parity,
// and closes the retired channels once the old parity has drained to zero:
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

// A pubSlot holds, on a cache line of its own, the reader counts of both
// epoch parities and the Published and Delivered counters for the
// publishers that hash to it. A publisher thus writes one line that is,
// with few publishers, its own: joining the epoch and counting costs a
// handful of uncontended atomics, not a line bouncing between cores.
type pubSlot struct {
	readers   [2]atomic.Int64
	published atomic.Uint64
	sent      atomic.Uint64 // messages placed in a channel
	// 128 bytes a slot: whatever the Broker's alignment, the hot words
	// of two slots are never on the same 64-byte line.
	_ [96]byte
}

// slotOf picks a publisher's slot from an address on its stack. Goroutines
// have distinct stacks, so concurrent publishers tend to land in distinct
// slots; Go offers no cheaper per-goroutine or per-P identity. A stack
// may move while it grows, so the choice is made once per Publish and kept
// in the ticket.
func slotOf(stack unsafe.Pointer) uint32 {
	return uint32((uint64(uintptr(stack))>>13)*0x9E3779B97F4A7C15>>61) % brokerSlots
}

// readLock registers the caller as a reader of the current epoch and
// returns a ticket (slot<<1 | parity) for readUnlock. The second load of
// the epoch catches a flip that happened between choosing a parity and
// joining it: such a reader could otherwise sit unseen in a counter that
// the next grace period but one does not wait for.
func (b *Broker[E]) readLock(stack unsafe.Pointer) uint32 {
	slot := slotOf(stack)
	for {
		i := b.epoch.Load() & 1
		b.slots[slot].readers[i].Add(1)
		if b.epoch.Load()&1 == i {
			return slot<<1 | i
		}
		b.readUnlock(slot<<1 | i)
	}
}

// readUnlock ends what readLock began. A reader that empties its counter
// while a grace period is running checks whether it was the last one.
func (b *Broker[E]) readUnlock(ticket uint32) {
	if b.slots[ticket>>1].readers[ticket&1].Add(-1) == 0 && b.graceWaiting.Load() {
		b.mu.Lock()
		b.endGrace()
		b.mu.Unlock()
	}
}

// drained reports whether no reader of the given parity is left. The slots
// are read one by one; a reader that joins a slot after it was read did so
// after the retired subscriptions were marked closing, so it skips them.
func (b *Broker[E]) drained(parity uint32) bool {
	for i := range b.slots {
		if b.slots[i].readers[parity].Load() != 0 {
			return false
		}
	}
	return true
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
	b.graceOld = b.epoch.Add(1)&1 ^ 1 // the parity before the flip
	b.graceWaiting.Store(true)
	b.endGrace()
}

// endGrace finishes the running grace period if its counter has drained,
// then starts the queued one. b.mu is held. The counter is read after the
// retired subscriptions were marked closing, so a publisher that joins it
// later sees the mark and skips them.
func (b *Broker[E]) endGrace() {
	for b.graceWaiting.Load() && b.drained(b.graceOld) {
		for _, s := range b.grace {
			s.leave() // the grace period's hold; may close the channel
		}
		b.grace = nil
		b.graceWaiting.Store(false)
		if len(b.queued) > 0 {
			next := b.queued
			b.queued = nil
			b.grace = next
			b.graceOld = b.epoch.Add(1)&1 ^ 1
			b.graceWaiting.Store(true)
		}
	}
}
