package conc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A Subscription is one subscriber's view of a Broker: the channel its
// messages arrive on, and the means to leave. It is created by
// Broker.Subscribe; the zero Subscription is not usable. Its methods are
// safe for concurrent use, including Unsubscribe from the goroutine that
// receives from C.
type Subscription[E any] struct {
	// state holds two flags and a count of holders: the publishers
	// waiting to send to ch outside the broker's epoch (Block, on a full
	// buffer), plus one for a grace period in progress (broker_grace.go).
	// ch is closed by whoever drops the count to zero once closing is set,
	// so Unsubscribe never waits and a sender never meets a closed ch.
	state atomic.Int64
	ch    chan E
	// done is closed when the subscription starts closing; it wakes a
	// Block publisher waiting for room in ch.
	done   chan struct{}
	policy Overflow

	b       *Broker[E]
	pattern string
	wild    bool

	dropped      atomic.Uint64
	brokerClosed atomic.Bool
	// evict serialises DropOldest publishers that found ch full, so that
	// two of them do not evict two messages to make room for one each
	// over and over. Publishers that find room never take it.
	evict sync.Mutex
}

const (
	subClosing = 1 << 62 // Unsubscribe or Close has begun
	subClosed  = 1 << 61 // ch is closed (or being closed by its one closer)
)

// closing reports whether the subscription has started closing. A
// publisher that left the broker's epoch and came back in the middle of
// its walk checks it before sending: a subscription of its snapshot may
// have been retired, and its channel closed, while it was out.
func (s *Subscription[E]) closing() bool {
	return s.state.Load()&subClosing != 0
}

// enter registers a publisher about to wait on ch outside the epoch. It
// fails once the subscription is closing.
func (s *Subscription[E]) enter() bool {
	if s.state.Add(1)&subClosing != 0 {
		s.leave()
		return false
	}
	return true
}

// leave ends what enter (or startClose's hold) began. The last holder to
// leave a closing subscription closes ch.
func (s *Subscription[E]) leave() {
	if s.state.Add(-1) == subClosing {
		s.closeChan()
	}
}

// closeChan closes ch if the subscription is closing, has no holder and
// nobody closed it yet. The CAS makes exactly one caller win.
func (s *Subscription[E]) closeChan() {
	if s.state.CompareAndSwap(subClosing, subClosing|subClosed) {
		close(s.ch)
	}
}

// startClose sets the closing flag together with holds extra holders (so
// that ch stays open until they leave) and wakes the waiting publishers. It
// reports false if the subscription was closing already.
func (s *Subscription[E]) startClose(holds int64) bool {
	for {
		old := s.state.Load()
		if old&subClosing != 0 {
			return false
		}
		if s.state.CompareAndSwap(old, (old|subClosing)+holds) {
			close(s.done)
			return true
		}
	}
}

// C returns the channel on which the subscription's messages arrive, in
// the order each publisher published them. It is closed after Unsubscribe
// or the broker's Close, once no publisher is in the middle of sending to
// it; messages buffered by then can still be received.
func (s *Subscription[E]) C() <-chan E { return s.ch }

// Unsubscribe ends the subscription. Publishers that start after it
// returns do not send to the subscription; C is closed once the publishers
// already sending at that moment have moved on, which they do without
// waiting (one waiting on this subscription under Block is woken). The
// consumer need not drain C; what is buffered can still be received.
// Unsubscribe never blocks on a publisher or on the consumer, so it is safe
// to call from the goroutine receiving from C, concurrently with Publish,
// and more than once.
func (s *Subscription[E]) Unsubscribe() {
	if s.b == nil {
		return // the zero Subscription
	}
	s.b.unsubscribe(s)
}

// Dropped returns how many messages this subscription lost under its
// policy (see BrokerStats for what each policy counts).
func (s *Subscription[E]) Dropped() uint64 { return s.dropped.Load() }

// Err returns ErrClosed once the broker's Close has closed the subscription
// (or when it was created on a closed broker), and nil otherwise, including
// after Unsubscribe. A consumer checks it after C is closed to learn why.
func (s *Subscription[E]) Err() error {
	if s.brokerClosed.Load() {
		return ErrClosed
	}
	return nil
}

// String describes the subscription for logs and test failures.
func (s *Subscription[E]) String() string {
	return fmt.Sprintf("Subscription(%q, %v, buffer %d)", s.pattern, s.policy, cap(s.ch))
}

// maxWaits bounds the Block subscriptions per message whose waiting is put
// off until every other subscriber has been served: one bit each on the
// publisher's stack. Past it (a topic with hundreds of matching Block
// subscribers), a full one is waited for on the spot.
const maxWaits = 256

// A publication is one Publish call in progress. It lives on the
// publisher's stack; the match walk hands it subscriptions one by one.
//
// A message goes out in up to two passes over the same snapshot. The first,
// inside the broker's epoch, tries every subscription without waiting and
// notes, by its position in the walk, each Block subscription that was
// full. Only if there is one does a second pass, outside the epoch, walk
// the snapshot again (the walk's order is fixed) and wait on the noted
// ones, so a stuck subscriber never holds up the others' copy.
type publication[E any] struct {
	b       *Broker[E]
	ctx     context.Context
	e       E
	err     error
	sent    uint64 // added to the broker's counter once, at the end
	i       int    // position in the walk
	ticket  uint32 // the epoch slot joined by the first pass (readLock)
	rot     uint32 // where deliverAll starts in each list
	waits   int    // Block subscriptions put off to the second pass
	retry   bool   // this is the second pass
	recheck bool   // the first pass left the epoch and came back
	wait    [maxWaits / 64]uint64
}

