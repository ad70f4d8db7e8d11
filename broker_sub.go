package conc

import (
	"context"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
)

// A Subscription is one subscriber's view of a Broker: a cursor into the
// ring its events are written to, and the means to leave. It is created by
// Broker.Subscribe; the zero Subscription is not usable.
//
// Events are read with Next, NextBatch or Events, which copy straight from
// the ring, in batches, with no channel and no goroutine; or through C,
// for code that needs a select, which starts a goroutine that forwards
// them to a channel. One goroutine at a time reads a subscription: Next,
// NextBatch, Events and C's goroutine must not run concurrently for the
// same subscription. Unsubscribe, Dropped, Stats, Err and String are safe
// to call from any goroutine, including Unsubscribe from the reader's.
type Subscription[E any] struct {
	// What the reader touches on every batch and every park comes
	// first, in one cache line (the struct is padded to 256 bytes, a size
	// class whose objects start on a line): with a thousand parked
	// subscriptions woken by one event, each reader finds its state cold,
	// and every line it needs is a miss.
	//
	// cursor is the next sequence to read, with cursorBusy while a copy
	// or an eviction holds it. end is seqInfinity while the subscription
	// is live and the ring's tail at Unsubscribe or Close afterwards: the
	// reader reads up to it. The events handed to the reader are not
	// counted apart: they are the cursor's moves that were not evictions
	// (see taken), which saves the reader an atomic add per batch.
	cursor atomic.Uint64
	end    atomic.Uint64
	g      *brokerGroup[E]
	wake   chan struct{} // a token when there may be something to read
	park   parkPlace[E]  // its place in the group's park set
	calm   uint8         // waits left that park without a turn first; the reader's own
	// folded: the broker's counters took this subscription's share at
	// its end (see Broker.Stats). Guarded by cursorBusy.
	folded    bool
	retired   bool  // out of the snapshot; guarded by Broker.mu
	parkIndex int32 // its park index, or -1 once given back; guarded by the group's mu

	evicted atomic.Uint64 // events skipped by a DropOldest eviction, or after the end, or given up
	start   uint64        // the ring's tail at Subscribe
	b       *Broker[E]

	refused      atomic.Uint64 // events that never entered the ring for it; publishers write it
	pattern      string
	wild         bool
	policy       Overflow
	buffer       int
	brokerClosed atomic.Bool

	cOnce sync.Once
	ch    chan E
	_     [96]byte // to 256 bytes
}

// taken returns how many events were handed to the reader: what the
// cursor moved past since Subscribe, except what was evicted or given up
// (giveUp counts events the cursor moved past as read). Exact when the
// cursor is held; otherwise off by a batch or an eviction in progress.
func (s *Subscription[E]) taken() uint64 {
	ev := s.evicted.Load()
	return s.cursor.Load()&seqMask - s.start - ev
}

// hold takes the cursor for a copy or an eviction and returns it. The
// holder is never blocked: a copy or an eviction is a few loads and
// stores, so a contender yields until it is done.
func (s *Subscription[E]) hold() uint64 {
	for {
		c := s.cursor.Load()
		if c&cursorBusy == 0 && s.cursor.CompareAndSwap(c, c|cursorBusy) {
			return c
		}
		runtime.Gosched()
	}
}

// evict moves the cursor forward to to (a publisher making room, or the
// end of an ended subscription), counting the events skipped. It returns
// the new cursor. The caller holds the group's mutex.
func (s *Subscription[E]) evict(to uint64) uint64 {
	c := s.hold()
	if c >= to {
		s.cursor.Store(c)
		return c
	}
	n := to - c
	s.evicted.Add(n)
	s.b.counter(s.policy).Add(n)
	if s.folded {
		// Counted as delivered when the subscription ended.
		s.b.evictedAfterEnd.Add(n)
	}
	s.cursor.Store(to)
	return to
}

// refuse counts an event that did not reach the subscription's ring: a
// DropNewest subscription was full, a Block publisher gave up, or the
// ring closed while the event was on its way.
func (s *Subscription[E]) refuse() {
	s.refused.Add(1)
	s.b.counter(s.policy).Add(1)
}

// read copies into buf what is ready from the cursor on and reports
// whether the subscription has ended and everything has been read.
func (s *Subscription[E]) read(buf []E) (n int, done bool) {
	g := s.g
	c := s.cursor.Load() & seqMask
	end := s.end.Load()
	if c >= end {
		return 0, true
	}
	if g.slots[c&g.mask].stamp.Load() != c+1 {
		return 0, false // nothing yet: no need to hold the cursor
	}
	c = s.hold()
	end = s.end.Load()
	for n < len(buf) {
		seq := c + uint64(n)
		if seq >= end {
			break
		}
		sl := &g.slots[seq&g.mask]
		if sl.stamp.Load() != seq+1 {
			break
		}
		buf[n] = sl.val
		n++
	}
	c += uint64(n)
	s.cursor.Store(c)
	if n > 0 && g.pubWaiting.Load() != 0 {
		g.wakeRoom()
	}
	return n, c >= end
}

