package conc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// ErrInvalidTopic is returned (wrapped, with the topic and what is wrong with
// it) by Broker.Publish (and CheckTopic) for a topic that is empty, has an
// empty token ("a..b"), contains a wildcard, or contains whitespace or an
// ASCII control character. Subscribe, which has no error result,
// panics on a malformed pattern instead: a pattern is part of the program,
// not of its input.
var ErrInvalidTopic = errors.New("conc: invalid topic")

// A Overflow says what a publisher does when a subscriber's buffer is full.
// Every policy keeps messages from one publisher to one subscriber in the
// order they were published; the drop policies may leave gaps in it.
type Overflow int

const (
	// DropNewest discards the message being published, for that subscriber
	// only. The publisher never waits. This is the default.
	DropNewest Overflow = iota
	// DropOldest evicts the oldest buffered message to make room, so that
	// the subscriber always sees the latest messages. The publisher never
	// waits for the subscriber, only, on a full buffer, for other publishers
	// evicting from the same subscription.
	DropOldest
	// BlockPublisher makes the publisher wait for room, until the publisher's context
	// is done or the subscription closes. Other subscribers of the same
	// message are served first (up to 256 full BlockPublisher subscribers of one
	// message are put off; past that, later ones are waited for in turn),
	// so a stuck subscriber delays only the publishers that publish to it,
	// never other subscribers of that message, never the broker.
	BlockPublisher
)

// String returns the policy's name.
func (p Overflow) String() string {
	switch p {
	case DropNewest:
		return "DropNewest"
	case DropOldest:
		return "DropOldest"
	case BlockPublisher:
		return "BlockPublisher"
	}
	return fmt.Sprintf("Overflow(%d)", int(p))
}

// DefaultSubBuffer is the buffer of a subscription when neither Subscribe nor
// NewBroker was given SubBuffer.
const DefaultSubBuffer = 64

// A BrokerOption configures a Broker. Every SubOption is also a BrokerOption:
// given to NewBroker it sets the default for every subscription.
type BrokerOption interface {
	applyBroker(*subConfig)
}

// A SubOption configures one subscription (see Broker.Subscribe).
type SubOption interface {
	BrokerOption
	applySub(*subConfig)
}

type subConfig struct {
	buffer    int
	bufferSet bool // so that the zero Broker gets DefaultSubBuffer
	policy    Overflow
}

type subBuffer int

func (o subBuffer) applySub(c *subConfig)    { c.buffer, c.bufferSet = int(o), true }
func (o subBuffer) applyBroker(c *subConfig) { o.applySub(c) }

type subPolicy Overflow

func (o subPolicy) applySub(c *subConfig)    { c.policy = Overflow(o) }
func (o subPolicy) applyBroker(c *subConfig) { o.applySub(c) }

// SubBuffer sets how many messages may wait in a subscription's channel
// before its policy applies. 0 makes the channel unbuffered: a message is
// then handed over only to a consumer already waiting on C (with DropOldest
// there is nothing to evict, so the new message is the one dropped). It
// panics if n is negative. The default is DefaultSubBuffer.
func SubBuffer(n int) SubOption {
	checkNonNegative("subscription buffer", n)
	return subBuffer(n)
}

// SubPolicy sets a subscription's slow-subscriber policy. It panics on a
// value that is not one of DropNewest, DropOldest or BlockPublisher. The default is
// DropNewest.
func SubPolicy(p Overflow) SubOption {
	if p < DropNewest || p > BlockPublisher {
		panic(fmt.Sprintf("conc: unknown subscription policy %d", int(p)))
	}
	return subPolicy(p)
}

