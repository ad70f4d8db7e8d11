package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/concpatterns/conc"
)

// An Option configures a Broker (see New).
type Option interface {
	apply(*config)
}

type config struct {
	defaults     []conc.BrokerOption
	codec        any // a Codec[E], checked by New
	onError      func(error)
	pendingMsgs  int
	pendingBytes int
	flushTimeout time.Duration
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Defaults sets the subscription defaults, as the same options given to
// conc.NewBroker do: conc.SubBuffer and conc.SubPolicy here apply to every
// Subscribe that does not override them.
func Defaults(opts ...conc.BrokerOption) Option {
	return optionFunc(func(c *config) { c.defaults = append(c.defaults, opts...) })
}

// WithCodec sets the codec for the broker's events; the default is
// JSON[E]. New panics if the codec is not a Codec of the broker's type.
func WithCodec[E any](codec Codec[E]) Option {
	return optionFunc(func(c *config) { c.codec = codec })
}

// OnError sets a function that is told of every loss that happens away
// from a Publish call: a *DecodeError for an undecodable payload, an error
// matching nats.ErrSlowConsumer when NATS discarded events for a
// subscription. It is called from NATS's delivery and callback goroutines,
// so it must be safe for concurrent use and return soon; it may call any
// method of the Broker or a Subscription. Without it, those losses are
// only counted.
func OnError(fn func(error)) Option {
	return optionFunc(func(c *config) { c.onError = fn })
}

// PendingLimits sets how many messages and bytes the NATS client may hold
// for one subscription whose delivery goroutine is behind (a BlockPublisher
// subscription waiting for its consumer) before it drops them as a slow
// consumer. A value of 0 keeps nats.go's default (500,000 messages, 64 MiB);
// -1 means no limit.
func PendingLimits(msgs, bytes int) Option {
	return optionFunc(func(c *config) { c.pendingMsgs, c.pendingBytes = msgs, bytes })
}

// SubscribeFlush bounds the round trip to the server that Subscribe makes
// so that the subscription is known to the server, and so receives every
// event published anywhere, once Subscribe returns. The default is five
// seconds; 0 skips the round trip (events published by other connections
// right after Subscribe may then be missed).
func SubscribeFlush(d time.Duration) Option {
	return optionFunc(func(c *config) { c.flushTimeout = d })
}

// A DecodeError reports a payload that the codec could not decode. The
// message is skipped; the subscription goes on with the next one.
type DecodeError struct {
	Subject string // the subject the message was published to
	Pattern string // the subscription's pattern
	Size    int    // payload length in bytes
	Err     error  // the codec's error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("natsbroker: %d-byte message on %q for subscription %q does not decode: %v",
		e.Size, e.Subject, e.Pattern, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Stats is a snapshot of a Broker's counters. Every message that NATS
// routed to one of this broker's subscriptions, while it was subscribed,
// ends in exactly one of Delivered, the Dropped counters and Undecodable,
// so once no message is being handed over
//
//	Deliveries == Delivered + DroppedNewest + DroppedOldest + DroppedBlock + DroppedSlow + Undecodable
//
// The publishing counters count this broker's Publish calls: Published
// those the connection accepted, PublishFailed those it refused, and
// Rejected those refused before it (InvalidTopic + EncodeFailed +
// TooLarge). Messages from other processes appear only on the receiving
// side.
type Stats struct {
	// Published counts Publish calls whose event the connection accepted
	// (sent, or buffered to be sent).
	Published uint64
	// PublishedOffline counts those of them accepted while the
	// connection was not connected: they wait in nats.go's reconnect
	// buffer and are lost if the connection closes before reconnecting.
	PublishedOffline uint64
	// PublishFailed counts Publish calls that the connection refused
	// (closed, draining, reconnect buffer full).
	PublishFailed uint64
	// InvalidTopic, EncodeFailed and TooLarge count Publish calls refused
	// before reaching the connection.
	InvalidTopic uint64
	EncodeFailed uint64
	TooLarge     uint64

	// Deliveries counts messages routed to this broker's subscriptions.
	Deliveries uint64
	// Delivered counts messages placed in a subscription's channel and
	// not evicted from it.
	Delivered uint64
	// DroppedNewest, DroppedOldest and DroppedBlock count messages lost to
	// a subscription's policy, as in conc.BrokerStats; DroppedBlock are
	// those a BlockPublisher subscription was still waiting to hand over
	// when it closed.
	DroppedNewest uint64
	DroppedOldest uint64
	DroppedBlock  uint64
	// DroppedSlow counts messages that the NATS client discarded because
	// a subscription's pending limit was exceeded (slow consumer).
	DroppedSlow uint64
	// Undecodable counts messages whose payload the codec refused.
	Undecodable uint64

	// Buffered is the number of messages waiting in live subscriptions'
	// channels; part of Delivered.
	Buffered int
	// Subscribers is the number of live subscriptions.
	Subscribers int
}

// A Broker publishes events of type E to NATS subjects and subscribes to
// them, with the API of conc.Broker (see the package documentation for
// what differs: delivery is asynchronous and at most once, and
// BlockPublisher holds back NATS's delivery rather than the publisher).
// It uses a connection it does not own: Close leaves the connection open,
// and the connection must outlive the Broker. All methods are safe for
// concurrent use. The Broker starts no goroutine itself; nats.go runs one
// per subscription until it is unsubscribed.
type Broker[E any] struct {
	nc       *nats.Conn
	codec    Codec[E]
	onError  func(error)
	defaults conc.SubSettings
	pending  [2]int
	flush    time.Duration
	bufs     sync.Pool // *[]byte encode buffers

	closed atomic.Bool
	mu     sync.Mutex
	subs   map[*nats.Subscription]*Subscription[E]

	published, offline, failed      atomic.Uint64
	invalid, encodeFailed, tooLarge atomic.Uint64
	sent, evicted                   atomic.Uint64
	dropNewest, refused, dropBlock  atomic.Uint64
	slow, undecodable               atomic.Uint64
}

// New returns a Broker over the connection nc. Options: Defaults (the
// subscription defaults, as conc.NewBroker's options), WithCodec, OnError,
// PendingLimits, SubscribeFlush. New installs an asynchronous error
// handler on nc that notes slow-consumer events of this broker's
// subscriptions and then calls the handler nc had before. It panics when
// nc or an option is nil, or the codec is not a Codec[E].
func New[E any](nc *nats.Conn, opts ...Option) *Broker[E] {
	if nc == nil {
		panic("natsbroker: connection must not be nil")
	}
	cfg := config{flushTimeout: 5 * time.Second}
	for i, o := range opts {
		if o == nil {
			panic(fmt.Sprintf("natsbroker: option %d must not be nil", i))
		}
		o.apply(&cfg)
	}
	b := &Broker[E]{
		nc:       nc,
		codec:    JSON[E]{},
		onError:  cfg.onError,
		defaults: conc.SubSettingsOf(cfg.defaults...),
		pending:  [2]int{cfg.pendingMsgs, cfg.pendingBytes},
		flush:    cfg.flushTimeout,
		subs:     map[*nats.Subscription]*Subscription[E]{},
	}
	if cfg.codec != nil {
		c, ok := cfg.codec.(Codec[E])
		if !ok {
			panic(fmt.Sprintf("natsbroker: codec %T does not encode %T", cfg.codec, *new(E)))
		}
		b.codec = c
	}
	b.bufs.New = func() any { return new([]byte) }
	prev := nc.ErrorHandler()
	nc.SetErrorHandler(func(c *nats.Conn, ns *nats.Subscription, err error) {
		if ns != nil && errors.Is(err, nats.ErrSlowConsumer) {
			b.slowConsumer(ns)
		}
		if prev != nil {
			prev(c, ns, err)
		}
	})
	return b
}

// report hands err to OnError, if set.
func (b *Broker[E]) report(err error) {
	if b.onError != nil {
		b.onError(err)
	}
}

// slowConsumer counts what NATS dropped for ns, if it is one of ours, and
// reports it.
func (b *Broker[E]) slowConsumer(ns *nats.Subscription) {
	b.mu.Lock()
	s := b.subs[ns]
	b.mu.Unlock()
	if s == nil {
		return
	}
	s.countSlow()
	b.report(fmt.Errorf("natsbroker: subscription %q fell behind its pending limit and lost %d messages so far: %w",
		s.pattern, s.slowSeen.Load(), nats.ErrSlowConsumer))
}

// Publish encodes e and publishes it to topic. It returns once the
// connection has taken the event (into its write buffer, or its reconnect
// buffer while reconnecting): delivery to subscribers, here and in other
// processes, happens after it returns, at most once. Each subscriber
// receives the events of one connection in the order they were published.
//
// Publish does not wait for subscribers; ctx is accepted for parity with
// conc.Broker and is not consulted (nats.go may still write to the socket
// inline when its buffer is full). It returns conc.ErrClosed after Close;
// an error matching conc.ErrInvalidTopic for a topic conc.CheckTopic
// refuses; the codec's error, wrapped; an error matching
// nats.ErrMaxPayload for an encoding longer than the server accepts; and
// the connection's error (nats.ErrConnectionClosed,
// nats.ErrReconnectBufExceeded, ...), wrapped. Each is counted in Stats.
// Beyond what the codec allocates, Publish does not allocate.
func (b *Broker[E]) Publish(ctx context.Context, topic string, e E) error {
	checkCtx(ctx)
	if b.closed.Load() {
		return conc.ErrClosed
	}
	if err := conc.CheckTopic(topic); err != nil {
		b.invalid.Add(1)
		return err
	}
	buf := b.bufs.Get().(*[]byte)
	defer b.bufs.Put(buf)
	data, err := b.codec.Marshal((*buf)[:0], e)
	if err != nil {
		b.encodeFailed.Add(1)
		return fmt.Errorf("natsbroker: encoding an event for %q: %w", topic, err)
	}
	*buf = data[:0] // keep the grown buffer
	// nats.go checks the size against the server's limit itself; asking
	// for the limit first would take the connection's lock once more.
	if err := b.nc.Publish(topic, data); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			b.tooLarge.Add(1)
			return fmt.Errorf("natsbroker: event for %q encodes to %d bytes, over the server's limit of %d: %w",
				topic, len(data), b.nc.MaxPayload(), err)
		}
		b.failed.Add(1)
		return fmt.Errorf("natsbroker: publishing to %q: %w", topic, err)
	}
	b.published.Add(1)
	if !b.nc.IsConnected() {
		b.offline.Add(1)
	}
	return nil
}