// ready reports whether read would return something or the end.
func (s *Subscription[E]) ready() bool {
	c := s.cursor.Load() & seqMask
	return c >= s.end.Load() || s.g.slots[c&s.g.mask].stamp.Load() == c+1
}

// waitCtx waits, for a reader whose context can end, for a token or for
// ctx. It is kept out of NextBatch, whose frame the select would enlarge.
func (s *Subscription[E]) waitCtx(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-s.wake:
		return nil
	case <-done:
		s.unpark()
		return ctxErr(ctx)
	}
}

// readerCalm is how many waits park at once after a turn given before
// parking found nothing to read.
const readerCalm = 8

// NextBatch waits until at least one event is ready, copies up to len(buf)
// of them into buf, in order, and returns how many. It returns 0 and
// ErrClosed once the subscription has ended (Unsubscribe, or the broker's
// Close) and every event it still held has been read, and 0 and an error
// matching ctx.Err() if ctx ends first; events that are ready are
// returned even when ctx has ended. With an empty buf it only waits. It
// does not allocate.
func (s *Subscription[E]) NextBatch(ctx context.Context, buf []E) (int, error) {
	checkCtx(ctx)
	yielded, woke := false, false
	for {
		if len(buf) == 0 {
			if s.ready() {
				return 0, nil
			}
		} else {
			n, done := s.read(buf)
			if n > 0 {
				switch {
				case yielded:
					s.calm = 0 // the turn paid off: keep taking it
				case woke && n == 1:
					// Woken for a single event: the topic is quiet,
					// so the next waits park at once too.
					s.calm = readerCalm
				case woke:
					s.calm = 0 // events came while we parked: streaming
				}
				return n, nil
			}
			if done {
				return 0, ErrClosed
			}
			// Before parking, give the other goroutines on this CPU one
			// turn and look again: while a publisher on another CPU
			// keeps publishing, the next events are often stamped by
			// then, and the read saves a park and the wake-up the
			// publisher pays for it. When the turn finds nothing, the
			// next waits park at once (readerCalm of them), and so do
			// those after a wake-up that brought a single event, so
			// that a reader woken for single events on a quiet topic
			// does not pay a wasted turn each time.
			if !yielded && s.calm == 0 {
				yielded = true
				runtime.Gosched()
				continue
			}
			if yielded {
				s.calm = readerCalm
				yielded = false
			} else if s.calm > 0 {
				s.calm--
			}
		}
		if s.setParked() {
			continue // something came meanwhile: not a wake-up
		}
		if done := ctx.Done(); done == nil {
			<-s.wake
		} else if err := s.waitCtx(ctx, done); err != nil {
			if n, _ := s.read(buf); n > 0 {
				return n, nil
			}
			return 0, err
		}
		woke = true
	}
}

// Next waits for the next event and returns it. It returns ErrClosed once
// the subscription has ended and everything it held has been read, and an
// error matching ctx.Err() if ctx ends first. Reading in batches
// (NextBatch, Events) costs less per event.
func (s *Subscription[E]) Next(ctx context.Context) (E, error) {
	var one [1]E
	_, err := s.NextBatch(ctx, one[:])
	return one[0], err
}

// eventsBatch is how many events Events copies out of the ring at a time.
const eventsBatch = 64

// Events returns an iterator over the subscription's events, read in
// batches. It ends when the subscription has ended and everything it held
// has been yielded, when ctx ends (check ctx.Err() to tell which), or when
// the loop breaks; events copied out of the ring but not yet yielded when
// the loop breaks are lost to this subscription and counted as dropped.
// Unsubscribe may be called from inside the loop: the events still held
// are yielded, then the loop ends. Each call of the iterator allocates its
// batch buffer once.
func (s *Subscription[E]) Events(ctx context.Context) iter.Seq[E] {
	checkCtx(ctx)
	return func(yield func(E) bool) {
		buf := make([]E, eventsBatch)
		for {
			n, err := s.NextBatch(ctx, buf)
			if err != nil {
				return
			}
			for i, e := range buf[:n] {
				if !yield(e) {
					if rest := n - i - 1; rest > 0 {
						s.giveUp(uint64(rest))
					}
					return
				}
			}
		}
	}
}

