package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/natsbroker"
)

// Event is what the tests publish: who sent it, its number for that
// sender, and a region for the subject.
type Event struct {
	Pub    int    `json:"pub"`
	Seq    int    `json:"seq"`
	Region string `json:"region"`
}

const wait = 10 * time.Second

// receive takes n events from s, failing the test after wait.
func receive(t *testing.T, s *natsbroker.Subscription[Event], n int) []Event {
	t.Helper()
	out := make([]Event, 0, n)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(out) < n {
		select {
		case e, ok := <-s.C():
			require.True(t, ok, "C closed after %d of %d", len(out), n)
			out = append(out, e)
		case <-timer.C:
			t.Fatalf("received %d of %d events", len(out), n)
		}
	}
	return out
}

// requireOrdered checks that each publisher's events are in increasing
// order, consecutive unless gaps are allowed.
func requireOrdered(t *testing.T, events []Event, gaps bool) {
	t.Helper()
	last := map[int]int{}
	for i, e := range events {
		prev, ok := last[e.Pub]
		if !ok {
			prev = -1
		}
		require.Greater(t, e.Seq, prev, "event %d: %+v", i, e)
		if !gaps {
			require.Equal(t, prev+1, e.Seq, "event %d: %+v", i, e)
		}
		last[e.Pub] = e.Seq
	}
}

// eventually polls cond until it holds or wait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, wait, time.Millisecond, what)
}

// Across connections: publishers on connections of their own, a
// subscriber on another with wildcard patterns; each subscription gets
// every publisher's events in order.
func TestAcrossConnectionsInOrderPerPublisherWithWildcards(t *testing.T) {
	srv := startServer(t, -1, 0)
	sub := natsbroker.New[Event](connect(t, srv))
	defer sub.Close()
	const pubs, per = 3, 300
	all := sub.Subscribe("orders.>", conc.SubBuffer(pubs*per))
	created := sub.Subscribe("orders.*.created", conc.SubBuffer(pubs*per))
	regions := []string{"eu", "us", "ap"}
	var wg sync.WaitGroup
	for p := range pubs {
		pub := natsbroker.New[Event](connect(t, srv))
		defer pub.Close()
		wg.Go(func() {
			for i := range per {
				topic := fmt.Sprintf("orders.%s.created", regions[p])
				if i%2 == 1 {
					topic = fmt.Sprintf("orders.%s.paid.card", regions[p])
				}
				assert.NoError(t, pub.Publish(context.Background(), topic, Event{p, i, regions[p]}))
			}
		})
	}
	wg.Wait()
	got := receive(t, all, pubs*per)
	requireOrdered(t, got, false)
	got = receive(t, created, pubs*per/2)
	requireOrdered(t, got, true)
	for _, e := range got {
		require.Zero(t, e.Seq%2, "orders.*.created got %+v", e)
	}
	st := sub.Stats()
	assert.Equal(t, uint64(pubs*per*3/2), st.Delivered)
	assert.Zero(t, st.Deliveries-st.Delivered)
}

// The same across OS processes: this test binary, started again as a
// child, publishes; the parent subscribes with a wildcard.
func TestAcrossProcessesInOrderPerPublisher(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	srv := startServer(t, -1, 0)
	b := natsbroker.New[Event](connect(t, srv))
	defer b.Close()
	const per = 500
	s := b.Subscribe("proc.*.events", conc.SubBuffer(2*per))
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildPublisher$")
	cmd.Env = append(os.Environ(), "NATSBROKER_CHILD_URL="+srv.ClientURL(), "NATSBROKER_CHILD_N="+strconv.Itoa(per))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child: %s", out)
	require.Contains(t, string(out), "PASS")
	got := receive(t, s, 2*per)
	requireOrdered(t, got, false)
	assert.Equal(t, uint64(2*per), b.Stats().Delivered)
}

