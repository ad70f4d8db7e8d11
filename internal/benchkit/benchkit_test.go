package benchkit

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Share must hand out every item exactly once, as evenly as possible:
// the harnesses rely on it to make b.N iterations mean b.N items.
func TestShare(t *testing.T) {
	for n := range 50 {
		for g := 1; g <= 9; g++ {
			total, least, most := 0, n, 0
			for i := range g {
				s := Share(n, g, i)
				total += s
				least, most = min(least, s), max(most, s)
			}
			require.Equal(t, n, total, "n=%d g=%d", n, g)
			assert.LessOrEqual(t, most-least, 1, "n=%d g=%d", n, g)
		}
	}
}

// behind is the distance from everything published to the slowest
// subscriber; the flow control and RunBroker's final wait depend on it.
func TestBrokerFlowBehind(t *testing.T) {
	f := newBrokerFlow(3, 2)
	f.published[0].n.Store(100)
	f.published[1].n.Store(50)
	f.received[0].n.Store(150)
	f.received[1].n.Store(120)
	f.received[2].n.Store(149)
	assert.Equal(t, int64(30), f.behind())
	f.received[1].n.Store(150)
	assert.Equal(t, int64(1), f.behind())
}

// handleBroker is a channel broker that counts the events published
// through each of its handles and those published through Publish.
type handleBroker struct {
	chans  []chan int
	counts []*atomic.Int64 // events per handle
	direct atomic.Int64    // events through Publish
}

func (h *handleBroker) Subscribe() (<-chan int, func(int)) {
	ch := make(chan int, BrokerBuffer)
	h.chans = append(h.chans, ch)
	return ch, func(int) {}
}

func (h *handleBroker) Publish(v int) {
	h.direct.Add(1)
	for _, ch := range h.chans {
		ch <- v // delivered all the same, so that RunBroker ends
	}
}

func (h *handleBroker) Publisher() func(int) {
	n := new(atomic.Int64)
	h.counts = append(h.counts, n)
	return func(v int) {
		n.Add(1)
		for _, ch := range h.chans {
			ch <- v
		}
	}
}

func (h *handleBroker) Close() {
	for _, ch := range h.chans {
		close(ch)
	}
}

// RunBroker gives each publisher a handle of its own when the broker is a
// PublisherBroker, and publishes b.N events through them, shared as Share
// shares them.
func TestRunBrokerPublishesThroughHandles(t *testing.T) {
	var last *handleBroker
	var n int
	testing.Benchmark(func(b *testing.B) {
		last = &handleBroker{}
		n = b.N
		RunBroker(b, last, 2, 2)
	})
	assert.Zero(t, last.direct.Load(), "events through Publish")
	require.Len(t, last.counts, 2, "handles")
	for p, c := range last.counts {
		assert.Equal(t, int64(Share(n, 2, p)), c.Load(), "events through handle %d", p)
	}
}
