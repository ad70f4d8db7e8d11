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
	// DropNewest keeps the oldest SubBuffer events and refuses later ones,
	// for that subscription only, until its reader catches up. The
	// publisher never waits. Each DropNewest subscription has a ring of
	// its own (keeping the oldest events of one reader while others move
	// on cannot share slots), so a publisher writes once per DropNewest
	// subscription. This is the default.
	DropNewest Overflow = iota
	// DropOldest keeps the newest SubBuffer events: a publisher that finds
	// the shared ring full for a subscription moves that subscription's
	// cursor past its oldest events, and the subscription counts exactly
	// how many it missed (SubStats.Dropped). The publisher never waits for
	// a reader, only, for the few instructions it takes, for a reader
	// copying out the very events being evicted.
	DropOldest
	// BlockPublisher makes the publisher wait until the slowest
	// BlockPublisher subscription of the group (same pattern and buffer)
	// has room, until the publisher's context is done or the ring closes.
	// Such subscriptions share one ring, so an event that a publisher
	// gives up on is dropped for every one of them, and each counts it
	// (before the ring, only the full subscribers lost it). Other groups
	// matching the same topic get their copy first (up to 8 full groups
	// of one message are put off; past that, later ones are waited for
	// in turn).
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

// SubBuffer sets how many events a subscription may hold before its
// policy applies: the events published but not read yet. Subscriptions
// with the same pattern, policy and buffer share one ring of at least n
// slots (see Broker), except under DropNewest, where each has a ring of its
// own. 0 holds one event: a ring needs a slot, and no event can be handed
// over without one (before the ring, 0 meant an unbuffered channel). It
// panics if n is negative or above MaxSubBuffer. The default is
// DefaultSubBuffer.
func SubBuffer(n int) SubOption {
	checkBuffer("subscription buffer", n)
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
// (one published event meeting one matching subscription) ends in
// exactly one of Delivered, DroppedNewest, DroppedOldest and DroppedBlock,
// so
//
//	Deliveries == Delivered + DroppedNewest + DroppedOldest + DroppedBlock
//
// and Delivered counts every event that reached a subscription and was not
// evicted from it, whether its reader has taken it yet or not (Buffered of
// them are still waiting in live subscriptions). The counters are read one
// by one, so while publishers run they may disagree by the events in
// flight.
type BrokerStats struct {
	// Published counts Publish calls that were accepted: the broker was
	// open and the topic valid, whether or not anybody subscribed.
	Published uint64
	// Deliveries counts delivery attempts: for each accepted event, the
	// subscriptions that matched its topic (one unsubscribed meanwhile may
	// still be offered the event).
	Deliveries uint64
	// Delivered counts events that entered a subscription's ring, minus
	// those evicted from it later.
	Delivered uint64
	// DroppedNewest counts events a DropNewest subscription refused
	// because it was full.
	DroppedNewest uint64
	// DroppedOldest counts events evicted from DropOldest subscriptions.
	DroppedOldest uint64
	// DroppedBlock counts, for each BlockPublisher subscription, the
	// events a publisher gave up on because its context ended or the ring
	// closed before there was room.
	//
	// Events that a subscription still held when it ended and that were
	// evicted before its reader got to them count under its policy's
	// counter, as do events whose ring closed while they were on the way
	// and events read from the ring that never reached the consumer (the
	// rest of a batch when an Events loop breaks, what C's goroutine could
	// not hand over after the end).
	DroppedBlock uint64
	// Buffered is the number of events waiting for the readers of the
	// subscriptions that are still live. It is part of Delivered.
	Buffered int
	// Subscribers is the number of live subscriptions.
	Subscribers int
}

// A Broker is an in-process publish/subscribe hub for events of type E.
// Subscribers choose topics by pattern (see Subscribe); publishers name a
// literal topic, and each event goes to every subscription whose pattern
// matches it, under that subscription's own slow-subscriber policy.
//
// Delivery goes through rings, not channels. Subscriptions with the same
// pattern, policy and buffer share one ring, written once per event however
// many subscriptions read it, and each keeps its own cursor into it; a
// reader copies every event ready at its cursor in one batch, and only a
// reader that found nothing parks, to be woken once by the next event
// (DropNewest subscriptions each have a ring of their own: see the
// policies). Publishing takes no lock and does not allocate: the
// subscriptions form an immutable snapshot (a map for literal topics and a
// token trie for wildcard patterns) behind an atomic pointer, and writing
// an event is a CAS to claim its place in the ring, a copy and a store.
// Several publishers may publish at once; each subscriber sees each
// publisher's events in the order that publisher published them.
// Subscribe, Unsubscribe and Close build a new snapshot under a mutex;
// they are meant to be rare next to Publish. No user code runs inside the
// broker, and no lock is held while waiting for a subscriber or a
// publisher.
//
// The zero Broker is open, has no subscriptions and uses the default
// subscription options; NewBroker sets other defaults. A Broker must not be
// copied after first use. All methods are safe for concurrent use. The
// broker runs no goroutine of its own; a subscription runs one only after
// its C method is called.
type Broker[E any] struct {
	snap atomic.Pointer[brokerSnapshot[E]]
	_    [56]byte
	// Accepted publishes, spread over slots so that concurrent publishers
	// mostly write lines of their own.
	published [pubSlots]pubSlot

	dropNewest atomic.Uint64
	dropOldest atomic.Uint64
	dropBlock  atomic.Uint64
	// What ended subscriptions still held when they ended counts as
	// delivered (folded); evictions from them undo part of that.
	folded          atomic.Uint64
	evictedAfterEnd atomic.Uint64

	mu       sync.Mutex // serialises snapshot rebuilds
	groups   map[groupKey]*brokerGroup[E]
	defaults subConfig // immutable after NewBroker
}

const pubSlots = 8

type pubSlot struct {
	n atomic.Uint64
	_ [56]byte
}

// A groupKey names the group whose ring a subscription shares.
type groupKey struct {
	pattern string
	policy  Overflow
	buffer  int
}

// A brokerSnapshot is the broker's immutable view of its subscriptions.
type brokerSnapshot[E any] struct {
	exact  map[string][]groupRef[E] // literal patterns by topic
	wild   *topicNode[E]            // wildcard patterns; nil when none
	n      int                      // live subscriptions
	closed bool
	// With few literal topics, publishing looks them up in a list
	// (comparing lengths first, then bytes), which costs less than
	// hashing the topic for the map; small says the list is complete.
	few   []exactTopic[E]
	small bool
}

// An exactTopic is one entry of brokerSnapshot.few.
type exactTopic[E any] struct {
	topic string
	refs  []groupRef[E]
}

// fewTopics is the most literal topics looked up in a list rather than in
// the map.
const fewTopics = 8

// setExact installs m as the snapshot's literal topics.
func (sn *brokerSnapshot[E]) setExact(m map[string][]groupRef[E]) {
	sn.exact, sn.few, sn.small = m, nil, len(m) <= fewTopics
	if sn.small {
		for topic, refs := range m {
			sn.few = append(sn.few, exactTopic[E]{topic, refs})
		}
	}
}

// lookup returns the groups subscribed to topic literally, and whether
// there are any.
func (sn *brokerSnapshot[E]) lookup(topic string) ([]groupRef[E], bool) {
	if sn.small {
		for i := range sn.few {
			if sn.few[i].topic == topic {
				return sn.few[i].refs, true
			}
		}
		return nil, false
	}
	refs, ok := sn.exact[topic]
	return refs, ok
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
		checkOption("NewBroker", i, o == nil)
		o.applyBroker(&b.defaults)
	}
	return b
}