// A subRef is a subscription as a snapshot lists it. The channel is copied
// next to the pointer so that the first pass of a publish reads one
// contiguous slice and the channels, never the Subscription objects: with
// a hundred subscribers, touching each Subscription's cache line doubled
// the cost of a publish.
type subRef[E any] struct {
	ch chan E
	s  *Subscription[E]
}

// deliverAll hands p the subscriptions of one list, starting at a place
// that differs from message to message and publisher to publisher: two
// publishers walking the same list in step would queue on each channel's
// lock in turn, one always waiting for the other. Where the walk starts
// changes nothing for order, which is per publisher per subscriber, and
// both passes start at the same place.
func (p *publication[E]) deliverAll(refs []subRef[E]) {
	n := len(refs)
	if n == 0 {
		return
	}
	j := 0
	if n > 1 {
		j = int(p.rot % uint32(n))
	}
	for range n {
		r := &refs[j]
		switch {
		case p.retry:
			p.redeliver(r)
		case p.recheck && r.s.closing():
			// Inside the epoch that this publication joined before
			// loading its snapshot, every listed channel is open. Only
			// after a wait outside the epoch (see full) may a listed
			// subscription have been retired, and its channel closed.
			// The message was offered to it all the same (it matched
			// when Publish began), so its loss is counted, as a Block
			// publisher's drop: it is one that made the walk wait.
			r.s.drop(&p.b.dropBlock)
			p.i++
		default:
			// The first pass, written out here rather than in a method
			// so that the common case (room in the buffer) is one
			// non-blocking send and no call of ours.
			select {
			case r.ch <- p.e:
				p.sent++
			default:
				p.full(r.s, p.i)
			}
			p.i++
		}
		if j++; j == n {
			j = 0
		}
	}
}

// full applies s's policy to a message that found s's buffer full; i is
// s's position in the walk.
func (p *publication[E]) full(s *Subscription[E], i int) {
	switch s.policy {
	case DropNewest:
		s.drop(&p.b.dropNew)
	case DropOldest:
		p.sent += s.pushOut(p.e)
	case BlockPublisher:
		if i < maxWaits {
			p.wait[i/64] |= 1 << (i % 64)
			p.waits++
			return
		}
		// Too many to note: wait now, but outside the epoch, and
		// check the rest of the list for retired subscriptions.
		p.b.readUnlock(p.ticket)
		p.block(s)
		p.ticket, _ = p.b.readLock(unsafe.Pointer(p))
		p.b.reentries.Add(1)
		p.recheck = true
	}
}

// redeliver is the second pass for one subscriber: it waits on the Block
// subscriptions that the first pass noted.
func (p *publication[E]) redeliver(r *subRef[E]) {
	i := p.i
	p.i++
	if i < maxWaits && p.wait[i/64]&(1<<(i%64)) != 0 {
		p.block(r.s)
	}
}

// block serves a Block subscription that was full. It was a delivery
// attempt already, so closing since then counts as a drop.
func (p *publication[E]) block(s *Subscription[E]) {
	if !s.enter() {
		s.drop(&p.b.dropBlock)
		return
	}
	p.blockEntered(s)
	s.leave()
}

// blockEntered waits for room in s.ch, for s to close or for the context to
// end, whichever comes first. The caller holds s (enter).
func (p *publication[E]) blockEntered(s *Subscription[E]) {
	// The consumer may have made room since the first pass; a ready
	// send is also the only one tried once the context has ended, so that
	// the select below never picks ctx.Done over a free slot at random.
	select {
	case s.ch <- p.e:
		p.sent++
		return
	default:
	}
	if p.err != nil {
		s.drop(&p.b.dropBlock)
		return
	}
	select {
	case s.ch <- p.e:
		p.sent++
	case <-s.done:
		s.drop(&p.b.dropBlock)
	case <-p.ctx.Done():
		p.err = ctxErr(p.ctx)
		s.drop(&p.b.dropBlock)
	}
}

func (s *Subscription[E]) drop(counter *atomic.Uint64) {
	counter.Add(1)
	s.dropped.Add(1)
}

// pushOut puts e into the full channel of a DropOldest subscription,
// evicting from the head of the channel until there is room. Evicting from
// the head keeps every publisher's messages in order. The consumer and
// publishers that find room run concurrently with it, so an eviction may
// find the channel already emptied (nothing is evicted) or the freed slot
// taken (evict again). It returns 1 if e was sent.
func (s *Subscription[E]) pushOut(e E) uint64 {
	if cap(s.ch) == 0 {
		// Nothing buffered to evict: the new message is the one lost.
		s.drop(&s.b.refused)
		return 0
	}
	s.evict.Lock()
	defer s.evict.Unlock()
	for {
		select {
		case s.ch <- e:
			return 1
		default:
		}
		select {
		case <-s.ch:
			s.drop(&s.b.evicted)
		default:
		}
	}
}
