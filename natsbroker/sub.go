package natsbroker

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/concpatterns/conc"
)

// A Subscription is one subscriber's view of a Broker: the channel its
// events arrive on, and the means to leave. It is created by
// Broker.Subscribe; the zero Subscription is not usable. Its methods are
// safe for concurrent use, including Unsubscribe from the goroutine that
// receives from C.
type Subscription[E any] struct {
	b       *Broker[E]
	ns      *nats.Subscription
	pattern string
	policy  conc.Overflow
	ch      chan E
	// done is closed when the subscription starts closing; it wakes a
	// BlockPublisher delivery waiting for room in ch.
	done chan struct{}
	// mu is held by the delivery goroutine while it hands a message to
	// ch, and by close to close ch, so that nothing is ever sent on a
	// closed channel. It is never held while user code runs.
	mu           sync.Mutex
	closing      atomic.Bool
	brokerClosed atomic.Bool
	err          error // set before the subscription is shared, if it failed

	scratch E // the message being decoded (handle's own)

	offered  atomic.Uint64 // messages the handler took on (not NATS's drops)
	dropped  atomic.Uint64 // everything this subscription lost
	slowSeen atomic.Uint64 // nats.go's Dropped count already taken in
}

// C returns the channel on which the subscription's events arrive, in the
// order each connection published them. It is closed by Unsubscribe and
// by the broker's Close; events buffered by then can still be received.
func (s *Subscription[E]) C() <-chan E { return s.ch }

// Unsubscribe ends the subscription: the server stops sending to it, a
// delivery waiting for room (BlockPublisher) gives up, and C is closed.
// It waits only for a delivery in progress to finish handing over its
// message, so it is safe to call from the goroutine receiving from C, and
// more than once.
func (s *Subscription[E]) Unsubscribe() {
	if s.b == nil {
		return // the zero Subscription
	}
	s.b.mu.Lock()
	if s.ns != nil {
		delete(s.b.subs, s.ns)
	}
	s.b.mu.Unlock()
	s.close()
}

// Dropped returns how many events meant for this subscription it lost:
// to its policy, to NATS's pending limit (slow consumer) or because they
// did not decode.
func (s *Subscription[E]) Dropped() uint64 {
	s.countSlow()
	return s.dropped.Load()
}

// Err returns conc.ErrClosed once the broker's Close has closed the
// subscription (or when it was made on a closed broker), the connection's
// error when it refused the subscription, and nil otherwise, including
// after Unsubscribe.
func (s *Subscription[E]) Err() error {
	if s.err != nil {
		return s.err
	}
	if s.brokerClosed.Load() {
		return conc.ErrClosed
	}
	return nil
}

// Stats returns a snapshot of the subscription's counters, as
// conc.Subscription's Stats does: Published counts the events NATS routed
// to it while it was live (those its pending limit dropped included),
// Dropped is Dropped(), Buffered the events waiting in its channel, and
// Delivered the rest, the events its reader has taken, so that
//
//	Published == Delivered + Dropped + Buffered
//
// whenever no message is being handed over (the counters are read one by
// one).
func (s *Subscription[E]) Stats() conc.SubStats {
	dropped := s.Dropped()
	st := conc.SubStats{
		Pattern:   s.pattern,
		Policy:    s.policy,
		Buffer:    cap(s.ch),
		Published: s.offered.Load() + s.slowSeen.Load(),
		Dropped:   dropped,
		Buffered:  uint64(len(s.ch)),
		Ended:     s.closing.Load(),
	}
	if held := st.Dropped + st.Buffered; st.Published > held {
		st.Delivered = st.Published - held
	}
	return st
}

// String describes the subscription for logs and test failures.
func (s *Subscription[E]) String() string {
	return fmt.Sprintf("natsbroker.Subscription(%q, %v, buffer %d)", s.pattern, s.policy, cap(s.ch))
}

// fail makes a subscription that never started: closed, with err.
func (s *Subscription[E]) fail(err error) {
	s.err = err
	s.closing.Store(true)
	close(s.done)
	close(s.ch)
}

// close ends the subscription once: it wakes a waiting delivery, takes in
// what NATS dropped so far, unsubscribes from the server and closes ch
// when no delivery is handing over a message.
func (s *Subscription[E]) close() {
	if s.closing.Swap(true) {
		return
	}
	close(s.done)
	s.countSlow()
	if s.ns != nil {
		// Fails only when the connection is closed already, which
		// ends the subscription just as well.
		_ = s.ns.Unsubscribe()
	}
	s.mu.Lock()
	close(s.ch)
	s.mu.Unlock()
}

