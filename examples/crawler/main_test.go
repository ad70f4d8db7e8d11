package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concpatterns/conc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The crawl talks to a real local HTTP server, so it cannot run inside a
// synctest bubble; it asserts only on counts, never on time.
func TestCrawlAccountsForEveryURL(t *testing.T) {
	cfg := defaultConfig()
	cfg.URLs = 400
	cfg.Hosts = 3
	cfg.Workers = 8
	cfg.PerHost = 2000
	cfg.Slow = 5 * time.Millisecond
	sum, err := run(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	assert.Zero(t, sum.Lost(), "%v", sum)
	assert.Equal(t, int64(400), sum.Total)
	assert.Zero(t, sum.NotStarted)
	assert.Zero(t, sum.Canceled)
	// Every 4th URL goes to the host that is down: five of them open its
	// breaker after their retries fail, the rest are rejected untried.
	down := int64(400 / 4)
	assert.Equal(t, down, sum.Rejected+sum.Failed, "%v", sum)
	assert.Greater(t, sum.Rejected, sum.Failed)
	assert.Equal(t, int64(400)-down, sum.Fetched, "healthy hosts' pages all arrive: %v", sum)
	// Each page n%11 == 3 fails its first attempt once.
	assert.GreaterOrEqual(t, sum.Retried, int64(400*3/4/11))
	assert.Equal(t, uint64(400), sum.Events)
}

func TestCrawlStoppedEarlyStillAddsUp(t *testing.T) {
	cfg := defaultConfig()
	cfg.URLs = 2000
	cfg.Hosts = 2
	cfg.Workers = 4
	cfg.PerHost = 500
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the shutdown starts at once: intake stops before most URLs
	sum, err := run(ctx, cfg, io.Discard)
	require.NoError(t, err)
	assert.Zero(t, sum.Lost(), "%v", sum)
	assert.Equal(t, int64(2000), sum.Total)
}

// A monitored crawl reports its pipeline and what it watches, and the table
// view prints them.
func TestCrawlMonitored(t *testing.T) {
	cfg := defaultConfig()
	cfg.URLs = 200
	cfg.Hosts = 2
	cfg.Workers = 4
	cfg.PerHost = 2000
	cfg.Slow = time.Millisecond
	cfg.Monitor = conc.NewMonitor()
	var buf bytes.Buffer
	stop := printTable(cfg.Monitor, &buf, time.Hour)
	sum, err := run(context.Background(), cfg, io.Discard)
	stop()
	require.NoError(t, err)
	assert.Zero(t, sum.Lost())
	s := cfg.Monitor.Snapshot()
	require.Len(t, s.Pipelines, 1)
	p := s.Pipelines[0]
	assert.Equal(t, "crawl", p.Name)
	assert.Equal(t, uint64(200), p.Nodes[len(p.Nodes)-1].In, "every URL reached the loop")
	assert.Len(t, s.Breakers, 3)
	assert.Len(t, s.KeyedLimiters, 1)
	assert.Len(t, s.Brokers, 1)
	assert.Contains(t, buf.String(), "pipeline crawl #1")
	assert.Contains(t, buf.String(), "pool fetch")
}