// BrokerStats is a snapshot of a Broker's counters. Every delivery attempt
// (one published message meeting one matching subscription) ends in
// exactly one of Delivered, DroppedNewest, DroppedOldest and DroppedBlock,
// so once no Publish is in progress
//
//	Deliveries == Delivered + DroppedNewest + DroppedOldest + DroppedBlock
//
// and Delivered counts every message that reached a subscription's channel
// and was not evicted from it, whether the consumer has received it yet or
// not (Buffered of them are still waiting in live subscriptions). The
// counters are read one by one, so while publishers run they may disagree by
// the messages in flight.
type BrokerStats struct {
	// Published counts Publish calls that were accepted: the broker was
	// open and the topic valid, whether or not anybody subscribed.
	Published uint64
	// Deliveries counts delivery attempts: for each accepted message, the
	// subscriptions that matched its topic when its Publish began (one
	// unsubscribed meanwhile may still be offered the message).
	Deliveries uint64
	// Delivered counts messages placed in a subscription's channel, minus
	// those a DropOldest subscription evicted later.
	Delivered uint64
	// DroppedNewest counts messages a DropNewest subscription refused
	// because its buffer was full.
	DroppedNewest uint64
	// DroppedOldest counts messages a DropOldest subscription evicted (or
	// refused, when unbuffered with no consumer waiting).
	DroppedOldest uint64
	// DroppedBlock counts messages a Block publisher gave up on because its
	// context ended, or the subscription closed, before there was room. It
	// also counts, whatever their policy, subscriptions that a publisher
	// skipped because they closed while it waited for a full Block
	// subscriber beyond the first 256 of one Publish (such a wait happens
	// outside the epoch, so later subscriptions may be retired meanwhile).
	DroppedBlock uint64
	// Buffered is the number of messages waiting in the channels of the
	// subscriptions that are still live. It is part of Delivered.
	Buffered int
	// Subscribers is the number of live subscriptions.
	Subscribers int
}

// A Broker is an in-process publish/subscribe hub for messages of type E.
// Subscribers choose topics by pattern (see Subscribe); publishers name a
// literal topic, and each message goes to every subscription whose pattern
// matches it, through that subscription's own buffered channel and under its
// own slow-subscriber Policy.
//
// Publishing takes no lock and does not allocate: the subscriber lists form
// an immutable snapshot (a map for literal topics and a token trie for
// wildcard patterns) behind an atomic pointer, and publishers announce
// themselves with a few atomic adds on a cache line of their own so that
// unsubscribed channels are closed only once no publisher can still send
// to them (broker_grace.go). Subscribe, Unsubscribe and Close build a new
// snapshot under a mutex; they are meant to be rare next to Publish. No
// user code ever runs inside the broker, and the mutex is never held while
// waiting for a subscriber or a publisher.
//
// The zero Broker is open, has no subscriptions and uses the default
// subscription options; NewBroker sets other defaults. A Broker must not be
// copied after first use. All methods are safe for concurrent use. The
// broker runs no goroutine of its own.
type Broker[E any] struct {
	snap atomic.Pointer[brokerSnapshot[E]]
	// Every Publish joins the epoch and counts itself in one of these
	// slots, chosen by its stack address (broker_grace.go), so that
	// concurrent publishers mostly write cache lines of their own. The
	// padding keeps those writes off the line of snap, which every
	// Publish reads.
	_     [120]byte
	slots [brokerSlots]pubSlot

	evicted   atomic.Uint64 // DropOldest evictions of sent messages
	refused   atomic.Uint64 // DropOldest on an unbuffered channel
	dropNew   atomic.Uint64
	dropBlock atomic.Uint64
	// Entries into the epoch that were not accepted publishes, so that
	// Stats can derive Published from the slots' entry counts.
	rejected  atomic.Uint64 // Publish calls refused (closed, bad topic)
	reentries atomic.Uint64 // extra entries (readLock retries, waits)

	// Epoch-based reclamation of retired subscriptions (broker_grace.go).
	epoch        atomic.Uint32
	graceWaiting atomic.Bool
	graceOld     atomic.Uint32 // parity of the epoch being drained

	mu       sync.Mutex         // serialises snapshot rebuilds and grace periods
	grace    []*Subscription[E] // retired, waiting for the old epoch to drain
	queued   []*Subscription[E] // retired while a grace period was running
	defaults subConfig          // immutable after NewBroker
}

// A brokerSnapshot is the broker's immutable view of its subscriptions.
type brokerSnapshot[E any] struct {
	exact  map[string][]subRef[E] // literal patterns by topic
	wild   *topicNode[E]          // wildcard patterns; nil when none
	n      int                    // live subscriptions
	closed bool
}

// NewBroker returns an open Broker with no subscriptions. SubBuffer and
// SubPolicy given here become the defaults of every Subscribe. It panics
// with a conc: message when an option is nil.
func NewBroker[E any](opts ...BrokerOption) *Broker[E] {
	b := &Broker[E]{}
	for i, o := range opts {
		// A nil option is a programmer error: a conc: panic naming it
		// (contract 6 in docs/ARCHITECTURE.md), not a nil-pointer
		// dereference.
		checkFunc(fmt.Sprintf("NewBroker option %d", i), o == nil)
		o.applyBroker(&b.defaults)
	}
	return b
}