// TestChildPublisher is the child process of
// TestAcrossProcessesInOrderPerPublisher: two publishers, each on its own
// connection, to two subjects.
func TestChildPublisher(t *testing.T) {
	url := os.Getenv("NATSBROKER_CHILD_URL")
	if url == "" {
		t.Skip("run by TestAcrossProcessesInOrderPerPublisher")
	}
	n, err := strconv.Atoi(os.Getenv("NATSBROKER_CHILD_N"))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for p := range 2 {
		nc, err := nats.Connect(url)
		require.NoError(t, err)
		defer nc.Close()
		b := natsbroker.New[Event](nc)
		wg.Go(func() {
			for i := range n {
				assert.NoError(t, b.Publish(context.Background(), fmt.Sprintf("proc.%d.events", p), Event{Pub: p, Seq: i}))
			}
			assert.NoError(t, nc.Flush())
			assert.NoError(t, b.Close())
		})
	}
	wg.Wait()
}

// stopped waits until nc has noticed that the server is gone.
func stopped(t *testing.T, ncs ...*nats.Conn) {
	for _, nc := range ncs {
		eventually(t, "client notices the outage", func() bool { return !nc.IsConnected() })
	}
}

// reconnected waits until nc is connected again and the server has seen
// everything it sent (its subscriptions among it).
func reconnected(t *testing.T, ncs ...*nats.Conn) {
	for _, nc := range ncs {
		eventually(t, "client reconnects", nc.IsConnected)
		require.NoError(t, nc.Flush())
	}
}

// The server stops and restarts mid-stream, with publisher and subscriber
// on one connection and a small reconnect buffer. During the outage,
// Publish succeeds until nats.go's reconnect buffer is full (counted in
// PublishedOffline) and fails after that (nats.ErrReconnectBufExceeded,
// counted in PublishFailed). On reconnect nats.go renews the subscription
// before it sends the buffer, so every accepted event arrives, in order:
// accepted = received, failed = returned as errors, nothing unaccounted.
func TestServerRestartSameConnection(t *testing.T) {
	srv := startServer(t, -1, 0)
	p := srv.Addr().(*net.TCPAddr).Port
	nc := connect(t, srv, nats.ReconnectBufSize(4096))
	b := natsbroker.New[Event](nc)
	defer b.Close()
	s := b.Subscribe("stream.>", conc.SubBuffer(1000))
	ctx := context.Background()

	seq := 0
	publish := func(n int) (accepted int, failed []error) {
		for range n {
			if err := b.Publish(ctx, "stream.x", Event{Seq: seq}); err != nil {
				failed = append(failed, err)
			} else {
				accepted++
			}
			seq++
		}
		return accepted, failed
	}
	before, _ := publish(100)
	require.Equal(t, 100, before)
	receive(t, s, 100)

	srv.Shutdown()
	srv.WaitForShutdown()
	stopped(t, nc)
	offline, failed := publish(200)
	require.NotZero(t, offline, "the reconnect buffer took nothing")
	require.NotEmpty(t, failed, "a 4 KiB reconnect buffer took 200 events")
	for _, err := range failed {
		require.ErrorIs(t, err, nats.ErrReconnectBufExceeded)
	}
	st := b.Stats()
	assert.Equal(t, uint64(offline), st.PublishedOffline)
	assert.Equal(t, uint64(len(failed)), st.PublishFailed)

	startServer(t, p, 0)
	reconnected(t, nc)
	after, _ := publish(100)
	require.Equal(t, 100, after)
	got := receive(t, s, offline+after)
	requireOrdered(t, got, true)
	st = b.Stats()
	assert.Equal(t, uint64(before+offline+after), st.Published)
	assert.Equal(t, st.Published, st.Delivered, "every accepted event arrived: %+v", st)
	t.Logf("outage: %d published while disconnected and delivered after reconnect, %d refused with ErrReconnectBufExceeded", offline, len(failed))
}