// C returns a channel that receives the subscription's events, for code
// that needs to select. The first call starts a goroutine that reads the
// subscription and forwards every event to the channel (buffered like the
// subscription), so that from then on each event costs what a channel
// send and receive cost, on top of the ring; what is ready at that first
// call is in the channel when C returns. While the subscription is live
// the goroutine waits for the consumer to make room. Once Unsubscribe or
// Close has ended it, the goroutine waits for nobody: it moves into the
// channel what fits there, counts what it still held beyond that as
// dropped, closes the channel and exits, so a consumer that stopped
// reading leaves nothing running; one that ranges over C receives what
// the channel holds and the loop ends. Events handed to the channel count
// as delivered. Calling C is how a subscription is read then: Next,
// NextBatch and Events must not be used with it.
func (s *Subscription[E]) C() <-chan E {
	s.cOnce.Do(func() {
		s.ch = make(chan E, max(s.buffer, 1))
		buf := make([]E, min(max(s.buffer, 1), eventsBatch))
		// Move what is ready now, so that a caller publishing and then
		// reading C without waiting sees it.
		for len(s.ch) < cap(s.ch) {
			n, done := s.read(buf[:min(len(buf), cap(s.ch)-len(s.ch))])
			for _, e := range buf[:n] {
				s.ch <- e
			}
			if done {
				close(s.ch)
				return
			}
			if n == 0 {
				break
			}
		}
		go s.forward(buf)
	})
	return s.ch
}

// forward is C's goroutine. While the subscription is live it waits for
// the consumer; once it has ended, it waits for nobody: what fits in the
// channel goes there, the rest is counted as dropped.
func (s *Subscription[E]) forward(buf []E) {
	for {
		n, err := s.NextBatch(context.Background(), buf)
		if err != nil {
			break
		}
		if !s.handOver(buf[:n]) {
			break
		}
	}
	// The end: move what still fits, without waiting.
	for room := cap(s.ch) - len(s.ch); room > 0; room = cap(s.ch) - len(s.ch) {
		n, _ := s.read(buf[:min(len(buf), room)])
		if n == 0 {
			break
		}
		s.handOver(buf[:n])
	}
	s.dropRest()
	close(s.ch)
}

// handOver sends batch to C's channel, waiting for room only while the
// subscription is live. Once it has ended, what does not fit is taken back
// from Delivered and counted as dropped, and handOver returns false.
func (s *Subscription[E]) handOver(batch []E) bool {
	for i := 0; i < len(batch); {
		select {
		case s.ch <- batch[i]:
			i++
			continue
		default:
		}
		// Full.
		if s.end.Load() != seqInfinity {
			s.giveUp(uint64(len(batch) - i))
			return false
		}
		// Unsubscribe and Close leave a wake token after setting the end,
		// so this wait notices it.
		select {
		case s.ch <- batch[i]:
			i++
		case <-s.wake:
		}
	}
	return true
}

// giveUp takes n events that were read from the ring but never reached
// the consumer (C's goroutine could not hand them over, an Events loop
// broke before them) back out of Delivered and counts them as dropped. It
// holds the cursor, so that an end in progress has finished counting what
// the subscription took (folded) and folded is stable.
func (s *Subscription[E]) giveUp(n uint64) {
	c := s.hold()
	s.evicted.Add(n)
	s.b.counter(s.policy).Add(n)
	if s.folded {
		s.b.evictedAfterEnd.Add(n) // the end counted them as delivered
	}
	s.cursor.Store(c)
}

// dropRest evicts what an ended subscription still holds in the ring, for
// C's goroutine when it gives up on it.
func (s *Subscription[E]) dropRest() {
	g := s.g
	g.mu.Lock()
	s.evict(s.end.Load())
	g.mu.Unlock()
	g.wakeRoom()
}

// Unsubscribe ends the subscription. Publishers that claim a place in the
// ring after it returns do not deliver to the subscription; what it held
// by then can still be read (Next, NextBatch, Events or C), until a
// publisher needs the room: from then on, those events are evicted from it
// (counted as dropped) rather than holding any publisher back, whatever
// the policy. A reader waiting in Next is woken. Unsubscribe never blocks
// on a publisher or on the reader, so it is safe to call from the reading
// goroutine, concurrently with Publish, and more than once.
func (s *Subscription[E]) Unsubscribe() {
	if s.b == nil {
		return // the zero Subscription
	}
	s.b.unsubscribe(s)
}

// Dropped returns how many events this subscription lost under its policy
// (see SubStats).
func (s *Subscription[E]) Dropped() uint64 { return s.refused.Load() + s.evicted.Load() }

