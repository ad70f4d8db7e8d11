package benchkit

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BrokerBuffer is the channel buffer every broker under test gives each
// subscriber, and BrokerTopic the one topic of the broker suites.
const (
	BrokerBuffer = 1024
	BrokerTopic  = "bench.orders"
)

// BrokerWorkloads are the broker suites' workloads: subs=N is one
// publisher and N subscribers; pubs=2-subs=10 splits the messages between
// two concurrent publishers.
var BrokerWorkloads = []struct {
	Name       string
	Subs, Pubs int
}{
	{"subs=1", 1, 1},
	{"subs=10", 10, 1},
	{"subs=100", 100, 1},
	{"pubs=2-subs=10", 10, 2},
}

// A Broker is one implementation under test. Subscribe is called before the
// timed region and returns the subscriber's channel and what the subscriber
// does with each message it receives (nothing for most; an Ack for
// watermill). Publish is called from one or more publisher goroutines at
// once. Close makes every subscriber channel end once all that was
// published has been delivered or dropped.
type Broker[M any] interface {
	Subscribe() (<-chan M, func(M))
	Publish(v int)
	Close()
}

// A Puller is a subscriber that reads in batches, without a channel: it
// waits until at least one message is ready, copies up to len(buf) of them
// into buf and returns how many, or 0 once the subscription has ended.
type Puller[M any] func(buf []M) int

// A PullBroker is a Broker whose subscribers read through a Puller.
// RunBroker and RunBrokerParked use SubscribePull instead of Subscribe when
// a Broker has it.
type PullBroker[M any] interface {
	SubscribePull() Puller[M]
}

// subscribe returns a subscriber's reading loop for br: fn is called with
// each batch received (one message long for a channel) until the
// subscription ends, and before is called right before each wait.
func subscribe[M any](br Broker[M]) func(before func(), fn func([]M)) {
	if pb, ok := br.(PullBroker[M]); ok {
		pull := pb.SubscribePull()
		return func(before func(), fn func([]M)) {
			buf := make([]M, brokerPullBatch)
			for {
				before()
				n := pull(buf)
				if n == 0 {
					return
				}
				fn(buf[:n])
			}
		}
	}
	ch, recv := br.Subscribe()
	return func(before func(), fn func([]M)) {
		var one [1]M
		for {
			before()
			m, ok := <-ch
			if !ok {
				return
			}
			recv(m)
			one[0] = m
			fn(one[:])
		}
	}
}

// brokerPullBatch is the buffer a Puller fills.
const brokerPullBatch = 256

// A PublisherBroker gives each publisher a handle of its own: RunBroker
// calls Publisher once per publisher goroutine, before the timed region,
// and publishes through what it returns instead of Publish.
type PublisherBroker interface {
	Publisher() func(v int)
}

// A Dropper is a Broker that counts the messages it dropped; RunBroker
// reports them as drops/op, which shows that all implementations did the
// same work (0 everywhere, thanks to the flow control).
type Dropper interface {
	Dropped() int64
}

