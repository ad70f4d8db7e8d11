package redislimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/redislimit/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewPanicsOnBadInput(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	assert.PanicsWithValue(t, "conc: redislimit client must not be nil", func() { New(nil, "p:", 1, 1) })
	assert.Panics(t, func() { New(c, "p:", 0, 1) })
	assert.Panics(t, func() { New(c, "p:", 1, 0) })
	assert.Panics(t, func() { Fallback(0) })
	assert.Panics(t, func() { Batching(0) })
	assert.Panics(t, func() { New(c, "p:", 1, 1, nil) })
}

func TestAllowNFollowsGCRA(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := redistest.Start(t)
			var opts []Option
			opts = m.opts(opts...)
			// 1 token per 10 s: nothing refills during the test.
			l := New(m.client(srv), "t:", 0.1, 3, opts...)
			ctx := context.Background()
			for i := range 3 {
				d, err := l.Allow(ctx, "a")
				require.NoError(t, err)
				assert.True(t, d.Allowed)
				assert.Equal(t, 2-i, d.Remaining)
				assert.Equal(t, PathRedis, d.Path)
				assert.InDelta(t, float64(time.Duration(i+1)*10*time.Second), float64(d.ResetAfter), float64(time.Second))
			}
			d, err := l.Allow(ctx, "a")
			require.NoError(t, err)
			assert.False(t, d.Allowed)
			assert.Equal(t, PathRedis, d.Path)
			assert.InDelta(t, float64(10*time.Second), float64(d.RetryAfter), float64(time.Second))
			// Now the deny cache answers, without a round trip.
			d, err = l.AllowN(ctx, "a", 2)
			require.NoError(t, err)
			assert.False(t, d.Allowed)
			assert.Equal(t, PathCache, d.Path)
			assert.InDelta(t, float64(20*time.Second), float64(d.RetryAfter), float64(time.Second))

			d, err = l.AllowN(ctx, "b", 4)
			require.NoError(t, err)
			assert.False(t, d.Allowed, "n above the burst")
			assert.Equal(t, time.Duration(-1), d.RetryAfter)
			d, err = l.AllowN(ctx, "b", 3)
			require.NoError(t, err)
			assert.True(t, d.Allowed)
			assert.Equal(t, 0, d.Remaining)

			st := l.Stats()
			assert.Equal(t, uint64(1), st.Cache)
			assert.Equal(t, uint64(6), st.Redis)
			if m.batch {
				assert.Equal(t, uint64(5), st.Batched)
			}
			require.NoError(t, l.Close())
			require.NoError(t, l.Close())
			_, err = l.Allow(ctx, "a")
			assert.ErrorIs(t, err, conc.ErrClosed)
		})
	}
}

func TestWaitTakesTokensAsTheyCome(t *testing.T) {
	srv := redistest.Start(t)
	l := New(srv.Client(), "w:", 50, 1)
	ctx := context.Background()
	start := time.Now()
	for range 5 {
		require.NoError(t, l.Wait(ctx, "k"))
	}
	// 4 waits of 20ms each; the bound below is a correctness bound (no
	// token came early), not a timing assertion on the upper side.
	assert.GreaterOrEqual(t, time.Since(start), 75*time.Millisecond)

	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	l2 := New(srv.Client(), "w2:", 0.1, 1)
	require.NoError(t, l2.Wait(ctx, "k"))
	assert.ErrorIs(t, l2.Wait(short, "k"), context.DeadlineExceeded)
	assert.Error(t, l2.WaitN(ctx, "k", 2))
}

// Four replicas, each with its own client, share one budget per key: no key
// is admitted more than burst + rate×elapsed + 1 times, and the budget is
// used.
func TestReplicasShareOneBudget(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := redistest.Start(t)
			const (
				replicas = 4
				workers  = 8
				keys     = 100
				rate     = 5.0
				burst    = 10
				run      = 2 * time.Second
			)
			var admitted [keys]atomic.Int64
			var calls atomic.Int64
			var opts []Option
			opts = m.opts(opts...)
			start := time.Now()
			var wg sync.WaitGroup
			lims := make([]*Limiter, replicas)
			for r := range replicas {
				l := New(m.client(srv), "rep:", rate, burst, opts...)
				lims[r] = l
				for w := range workers {
					wg.Go(func() {
						ctx := context.Background()
						for i := 0; time.Since(start) < run; i++ {
							k := (i*7 + w*13 + r*31) % keys
							d, err := l.Allow(ctx, fmt.Sprint(k))
							calls.Add(1)
							if !assert.NoError(t, err) {
								return
							}
							if d.Allowed {
								admitted[k].Add(1)
							}
						}
					})
				}
			}
			wg.Wait()
			stats := lims[0].Stats()
			elapsed := time.Since(start).Seconds()
			bound := burst + rate*elapsed + 1
			var total int64
			for k := range admitted {
				n := admitted[k].Load()
				total += n
				assert.LessOrEqual(t, float64(n), bound, "key %d", k)
			}
			// The budget counted from the first call: the run started
			// after start, so the part before it was not available.
			budget := float64(keys) * (burst + rate*run.Seconds())
			t.Logf("admitted %d of a budget of %.0f (%.0f%%) in %.2fs, %d calls, %+v", total, budget, 100*float64(total)/budget, elapsed, calls.Load(), stats)
			assert.GreaterOrEqual(t, float64(total), 0.9*budget)
		})
	}
}

func TestPolicyErrorNamesThePath(t *testing.T) {
	var de *DecisionError
	err := error(&DecisionError{Path: PathFallback, Err: conc.ErrOpen})
	require.True(t, errors.As(err, &de))
	assert.ErrorIs(t, err, conc.ErrOpen)
	assert.Contains(t, err.Error(), "fallback")
}
