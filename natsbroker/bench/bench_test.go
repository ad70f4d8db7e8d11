package bench

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/natsbroker"
)

const (
	subscribers = 10
	subject     = "bench.orders"
	firstID     = 100_000 // six digits: every event encodes to 128 bytes
)

// startServer runs an embedded nats-server on a random loopback port.
func startServer(b *testing.B) *server.Server {
	b.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server did not start")
	}
	b.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func connect(b *testing.B, s *server.Server) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	return nc
}

// counter tells a WaitGroup when one subscriber has seen n events. It is
// used by one goroutine only.
type counter struct {
	n, want int
	wg      *sync.WaitGroup
}

func (c *counter) add() {
	if c.n++; c.n == c.want {
		c.wg.Done()
	}
}

// waitAll waits for every subscriber, failing the benchmark after a
// minute (events lost somewhere).
func waitAll(b *testing.B, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal("subscribers did not receive every event")
	}
}

// A fan-out implementation: set up a publisher and ten subscribers that
// each count to n, return the publish function and a teardown.
type fanout func(b *testing.B, s *server.Server, n int, wg *sync.WaitGroup) (publish func(Event), stop func())

// BenchmarkNATSFanout is end-to-end throughput on one embedded server: one
// publisher, ten subscribers on another connection, 128-byte JSON events.
// One op is one event published and received by all ten; the time runs
// from the first Publish until the last subscriber has decoded the last
// event.
func BenchmarkNATSFanout(b *testing.B) {
	srv := startServer(b)
	for _, impl := range []struct {
		name string
		run  fanout
	}{
		{"floor", floorFanout},
		{"natsbroker", natsbrokerFanout(natsbroker.WithCodec[Event](Codec{}))},
		{"natsbroker-json", natsbrokerFanout()},
		{"watermill", watermillFanout},
	} {
		b.Run(impl.name, func(b *testing.B) {
			var wg sync.WaitGroup
			wg.Add(subscribers)
			publish, stop := impl.run(b, srv, b.N, &wg)
			defer stop()
			e := NewEvent(firstID)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e.ID = uint64(firstID + i)
				publish(e)
			}
			waitAll(b, &wg)
			b.StopTimer()
		})
	}
}

// floorFanout is plain nats.go: the publisher appends JSON by hand into
// one reused buffer; each subscriber's handler decodes it by hand.
func floorFanout(b *testing.B, s *server.Server, n int, wg *sync.WaitGroup) (func(Event), func()) {
	pub, sub := connect(b, s), connect(b, s)
	for range subscribers {
		c := &counter{want: n, wg: wg}
		if _, err := sub.Subscribe(subject, func(m *nats.Msg) {
			var e Event
			if ParseJSON(m.Data, &e) == nil {
				c.add()
			}
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	var buf []byte
	publish := func(e Event) {
		buf = AppendJSON(buf[:0], e)
		if err := pub.Publish(subject, buf); err != nil {
			b.Fatal(err)
		}
	}
	return publish, func() { pub.Close(); sub.Close() }
}

// natsbrokerFanout is this module's broker: ten subscriptions reading C,
// BlockPublisher so that a burst queues in NATS instead of dropping.
func natsbrokerFanout(opts ...natsbroker.Option) fanout {
	return func(b *testing.B, s *server.Server, n int, wg *sync.WaitGroup) (func(Event), func()) {
		pubConn, subConn := connect(b, s), connect(b, s)
		pub := natsbroker.New[Event](pubConn, opts...)
		sub := natsbroker.New[Event](subConn, opts...)
		var consumers sync.WaitGroup
		for range subscribers {
			ss := sub.Subscribe(subject, conc.SubBuffer(256), conc.SubPolicy(conc.BlockPublisher))
			c := &counter{want: n, wg: wg}
			consumers.Go(func() {
				for range ss.C() {
					c.add()
				}
			})
		}
		ctx := context.Background()
		publish := func(e Event) {
			if err := pub.Publish(ctx, subject, e); err != nil {
				b.Fatal(err)
			}
		}
		return publish, func() {
			_ = pub.Close()
			_ = sub.Close()
			consumers.Wait()
			pubConn.Close()
			subConn.Close()
		}
	}
}

// watermillFanout is watermill-nats v2 over core NATS (JetStream off),
// with its leanest marshaler (the payload as is, metadata in headers):
// ten Subscribe calls, each message decoded and acked.
func watermillFanout(b *testing.B, s *server.Server, n int, wg *sync.WaitGroup) (func(Event), func()) {
	pubConn, subConn := connect(b, s), connect(b, s)
	marshaler := &wmnats.NATSMarshaler{}
	pub, err := wmnats.NewPublisherWithNatsConn(pubConn, wmnats.PublisherPublishConfig{
		Marshaler: marshaler,
		JetStream: wmnats.JetStreamConfig{Disabled: true},
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	sub, err := wmnats.NewSubscriberWithNatsConn(subConn, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      marshaler,
		SubscribersCount: 1,
		AckWaitTimeout:   time.Minute,
		CloseTimeout:     time.Second,
		JetStream:        wmnats.JetStreamConfig{Disabled: true},
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var consumers sync.WaitGroup
	for range subscribers {
		msgs, err := sub.Subscribe(ctx, subject)
		if err != nil {
			b.Fatal(err)
		}
		c := &counter{want: n, wg: wg}
		consumers.Go(func() {
			for m := range msgs {
				var e Event
				if ParseJSON(m.Payload, &e) == nil {
					c.add()
				}
				m.Ack()
			}
		})
	}
	if err := subConn.Flush(); err != nil {
		b.Fatal(err)
	}
	publish := func(e Event) {
		if err := pub.Publish(subject, message.NewMessage(watermill.NewUUID(), AppendJSON(nil, e))); err != nil {
			b.Fatal(err)
		}
	}
	return publish, func() {
		cancel()
		_ = sub.Close()
		consumers.Wait()
		_ = pub.Close()
		pubConn.Close()
		subConn.Close()
	}
}

// BenchmarkNATSPublish is the publishing side alone, nobody subscribed:
// what one Publish costs and allocates.
func BenchmarkNATSPublish(b *testing.B) {
	srv := startServer(b)
	e := NewEvent(firstID)
	b.Run("floor", func(b *testing.B) {
		nc := connect(b, srv)
		defer nc.Close()
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendJSON(buf[:0], e)
			if err := nc.Publish(subject, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, v := range []struct {
		name string
		opts []natsbroker.Option
	}{{"natsbroker", []natsbroker.Option{natsbroker.WithCodec[Event](Codec{})}}, {"natsbroker-json", nil}} {
		b.Run(v.name, func(b *testing.B) {
			nc := connect(b, srv)
			defer nc.Close()
			pub := natsbroker.New[Event](nc, v.opts...)
			defer pub.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := pub.Publish(ctx, subject, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
