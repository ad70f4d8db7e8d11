package vizdemo

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concpatterns/conc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demo serves its snapshot while it runs and stops cleanly. It polls
// until every node has moved items; it asserts nothing about how long that
// took.
func TestDemoServesAndStops(t *testing.T) {
	m := conc.NewMonitor()
	url, stop, err := Serve("127.0.0.1:0", m)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, m) }()
	var s conc.MonitorSnapshot
	for range 600 {
		resp, err := http.Get(url + "snapshot.json")
		require.NoError(t, err)
		s = conc.MonitorSnapshot{}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
		resp.Body.Close()
		if len(s.Pipelines) == 1 && allMoved(s.Pipelines[0]) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, stop())
	require.Len(t, s.Pipelines, 1)
	p := s.Pipelines[0]
	assert.True(t, allMoved(p), "%+v", p.Nodes)
	var names []string
	for _, n := range p.Nodes {
		names = append(names, n.Name)
	}
	assert.Equal(t, []string{"source", Hostile, FanOut, Slow, "batch#4 · " + Store, "out"}, names)
	assert.Len(t, s.Pools, 1)
	assert.Len(t, s.Breakers, 1)
	assert.Len(t, s.Brokers, 1)
	assert.Empty(t, m.Snapshot().Pools, "Run unwatches on its way out")
}

func allMoved(p conc.PipelineSnapshot) bool {
	for _, n := range p.Nodes {
		if n.In == 0 {
			return false
		}
	}
	return true
}
