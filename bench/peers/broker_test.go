package peers

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/internal/benchkit"
	"github.com/cskr/pubsub/v2"
)

// BenchmarkBroker publishes to 1, 10 and 100 draining subscribers, one
// publish per b.N iteration, with the workloads and the harness that the
// main module's BenchmarkBroker uses (benchkit.RunBroker): every subscriber
// has a buffer of 1024, a flow control keeps publishers close enough to the slowest
// subscriber that no buffer fills, and the timed region ends when every
// subscriber has received every message.
//
// Peers: cskr is github.com/cskr/pubsub/v2 (one goroutine owns the
// subscriber map; Pub hands it the message over an unbuffered channel and
// it sends blocking, like conc's Block policy, which conc uses here).
// conc's subscribers read the ring in batches (Subscription.NextBatch).
// watermill is ThreeDotsLabs/watermill's pubsub/gochannel with its default
// configuration (Publish spawns a goroutine per subscriber per message, and
// each subscriber must Ack before it gets its next message).
func BenchmarkBroker(b *testing.B) {
	impls := []struct {
		name string
		run  func(b *testing.B, subs, pubs int)
	}{
		{"conc", func(b *testing.B, subs, pubs int) { benchkit.RunBroker(b, newConcBrokerPeer(), subs, pubs) }},
		{"cskr", func(b *testing.B, subs, pubs int) { benchkit.RunBroker(b, newCskrBrokerPeer(), subs, pubs) }},
		{"watermill", func(b *testing.B, subs, pubs int) { benchkit.RunBroker(b, newWatermillBrokerPeer(), subs, pubs) }},
	}
	for _, w := range benchkit.BrokerWorkloads {
		for _, impl := range impls {
			b.Run(w.Name+"/"+impl.name, func(b *testing.B) {
				impl.run(b, w.Subs, w.Pubs)
			})
		}
	}
}

func brokerPeerNop(int) {}

type concBrokerPeer struct{ b *conc.Broker[int] }

func newConcBrokerPeer() concBrokerPeer {
	return concBrokerPeer{conc.NewBroker[int](conc.SubBuffer(benchkit.BrokerBuffer), conc.SubPolicy(conc.BlockPublisher))}
}

func (c concBrokerPeer) Subscribe() (<-chan int, func(int)) {
	return c.b.Subscribe(benchkit.BrokerTopic).C(), brokerPeerNop
}

// SubscribePull reads in batches from the ring (NextBatch): conc's fast
// path; RunBroker prefers it to Subscribe.
func (c concBrokerPeer) SubscribePull() benchkit.Puller[int] {
	s := c.b.Subscribe(benchkit.BrokerTopic)
	return func(buf []int) int {
		n, _ := s.NextBatch(context.Background(), buf)
		return n
	}
}

func (c concBrokerPeer) Publish(v int) {
	if err := c.b.Publish(context.Background(), benchkit.BrokerTopic, v); err != nil {
		panic(err)
	}
}
func (c concBrokerPeer) Close() { _ = c.b.Close() }

type cskrBrokerPeer struct{ ps *pubsub.PubSub[string, int] }

func newCskrBrokerPeer() cskrBrokerPeer {
	return cskrBrokerPeer{pubsub.New[string, int](benchkit.BrokerBuffer)}
}

func (c cskrBrokerPeer) Subscribe() (<-chan int, func(int)) {
	return c.ps.Sub(benchkit.BrokerTopic), brokerPeerNop
}
func (c cskrBrokerPeer) Publish(v int) { c.ps.Pub(v, benchkit.BrokerTopic) }
func (c cskrBrokerPeer) Close()        { c.ps.Shutdown() }

// watermillBrokerPeer adapts gochannel; its subscribers range over watermill's
// own output channels and Ack each message.
type watermillBrokerPeer struct{ g *gochannel.GoChannel }

func newWatermillBrokerPeer() watermillBrokerPeer {
	return watermillBrokerPeer{gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: benchkit.BrokerBuffer}, nil)}
}

func (w watermillBrokerPeer) Subscribe() (<-chan *message.Message, func(*message.Message)) {
	ch, err := w.g.Subscribe(context.Background(), benchkit.BrokerTopic)
	if err != nil {
		panic(err)
	}
	return ch, func(m *message.Message) { m.Ack() }
}

func (w watermillBrokerPeer) Publish(int) {
	// A constant UUID and no payload: the cheapest message watermill can
	// carry, so the library is not charged for generating UUIDs.
	if err := w.g.Publish(benchkit.BrokerTopic, message.NewMessage("m", nil)); err != nil {
		panic(err)
	}
}

func (w watermillBrokerPeer) Close() { _ = w.g.Close() }