// Subscribe returns a subscription to every message published, from now on,
// to a topic matching pattern: a literal topic ("orders.created") or a
// pattern with the wildcards "*" (one token) and ">" (one or more final
// tokens), as NATS spells them. Messages arrive on the subscription's C
// channel; opts override the broker's defaults for this subscription.
//
// Subscribe panics with a "conc: " message on a malformed pattern: empty,
// with an empty token ("a..b"), a wildcard inside a token ("a*"), ">"
// anywhere but last ("a.>.b"), whitespace or a control character
// (CheckPattern), and on a nil option. On a closed broker it returns a
// subscription that is already closed: C is closed and Err returns ErrClosed, so a
// consumer ranging over C simply ends.
//
// Subscribe builds a new snapshot under the broker's mutex: its cost grows
// with the number of distinct literal topics (the map is copied) and the
// depth of the pattern (the trie is path-copied), not with the number of
// publishers. It never waits for a publisher.
func (b *Broker[E]) Subscribe(pattern string, opts ...SubOption) *Subscription[E] {
	wild, problem := parseTopic(pattern, true)
	if problem != "" {
		panic(fmt.Sprintf("conc: invalid subscription pattern %q: %s", pattern, problem))
	}
	cfg := b.defaults
	for i, o := range opts {
		checkFunc(fmt.Sprintf("Subscribe option %d", i), o == nil)
		o.applySub(&cfg)
	}
	if !cfg.bufferSet {
		cfg.buffer = DefaultSubBuffer
	}
	s := &Subscription[E]{
		b:       b,
		pattern: pattern,
		wild:    wild,
		policy:  cfg.policy,
		ch:      make(chan E, cfg.buffer),
		done:    make(chan struct{}),
	}

	b.mu.Lock()
	old := b.load()
	if old.closed {
		b.mu.Unlock()
		s.brokerClosed.Store(true)
		s.state.Store(subClosing | subClosed)
		close(s.done)
		close(s.ch)
		return s
	}
	next := *old
	next.n++
	if wild {
		next.wild = old.wild.with(pattern, s)
	} else {
		next.exact = maps.Clone(old.exact)
		if next.exact == nil {
			next.exact = make(map[string][]subRef[E], 1)
		}
		next.exact[pattern] = append(slices.Clip(old.exact[pattern]), subRef[E]{s.ch, s})
	}
	b.snap.Store(&next)
	b.mu.Unlock()
	return s
}

// load returns the current snapshot; the zero Broker has an empty one.
func (b *Broker[E]) load() *brokerSnapshot[E] {
	if sn := b.snap.Load(); sn != nil {
		return sn
	}
	return &brokerSnapshot[E]{}
}

// unsubscribe takes s out of the current snapshot and retires it, unless
// it is gone already (unsubscribed before, or the broker is closed).
func (b *Broker[E]) unsubscribe(s *Subscription[E]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.load()
	if old.closed {
		return
	}
	next := *old
	if s.wild {
		var found bool
		if next.wild, found = old.wild.without(s.pattern, s); !found {
			return
		}
	} else {
		kept, found := removeSub(old.exact[s.pattern], s)
		if !found {
			return
		}
		next.exact = maps.Clone(old.exact)
		if len(kept) == 0 {
			delete(next.exact, s.pattern)
		} else {
			next.exact[s.pattern] = kept
		}
	}
	next.n--
	b.snap.Store(&next)
	b.retire([]*Subscription[E]{s})
}

