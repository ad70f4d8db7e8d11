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

// After a flood of distinct keys with a short refill, every key expires:
// Redis keeps nothing for idle keys.
func TestKeysExpireWhenTheirBucketIsFull(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	// burst 2 at 20/s: a bucket is full again 100ms after its last call.
	l := New(c, "mem:", 20, 2, Batching(4))
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 10000; i += 8 {
				_, err := l.Allow(ctx, fmt.Sprint("k", i))
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	n, err := c.DBSize(ctx).Result()
	require.NoError(t, err)
	assert.Greater(t, n, int64(0), "the flood left keys behind while they refill")
	deadline := time.Now().Add(10 * time.Second)
	for n > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n, err = c.DBSize(ctx).Result()
		require.NoError(t, err)
	}
	assert.Zero(t, n, "keys left after every bucket is full again")
}

// SCRIPT FLUSH in the middle of a run: the script is sent again and no
// caller sees an error.
func TestScriptFlushIsInvisibleToCallers(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := redistest.Start(t)
			var opts []Option
			opts = m.opts(opts...)
			l := New(m.client(srv), "flush:", 1000, 1000, opts...)
			admin := srv.Client()
			ctx := context.Background()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var calls atomic.Int64
			for w := range 8 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						d, err := l.Allow(ctx, fmt.Sprint(w, i%10))
						if !assert.NoError(t, err) {
							return
						}
						assert.Equal(t, PathRedis, d.Path)
						calls.Add(1)
					}
				})
			}
			for range 5 {
				time.Sleep(20 * time.Millisecond)
				require.NoError(t, admin.ScriptFlush(ctx).Err())
			}
			time.Sleep(20 * time.Millisecond)
			close(stop)
			wg.Wait()
			st := l.Stats()
			assert.Positive(t, calls.Load())
			assert.GreaterOrEqual(t, st.ScriptLoads, uint64(1))
			assert.Zero(t, st.Errors)
		})
	}
}

// 64 goroutines hammer keys that are throttled: the deny cache answers
// nearly all of them, so at most 10% of decisions reach Redis.
func TestDenyCacheKeepsAFloodAwayFromRedis(t *testing.T) {
	srv := redistest.Start(t)
	l := New(srv.Client(), "flood:", 2, 1)
	ctx := context.Background()
	const keys = 16
	var wg sync.WaitGroup
	var allowed [keys]atomic.Int64
	start := time.Now()
	for g := range 64 {
		wg.Go(func() {
			for i := range 2000 {
				k := (g + i) % keys
				d, err := l.Allow(ctx, fmt.Sprint("hot", k))
				if !assert.NoError(t, err) {
					return
				}
				if d.Allowed {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	st := l.Stats()
	total := st.Redis + st.Cache
	assert.Equal(t, uint64(64*2000), total)
	t.Logf("%d decisions, %d reached Redis (%.2f%%) in %.2fs", total, st.Redis, 100*float64(st.Redis)/float64(total), elapsed)
	assert.LessOrEqual(t, float64(st.Redis), 0.1*float64(total))
	for k := range allowed {
		assert.LessOrEqual(t, float64(allowed[k].Load()), 1+2*elapsed+1, "key %d over-admitted", k)
	}
}

// Redis is killed in the middle of a run and started again: each policy
// decides while it is gone, the error names the policy, the breaker opens,
// and Redis decides again once it is back.
func TestRedisKilledAndRestarted(t *testing.T) {
	policies := []struct {
		name   string
		policy Policy
		path   Path
	}{
		{"fail-open", FailOpen, PathOpen},
		{"fail-closed", FailClosed, PathClosed},
		{"fallback", Fallback(0.5), PathFallback},
	}
	for _, p := range policies {
		for _, m := range modes {
			t.Run(p.name+"/"+m.name, func(t *testing.T) {
				srv := redistest.Start(t)
				opts := []Option{OnFailure(p.policy), Timeout(100 * time.Millisecond), DenyCache(0),
					BreakerOptions(conc.Cooldown(50 * time.Millisecond))}
				opts = m.opts(opts...)
				// 1 token per 100 s, burst 4: nothing refills during the test.
				l := New(m.client(srv), "kill:", 0.01, 4, opts...)
				ctx := context.Background()
				d, err := l.Allow(ctx, "k")
				require.NoError(t, err)
				require.True(t, d.Allowed)

				srv.Kill()
				var admitted int
				var sawOpen bool
				for range 20 {
					d, err := l.Allow(ctx, "k")
					var de *DecisionError
					require.ErrorAs(t, err, &de)
					assert.Equal(t, p.path, de.Path)
					assert.Equal(t, p.path, d.Path)
					sawOpen = sawOpen || errors.Is(err, conc.ErrOpen)
					if d.Allowed {
						admitted++
					} else {
						assert.Positive(t, d.RetryAfter)
					}
				}
				assert.True(t, sawOpen, "the breaker opened on a dead Redis")
				switch p.path {
				case PathOpen:
					assert.Equal(t, 20, admitted)
				case PathClosed:
					assert.Zero(t, admitted)
				case PathFallback:
					assert.Equal(t, 2, admitted, "half the burst of 4")
				}
				st := l.Stats()
				assert.Equal(t, uint64(20), st.Errors)

				srv.Restart()
				deadline := time.Now().Add(10 * time.Second)
				for {
					d, err = l.Allow(ctx, "k")
					if err == nil {
						break
					}
					require.True(t, time.Now().Before(deadline), "Redis never decided again: %v", err)
					time.Sleep(20 * time.Millisecond)
				}
				assert.Equal(t, PathRedis, d.Path)
				assert.True(t, d.Allowed, "the restarted Redis (no persistence) has a fresh bucket")
			})
		}
	}
}

// Callers keep going while Redis dies and comes back: every call gets a
// decision (from Redis, the cache or the policy), nothing else fails, the
// counters add up to the calls, and Redis decides again at the end.
func TestRedisKilledUnderLoad(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			srv := redistest.Start(t)
			opts := []Option{OnFailure(Fallback(0.5)), Timeout(100 * time.Millisecond),
				BreakerOptions(conc.Cooldown(30 * time.Millisecond))}
			opts = m.opts(opts...)
			l := New(m.client(srv), "load:", 1000, 50, opts...)
			ctx := context.Background()
			var calls, afterRestart atomic.Int64
			var restarted atomic.Bool
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					deadline := time.Now().Add(20 * time.Second)
					for i := 0; time.Now().Before(deadline); i++ {
						d, err := l.Allow(ctx, fmt.Sprint(w, i%5))
						calls.Add(1)
						var de *DecisionError
						if err != nil && !assert.ErrorAs(t, err, &de) {
							return
						}
						if err != nil {
							assert.Equal(t, PathFallback, d.Path)
						}
						if restarted.Load() && d.Path == PathRedis && afterRestart.Add(1) >= 100 {
							return
						}
					}
					t.Error("Redis never decided again after the restart")
				})
			}
			time.Sleep(50 * time.Millisecond)
			srv.Kill()
			time.Sleep(200 * time.Millisecond)
			srv.Restart()
			restarted.Store(true)
			wg.Wait()
			st := l.Stats()
			assert.Equal(t, uint64(calls.Load()), st.Redis+st.Cache+st.Fallback+st.Open+st.Closed)
			assert.Positive(t, st.Fallback)
			assert.Equal(t, st.Errors, st.Fallback)
		})
	}
}