// Subscribe returns a subscription to every event published, from now on,
// to a topic matching pattern: a literal topic ("orders.created") or a
// pattern with the wildcards "*" (one token) and ">" (one or more final
// tokens), as NATS spells them. Events are read with the subscription's
// Next, NextBatch, Events or C; opts override the broker's defaults for
// this subscription.
//
// Subscribe panics with a "conc: " message on a malformed pattern: empty,
// with an empty token ("a..b"), a wildcard inside a token ("a*"), ">"
// anywhere but last ("a.>.b"), whitespace or a control character
// (CheckPattern), and on a nil option. On a closed broker it returns a
// subscription that has ended already: Next returns ErrClosed, C is closed
// and Err returns ErrClosed.
//
// Subscribe builds a new snapshot under the broker's mutex: its cost grows
// with the number of distinct literal topics (the map is copied), the
// depth of the pattern (the trie is path-copied) and the subscriptions of
// its group (their list is copied), not with the number of publishers. A
// new group allocates its ring (SubBuffer slots, rounded up to a power of
// two). It never waits for a publisher.
func (b *Broker[E]) Subscribe(pattern string, opts ...SubOption) *Subscription[E] {
	wild, problem := parseTopic(pattern, true)
	if problem != "" {
		panic(fmt.Sprintf("conc: invalid subscription pattern %q: %s", pattern, problem))
	}
	cfg := b.defaults
	for i, o := range opts {
		checkOption("Subscribe", i, o == nil)
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
		buffer:  max(cfg.buffer, 1),
		wake:    make(chan struct{}, 1),
	}
	s.end.Store(seqInfinity)

	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.load()
	if old.closed {
		s.g = newBrokerGroup[E](1, s.policy)
		s.g.addParked(s)
		s.g.closeRing()
		s.end.Store(0)
		s.retired = true
		s.brokerClosed.Store(true)
		return s
	}
	key := groupKey{pattern, s.policy, s.buffer}
	g := b.groups[key]
	if g == nil {
		g = newBrokerGroup[E](s.buffer, s.policy)
		if s.policy != DropNewest {
			if b.groups == nil {
				b.groups = make(map[groupKey]*brokerGroup[E])
			}
			b.groups[key] = g
		}
	}
	s.g = g
	g.mu.Lock()
	g.addParked(s)
	// The cursor starts at the tail: every later claim is for s. A
	// publisher that computed gate without s may still claim up to
	// gate+cap-1 < tail+cap, and those claims overwrite only slots of
	// sequences below the tail, which s never reads.
	t := g.tail.Load() & seqMask
	s.start = t
	s.cursor.Store(t)
	g.subs = append(g.subs, s)
	g.active++
	g.mu.Unlock()

	next := *old
	next.n++
	if wild {
		next.wild = old.wild.with(pattern, s)
	} else {
		exact := maps.Clone(old.exact)
		if exact == nil {
			exact = make(map[string][]groupRef[E], 1)
		}
		exact[pattern] = withSub(old.exact[pattern], s)
		next.setExact(exact)
	}
	b.snap.Store(&next)
	return s
}