// Err returns ErrClosed once the broker's Close has ended the subscription
// (or when it was created on a closed broker), and nil otherwise, including
// after Unsubscribe. A consumer checks it after Next returns ErrClosed or C
// is closed to learn why.
func (s *Subscription[E]) Err() error {
	if s.brokerClosed.Load() {
		return ErrClosed
	}
	return nil
}

// String describes the subscription for logs and test failures.
func (s *Subscription[E]) String() string {
	return fmt.Sprintf("Subscription(%q, %v, buffer %d)", s.pattern, s.policy, s.buffer)
}

// SubStats is a snapshot of one subscription's counters. Every event
// offered to the subscription ends in exactly one of Delivered, Dropped and
// Buffered, so
//
//	Published == Delivered + Dropped + Buffered
//
// whenever no Publish is in progress (the counters are read one by one).
type SubStats struct {
	Pattern string
	Policy  Overflow
	Buffer  int
	// Published counts the events offered to the subscription: published
	// to a matching topic while it was live.
	Published uint64
	// Delivered counts the events its reader took (Next, NextBatch,
	// Events) or that C's goroutine handed to the channel.
	Delivered uint64
	// Dropped counts the events lost under the policy: refused by a full
	// DropNewest subscription, given up by a Block publisher whose context
	// ended (or whose subscription closed), evicted from a DropOldest
	// subscription that a publisher lapped, evicted after Unsubscribe
	// or Close before the reader got to them, or read from the ring but
	// never handed over (a broken Events loop, C after the end).
	Dropped uint64
	// Buffered counts the events waiting in the ring for the reader.
	Buffered uint64
	// Ended reports that Unsubscribe or Close ended the subscription.
	Ended bool
}

// Stats returns a snapshot of the subscription's counters.
func (s *Subscription[E]) Stats() SubStats {
	end := s.end.Load()
	last := min64(s.g.tail.Load()&seqMask, end)
	c := min64(s.cursor.Load()&seqMask, last)
	st := SubStats{
		Pattern:   s.pattern,
		Policy:    s.policy,
		Buffer:    s.buffer,
		Delivered: s.taken(),
		Dropped:   s.Dropped(),
		Buffered:  last - c,
		Ended:     end != seqInfinity,
	}
	st.Published = last - s.start + s.refused.Load()
	return st
}

// A publication is one Publish call in progress. It lives on the
// publisher's stack; the match walk hands it groups one by one.
type publication[E any] struct {
	b     *Broker[E]
	ctx   context.Context
	e     E
	err   error
	waits int
	wait  [maxWaits]*groupRef[E] // full Block groups, served last
}

// maxWaits bounds the full Block groups of one Publish whose waiting is put
// off until every other group has its copy. Past it, a full group is
// waited for on the spot.
const maxWaits = 8

// A groupRef is a group as a snapshot lists it, with the subscriptions it
// had then: a publisher charges them for an event the ring refused.
type groupRef[E any] struct {
	g    *brokerGroup[E]
	subs []*Subscription[E]
}

// deliverAll offers e to every group of a list.
func (p *publication[E]) deliverAll(refs []groupRef[E]) {
	for i := range refs {
		p.settle(&refs[i], refs[i].g.offer(p.e))
	}
}

// settle applies the group's policy to what offering e to it gave.
func (p *publication[E]) settle(ref *groupRef[E], res offerResult) {
	switch res {
	case offered:
	case offerClosed:
		ref.refuseAll()
	case offerFull:
		if ref.g.policy != BlockPublisher {
			ref.refuseAll() // DropNewest: one subscription
			return
		}
		if p.waits < maxWaits {
			p.wait[p.waits] = ref
			p.waits++
			return
		}
		p.block(ref)
	}
}

// finish waits for the full Block groups put off, counts the Publish and
// returns its error.
func (p *publication[E]) finish() error {
	for _, ref := range p.wait[:p.waits] {
		p.block(ref)
	}
	p.b.countPublished()
	return p.err
}

// block waits for room in a full Block group.
func (p *publication[E]) block(ref *groupRef[E]) {
	if ref.g.offerWait(p, p.e) != offered {
		ref.refuseAll()
	}
}

func (ref *groupRef[E]) refuseAll() {
	for _, s := range ref.subs {
		s.refuse()
	}
}

func (b *Broker[E]) counter(p Overflow) *atomic.Uint64 {
	switch p {
	case DropOldest:
		return &b.dropOldest
	case BlockPublisher:
		return &b.dropBlock
	}
	return &b.dropNewest
}
