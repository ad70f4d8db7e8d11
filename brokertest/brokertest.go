// Package brokertest checks that a broker keeps the contract of conc.Broker,
// in the spirit of testing/fstest: an implementation elsewhere (over NATS,
// say) hands Run a factory and passes, or fails with the rule it broke.
//
// The suite is black-box. It sees a broker only through the Broker and
// Subscription interfaces below, publishes Msg values, and checks:
//
//   - per-publisher order: a subscriber receives each publisher's messages
//     in the order they were published (gaps allowed only where a policy
//     drops);
//   - each policy (DropNewest, DropOldest, BlockPublisher): which messages a
//     full buffer keeps, and that the counters add up:
//     Deliveries == Delivered + DroppedNewest + DroppedOldest + DroppedBlock
//   - DroppedOther, Published counts every accepted Publish, and
//     Subscription.Dropped agrees with the broker's drop counters;
//   - BlockPublisher is bounded by the publisher's context (capability
//     BlockEndToEnd);
//   - Unsubscribe from inside the consumer loop ends the loop: C is closed;
//   - where subscriptions implement Puller: Next, NextBatch and Events
//     read in order, end with conc.ErrClosed, and give up with the
//     context;
//   - wildcards "*" and ">" match as NATS spells them;
//   - concurrent Subscribe, Unsubscribe, Publish and Close: no panic, every
//     channel closes, and the counters still add up;
//   - Close is idempotent, Publish returns conc.ErrClosed after it, and
//     invalid topics are refused with conc.ErrInvalidTopic;
//   - no goroutine started by the broker outlives Close.
//
// Brokers that deliver through a network deliver after Publish returns;
// Caps.Async makes the suite wait (up to Config.Timeout) for the counters
// to settle instead of reading them at once. Where a broker's transport
// forbids a check, a capability flag in Caps turns it off and its
// documentation says what happens instead.
package brokertest

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/concpatterns/conc"
)

// Msg is the message every check publishes: which publisher sent it and
// its sequence number for that publisher. It encodes as JSON.
type Msg struct {
	Pub int `json:"pub"`
	Seq int `json:"seq"`
}

// A Broker is what the suite drives: the method set of conc.Broker[Msg],
// with Subscribe returning the Subscription interface and Stats the
// suite's own counters (an adapter over a concrete broker provides both;
// see Conc).
type Broker interface {
	Publish(ctx context.Context, topic string, m Msg) error
	Subscribe(pattern string, opts ...conc.SubOption) Subscription
	Stats() Stats
	Close() error
}

// A Subscription is what the suite reads from: the method set of
// conc.Subscription[Msg].
type Subscription interface {
	C() <-chan Msg
	Unsubscribe()
	Dropped() uint64
	Err() error
}

// A Puller is a Subscription that can also be read by pulling, as
// conc.Subscription can: Next, NextBatch and Events. When the
// subscriptions a broker returns implement it, the suite checks those
// methods too.
type Puller interface {
	Next(ctx context.Context) (Msg, error)
	NextBatch(ctx context.Context, buf []Msg) (int, error)
	Events(ctx context.Context) iter.Seq[Msg]
}

// A SubStatser is a Subscription with counters of its own, as
// conc.Subscription has; where a broker's subscriptions implement it, the
// suite checks them too.
type SubStatser interface {
	Stats() conc.SubStats
}

// Stats are the counters the suite checks, named as in conc.BrokerStats.
// DroppedOther holds losses that an implementation has beyond the three
// policies (a NATS client's pending limit, an undecodable payload); for
// conc.Broker it is always zero. On a quiet broker
//
//	Deliveries == Delivered + DroppedNewest + DroppedOldest + DroppedBlock + DroppedOther
type Stats struct {
	Published     uint64
	Deliveries    uint64
	Delivered     uint64
	DroppedNewest uint64
	DroppedOldest uint64
	DroppedBlock  uint64
	DroppedOther  uint64
	Subscribers   int
}

// dropped sums every drop counter.
func (s Stats) dropped() uint64 {
	return s.DroppedNewest + s.DroppedOldest + s.DroppedBlock + s.DroppedOther
}

// Caps says what the broker under test can promise.
type Caps struct {
	// Async: messages reach subscribers after Publish returns (through a
	// server), so the suite waits for counters and channels to settle,
	// up to Config.Timeout, rather than checking right after Publish.
	// The messages of one publisher still arrive in order.
	Async bool
	// BlockEndToEnd: under BlockPublisher, Publish itself waits while the
	// subscriber's buffer is full, until there is room or its context is
	// done (then it returns the context's error and counts DroppedBlock).
	// Without it, the suite checks only that a BlockPublisher
	// subscription loses nothing while its consumer is slow: the waiting
	// happens between the transport and the subscription's buffer, and
	// Publish does not wait for subscribers.
	BlockEndToEnd bool
}

// Config tells Run how to make the broker under test.
type Config struct {
	// New returns a new, open broker with no subscriptions and the
	// default subscription options. It may register cleanups on t
	// (closing a connection, stopping a server). Required.
	New func(t *testing.T) Broker
	// Caps are the broker's capabilities.
	Caps Caps
	// Timeout bounds each wait for an Async broker to settle; 0 means
	// ten seconds. A check that has not settled by then fails.
	Timeout time.Duration
}

// Run runs every check of the suite against brokers made by cfg.New, each
// as a subtest of t with a broker of its own.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("brokertest: Config.New is nil")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			s := &suite{t: t, cfg: cfg}
			c.run(s)
		})
	}
}

var checks = []struct {
	name string
	run  func(*suite)
}{
	{"PerPublisherOrder", (*suite).perPublisherOrder},
	{"PerPublisherOrderWhileDropping", (*suite).orderWhileDropping},
	{"DropNewest", (*suite).dropNewest},
	{"DropOldest", (*suite).dropOldest},
	{"BlockPublisher", (*suite).block},
	{"UnsubscribeInsideConsumerLoop", (*suite).unsubscribeInLoop},
	{"Pull", (*suite).pull},
	{"Wildcards", (*suite).wildcards},
	{"ConcurrentUse", (*suite).concurrent},
	{"CloseAndInvalidTopics", (*suite).closeAndInvalid},
	{"NoGoroutineLeak", (*suite).noLeak},
}

// Conc adapts conc.Broker[Msg] to the suite's Broker.
func Conc(b *conc.Broker[Msg]) Broker { return concBroker{b} }

type concBroker struct{ b *conc.Broker[Msg] }

func (c concBroker) Publish(ctx context.Context, topic string, m Msg) error {
	return c.b.Publish(ctx, topic, m)
}

func (c concBroker) Subscribe(pattern string, opts ...conc.SubOption) Subscription {
	return c.b.Subscribe(pattern, opts...)
}

func (c concBroker) Stats() Stats {
	st := c.b.Stats()
	return Stats{
		Published:     st.Published,
		Deliveries:    st.Deliveries,
		Delivered:     st.Delivered,
		DroppedNewest: st.DroppedNewest,
		DroppedOldest: st.DroppedOldest,
		DroppedBlock:  st.DroppedBlock,
		Subscribers:   st.Subscribers,
	}
}

func (c concBroker) Close() error { return c.b.Close() }