// countSlow takes in the messages nats.go has dropped for this
// subscription since the last call.
func (s *Subscription[E]) countSlow() {
	if s.ns == nil {
		return
	}
	n, err := s.ns.Dropped()
	if err != nil || n <= 0 {
		return // unsubscribed: close took the last count
	}
	for {
		seen := s.slowSeen.Load()
		if uint64(n) <= seen {
			return
		}
		if s.slowSeen.CompareAndSwap(seen, uint64(n)) {
			s.b.slow.Add(uint64(n) - seen)
			s.dropped.Add(uint64(n) - seen)
			return
		}
	}
}

// handle is the NATS message handler. nats.go calls it from the
// subscription's own goroutine, one message at a time, so it is the only
// sender on ch.
func (s *Subscription[E]) handle(m *nats.Msg) {
	if s.closing.Load() {
		return // unsubscribed: no longer a delivery attempt
	}
	b := s.b
	// Decoded into a field, not a local: a local whose address goes to
	// an interface method escapes, one allocation per message. The
	// handler runs on one goroutine at a time, so the field is its own.
	// It is zeroed first because decoders such as encoding/json merge
	// into what is there.
	s.scratch = *new(E)
	if err := b.codec.Unmarshal(m.Data, &s.scratch); err != nil {
		s.offered.Add(1)
		b.undecodable.Add(1)
		s.dropped.Add(1)
		b.report(&DecodeError{Subject: m.Subject, Pattern: s.pattern, Size: len(m.Data), Err: err})
		return
	}
	e := s.scratch
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return
	}
	s.offered.Add(1)
	// Counted as sent before the send, and taken back if the policy
	// drops it instead, so that a consumer that has received an event
	// finds it counted.
	b.sent.Add(1)
	select {
	case s.ch <- e:
		return
	default:
	}
	switch s.policy {
	case conc.DropNewest:
		b.sent.Add(^uint64(0))
		b.dropNewest.Add(1)
		s.dropped.Add(1)
	case conc.DropOldest:
		if cap(s.ch) == 0 {
			b.sent.Add(^uint64(0))
			b.refused.Add(1)
			s.dropped.Add(1)
			return
		}
		// The only sender is this goroutine, so after one eviction
		// there is room unless the consumer emptied ch meanwhile, in
		// which case there is room anyway.
		select {
		case <-s.ch:
			b.evicted.Add(1)
			s.dropped.Add(1)
		default:
		}
		s.ch <- e
	case conc.BlockPublisher:
		select {
		case s.ch <- e:
		case <-s.done:
			b.sent.Add(^uint64(0))
			b.dropBlock.Add(1)
			s.dropped.Add(1)
		}
	}
}

// Next waits for the next event and returns it. It returns
// conc.ErrClosed once the subscription has ended (Unsubscribe, or the
// broker's Close) and everything it held has been read, and an error
// matching ctx.Err() (and context.Cause) if ctx ends first; an event that
// is ready is returned even when ctx has ended. It reads the same buffer
// as C, so the two may be mixed.
func (s *Subscription[E]) Next(ctx context.Context) (E, error) {
	checkCtx(ctx)
	select {
	case e, ok := <-s.ch:
		if !ok {
			return e, conc.ErrClosed
		}
		return e, nil
	default:
	}
	select {
	case e, ok := <-s.ch:
		if !ok {
			return e, conc.ErrClosed
		}
		return e, nil
	case <-ctx.Done():
		var zero E
		return zero, ctxErr(ctx)
	}
}

// NextBatch waits until at least one event is ready (as Next does), then
// copies up to len(buf) of the events that are ready into buf, in order,
// and returns how many. It returns 0 and conc.ErrClosed once the
// subscription has ended and everything was read, and 0 and the context's
// error if ctx ends first. With an empty buf it returns 0 and nil at once.
// It does not allocate.
func (s *Subscription[E]) NextBatch(ctx context.Context, buf []E) (int, error) {
	checkCtx(ctx)
	if len(buf) == 0 {
		return 0, nil
	}
	e, err := s.Next(ctx)
	if err != nil {
		return 0, err
	}
	buf[0] = e
	n := 1
	for n < len(buf) {
		select {
		case e, ok := <-s.ch:
			if !ok {
				return n, nil
			}
			buf[n] = e
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// Events returns an iterator over the subscription's events. It ends when
// the subscription has ended and everything it held has been yielded,
// when ctx ends (check ctx.Err() to tell which), or when the loop breaks.
// Unsubscribe may be called from inside the loop: the events still held
// are yielded, then the loop ends.
func (s *Subscription[E]) Events(ctx context.Context) iter.Seq[E] {
	checkCtx(ctx)
	return func(yield func(E) bool) {
		for {
			e, err := s.Next(ctx)
			if err != nil || !yield(e) {
				return
			}
		}
	}
}

// ctxErr returns ctx's error, joined with its cause when that differs, so
// that the result matches both under errors.Is.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// checkCtx panics on a nil context, at the call that passes it.
func checkCtx(ctx context.Context) {
	if ctx == nil {
		panic("natsbroker: context must not be nil")
	}
}