// RunBroker times b.N publishes split among pubs publishers to subs
// subscribers that each drain their channel in a goroutine of their own.
// The timed region ends when every subscriber has received every message,
// so a broker that hands its work to goroutines of its own cannot hide it:
// ns/op is the throughput of the whole broker.
func RunBroker[M any](b *testing.B, br Broker[M], subs, pubs int) {
	f := newBrokerFlow(subs, pubs)
	var consumers sync.WaitGroup
	for j := range subs {
		read := subscribe(br)
		consumers.Go(func() {
			n := int64(0)
			read(func() {}, func(batch []M) {
				n += int64(len(batch))
				f.received[j].n.Store(n) // a plain store to a line of its own
			})
		})
	}
	handles := make([]func(int), pubs)
	if pb, ok := br.(PublisherBroker); ok {
		for p := range handles {
			handles[p] = pb.Publisher()
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var publishers sync.WaitGroup
	for p := range pubs {
		n := Share(b.N, pubs, p)
		publish := handles[p]
		publishers.Go(func() {
			for i := range n {
				if i%brokerFlowStep == 0 {
					f.wait(p, int64(i))
				}
				if publish != nil {
					publish(i)
				} else {
					br.Publish(i)
				}
			}
			f.published[p].n.Store(int64(n))
		})
	}
	publishers.Wait()
	// A broker that delivers asynchronously (watermill) may still be at
	// work: wait until every subscriber has everything, then close.
	for f.behind() > 0 {
		runtime.Gosched()
	}
	br.Close()
	consumers.Wait()
	b.StopTimer()
	if d, ok := br.(Dropper); ok {
		b.ReportMetric(float64(d.Dropped())/float64(b.N), "drops/op")
	}
}

// brokerFlow keeps the publishers at most about brokerFlowHigh messages
// ahead of the slowest subscriber, so that no buffer (BrokerBuffer) ever
// fills: the dropping brokers then drop nothing and the blocking ones never
// block, and every implementation does the same work. Subscribers report
// progress after every message and publishers every brokerFlowStep
// messages, each with a plain store to a padded counter of its own, so the
// bookkeeping adds no contended write and only a few loads per
// brokerFlowStep messages to the publish path.
type brokerFlow struct {
	received  []brokerFlowCount
	published []brokerFlowCount
}

type brokerFlowCount struct {
	n atomic.Int64
	_ [56]byte
}

const (
	brokerFlowStep = 64
	brokerFlowHigh = 640
	brokerFlowLow  = 256
)

func newBrokerFlow(subs, pubs int) *brokerFlow {
	return &brokerFlow{received: make([]brokerFlowCount, subs), published: make([]brokerFlowCount, pubs)}
}

// wait records that publisher p has published mine messages and, when the
// slowest subscriber is more than brokerFlowHigh behind everything
// published, yields until it is within brokerFlowLow. The gap between the
// two keeps subscribers from draining their buffers completely (a drained
// subscriber parks and must be woken for each message, which would make
// the benchmark measure the scheduler). Publisher counts lag by less than
// brokerFlowStep each, so a buffer holds at most brokerFlowHigh +
// 2·pubs·brokerFlowStep < BrokerBuffer messages.
func (f *brokerFlow) wait(p int, mine int64) {
	f.published[p].n.Store(mine)
	limit := int64(brokerFlowHigh)
	for f.behind() > limit {
		limit = brokerFlowLow
		runtime.Gosched()
	}
}

// behind returns how far the slowest subscriber is behind the publishers.
func (f *brokerFlow) behind() int64 {
	total := int64(0)
	for i := range f.published {
		total += f.published[i].n.Load()
	}
	least := int64(-1)
	for i := range f.received {
		if r := f.received[i].n.Load(); least < 0 || r < least {
			least = r
		}
	}
	return total - least
}

// RunBrokerParked times events that each find every one of subs
// subscribers parked, as when one event is published every 10 ms: one
// publisher publishes one event, and the timer runs until the last
// subscriber has received it. Between events the publisher waits without
// spinning: it is woken by the last subscriber to receive, waits for every
// subscriber to be back in its receive call, then sleeps parkedPause with
// the timer stopped, long enough for all of them to park and for the idle
// CPUs to go to sleep. ns/op is the cost of one event: the publish and
// waking every subscriber once, each one handling it (and, but for the
// last, going back to wait). reads/op/sub is how many receive calls
// returned per event per subscriber: 1 means each event woke each
// subscriber once.
func RunBrokerParked[M any](b *testing.B, br Broker[M], subs int) {
	var received, waiting, reads, target atomic.Int64
	last := make(chan struct{}, 1) // the last subscriber has the event
	var consumers sync.WaitGroup
	for range subs {
		read := subscribe(br)
		consumers.Go(func() {
			read(func() { waiting.Add(1) }, func(batch []M) {
				waiting.Add(-1)
				reads.Add(1)
				if received.Add(int64(len(batch))) == target.Load() {
					last <- struct{}{}
				}
			})
			waiting.Add(-1)
		})
	}
	settle := func() {
		for waiting.Load() < int64(subs) {
			time.Sleep(parkedPause)
		}
		time.Sleep(parkedPause)
	}
	settle()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		target.Store(int64(i+1) * int64(subs))
		br.Publish(i)
		<-last
		b.StopTimer()
		settle()
		b.StartTimer()
	}
	b.StopTimer()
	br.Close()
	consumers.Wait()
	b.ReportMetric(float64(reads.Load())/float64(b.N)/float64(subs), "reads/op/sub")
}

// parkedPause is how long RunBrokerParked leaves between events, with its
// timer stopped.
const parkedPause = 100 * time.Microsecond
