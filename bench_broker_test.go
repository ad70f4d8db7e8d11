package conc

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkBroker measures one Publish, per message, with every subscriber
// draining its channel in its own goroutine. The timed region ends when the
// last subscriber has received the last message, so a design that hands
// work to other goroutines cannot hide it, and ns/op is the throughput of
// the whole broker.
//
// Every implementation gives each subscriber a buffer of benchBrokerBuffer.
// conc uses the Block policy (nothing may be lost); the naive brokers drop
// when a buffer is full. A flow control in the harness (brokerFlow) keeps
// the publishers close enough to the slowest subscriber that no buffer
// fills, so no implementation drops or blocks and all do the same work; the
// drops/op metric shows it (0 everywhere).
//
// The direct floor is no broker at all: the publishers send on every
// subscriber's channel in a plain loop. A broker whose subscribers read a
// Go channel cannot deliver for less than that channel send and receive,
// so direct is what every implementation here pays at least.
//
// Workloads: subs=N is one publisher and N subscribers on one topic;
// pubs=2-subs=10 splits the messages between two concurrent publishers.
func BenchmarkBroker(b *testing.B) {
	impls := []struct {
		name string
		make func() benchBroker
	}{
		{"conc", func() benchBroker { return newConcBenchBroker() }},
		{"mutex", func() benchBroker { return mutexBenchBroker{newMutexBroker[int]()} }},
		{"chan", func() benchBroker { return chanBenchBroker{newChanBroker[int]()} }},
		{"direct", func() benchBroker { return &directBenchBroker{} }},
	}
	for _, w := range benchBrokerWorkloads {
		for _, impl := range impls {
			b.Run(w.name+"/"+impl.name, func(b *testing.B) {
				runBrokerBench(b, impl.make(), w.subs, w.pubs)
			})
		}
	}
}

const (
	benchBrokerBuffer = 1024
	benchBrokerTopic  = "bench.orders"
)

var benchBrokerWorkloads = []struct {
	name       string
	subs, pubs int
}{
	{"subs=1", 1, 1},
	{"subs=10", 10, 1},
	{"subs=100", 100, 1},
	{"pubs=2-subs=10", 10, 2},
}

// benchBroker is what the harness needs of an implementation.
type benchBroker interface {
	subscribe() <-chan int
	publish(v int)
	// close makes every subscriber channel end once all that was
	// published has been delivered or dropped.
	close()
	dropped() int64
}

func runBrokerBench(b *testing.B, bb benchBroker, subs, pubs int) {
	fc := newBrokerFlow(subs, pubs)
	var consumers sync.WaitGroup
	for j := range subs {
		ch := bb.subscribe()
		consumers.Go(func() {
			n := int64(0)
			for range ch {
				n++
				fc.received[j].n.Store(n) // a plain store to a line of its own
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
				if i%brokerFlowStep == 0 {
					fc.wait(p, int64(i))
				}
				bb.publish(i)
			}
		})
	}
	publishers.Wait()
	bb.close()
	consumers.Wait()
	b.StopTimer()
	b.ReportMetric(float64(bb.dropped())/float64(b.N), "drops/op")
}

// brokerFlow keeps the publishers of a broker benchmark at most about
// brokerFlowHigh messages ahead of the slowest subscriber, so that no
// buffer (benchBrokerBuffer) ever fills: the dropping brokers then drop
// nothing and the blocking ones never block, and every implementation does
// the same work. Subscribers report progress after every message and
// publishers every brokerFlowStep messages, each with a plain store to a
// padded counter of its own, so the bookkeeping adds no contended write and
// only a few loads per brokerFlowStep messages to the publish path. The
// harness in bench/peers is the same.
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
// 2·pubs·brokerFlowStep < benchBrokerBuffer messages.
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

type concBenchBroker struct {
	b   *Broker[int]
	ctx context.Context
}

func newConcBenchBroker() concBenchBroker {
	return concBenchBroker{NewBroker[int](SubBuffer(benchBrokerBuffer), SubPolicy(Block)), context.Background()}
}

func (c concBenchBroker) subscribe() <-chan int { return c.b.Subscribe(benchBrokerTopic).C() }
func (c concBenchBroker) publish(v int) {
	if err := c.b.Publish(c.ctx, benchBrokerTopic, v); err != nil {
		panic(fmt.Sprint("publish: ", err))
	}
}
func (c concBenchBroker) close() { _ = c.b.Close() }
func (c concBenchBroker) dropped() int64 {
	st := c.b.Stats()
	return int64(st.DroppedBlock + st.DroppedNewest + st.DroppedOldest)
}

type mutexBenchBroker struct{ b *mutexBroker[int] }

func (m mutexBenchBroker) subscribe() <-chan int {
	return m.b.Subscribe(benchBrokerTopic, benchBrokerBuffer)
}
func (m mutexBenchBroker) publish(v int)  { m.b.Publish(benchBrokerTopic, v) }
func (m mutexBenchBroker) close()         { m.b.Close() }
func (m mutexBenchBroker) dropped() int64 { return m.b.dropped.Load() }

type chanBenchBroker struct{ b *chanBroker[int] }

func (c chanBenchBroker) subscribe() <-chan int {
	return c.b.Subscribe(benchBrokerTopic, benchBrokerBuffer)
}
func (c chanBenchBroker) publish(v int)  { c.b.Publish(benchBrokerTopic, v) }
func (c chanBenchBroker) close()         { c.b.Close() }
func (c chanBenchBroker) dropped() int64 { return c.b.dropped.Load() }

// directBenchBroker is the floor: a fixed slice of channels, filled before
// the timed region, and a publish that is nothing but one send on each.
type directBenchBroker struct{ chans []chan int }

func (d *directBenchBroker) subscribe() <-chan int {
	ch := make(chan int, benchBrokerBuffer)
	d.chans = append(d.chans, ch)
	return ch
}
func (d *directBenchBroker) publish(v int) {
	for _, ch := range d.chans {
		ch <- v
	}
}
func (d *directBenchBroker) close() {
	for _, ch := range d.chans {
		close(ch)
	}
}
func (d *directBenchBroker) dropped() int64 { return 0 }