// load returns the current snapshot; the zero Broker has an empty one.
func (b *Broker[E]) load() *brokerSnapshot[E] {
	if sn := b.snap.Load(); sn != nil {
		return sn
	}
	return &brokerSnapshot[E]{}
}

// unsubscribe takes s out of the current snapshot and ends it, unless it
// has ended already.
func (b *Broker[E]) unsubscribe(s *Subscription[E]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.retired {
		return
	}
	s.retired = true
	old := b.load()
	next := *old
	if s.wild {
		next.wild, _ = old.wild.without(s.pattern, s)
	} else {
		kept, _ := withoutSub(old.exact[s.pattern], s)
		exact := maps.Clone(old.exact)
		if len(kept) == 0 {
			delete(exact, s.pattern)
		} else {
			exact[s.pattern] = kept
		}
		next.setExact(exact)
	}
	next.n--
	g := s.g
	g.mu.Lock()
	g.active--
	closing := g.active == 0
	if closing && g.policy != DropNewest {
		delete(b.groups, groupKey{s.pattern, s.policy, s.buffer})
	}
	b.end(s, closing)
	g.mu.Unlock()
	b.snap.Store(&next)
	g.wakeRoom()
	s.wakeUp()
}

// end sets where s's reader stops: the ring's tail, closed first when s
// was the group's last live subscription. The cursor is held meanwhile, so
// that the reader cannot take an event past the end. What s holds then
// counts as delivered (folded) until evicted. The caller holds s.g.mu.
func (b *Broker[E]) end(s *Subscription[E], closing bool) {
	g := s.g
	var end uint64
	if closing {
		end = g.closeRing()
	}
	c := s.hold()
	if !closing {
		end = g.tail.Load() & seqMask // at least c: claims only grow
	}
	s.end.Store(end)
	// What it took (taken) and what it still holds (end - c).
	b.folded.Add(end - s.start - s.evicted.Load())
	s.folded = true
	s.cursor.Store(c)
}

