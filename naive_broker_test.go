package conc

import (
	"sync"
	"sync/atomic"
)

// The two brokers every pub/sub tutorial starts from, written plainly. Both
// drop a message for a subscriber whose buffer is full (the select with a
// default case); dropped counts those drops only so that the benchmark can
// show it compared equal work.

// mutexBroker is the map of slices of channels under an RWMutex.
type mutexBroker[E any] struct {
	mu      sync.RWMutex
	subs    map[string][]chan E
	closed  bool
	dropped atomic.Int64
}

func newMutexBroker[E any]() *mutexBroker[E] {
	return &mutexBroker[E]{subs: make(map[string][]chan E)}
}

func (b *mutexBroker[E]) Subscribe(topic string, buffer int) <-chan E {
	ch := make(chan E, buffer)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[topic] = append(b.subs[topic], ch)
	return ch
}

func (b *mutexBroker[E]) Publish(topic string, e E) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return
	}
	for _, ch := range b.subs[topic] {
		select {
		case ch <- e:
		default:
			b.dropped.Add(1)
		}
	}
}

func (b *mutexBroker[E]) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, subs := range b.subs {
		for _, ch := range subs {
			close(ch)
		}
	}
}

// chanBroker is the broker as one goroutine that owns the subscriber map;
// publishes and subscriptions reach it over unbuffered channels.
type chanBroker[E any] struct {
	pub     chan chanBrokerMsg[E]
	sub     chan chanBrokerSub[E]
	quit    chan struct{}
	done    chan struct{}
	dropped atomic.Int64
}

type chanBrokerMsg[E any] struct {
	topic string
	e     E
}

type chanBrokerSub[E any] struct {
	topic string
	ch    chan E
}

func newChanBroker[E any]() *chanBroker[E] {
	b := &chanBroker[E]{
		pub:  make(chan chanBrokerMsg[E]),
		sub:  make(chan chanBrokerSub[E]),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go b.run()
	return b
}

func (b *chanBroker[E]) run() {
	defer close(b.done)
	subs := make(map[string][]chan E)
	for {
		select {
		case s := <-b.sub:
			subs[s.topic] = append(subs[s.topic], s.ch)
		case m := <-b.pub:
			for _, ch := range subs[m.topic] {
				select {
				case ch <- m.e:
				default:
					b.dropped.Add(1)
				}
			}
		case <-b.quit:
			for _, chs := range subs {
				for _, ch := range chs {
					close(ch)
				}
			}
			return
		}
	}
}

func (b *chanBroker[E]) Subscribe(topic string, buffer int) <-chan E {
	ch := make(chan E, buffer)
	b.sub <- chanBrokerSub[E]{topic, ch}
	return ch
}

func (b *chanBroker[E]) Publish(topic string, e E) {
	select {
	case b.pub <- chanBrokerMsg[E]{topic, e}:
	case <-b.done:
	}
}

// Close stops the broker goroutine, which closes every subscriber channel.
// Every Publish that returned before Close was handed over already, since
// the publish channel is unbuffered.
func (b *chanBroker[E]) Close() {
	close(b.quit)
	<-b.done
}