// With the subscriber on another connection, the subscription resumes
// after the restart too; events the publisher buffered during the outage
// reach it only if its connection renewed the subscription before the
// publisher's buffer was sent (at most once): the test requires order and
// every event published once both are back, and logs the rest.
func TestServerRestartSeparateConnections(t *testing.T) {
	srv := startServer(t, -1, 0)
	p := srv.Addr().(*net.TCPAddr).Port
	pubConn, subConn := connect(t, srv), connect(t, srv)
	pub, sub := natsbroker.New[Event](pubConn), natsbroker.New[Event](subConn)
	defer pub.Close()
	defer sub.Close()
	s := sub.Subscribe("stream.*", conc.SubBuffer(1000))
	ctx := context.Background()
	for i := range 100 {
		require.NoError(t, pub.Publish(ctx, "stream.x", Event{Seq: i}))
	}
	receive(t, s, 100)

	srv.Shutdown()
	srv.WaitForShutdown()
	stopped(t, pubConn, subConn)
	for i := 100; i < 150; i++ {
		require.NoError(t, pub.Publish(ctx, "stream.x", Event{Seq: i}))
	}
	assert.Equal(t, uint64(50), pub.Stats().PublishedOffline)

	startServer(t, p, 0)
	reconnected(t, pubConn, subConn)
	for i := 150; i < 250; i++ {
		require.NoError(t, pub.Publish(ctx, "stream.x", Event{Seq: i}))
	}
	var got []Event
	for len(got) == 0 || got[len(got)-1].Seq != 249 {
		got = append(got, receive(t, s, 1)...)
	}
	requireOrdered(t, got, true)
	late := 0
	for _, e := range got {
		if e.Seq < 150 {
			late++
		}
	}
	require.GreaterOrEqual(t, len(got)-late, 100, "events published after the restart are all delivered")
	t.Logf("separate connections: %d of the 50 events buffered during the outage arrived", late)
}

// Hostile subjects are refused before they reach the connection, exactly
// as conc.Broker refuses them, and counted; nothing reaches the server.
func TestHostileSubjectsRefused(t *testing.T) {
	srv := startServer(t, -1, 0)
	nc := connect(t, srv)
	raw, err := nc.SubscribeSync(">")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	b := natsbroker.New[Event](nc)
	defer b.Close()
	local := conc.NewBroker[Event]()
	defer local.Close()
	hostile := []string{"a b", "a\tb", "a\r\nPUB x 1", "a..b", "", ".a", "a.", "a.*", ">", "a\x00b", "a.b c"}
	for _, topic := range hostile {
		err := b.Publish(context.Background(), topic, Event{})
		require.ErrorIs(t, err, conc.ErrInvalidTopic, "%q", topic)
		assert.Equal(t, local.Publish(context.Background(), topic, Event{}).Error(), err.Error())
	}
	assert.Equal(t, uint64(len(hostile)), b.Stats().InvalidTopic)
	for _, pattern := range []string{"a b", "a..b", "a.>.b", "x\n", "*a"} {
		assert.PanicsWithValue(t, "natsbroker: invalid subscription pattern: "+conc.CheckPattern(pattern).Error(),
			func() { b.Subscribe(pattern) }, "%q", pattern)
	}
	require.NoError(t, b.Publish(context.Background(), "ok", Event{Seq: 1}))
	m, err := raw.NextMsg(wait)
	require.NoError(t, err)
	assert.Equal(t, "ok", m.Subject, "the first message the server routed is the valid one")
}