// wakeUp leaves a token on s's wake channel, unless one is there already:
// its reader, waiting there (NextBatch, or C's goroutine handing over) or
// about to, looks again. After Unsubscribe or Close it finds its end.
func (s *Subscription[E]) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Publish sends e to every subscription whose pattern matches topic, and
// returns once e is in the ring of each of their groups or dropped under
// their policy. Each subscriber receives one publisher's events in the
// order that publisher published them.
//
// Publish blocks only for a BlockPublisher group whose slowest
// subscription is SubBuffer events behind, and only after every other
// matching group has its copy: it then waits for room until ctx is done
// (the event is dropped for every subscription of that group, and Publish
// returns an error matching ctx.Err() that keeps context.Cause) or the
// ring closes. With no BlockPublisher subscription it never blocks and
// ignores ctx, so a subscriber may publish from its own reading loop. It
// returns ErrClosed once Close has been called and an error matching
// ErrInvalidTopic when topic is empty, has an empty token, contains a
// wildcard, or contains whitespace or a control character (CheckTopic). It
// takes no lock, except to recompute how far the slowest reader is (about
// once per SubBuffer events), and does not allocate, except to wait for
// room in a full BlockPublisher group.
func (b *Broker[E]) Publish(ctx context.Context, topic string, e E) error {
	// Checked up front: ctx is used only when a Block group is full, and
	// a nil one must not pass until that day.
	checkCtx(ctx)
	sn := b.snap.Load()
	// The common case: literal subscribers only, and every ring has
	// room. A key of the exact map was validated when it was subscribed
	// to, so the topic needs no checking; a closed snapshot has no keys.
	if sn != nil && sn.wild == nil {
		if refs, ok := sn.lookup(topic); ok {
			for i := range refs {
				if res := refs[i].g.offer(e); res != offered {
					p := publication[E]{b: b, ctx: ctx, e: e}
					p.settle(&refs[i], res)
					p.deliverAll(refs[i+1:])
					return p.finish()
				}
			}
			b.countPublished()
			return nil
		}
	}
	if sn == nil {
		sn = &brokerSnapshot[E]{} // the zero Broker; does not escape
	}
	if sn.closed {
		return ErrClosed
	}
	refs, ok := sn.lookup(topic)
	if !ok {
		if _, problem := parseTopic(topic, false); problem != "" {
			return fmt.Errorf("%w %q: %s", ErrInvalidTopic, topic, problem)
		}
	}
	p := publication[E]{b: b, ctx: ctx, e: e}
	p.deliverAll(refs)
	if sn.wild != nil {
		sn.wild.match(topic, &p)
	}
	return p.finish()
}

// countPublished counts one accepted Publish, on a slot picked by the
// address of the publisher's stack, so that concurrent publishers mostly
// write lines of their own.
func (b *Broker[E]) countPublished() {
	var here byte
	b.published[uintptr(unsafe.Pointer(&here))>>13%pubSlots].n.Add(1)
}