// Subscribe returns a subscription to every event published, from now
// on, by any process, to a subject matching pattern ("*" one token, a
// final ">" one or more). Events arrive on C; opts override the broker's
// defaults (conc.SubBuffer, conc.SubPolicy). Subscribe waits for one round
// trip to the server (see SubscribeFlush) so that "from now on" holds for
// other connections too.
//
// Subscribe panics on a pattern conc.CheckPattern refuses, or a nil
// option, as conc.Broker does. On a closed broker it returns a closed
// subscription whose Err is conc.ErrClosed; when the connection refuses
// the subscription (closed, draining), a closed one whose Err says why.
func (b *Broker[E]) Subscribe(pattern string, opts ...conc.SubOption) *Subscription[E] {
	if err := conc.CheckPattern(pattern); err != nil {
		panic(fmt.Sprintf("natsbroker: invalid subscription pattern: %v", err))
	}
	set := b.defaults.With(opts...)
	s := &Subscription[E]{
		b:       b,
		pattern: pattern,
		policy:  set.Policy,
		ch:      make(chan E, set.Buffer),
		done:    make(chan struct{}),
	}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		s.fail(conc.ErrClosed)
		return s
	}
	ns, err := b.nc.Subscribe(pattern, s.handle)
	if err == nil && (b.pending[0] != 0 || b.pending[1] != 0) {
		msgs, bytes := b.pending[0], b.pending[1]
		if msgs == 0 {
			msgs = nats.DefaultSubPendingMsgsLimit
		}
		if bytes == 0 {
			bytes = nats.DefaultSubPendingBytesLimit
		}
		err = ns.SetPendingLimits(msgs, bytes)
		if err != nil {
			_ = ns.Unsubscribe()
		}
	}
	if err != nil {
		b.mu.Unlock()
		s.fail(fmt.Errorf("natsbroker: subscribing to %q: %w", pattern, err))
		return s
	}
	s.ns = ns
	b.subs[ns] = s
	b.mu.Unlock()
	if b.flush > 0 && b.nc.IsConnected() {
		// An error here (a disconnect meanwhile) leaves the subscription
		// in place: nats.go renews it on reconnect.
		_ = b.nc.FlushTimeout(b.flush)
	}
	return s
}

