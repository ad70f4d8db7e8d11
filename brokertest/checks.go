package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/concpatterns/conc"
)

// suite is one check's state: its subtest and the configuration.
type suite struct {
	t   *testing.T
	cfg Config
}

// broker returns a new broker that is closed when the check ends.
func (s *suite) broker() Broker {
	s.t.Helper()
	b := s.cfg.New(s.t)
	if b == nil {
		s.t.Fatal("brokertest: Config.New returned nil")
	}
	s.t.Cleanup(func() { _ = b.Close() })
	return b
}

// settle waits until ok holds for the broker's counters: at once for a
// synchronous broker, up to the timeout for an Async one.
func (s *suite) settle(b Broker, what string, ok func(Stats) bool) Stats {
	s.t.Helper()
	st := b.Stats()
	if ok(st) {
		return st
	}
	if s.cfg.Caps.Async {
		deadline := time.Now().Add(s.cfg.Timeout)
		for time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			if st = b.Stats(); ok(st) {
				return st
			}
		}
	}
	s.t.Fatalf("%s: counters never settled: %+v", what, st)
	return st
}

// identity reports whether every delivery attempt has ended in exactly one
// counter.
func identity(st Stats) bool {
	return st.Deliveries == st.Delivered+st.dropped()
}

// take receives n messages from sub, waiting for them up to the timeout.
func (s *suite) take(sub Subscription, n int) []Msg {
	s.t.Helper()
	out := make([]Msg, 0, n)
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	for len(out) < n {
		select {
		case m, ok := <-sub.C():
			if !ok {
				s.t.Fatalf("C closed after %d of %d messages: %v", len(out), n, out)
			}
			out = append(out, m)
		case <-timer.C:
			s.t.Fatalf("received %d of %d messages before the timeout: %v", len(out), n, out)
		}
	}
	return out
}

// buffered receives what sub holds now, without waiting.
func buffered(sub Subscription) []Msg {
	var out []Msg
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				return out
			}
			out = append(out, m)
		default:
			return out
		}
	}
}

// drain receives from sub until C is closed, up to the timeout.
func (s *suite) drain(sub Subscription) []Msg {
	s.t.Helper()
	var out []Msg
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-sub.C():
			if !ok {
				return out
			}
			out = append(out, m)
		case <-timer.C:
			s.t.Fatalf("C was not closed before the timeout (received %d)", len(out))
			return out
		}
	}
}

// inOrder returns the first place where msgs breaks per-publisher order
// (a publisher's sequence numbers must increase; with gaps only when
// gaps is set), or "" when there is none.
func inOrder(msgs []Msg, gaps bool) string {
	last := map[int]int{}
	for i, m := range msgs {
		prev, seen := last[m.Pub]
		if !seen {
			prev = -1
		}
		if m.Seq <= prev || (!gaps && m.Seq != prev+1) {
			return fmt.Sprintf("message %d is %+v after seq %d of publisher %d", i, m, prev, m.Pub)
		}
		last[m.Pub] = m.Seq
	}
	return ""
}

func (s *suite) publish(b Broker, topic string, m Msg) {
	s.t.Helper()
	if err := b.Publish(context.Background(), topic, m); err != nil {
		s.t.Fatalf("Publish(%q, %+v): %v", topic, m, err)
	}
}

