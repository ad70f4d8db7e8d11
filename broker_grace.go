package conc

import "sync/atomic"

// Why a grace period. A publisher walks a snapshot that may list a
// subscription which Unsubscribe (or Close) has removed a moment ago. The
// removed subscription's channel must be closed, but not while such a
// publisher may still send to it: that would panic with "send on closed
// channel". Guarding every send with a per-subscription count of senders
// works, but costs two atomic read-modify-writes per subscriber per message
// (a hundred subscribers, two hundred atomics per Publish), on cache lines
// that concurrent publishers fight over.
//
// Instead, a publisher registers once per Publish in one of two reader
// counters, chosen by the parity of an epoch number, as in user-space RCU.
// Retiring subscriptions flips the epoch, so that new publishers count
// themselves in the other counter, and closes their channels once the old
// counter has drained to zero: every publisher that could have seen them
// has left by then. Nobody waits for that moment. Whoever observes it (the
// retiring goroutine itself, or the last old publisher on its way out)
// closes the channels. Only one grace period runs at a time; subscriptions
// retired meanwhile queue for the next one, so a steady stream of
// publishers can never keep a counter from draining: after a flip the old
// counter only loses members.
//
// A publisher stays registered only while it does not wait: a Block
// publisher that must wait for room first registers on that one
// subscription (Subscription.enter, the per-subscription count that
// remains for this slow path), then leaves the epoch, so that a stuck
// subscriber never holds up the closing of others.

// A readerCount is one of the two epoch counters, alone on its cache line.
type readerCount struct {
	n atomic.Int64
	_ [56]byte
}

// readLock registers the caller as a reader of the current epoch and
// returns the counter to pass to readUnlock. The second load of the epoch
// catches a flip that happened between choosing a counter and joining it:
// such a reader could otherwise sit unseen in a counter that the next
// grace period but one does not wait for.
func (b *Broker[E]) readLock() uint32 {
	for {
		i := b.epoch.Load() & 1
		b.readers[i].n.Add(1)
		if b.epoch.Load()&1 == i {
			return i
		}
		b.readUnlock(i)
	}
}

// readUnlock ends what readLock began. A reader that empties the counter a
// grace period is waiting on finishes that grace period.
func (b *Broker[E]) readUnlock(i uint32) {
	if b.readers[i].n.Add(-1) == 0 && b.graceWaiting.Load() {
		b.mu.Lock()
		b.endGrace()
		b.mu.Unlock()
	}
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
	b.graceIdx = b.epoch.Add(1)&1 ^ 1 // the parity before the flip
	b.graceWaiting.Store(true)
	b.endGrace()
}

// endGrace finishes the running grace period if its counter has drained,
// then starts the queued one. b.mu is held. The counter is read after the
// retired subscriptions were marked closing, so a publisher that joins it
// later sees the mark and skips them.
func (b *Broker[E]) endGrace() {
	for b.graceWaiting.Load() && b.readers[b.graceIdx].n.Load() == 0 {
		for _, s := range b.grace {
			s.leave() // the grace period's hold; may close the channel
		}
		b.grace = nil
		b.graceWaiting.Store(false)
		if len(b.queued) > 0 {
			next := b.queued
			b.queued = nil
			b.grace = next
			b.graceIdx = b.epoch.Add(1)&1 ^ 1
			b.graceWaiting.Store(true)
		}
	}
}
