package conc

import (
	"math/bits"
	"slices"
	"sync/atomic"
)

// Parking. A reader that finds nothing to read sets its bit in its group's
// park set, looks at the ring once more and, if still nothing is there,
// waits on its own wake channel (a buffer of one token). A publisher, after
// stamping a slot, loads the group's parkMask and only when a bit is set
// takes the parked readers' bits and sends each of them a token.
//
// The park set is a list of 64-bit words, one bit per subscription of the
// group, each word with the 64 subscriptions its bits stand for. A
// subscription keeps its place (its park index) from Subscribe until it
// has ended and a publisher making room finds that its reader has nothing
// left to read (see dropParked and unpark for the reader still on its way
// out), so the publisher wakes parked readers in the order of their
// indexes, which is the order they subscribed in unless places were given
// back. The order matters more than the rest of the
// wake: a thousand readers woken by one event each reload their
// goroutine, its stack, its subscription and its wake channel, and woken
// in a fixed order, roughly the order that memory was allocated in, those
// loads follow each other through memory where the hardware prefetches
// them; woken in the order they last parked, which the scheduler shuffles
// a little more after every event, each is a miss on its own
// (BenchmarkBrokerParked).
//
// parkMask has a bit per word (bit i%64 for word i), set by a reader that
// found it clear after setting its own bit. The publisher clears parkMask
// before it takes the bits of the words; so every reader that set its bit
// and then saw its parkMask bit set, or set it, is seen by the publisher
// that clears that bit next, and a reader that looks at the ring after
// that publisher stamped sees the event.

// A parkWord is up to 64 subscriptions' bits of a group's park set.
type parkWord[E any] struct {
	bits atomic.Uint64 // bit j: subs[j] is parked, or about to be
	_    [56]byte      // readers write bits; subs is read-mostly
	// 64 entries, but one in the group of a DropNewest subscription,
	// which has no other.
	subs []atomic.Pointer[Subscription[E]]
}

// addParked gives s a park index: the lowest given back, else the next
// one. The caller holds g.mu (or owns g).
func (g *brokerGroup[E]) addParked(s *Subscription[E]) {
	var i int
	if len(g.parkFree) > 0 {
		i = g.parkFree[0]
		g.parkFree = slices.Delete(g.parkFree, 0, 1)
	} else {
		i = g.parkNext
		g.parkNext++
	}
	var words []*parkWord[E]
	if p := g.parkWords.Load(); p != nil {
		words = *p
	}
	if i>>6 == len(words) {
		// A new list: publishers may be walking the old one.
		n := 64
		if g.policy == DropNewest {
			n = 1
		}
		words = append(slices.Clip(words), &parkWord[E]{subs: make([]atomic.Pointer[Subscription[E]], n)})
		g.parkWords.Store(&words)
	}
	w := words[i>>6]
	w.subs[i&63].Store(s)
	s.park = parkPlace[E]{word: w, bit: 1 << (i & 63), mask: 1 << ((i >> 6) & 63)}
	s.parkIndex = int32(i)
}

// dropParked gives s's park index back, once s has ended and its cursor
// has reached its end, and wakes the reader in case it parked before its
// cursor was moved there (the bit it set no longer names it). The reader
// may still be on its way through NextBatch; it then finds its end, and
// what it does to the bit is made harmless by unpark. The caller holds
// g.mu.
func (g *brokerGroup[E]) dropParked(s *Subscription[E]) {
	i := int(s.parkIndex)
	if i < 0 {
		return
	}
	s.parkIndex = -1
	s.park.word.subs[i&63].Store(nil)
	// Kept sorted, so that the lowest is reused first.
	at, _ := slices.BinarySearch(g.parkFree, i)
	g.parkFree = slices.Insert(g.parkFree, at, i)
	s.wakeUp()
}

// A parkPlace is a subscription's place in its group's park set.
type parkPlace[E any] struct {
	word *parkWord[E]
	bit  uint64 // in word.bits
	mask uint64 // in the group's parkMask
}

// setParked sets s's bit in the park set and reports whether there is
// something to read after all (then the bit is taken back, and a token a
// publisher may have sent meanwhile only makes the next wait return at
// once).
func (s *Subscription[E]) setParked() (ready bool) {
	p := &s.park
	p.word.bits.Or(p.bit)
	g := s.g
	if g.parkMask.Load()&p.mask == 0 {
		g.parkMask.Or(p.mask)
	}
	if s.ready() {
		s.unpark()
		return true
	}
	return false
}

// unpark takes s's bit back. The bit may no longer be s's: once s has
// ended and its reader has nothing left, a publisher gives its index back
// (dropParked) while the reader may still be on its way through
// NextBatch, and another subscription may take the index and set the bit
// for a wait of its own. That owner is then sent a token, so that it
// looks again and sets its bit anew. It is found: it stored itself in
// subs before it set the bit, which was before this clear, which is
// before the load below (or the load finds a later owner, and the one in
// between was woken by its own dropParked).
func (s *Subscription[E]) unpark() {
	p := &s.park
	p.word.bits.And(^p.bit)
	if o := p.word.subs[bits.TrailingZeros64(p.bit)].Load(); o != nil && o != s {
		o.wakeUp()
	}
}

// wakeParked sends a token to every parked reader of the group, in the
// order of their park indexes. All of parkMask is cleared at once, before
// any word's bits are taken.
func (g *brokerGroup[E]) wakeParked() {
	m := g.parkMask.Swap(0)
	if m == 0 {
		return // another publisher took them
	}
	for i, w := range *g.parkWords.Load() {
		if m&(1<<(i&63)) == 0 || w.bits.Load() == 0 {
			continue
		}
		for x := w.bits.Swap(0); x != 0; x &= x - 1 {
			if s := w.subs[bits.TrailingZeros64(x)].Load(); s != nil {
				s.wakeUp()
			}
		}
	}
}