// Publish sends e to every subscription whose pattern matches topic, and
// returns once each of them has either taken e into its channel or dropped
// it under its policy. Each subscriber receives one publisher's messages in
// the order that publisher published them.
//
// Publish blocks only for Block subscriptions with a full buffer, and only
// after every other matching subscription has been served: it then waits for
// room until ctx is done (the message is dropped for that subscription, and
// Publish returns an error matching ctx.Err() that keeps context.Cause) or
// the subscription closes. With no Block subscription it never blocks and
// ignores ctx, so a subscriber may publish from its own receive loop. It
// returns ErrClosed once Close has been called and an error matching
// ErrInvalidTopic when topic is empty, has an empty token, contains a
// wildcard, or contains whitespace or a control character. It does not allocate, and takes no lock except, briefly, when
// it is the last publisher an unsubscribed channel was waiting for.
func (b *Broker[E]) Publish(ctx context.Context, topic string, e E) error {
	// Checked up front: ctx is used only when a Block subscriber is full,
	// and a nil one must not pass until that day.
	checkCtx(ctx)
	p := publication[E]{b: b, ctx: ctx, e: e}
	var seq uint64
	p.ticket, seq = b.readLock(unsafe.Pointer(&p))
	sn := b.snap.Load()
	if sn == nil {
		sn = &brokerSnapshot[E]{} // the zero Broker; does not escape
	}
	if sn.closed {
		b.rejected.Add(1)
		b.readUnlock(p.ticket)
		return ErrClosed
	}
	// A key of the exact map was validated when it was subscribed to, so
	// only a topic without exact subscribers needs checking.
	refs, ok := sn.exact[topic]
	if !ok {
		if _, problem := parseTopic(topic, false); problem != "" {
			b.rejected.Add(1)
			b.readUnlock(p.ticket)
			return fmt.Errorf("%w %q: %s", ErrInvalidTopic, topic, problem)
		}
	}
	// The slot's entry count, mixed with the slot, picks where the walk
	// starts (see deliverAll).
	p.rot = uint32((seq + uint64(p.ticket)<<32) * 0x9E3779B97F4A7C15 >> 32)
	p.deliverAll(refs)
	if sn.wild != nil {
		sn.wild.match(topic, &p)
	}
	b.readUnlock(p.ticket)
	if p.waits > 0 {
		// Some Block subscribers were full: every other subscriber has
		// its copy by now; walk the same snapshot again and wait for them.
		p.retry, p.i = true, 0
		p.deliverAll(refs)
		if sn.wild != nil {
			sn.wild.match(topic, &p)
		}
	}
	if p.sent > 0 {
		b.slots[p.ticket>>1].sent.Add(p.sent)
	}
	return p.err
}

// Close closes the broker: every subscription's channel is closed (as soon
// as no publisher is in the middle of sending to it; publishers waiting on a
// Block subscription are woken at once) and its Err returns ErrClosed, and
// Publish returns ErrClosed from then on. Messages still buffered stay
// readable from C. Close does not wait for anything. It is idempotent: it
// returns nil every time.
func (b *Broker[E]) Close() error {
	b.mu.Lock()
	old := b.load()
	if old.closed {
		b.mu.Unlock()
		return nil
	}
	b.snap.Store(&brokerSnapshot[E]{closed: true})
	var all []*Subscription[E]
	old.each(func(s *Subscription[E]) {
		s.brokerClosed.Store(true)
		all = append(all, s)
	})
	b.retire(all)
	b.mu.Unlock()
	return nil
}

// each calls fn for every subscription in the snapshot (not a hot path).
func (sn *brokerSnapshot[E]) each(fn func(*Subscription[E])) {
	for _, refs := range sn.exact {
		for _, r := range refs {
			fn(r.s)
		}
	}
	var walk func(n *topicNode[E])
	walk = func(n *topicNode[E]) {
		if n == nil {
			return
		}
		for _, r := range n.subs {
			fn(r.s)
		}
		for _, r := range n.rest {
			fn(r.s)
		}
		for _, c := range n.next {
			walk(c)
		}
		walk(n.star)
	}
	walk(sn.wild)
}

// Stats returns a snapshot of the broker's counters (see BrokerStats).
func (b *Broker[E]) Stats() BrokerStats {
	sn := b.load()
	st := BrokerStats{Subscribers: sn.n}
	sn.each(func(s *Subscription[E]) { st.Buffered += len(s.ch) })
	st.DroppedBlock = b.dropBlock.Load()
	st.DroppedNewest = b.dropNew.Load()
	evicted := b.evicted.Load()
	st.DroppedOldest = evicted + b.refused.Load()
	// A publisher adds what it sent when its Publish ends, while an
	// eviction is counted at once, so mid-publish the evictions may be
	// ahead of the sends they undo.
	//
	// Entries that were not publishes are loaded before the entry counts:
	// each is added after its entry, so every one read here has its entry
	// counted below and the difference cannot wrap below zero, however
	// many refused or re-entering publishers run meanwhile.
	notPublished := b.rejected.Load() + b.reentries.Load()
	var sent, entered uint64
	for i := range b.slots {
		sl := &b.slots[i]
		entered += sl.entered[0].Load() + sl.entered[1].Load()
		sent += sl.sent.Load()
	}
	st.Published = entered - notPublished
	if sent > evicted {
		st.Delivered = sent - evicted
	}
	st.Deliveries = st.Delivered + st.DroppedNewest + st.DroppedOldest + st.DroppedBlock
	return st
}