// A payload that does not decode is counted, reported with its subject,
// and skipped: the subscription goes on.
func TestUndecodablePayloadCountedAndSkipped(t *testing.T) {
	srv := startServer(t, -1, 0)
	nc := connect(t, srv)
	errs := make(chan error, 4)
	b := natsbroker.New[Event](nc, natsbroker.OnError(func(err error) { errs <- err }))
	defer b.Close()
	s := b.Subscribe("ev.>")
	require.NoError(t, b.Publish(context.Background(), "ev.a", Event{Seq: 0}))
	require.NoError(t, nc.Publish("ev.poison", []byte("{not json")))
	require.NoError(t, b.Publish(context.Background(), "ev.a", Event{Seq: 1}))
	got := receive(t, s, 2)
	assert.Equal(t, []int{0, 1}, []int{got[0].Seq, got[1].Seq})
	var de *natsbroker.DecodeError
	require.ErrorAs(t, <-errs, &de)
	assert.Equal(t, "ev.poison", de.Subject)
	assert.Equal(t, "ev.>", de.Pattern)
	assert.Equal(t, 9, de.Size)
	assert.Contains(t, de.Error(), `"ev.poison"`)
	st := b.Stats()
	assert.Equal(t, uint64(1), st.Undecodable)
	assert.Equal(t, uint64(3), st.Deliveries)
	assert.Equal(t, uint64(1), s.Dropped())
	assert.Equal(t, conc.SubStats{Pattern: "ev.>", Policy: conc.DropNewest, Buffer: conc.DefaultSubBuffer,
		Published: 3, Delivered: 2, Dropped: 1}, s.Stats())
}

// An event that encodes to more than the server's max payload is refused
// with nats.ErrMaxPayload and counted; an encoding error likewise.
func TestOversizeAndUnencodableRefused(t *testing.T) {
	srv := startServer(t, -1, 1024)
	b := natsbroker.New[Event](connect(t, srv))
	defer b.Close()
	s := b.Subscribe("big")
	err := b.Publish(context.Background(), "big", Event{Region: strings.Repeat("x", 2000)})
	require.ErrorIs(t, err, nats.ErrMaxPayload)
	assert.Contains(t, err.Error(), `"big"`)
	require.NoError(t, b.Publish(context.Background(), "big", Event{Seq: 7}))
	assert.Equal(t, 7, receive(t, s, 1)[0].Seq)

	bad := natsbroker.New[func()](connect(t, srv))
	defer bad.Close()
	var ue error
	require.Error(t, func() error { ue = bad.Publish(context.Background(), "f", func() {}); return ue }())
	st := b.Stats()
	assert.Equal(t, uint64(1), st.TooLarge)
	assert.Equal(t, uint64(1), bad.Stats().EncodeFailed)
}

// A BlockPublisher subscription whose consumer stalls holds back NATS's
// delivery; once the client's pending limit is passed, NATS drops, and
// the drop is counted (DroppedSlow, Dropped) and reported through
// OnError. Received plus dropped is everything published.
func TestSlowConsumerCountedAndReported(t *testing.T) {
	srv := startServer(t, -1, 0)
	errs := make(chan error, 16)
	b := natsbroker.New[Event](connect(t, srv),
		natsbroker.PendingLimits(10, -1),
		natsbroker.OnError(func(err error) { errs <- err }))
	defer b.Close()
	s := b.Subscribe("slow", conc.SubBuffer(1), conc.SubPolicy(conc.BlockPublisher))
	pub := natsbroker.New[Event](connect(t, srv))
	defer pub.Close()
	const n = 200
	for i := range n {
		require.NoError(t, pub.Publish(context.Background(), "slow", Event{Seq: i}))
	}
	select {
	case err := <-errs:
		require.ErrorIs(t, err, nats.ErrSlowConsumer)
		assert.Contains(t, err.Error(), `"slow"`)
	case <-time.After(wait):
		t.Fatal("no slow-consumer error reported")
	}
	var got []Event
	eventually(t, "received + dropped = published", func() bool {
		got = append(got, drainNow(s)...)
		// The handler counts a send just after it, so the last one may
		// be received before it is counted.
		st := b.Stats()
		return uint64(len(got))+st.DroppedSlow == n && st.Deliveries == n
	})
	requireOrdered(t, got, true)
	st := b.Stats()
	assert.Equal(t, uint64(n), st.Deliveries)
	assert.Equal(t, st.DroppedSlow, s.Dropped())
	sst := s.Stats()
	assert.Equal(t, uint64(n), sst.Published)
	assert.Equal(t, uint64(len(got)), sst.Delivered)
	assert.Equal(t, sst.Published, sst.Delivered+sst.Dropped+sst.Buffered, "%+v", sst)
	assert.NotZero(t, st.DroppedSlow)
	t.Logf("pending limit 10: %d received, %d dropped by NATS", len(got), st.DroppedSlow)
}