// perPublisherOrder: several publishers, subscribers by literal topic and
// by wildcard, buffers large enough that nothing drops: every subscriber
// gets every message, in each publisher's order.
func (s *suite) perPublisherOrder() {
	const pubs, per = 4, 200
	b := s.broker()
	var subs []Subscription
	for _, p := range []string{"order.t", "order.t", "order.*", "order.>", ">"} {
		subs = append(subs, b.Subscribe(p, conc.SubBuffer(pubs*per)))
	}
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Go(func() {
			for i := range per {
				if err := b.Publish(context.Background(), "order.t", Msg{p, i}); err != nil {
					s.t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := uint64(len(subs) * pubs * per)
	st := s.settle(b, "order", func(st Stats) bool { return st.Delivered == want && identity(st) })
	if st.Published != pubs*per || st.Deliveries != want || st.dropped() != 0 {
		s.t.Errorf("counters: %+v, want Published %d, Deliveries = Delivered = %d", st, pubs*per, want)
	}
	for i, sub := range subs {
		got := s.take(sub, pubs*per)
		if bad := inOrder(got, false); bad != "" {
			s.t.Errorf("subscriber %d: %s", i, bad)
		}
		if d := sub.Dropped(); d != 0 {
			s.t.Errorf("subscriber %d dropped %d", i, d)
		}
	}
}

// orderWhileDropping: small buffers and a concurrent consumer under each
// drop policy: gaps, but never out of order, and what the subscriber
// received plus what it dropped is what was published.
func (s *suite) orderWhileDropping() {
	for _, policy := range []conc.Overflow{conc.DropNewest, conc.DropOldest} {
		s.t.Run(policy.String(), func(t *testing.T) {
			s := &suite{t: t, cfg: s.cfg}
			const pubs, per = 2, 500
			b := s.broker()
			sub := b.Subscribe("drop.>", conc.SubBuffer(4), conc.SubPolicy(policy))
			got := make(chan []Msg, 1)
			go func() {
				var msgs []Msg
				for m := range sub.C() {
					msgs = append(msgs, m)
				}
				got <- msgs
			}()
			var wg sync.WaitGroup
			for p := range pubs {
				wg.Go(func() {
					for i := range per {
						if err := b.Publish(context.Background(), fmt.Sprintf("drop.%d", p), Msg{p, i}); err != nil {
							t.Errorf("Publish: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			st := s.settle(b, policy.String(), func(st Stats) bool {
				return st.Deliveries == pubs*per && identity(st)
			})
			sub.Unsubscribe()
			var msgs []Msg
			select {
			case msgs = <-got:
			case <-time.After(s.cfg.Timeout):
				t.Fatal("C not closed after Unsubscribe")
			}
			if bad := inOrder(msgs, true); bad != "" {
				t.Error(bad)
			}
			if n := uint64(len(msgs)) + sub.Dropped(); n != pubs*per {
				t.Errorf("received %d + dropped %d = %d, want %d", len(msgs), sub.Dropped(), n, pubs*per)
			}
			if st.Delivered != uint64(len(msgs)) || st.dropped() != sub.Dropped() {
				t.Errorf("counters %+v disagree with %d received, %d dropped", st, len(msgs), sub.Dropped())
			}
		})
	}
}

// dropPolicy publishes ten messages to a buffer of three that nobody reads
// and checks which three the subscriber keeps.
func (s *suite) dropPolicy(policy conc.Overflow, keep []int, counter func(Stats) uint64) {
	b := s.broker()
	sub := b.Subscribe("p", conc.SubBuffer(3), conc.SubPolicy(policy))
	for i := range 10 {
		s.publish(b, "p", Msg{0, i})
	}
	st := s.settle(b, policy.String(), func(st Stats) bool { return st.Deliveries == 10 && identity(st) })
	if st.Published != 10 || st.Delivered != 3 || counter(st) != 7 || st.dropped() != 7 {
		s.t.Errorf("counters %+v: want Published 10, Delivered 3, 7 dropped by %v", st, policy)
	}
	if d := sub.Dropped(); d != 7 {
		s.t.Errorf("Dropped() = %d, want 7", d)
	}
	var seqs []int
	for _, m := range buffered(sub) {
		seqs = append(seqs, m.Seq)
	}
	if !slices.Equal(seqs, keep) {
		s.t.Errorf("kept %v, want %v", seqs, keep)
	}
	if ss, ok := sub.(SubStatser); ok {
		st := ss.Stats()
		if st.Published != 10 || st.Dropped != 7 || st.Delivered+st.Buffered != 3 || st.Policy != policy || st.Pattern != "p" {
			s.t.Errorf("subscription Stats %+v: want 10 published, 7 dropped, 3 delivered or buffered", st)
		}
	}
}

func (s *suite) dropNewest() {
	s.dropPolicy(conc.DropNewest, []int{0, 1, 2}, func(st Stats) uint64 { return st.DroppedNewest })
}

func (s *suite) dropOldest() {
	s.dropPolicy(conc.DropOldest, []int{7, 8, 9}, func(st Stats) uint64 { return st.DroppedOldest })
}

// block: a BlockPublisher subscription with a slow consumer loses nothing;
// with BlockEndToEnd, a publisher waiting on it gives up when its context
// ends, and other subscribers are served first.
func (s *suite) block() {
	b := s.broker()
	sub := b.Subscribe("b", conc.SubBuffer(2), conc.SubPolicy(conc.BlockPublisher))
	const n = 50
	published := make(chan error, 1)
	go func() {
		for i := range n {
			if err := b.Publish(context.Background(), "b", Msg{0, i}); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	got := s.take(sub, n)
	if err := <-published; err != nil {
		s.t.Fatalf("Publish: %v", err)
	}
	if bad := inOrder(got, false); bad != "" {
		s.t.Error(bad)
	}
	st := s.settle(b, "block", func(st Stats) bool { return st.Deliveries == n && identity(st) })
	if st.dropped() != 0 || sub.Dropped() != 0 {
		s.t.Errorf("a BlockPublisher subscription dropped: %+v, Dropped() = %d", st, sub.Dropped())
	}
	if !s.cfg.Caps.BlockEndToEnd {
		return
	}

	// The buffer of one is full after one message; a second Publish
	// waits, serves the other subscriber first, and gives up with its
	// context, keeping the cause.
	full := b.Subscribe("full", conc.SubBuffer(1), conc.SubPolicy(conc.BlockPublisher))
	other := b.Subscribe("full", conc.SubBuffer(4))
	s.publish(b, "full", Msg{1, 0})
	cause := errors.New("brokertest: gave up")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	err := b.Publish(ctx, "full", Msg{1, 1})
	if !errors.Is(err, context.Canceled) {
		s.t.Errorf("Publish to a full BlockPublisher subscriber with a done context = %v, want context.Canceled", err)
	}
	if got := s.take(other, 2); got[1] != (Msg{1, 1}) {
		s.t.Errorf("the other subscriber got %v, want both messages", got)
	}
	if full.Dropped() != 1 || b.Stats().DroppedBlock != 1 {
		s.t.Errorf("Dropped() = %d, Stats %+v: want one DroppedBlock", full.Dropped(), b.Stats())
	}
	// A waiting publisher goes on as soon as the consumer makes room.
	go func() { published <- b.Publish(context.Background(), "full", Msg{1, 2}) }()
	if got := s.take(full, 2); got[0] != (Msg{1, 0}) || got[1] != (Msg{1, 2}) {
		s.t.Errorf("full subscriber got %v", got)
	}
	if err := <-published; err != nil {
		s.t.Errorf("Publish after room was made: %v", err)
	}
}

// unsubscribeInLoop: Unsubscribe called by the consumer itself, from
// inside its loop over C, must neither deadlock nor leave the loop
// waiting: C is closed.
func (s *suite) unsubscribeInLoop() {
	b := s.broker()
	sub := b.Subscribe("u.*", conc.SubBuffer(64))
	for i := range 10 {
		s.publish(b, "u.x", Msg{0, i})
	}
	done := make(chan []Msg, 1)
	go func() {
		var got []Msg
		for m := range sub.C() {
			got = append(got, m)
			if len(got) == 3 {
				sub.Unsubscribe()
				sub.Unsubscribe() // idempotent
			}
		}
		done <- got
	}()
	var got []Msg
	select {
	case got = <-done:
	case <-time.After(s.cfg.Timeout):
		s.t.Fatal("the consumer loop did not end after Unsubscribe")
	}
	if len(got) < 3 || inOrder(got, false) != "" {
		s.t.Errorf("received %v", got)
	}
	if err := sub.Err(); err != nil {
		s.t.Errorf("Err() after Unsubscribe = %v, want nil", err)
	}
	s.publish(b, "u.x", Msg{0, 10}) // nobody left, still fine
	s.settle(b, "unsubscribe", func(st Stats) bool { return st.Subscribers == 0 && identity(st) })
}

// matches is the reference for the wildcard grammar: "*" is one token,
// a final ">" one or more.
func matches(pattern, topic string) bool {
	p, t := strings.Split(pattern, "."), strings.Split(topic, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(t) > i
		}
		if i >= len(t) || (tok != "*" && tok != t[i]) {
			return false
		}
	}
	return len(p) == len(t)
}

// wildcards: every pattern receives exactly the topics it matches, once
// each, in publishing order.
func (s *suite) wildcards() {
	patterns := []string{"a.b.c", "a.*.c", "a.>", "*.b.*", ">", "a.*", "x.>", "*", "*.*.*.*"}
	topics := []string{"a.b.c", "a.x.c", "a.b", "a", "a.b.c.d", "x.y", "x", "b.b.b", "a.b.c"}
	b := s.broker()
	subs := make([]Subscription, len(patterns))
	for i, p := range patterns {
		subs[i] = b.Subscribe(p, conc.SubBuffer(len(topics)))
	}
	var total uint64
	for i, topic := range topics {
		s.publish(b, topic, Msg{0, i})
		for _, p := range patterns {
			if matches(p, topic) {
				total++
			}
		}
	}
	s.settle(b, "wildcards", func(st Stats) bool { return st.Delivered == total && identity(st) })
	for i, p := range patterns {
		var want, got []int
		for j, topic := range topics {
			if matches(p, topic) {
				want = append(want, j)
			}
		}
		for _, m := range buffered(subs[i]) {
			got = append(got, m.Seq)
		}
		if !slices.Equal(got, want) {
			s.t.Errorf("pattern %q received topics %v, want %v (indexes into %q)", p, got, want, topics)
		}
	}
}

// concurrent: subscribers come and go while publishers publish, and Close
// lands in the middle. Nothing panics or hangs, every channel closes, and
// the counters add up: what the consumers received is Delivered, what the
// subscriptions dropped is the broker's drops, and Published counts the
// Publish calls that returned nil.
func (s *suite) concurrent() {
	const pubs, per, churners, rounds = 3, 400, 4, 15
	b := s.broker()
	var published, received atomic.Uint64
	var consumers sync.WaitGroup
	var mu sync.Mutex
	var subs []Subscription
	consume := func(sub Subscription) {
		mu.Lock()
		subs = append(subs, sub)
		mu.Unlock()
		consumers.Go(func() {
			var got []Msg
			for m := range sub.C() {
				got = append(got, m)
			}
			if bad := inOrder(got, true); bad != "" {
				s.t.Error(bad)
			}
			received.Add(uint64(len(got)))
		})
	}
	halfway := make(chan struct{})
	var work sync.WaitGroup
	for p := range pubs {
		work.Go(func() {
			for i := range per {
				if p == 0 && i == per/2 {
					close(halfway)
				}
				err := b.Publish(context.Background(), fmt.Sprintf("c.%d", p), Msg{p, i})
				if errors.Is(err, conc.ErrClosed) {
					return
				}
				if err != nil {
					s.t.Errorf("Publish: %v", err)
					return
				}
				published.Add(1)
			}
		})
	}
	patterns := []string{"c.*", "c.>", "c.1", ">"}
	policies := []conc.Overflow{conc.DropNewest, conc.DropOldest, conc.BlockPublisher}
	for c := range churners {
		work.Go(func() {
			for r := range rounds {
				sub := b.Subscribe(patterns[(c+r)%len(patterns)], conc.SubBuffer(4), conc.SubPolicy(policies[r%len(policies)]))
				consume(sub)
				if r%2 == 0 {
					sub.Unsubscribe()
				}
			}
		})
	}
	work.Go(func() {
		<-halfway
		if err := b.Close(); err != nil {
			s.t.Errorf("Close: %v", err)
		}
	})
	work.Wait()
	waited := make(chan struct{})
	go func() { consumers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(s.cfg.Timeout):
		s.t.Fatal("a subscription's C was not closed after Close")
	}
	// Read only now: a publisher that was waiting on a Block subscription
	// counts its drop after the channel has closed.
	var dropped uint64
	for _, sub := range subs {
		dropped += sub.Dropped()
	}
	st := s.settle(b, "concurrent", func(st Stats) bool {
		return identity(st) && st.Delivered == received.Load()
	})
	if st.Published != published.Load() || st.dropped() != dropped || st.Subscribers != 0 {
		s.t.Errorf("counters %+v: want Published %d, drops %d, no subscribers", st, published.Load(), dropped)
	}
}

// closeAndInvalid: invalid topics are refused with ErrInvalidTopic and
// patterns with a panic; Close is idempotent, closes every subscription
// with Err ErrClosed, and makes Publish return ErrClosed.
func (s *suite) closeAndInvalid() {
	b := s.broker()
	sub := b.Subscribe("k", conc.SubBuffer(4))
	s.publish(b, "k", Msg{0, 0})
	s.settle(b, "close", func(st Stats) bool { return st.Delivered == 1 })
	for _, topic := range []string{"", "a..b", "a.*", "a.>", "a b", "a\tb", "a\r\nb"} {
		if err := b.Publish(context.Background(), topic, Msg{}); !errors.Is(err, conc.ErrInvalidTopic) {
			s.t.Errorf("Publish(%q) = %v, want ErrInvalidTopic", topic, err)
		}
	}
	for _, pattern := range []string{"", "a..b", "a.>.b", "a*", "a b", "a.\n"} {
		func() {
			defer func() {
				if recover() == nil {
					s.t.Errorf("Subscribe(%q) did not panic", pattern)
				}
			}()
			b.Subscribe(pattern)
		}()
	}
	if err := b.Close(); err != nil {
		s.t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		s.t.Errorf("second Close: %v", err)
	}
	if err := b.Publish(context.Background(), "k", Msg{0, 1}); !errors.Is(err, conc.ErrClosed) {
		s.t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if got := s.drain(sub); len(got) != 1 {
		s.t.Errorf("after Close the subscription still held %v, want the one message", got)
	}
	if !errors.Is(sub.Err(), conc.ErrClosed) {
		s.t.Errorf("Err() after Close = %v, want ErrClosed", sub.Err())
	}
	late := b.Subscribe("k")
	if got := s.drain(late); len(got) != 0 || !errors.Is(late.Err(), conc.ErrClosed) {
		s.t.Errorf("Subscribe after Close: received %v, Err %v; want a closed subscription", got, late.Err())
	}
	st := b.Stats()
	if st.Published != 1 || st.Subscribers != 0 {
		s.t.Errorf("counters %+v: refused publishes must not count", st)
	}
}

// noLeak: whatever goroutines the broker started for subscriptions and
// publishers are gone once it is closed and its channels are drained.
func (s *suite) noLeak() {
	b := s.broker()
	ignore := goleak.IgnoreCurrent()
	var subs []Subscription
	for i, p := range []conc.Overflow{conc.DropNewest, conc.DropOldest, conc.BlockPublisher} {
		subs = append(subs, b.Subscribe("l.>", conc.SubBuffer(2), conc.SubPolicy(p)))
		subs = append(subs, b.Subscribe(fmt.Sprintf("l.%d", i), conc.SubBuffer(2), conc.SubPolicy(p)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var publishers sync.WaitGroup
	publishers.Go(func() {
		for i := range 20 {
			if err := b.Publish(ctx, "l.2", Msg{0, i}); err != nil {
				return // a Block publisher given up on, or Close
			}
		}
	})
	subs[0].Unsubscribe()
	cancel()
	publishers.Wait()
	_ = b.Close()
	for _, sub := range subs {
		s.drain(sub)
	}
	goleak.VerifyNone(s.t, ignore)
}

// pull: Next, NextBatch and Events, where the subscription has them. They
// read in order, return conc.ErrClosed once the subscription has ended
// and been read out, give up with the context, and an Events loop that
// unsubscribes from inside ends.
func (s *suite) pull() {
	b := s.broker()
	sub := b.Subscribe("pull", conc.SubBuffer(64))
	p, ok := sub.(Puller)
	if !ok {
		s.t.Skipf("%T has no Next, NextBatch and Events", sub)
	}
	for i := range 10 {
		s.publish(b, "pull", Msg{0, i})
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	var got []Msg
	m, err := p.Next(ctx)
	if err != nil {
		s.t.Fatalf("Next: %v", err)
	}
	got = append(got, m)
	buf := make([]Msg, 3)
	n, err := p.NextBatch(ctx, buf)
	if err != nil || n < 1 || n > 3 {
		s.t.Fatalf("NextBatch = %d, %v; want 1 to 3 events", n, err)
	}
	got = append(got, buf[:n]...)
	for e := range p.Events(ctx) {
		got = append(got, e)
		if len(got) == 7 {
			sub.Unsubscribe()
		}
		if len(got) > 10 {
			break
		}
	}
	if len(got) < 7 || len(got) > 10 || inOrder(got, false) != "" {
		s.t.Errorf("pulled %v, want 7 to 10 events in order", got)
	}
	if _, err := p.Next(ctx); !errors.Is(err, conc.ErrClosed) {
		s.t.Errorf("Next after Unsubscribe and reading out = %v, want ErrClosed", err)
	}
	if n, err := p.NextBatch(ctx, buf); n != 0 || !errors.Is(err, conc.ErrClosed) {
		s.t.Errorf("NextBatch after the end = %d, %v, want 0, ErrClosed", n, err)
	}

	idle := b.Subscribe("idle").(Puller)
	done, stop := context.WithCancelCause(context.Background())
	cause := errors.New("brokertest: stop")
	stop(cause)
	if _, err := idle.Next(done); !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		s.t.Errorf("Next with a cancelled context = %v, want context.Canceled and its cause", err)
	}
	if n, err := idle.NextBatch(done, buf); n != 0 || !errors.Is(err, context.Canceled) {
		s.t.Errorf("NextBatch with a cancelled context = %d, %v", n, err)
	}
	for range idle.Events(done) {
		s.t.Error("Events yielded on an idle subscription")
	}
}