// Close unsubscribes every subscription (their channels close; what they
// buffered stays readable, and their Err returns conc.ErrClosed) and makes
// Publish return conc.ErrClosed. It leaves the connection open; events
// already accepted by Publish stay in its buffer to be sent. Close waits
// only for a delivery in progress to finish handing over its message. It
// is idempotent and returns nil.
func (b *Broker[E]) Close() error {
	b.mu.Lock()
	if b.closed.Swap(true) {
		b.mu.Unlock()
		return nil
	}
	subs := b.subs
	b.subs = map[*nats.Subscription]*Subscription[E]{}
	b.mu.Unlock()
	for _, s := range subs {
		s.brokerClosed.Store(true)
		s.close()
	}
	return nil
}

// Stats returns a snapshot of the broker's counters (see Stats). It also
// asks nats.go how many messages each live subscription lost to its
// pending limit, so DroppedSlow is current.
func (b *Broker[E]) Stats() Stats {
	b.mu.Lock()
	var st Stats
	for _, s := range b.subs {
		s.countSlow()
		st.Buffered += len(s.ch)
	}
	st.Subscribers = len(b.subs)
	b.mu.Unlock()
	st.Published = b.published.Load()
	st.PublishedOffline = b.offline.Load()
	st.PublishFailed = b.failed.Load()
	st.InvalidTopic = b.invalid.Load()
	st.EncodeFailed = b.encodeFailed.Load()
	st.TooLarge = b.tooLarge.Load()
	st.DroppedNewest = b.dropNewest.Load()
	evicted := b.evicted.Load()
	st.DroppedOldest = evicted + b.refused.Load()
	st.DroppedBlock = b.dropBlock.Load()
	st.DroppedSlow = b.slow.Load()
	st.Undecodable = b.undecodable.Load()
	// An eviction is counted after the send it undoes.
	if sent := b.sent.Load(); sent > evicted {
		st.Delivered = sent - evicted
	}
	st.Deliveries = st.Delivered + st.DroppedNewest + st.DroppedOldest + st.DroppedBlock + st.DroppedSlow + st.Undecodable
	return st
}