func drainNow(s *natsbroker.Subscription[Event]) []Event {
	var out []Event
	for {
		select {
		case e := <-s.C():
			out = append(out, e)
		default:
			return out
		}
	}
}

// The Broker leaves the connection's own error handler in place: it is
// still called, after the broker has taken note.
func TestKeepsTheConnectionsErrorHandler(t *testing.T) {
	srv := startServer(t, -1, 0)
	called := make(chan error, 16)
	nc := connect(t, srv, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { called <- err }))
	b := natsbroker.New[Event](nc, natsbroker.PendingLimits(1, -1))
	defer b.Close()
	b.Subscribe("x", conc.SubBuffer(0), conc.SubPolicy(conc.BlockPublisher))
	for i := range 20 {
		require.NoError(t, b.Publish(context.Background(), "x", Event{Seq: i}))
	}
	select {
	case err := <-called:
		require.ErrorIs(t, err, nats.ErrSlowConsumer)
	case <-time.After(wait):
		t.Fatal("the connection's error handler was not called")
	}
}

// Options are checked like conc's: nil values and a codec of the wrong
// type panic at New.
func TestNewRejectsBadArguments(t *testing.T) {
	srv := startServer(t, -1, 0)
	nc := connect(t, srv)
	assert.PanicsWithValue(t, "natsbroker: connection must not be nil", func() { natsbroker.New[Event](nil) })
	assert.PanicsWithValue(t, "natsbroker: option 0 must not be nil", func() { natsbroker.New[Event](nc, nil) })
	assert.PanicsWithValue(t, "natsbroker: codec natsbroker.JSON[int] does not encode natsbroker_test.Event",
		func() { natsbroker.New[Event](nc, natsbroker.WithCodec[int](natsbroker.JSON[int]{})) })
	b := natsbroker.New[Event](nc)
	assert.PanicsWithValue(t, "natsbroker: context must not be nil", func() {
		var nilCtx context.Context
		_ = b.Publish(nilCtx, "t", Event{})
	})
	require.NoError(t, b.Close())
}

// Defaults gives every subscription the options conc.NewBroker would.
func TestDefaultsAndSubscribeOptions(t *testing.T) {
	srv := startServer(t, -1, 0)
	b := natsbroker.New[Event](connect(t, srv), natsbroker.Defaults(conc.SubBuffer(3), conc.SubPolicy(conc.DropOldest)))
	defer b.Close()
	s := b.Subscribe("d")
	assert.Equal(t, `natsbroker.Subscription("d", DropOldest, buffer 3)`, s.String())
	assert.Equal(t, `natsbroker.Subscription("d", DropOldest, buffer 9)`, b.Subscribe("d", conc.SubBuffer(9)).String())
}

// A subscription the connection refuses is returned closed, with the
// reason in Err.
func TestSubscribeOnClosedConnection(t *testing.T) {
	srv := startServer(t, -1, 0)
	nc := connect(t, srv)
	b := natsbroker.New[Event](nc)
	nc.Close()
	s := b.Subscribe("x")
	_, open := <-s.C()
	assert.False(t, open)
	require.ErrorIs(t, s.Err(), nats.ErrConnectionClosed)
	require.ErrorIs(t, b.Publish(context.Background(), "x", Event{}), nats.ErrConnectionClosed)
	assert.Equal(t, uint64(1), b.Stats().PublishFailed)
	require.NoError(t, b.Close())
	assert.True(t, errors.Is(b.Publish(context.Background(), "x", Event{}), conc.ErrClosed))
}
