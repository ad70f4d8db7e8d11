package peers

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/concpatterns/conc"
	"github.com/cskr/pubsub/v2"
)

// BenchmarkBroker publishes to 1, 10 and 100 draining subscribers, one
// publish per b.N iteration, with the same workloads and the same harness
// as the main module's BenchmarkBroker: every subscriber has a buffer of
// 1024, a flow control keeps publishers close enough to the slowest
// subscriber that no buffer fills, and the timed region ends when every
// subscriber has received every message.
//
// Peers: cskr is github.com/cskr/pubsub/v2 (one goroutine owns the
// subscriber map; Pub hands it the message over an unbuffered channel and
// it sends blocking, like conc's Block policy, which conc uses here).
// watermill is ThreeDotsLabs/watermill's pubsub/gochannel with its default
// configuration (Publish spawns a goroutine per subscriber per message, and
// each subscriber must Ack before it gets its next message).
func BenchmarkBroker(b *testing.B) {
	impls := []struct {
		name string
		run  func(b *testing.B, subs, pubs int)
	}{
		{"conc", func(b *testing.B, subs, pubs int) { runBrokerPeer(b, newConcBrokerPeer(), subs, pubs) }},
		{"cskr", func(b *testing.B, subs, pubs int) { runBrokerPeer(b, newCskrBrokerPeer(), subs, pubs) }},
		{"watermill", func(b *testing.B, subs, pubs int) { runBrokerPeer(b, newWatermillBrokerPeer(), subs, pubs) }},
	}
	for _, w := range []struct {
		name       string
		subs, pubs int
	}{
		{"subs=1", 1, 1},
		{"subs=10", 10, 1},
		{"subs=100", 100, 1},
		{"pubs=2-subs=10", 10, 2},
	} {
		for _, impl := range impls {
			b.Run(w.name+"/"+impl.name, func(b *testing.B) {
				impl.run(b, w.subs, w.pubs)
			})
		}
	}
}

const (
	peerBrokerBuffer   = 1024
	peerBrokerTopic    = "bench.orders"
	brokerPeerFlowStep = 64
	brokerPeerFlowHigh = 640
	brokerPeerFlowLow  = 256
)

// brokerPeer adapts one library whose subscribers receive M. recv is what
// a subscriber does with each message (watermill's need an Ack).
type brokerPeer[M any] interface {
	subscribe() (ch <-chan M, recv func(M))
	publish(v int)
	close()
}

type brokerPeerCount struct {
	n atomic.Int64
	_ [56]byte
}

func runBrokerPeer[M any](b *testing.B, pb brokerPeer[M], subs, pubs int) {
	received := make([]brokerPeerCount, subs)
	published := make([]brokerPeerCount, pubs)
	behind := func() int64 {
		total := int64(0)
		for i := range published {
			total += published[i].n.Load()
		}
		least := int64(-1)
		for i := range received {
			if r := received[i].n.Load(); least < 0 || r < least {
				least = r
			}
		}
		return total - least
	}
	var consumers sync.WaitGroup
	for j := range subs {
		ch, recv := pb.subscribe()
		consumers.Go(func() {
			n := int64(0)
			for m := range ch {
				recv(m)
				n++
				received[j].n.Store(n)
			}
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	var publishers sync.WaitGroup
	for p := range pubs {
		n := b.N / pubs
		if p == 0 {
			n += b.N % pubs
		}
		publishers.Go(func() {
			for i := range n {
				if i%brokerPeerFlowStep == 0 {
					// Flow control with hysteresis, as in the main suite.
					published[p].n.Store(int64(i))
					for limit := int64(brokerPeerFlowHigh); behind() > limit; limit = brokerPeerFlowLow {
						runtime.Gosched()
					}
				}
				pb.publish(i)
			}
			published[p].n.Store(int64(n))
		})
	}
	publishers.Wait()
	// Asynchronous brokers (watermill) may still be delivering: wait
	// until every subscriber has everything, then close.
	for behind() > 0 {
		runtime.Gosched()
	}
	pb.close()
	consumers.Wait()
	b.StopTimer()
}

func brokerPeerNop(int) {}

type concBrokerPeer struct{ b *conc.Broker[int] }

func newConcBrokerPeer() concBrokerPeer {
	return concBrokerPeer{conc.NewBroker[int](conc.SubBuffer(peerBrokerBuffer), conc.SubPolicy(conc.Block))}
}

func (c concBrokerPeer) subscribe() (<-chan int, func(int)) {
	return c.b.Subscribe(peerBrokerTopic).C(), brokerPeerNop
}
func (c concBrokerPeer) publish(v int) {
	if err := c.b.Publish(context.Background(), peerBrokerTopic, v); err != nil {
		panic(err)
	}
}
func (c concBrokerPeer) close() { _ = c.b.Close() }

type cskrBrokerPeer struct{ ps *pubsub.PubSub[string, int] }

func newCskrBrokerPeer() cskrBrokerPeer {
	return cskrBrokerPeer{pubsub.New[string, int](peerBrokerBuffer)}
}

func (c cskrBrokerPeer) subscribe() (<-chan int, func(int)) {
	return c.ps.Sub(peerBrokerTopic), brokerPeerNop
}
func (c cskrBrokerPeer) publish(v int) { c.ps.Pub(v, peerBrokerTopic) }
func (c cskrBrokerPeer) close()        { c.ps.Shutdown() }

// watermillBrokerPeer adapts gochannel; its subscribers range over watermill's
// own output channels and Ack each message.
type watermillBrokerPeer struct{ g *gochannel.GoChannel }

func newWatermillBrokerPeer() watermillBrokerPeer {
	return watermillBrokerPeer{gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: peerBrokerBuffer}, nil)}
}

func (w watermillBrokerPeer) subscribe() (<-chan *message.Message, func(*message.Message)) {
	ch, err := w.g.Subscribe(context.Background(), peerBrokerTopic)
	if err != nil {
		panic(err)
	}
	return ch, func(m *message.Message) { m.Ack() }
}

func (w watermillBrokerPeer) publish(int) {
	// A constant UUID and no payload: the cheapest message watermill can
	// carry, so the library is not charged for generating UUIDs.
	if err := w.g.Publish(peerBrokerTopic, message.NewMessage("m", nil)); err != nil {
		panic(err)
	}
}

func (w watermillBrokerPeer) close() { _ = w.g.Close() }