// Close closes the broker: every subscription ends (readers waiting in
// Next are woken, publishers waiting on a BlockPublisher group give up)
// and its Err returns ErrClosed, and Publish returns ErrClosed from then
// on. Events that subscriptions still hold stay readable. Close does not
// wait for anything. It is idempotent: it returns nil every time.
func (b *Broker[E]) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.load()
	if old.closed {
		return nil
	}
	b.snap.Store(&brokerSnapshot[E]{closed: true})
	b.groups = nil
	old.eachRef(func(ref *groupRef[E]) {
		g := ref.g
		g.mu.Lock()
		for _, s := range ref.subs {
			s.retired = true
			s.brokerClosed.Store(true)
			g.active--
			b.end(s, true)
		}
		g.mu.Unlock()
		g.wakeRoom()
		for _, s := range ref.subs {
			s.wakeUp()
		}
	})
	return nil
}

// eachRef calls fn for every group reference in the snapshot (not a hot
// path). A group appears once: its pattern is either literal or wild.
func (sn *brokerSnapshot[E]) eachRef(fn func(*groupRef[E])) {
	for _, refs := range sn.exact {
		for i := range refs {
			fn(&refs[i])
		}
	}
	var walk func(n *topicNode[E])
	walk = func(n *topicNode[E]) {
		if n == nil {
			return
		}
		for i := range n.subs {
			fn(&n.subs[i])
		}
		for i := range n.rest {
			fn(&n.rest[i])
		}
		for _, c := range n.next {
			walk(c)
		}
		walk(n.star)
	}
	walk(sn.wild)
}

// Stats returns a snapshot of the broker's counters (see BrokerStats). It
// walks every live subscription.
func (b *Broker[E]) Stats() BrokerStats {
	b.mu.Lock()
	sn := b.load()
	st := BrokerStats{Subscribers: sn.n}
	var delivered uint64
	sn.eachRef(func(ref *groupRef[E]) {
		tail := ref.g.tail.Load() & seqMask
		for _, s := range ref.subs {
			c := min64(s.cursor.Load()&seqMask, tail)
			st.Buffered += int(tail - c)
			// What it took (taken) and what it holds (tail - c).
			delivered += tail - s.start - s.evicted.Load()
		}
	})
	b.mu.Unlock()
	// Evictions are loaded first: each follows the fold it undoes.
	evicted := b.evictedAfterEnd.Load()
	st.Delivered = delivered + b.folded.Load() - evicted
	st.DroppedNewest = b.dropNewest.Load()
	st.DroppedOldest = b.dropOldest.Load()
	st.DroppedBlock = b.dropBlock.Load()
	for i := range b.published {
		st.Published += b.published[i].n.Load()
	}
	st.Deliveries = st.Delivered + st.DroppedNewest + st.DroppedOldest + st.DroppedBlock
	return st
}

// AppendSubStats appends the SubStats of every live subscription to dst
// and returns the extended slice, in no particular order.
func (b *Broker[E]) AppendSubStats(dst []SubStats) []SubStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.load().eachRef(func(ref *groupRef[E]) {
		for _, s := range ref.subs {
			dst = append(dst, s.Stats())
		}
	})
	return dst
}

// withSub returns a copy of refs with s added to its group's entry.
func withSub[E any](refs []groupRef[E], s *Subscription[E]) []groupRef[E] {
	out := slices.Clone(refs)
	for i := range out {
		if out[i].g == s.g {
			out[i].subs = append(slices.Clip(out[i].subs), s)
			return out
		}
	}
	return append(out, groupRef[E]{s.g, []*Subscription[E]{s}})
}

// withoutSub returns a copy of refs without s (its group's entry goes when
// it was the last), and whether s was there.
func withoutSub[E any](refs []groupRef[E], s *Subscription[E]) ([]groupRef[E], bool) {
	for i := range refs {
		if refs[i].g != s.g {
			continue
		}
		j := slices.Index(refs[i].subs, s)
		if j < 0 {
			return refs, false
		}
		if len(refs[i].subs) == 1 {
			if len(refs) == 1 {
				return nil, true
			}
			return slices.Delete(slices.Clone(refs), i, i+1), true
		}
		out := slices.Clone(refs)
		out[i].subs = slices.Delete(slices.Clone(refs[i].subs), j, j+1)
		return out, true
	}
	return refs, false
}
