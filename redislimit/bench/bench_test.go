// Package bench compares redislimit with the Redis rate limiters people use
// today, against one local redis-server on a unix socket, with 64 concurrent
// callers (b.SetParallelism over GOMAXPROCS). Run it with `make bench-redis`.
//
// Two suites:
//
//   - RedisAdmit: every call is a real decision in Redis (the limit is far
//     above the load, so every call is admitted and writes its key). conc is
//     redislimit with one round trip per call; conc_batched shares round
//     trips between concurrent calls (Batching(4)).
//   - RedisFlood: every key is throttled (1 a minute, burst 1), as in an
//     attack; redislimit's deny cache answers in-process.
package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concpatterns/conc/redislimit"
	"github.com/concpatterns/conc/redislimit/internal/redistest"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/goredisstore.v9"
	"github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	callers = 64
	keys    = 1024
)

// allowFunc is one implementation's decision for a key.
type allowFunc func(ctx context.Context, key string) (bool, error)

type impl struct {
	name string
	make func(b *testing.B, c *redis.Client, rate float64, burst int) allowFunc
}

var impls = []impl{
	{"conc", func(b *testing.B, c *redis.Client, rate float64, burst int) allowFunc {
		l := redislimit.New(c, "conc:", rate, burst)
		return func(ctx context.Context, key string) (bool, error) {
			d, err := l.Allow(ctx, key)
			return d.Allowed, err
		}
	}},
	{"conc_batched", func(b *testing.B, c *redis.Client, rate float64, burst int) allowFunc {
		l := redislimit.New(c, "concb:", rate, burst, redislimit.Batching(4))
		return func(ctx context.Context, key string) (bool, error) {
			d, err := l.Allow(ctx, key)
			return d.Allowed, err
		}
	}},
	{"redis_rate", func(b *testing.B, c *redis.Client, rate float64, burst int) allowFunc {
		l := redis_rate.NewLimiter(c)
		lim := redis_rate.Limit{Rate: int(rate), Burst: burst, Period: time.Second}
		if rate < 1 {
			lim = redis_rate.Limit{Rate: 1, Burst: burst, Period: time.Minute}
		}
		return func(ctx context.Context, key string) (bool, error) {
			r, err := l.Allow(ctx, key, lim)
			if err != nil {
				return false, err
			}
			return r.Allowed > 0, nil
		}
	}},
	{"ulule", func(b *testing.B, c *redis.Client, rate float64, burst int) allowFunc {
		store, err := ulredis.NewStoreWithOptions(c, limiter.StoreOptions{Prefix: "ulule", MaxRetry: 3})
		if err != nil {
			b.Fatal(err)
		}
		// ulule counts in fixed windows: burst calls per burst/rate.
		r := limiter.Rate{Period: time.Duration(float64(burst) / rate * float64(time.Second)), Limit: int64(burst)}
		if rate < 1 {
			r = limiter.Rate{Period: time.Minute, Limit: int64(burst)}
		}
		l := limiter.New(store, r)
		return func(ctx context.Context, key string) (bool, error) {
			res, err := l.Get(ctx, key)
			return err == nil && !res.Reached, err
		}
	}},
	{"throttled", func(b *testing.B, c *redis.Client, rate float64, burst int) allowFunc {
		store, err := goredisstore.NewCtx(c, "throttled:")
		if err != nil {
			b.Fatal(err)
		}
		q := throttled.RateQuota{MaxRate: throttled.PerMin(1), MaxBurst: burst - 1}
		if rate >= 1 {
			q.MaxRate = throttled.PerSec(int(rate))
		}
		l, err := throttled.NewGCRARateLimiterCtx(store, q)
		if err != nil {
			b.Fatal(err)
		}
		return func(ctx context.Context, key string) (bool, error) {
			limited, _, err := l.RateLimitCtx(ctx, key, 1)
			return !limited, err
		}
	}},
}

// run measures decisions per second with callers goroutines over keys keys.
func run(b *testing.B, allow allowFunc, wantAllowed bool) {
	ctx := context.Background()
	// Warm up: connections dialled, scripts loaded, and in the flood
	// every key throttled and seen throttled once.
	for range 2 {
		for i := range keys {
			allow(ctx, fmt.Sprint("k", i))
		}
	}
	var next, wrong atomic.Int64
	b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			ok, err := allow(ctx, fmt.Sprint("k", i%keys))
			if err != nil {
				b.Error(err)
				return
			}
			if ok != wantAllowed {
				wrong.Add(1)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	if w := wrong.Load(); w > int64(b.N)/100 {
		b.Fatalf("%d of %d decisions were not the expected allowed=%v", w, b.N, wantAllowed)
	}
}

func BenchmarkRedisAdmit(b *testing.B) {
	srv := redistest.Start(b)
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			c := srv.Client()
			c.FlushAll(context.Background())
			run(b, im.make(b, c, 1_000_000, 1_000_000), true)
		})
	}
}

func BenchmarkRedisFlood(b *testing.B) {
	srv := redistest.Start(b)
	for _, im := range impls {
		if im.name == "conc_batched" {
			continue // the deny cache answers before any batch
		}
		b.Run(im.name, func(b *testing.B) {
			c := srv.Client()
			c.FlushAll(context.Background())
			run(b, im.make(b, c, 1.0/60, 1), false)
		})
	}
}
