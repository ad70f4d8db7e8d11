package benchkit

import (
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
