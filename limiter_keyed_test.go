package conc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewKeyedLimiterPanicsOnBadInput(t *testing.T) {
	tests := []struct {
		name string
		make func()
		want string
	}{
		{"nan rate", func() { NewKeyedLimiter[string](math.NaN(), 1) }, "NaN"},
		{"negative burst", func() { NewKeyedLimiter[string](1, -2) }, "-2"},
		{"burst 0 with finite rate", func() { NewKeyedLimiter[string](3, 0) }, "burst must be at least 1"},
		{"MaxKeys 0", func() { NewKeyedLimiter[string](1, 1, MaxKeys(0)) }, "MaxKeys"},
		{"nil PerKey", func() { NewKeyedLimiter[string](1, 1, PerKey[string](nil)) }, "PerKey"},
		{"nil option", func() { NewKeyedLimiter[string](1, 1, MaxKeys(10), nil) }, "option 1 must not be nil"},
		{"PerKey of another key type", func() {
			NewKeyedLimiter[string](1, 1, PerKey(func(int) (float64, int) { return 1, 1 }))
		}, "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				assert.True(t, strings.HasPrefix(msg, "conc: "), msg)
				assert.Contains(t, msg, tt.want)
			}()
			tt.make()
			t.Fatal("no panic")
		})
	}
}

func TestKeyedLimiterKeysAreIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewKeyedLimiter[string](1, 2)
		require.True(t, l.Allow("a"))
		require.True(t, l.Allow("a"))
		require.False(t, l.Allow("a"), "a spent its burst")
		require.True(t, l.AllowN("b", 2), "b has its own bucket")
		require.False(t, l.Allow("b"))
		time.Sleep(time.Second)
		require.True(t, l.Allow("a"))
		require.False(t, l.Allow("a"))
		require.False(t, l.AllowN("c", 3), "n above the burst")
		assert.Equal(t, 2, l.Len(), "c stayed unknown: its bucket is still full")
		assert.Equal(t, KeyedLimiterStats{Keys: 2, Allowed: 4, Denied: 4}, l.Stats())
	})
}

func TestKeyedLimiterZeroValueDeniesEverything(t *testing.T) {
	var l KeyedLimiter[int]
	assert.False(t, l.Allow(1))
	assert.True(t, l.AllowN(1, 0))
	require.Error(t, l.Wait(context.Background(), 1))
	assert.Zero(t, l.Len())
	assert.Zero(t, l.Stats())
}

func TestKeyedLimiterPerKeyOverridesRateAndBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		l := NewKeyedLimiter[string](1, 1, PerKey(func(k string) (float64, int) {
			calls++
			switch k {
			case "vip":
				return Inf, 0
			case "blocked":
				return 5, 0
			case "gold":
				return 10, 5
			}
			return 1, 1
		}))
		assert.True(t, l.AllowN("vip", 1000))
		assert.False(t, l.Allow("blocked"))
		for range 5 {
			require.True(t, l.Allow("gold"))
		}
		require.False(t, l.Allow("gold"))
		time.Sleep(100 * time.Millisecond)
		require.True(t, l.Allow("gold"), "gold refills at 10/s")
		require.True(t, l.Allow("plain"))
		require.False(t, l.Allow("plain"))
		assert.Equal(t, 2, l.Len(), "gold and plain are throttled; vip and blocked are not worth remembering")
		calls = 0
		l.Allow("gold")
		assert.Zero(t, calls, "the function runs for new keys only")
		require.NoError(t, l.WaitN(context.Background(), "vip", 1<<20))
	})
}

func TestKeyedLimiterPerKeyPanicReachesTheCaller(t *testing.T) {
	l := NewKeyedLimiter[string](1, 1, PerKey(func(k string) (float64, int) { panic("boom " + k) }))
	assert.PanicsWithValue(t, "boom a", func() { l.Allow("a") })
	var pe *PanicError
	require.ErrorAs(t, l.Wait(context.Background(), "b"), &pe)
	assert.Equal(t, "boom b", pe.Value)
	bad := NewKeyedLimiter[string](1, 1, PerKey(func(string) (float64, int) { return -1, 1 }))
	assert.Panics(t, func() { bad.Allow("x") })
	// The shard lock was released: the limiter still works.
	assert.NotPanics(t, func() { l.Len() })
}

func TestKeyedLimiterRefusesNewKeysWhenFullOfThrottledKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewKeyedLimiter[int](1, 1, MaxKeys(1)) // one shard, one key
		require.True(t, l.Allow(1))
		require.False(t, l.Allow(2), "key 1 is throttled: key 2 is refused")
		require.ErrorIs(t, l.Wait(context.Background(), 3), ErrTooManyKeys)
		assert.Equal(t, uint64(2), l.Stats().Refused)
		require.False(t, l.Allow(1), "the throttled key was not forgotten")

		time.Sleep(time.Second) // key 1's bucket is full again
		require.True(t, l.Allow(2), "a full bucket makes room")
		assert.Equal(t, 1, l.Len())
		st := l.Stats()
		assert.Equal(t, uint64(1), st.Forgotten)
		assert.Equal(t, KeyedLimiterStats{Keys: 1, Allowed: 2, Denied: 1, Refused: 2, Forgotten: 1}, st)
	})
}

func TestKeyedLimiterWaitFollowsLimiterRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewKeyedLimiter[string](1, 2)
		bg := context.Background()
		start := time.Now()
		for range 3 {
			require.NoError(t, l.Wait(bg, "a"))
		}
		assert.Equal(t, time.Second, time.Since(start))

		err := l.WaitN(bg, "a", 3)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "burst 2")

		ctx, cancel := context.WithTimeout(bg, 500*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, l.Wait(ctx, "a"), context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start), "refused at once")

		// A cancelled wait gives its tokens back.
		cause := errors.New("gone")
		cctx, ccancel := context.WithCancelCause(bg)
		done := make(chan error)
		go func() { done <- l.WaitN(cctx, "a", 2) }()
		time.Sleep(100 * time.Millisecond)
		ccancel(cause)
		err = <-done
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, cause)
		time.Sleep(900 * time.Millisecond) // one token refilled since the last wait
		require.True(t, l.Allow("a"), "the cancelled tokens are back")
		require.False(t, l.Allow("a"))

		st := l.Stats()
		assert.Equal(t, uint64(3+1), st.Allowed)
		assert.Equal(t, uint64(3+1), st.Denied)
	})
}

func TestKeyedLimiterStatsAddUpUnderContention(t *testing.T) {
	l := NewKeyedLimiter[int](1000, 3, MaxKeys(64))
	const goroutines, calls = 8, 3000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				l.AllowN((g*calls+i)%97, 1+i%3)
			}
		})
	}
	wg.Wait()
	st := l.Stats()
	assert.Equal(t, uint64(goroutines*calls), st.Allowed+st.Denied+st.Refused)
	assert.LessOrEqual(t, st.Keys, 64)
	assert.Equal(t, l.Len(), st.Keys)
}

func TestKeyedLimiterOneKeyAdmitsAtMostBurstPlusRateTimesT(t *testing.T) {
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("procs=", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			const rate, burst = 50_000.0, 10
			l := NewKeyedLimiter[string](rate, burst)
			spans := make([][]admissionSpan, 8)
			var wg sync.WaitGroup
			for g := range spans {
				wg.Go(func() {
					for i := range 2000 {
						from := int64(time.Since(l.base))
						if l.Allow("hot") {
							spans[g] = append(spans[g], admissionSpan{from, int64(time.Since(l.base))})
						}
						l.Allow(strconv.Itoa(i)) // other keys share the shards
					}
				})
			}
			wg.Wait()
			checkAdmissionBound(t, slices.Concat(spans...), rate, burst)
		})
	}
}

func TestKeyedLimiterExistingKeyDoesNotAllocate(t *testing.T) {
	l := NewKeyedLimiter[string](1, 1<<30)
	key := strings.Repeat("k", 20)
	l.Allow(key)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { l.Allow(key) }))
}

// floodKeys is how many unique keys TestKeyedLimiterFloodStaysBounded sends:
// 10M in a plain run, 200k under -race or -short (the race detector makes
// each call about ten times slower). CONC_FLOOD_KEYS overrides it.
func floodKeys() int {
	if s := os.Getenv("CONC_FLOOD_KEYS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	if testing.Short() {
		return 200_000
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return 200_000
			}
		}
	}
	return 10_000_000
}

func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func TestKeyedLimiterFloodStaysBoundedAndShrinks(t *testing.T) {
	// Flood keys refill in 1 ms; the victim, in an hour. Between batches the
	// fake clock moves 2 ms, so earlier flood keys become forgettable, while
	// a batch is larger than the cap, so inside a batch the limiter is full
	// of throttled keys and must refuse newcomers rather than evict.
	const maxKeys, batch = 1 << 17, 150_000
	// heapBound is the stated bound on what a full default-sized limiter
	// with string keys keeps alive: two generations of 131072 entries.
	const heapBound = 40 << 20
	total := floodKeys()
	synctest.Test(t, func(t *testing.T) {
		before := heapAlloc()
		l := NewKeyedLimiter[string](1000, 1, MaxKeys(maxKeys), PerKey(func(k string) (float64, int) {
			if k == "victim" {
				return 1.0 / 3600, 1
			}
			return 1000, 1
		}))
		require.True(t, l.Allow("victim"))
		buf := make([]byte, 0, 32)
		var peak int64
		for i := range total {
			buf = strconv.AppendInt(append(buf[:0], "client-"...), int64(i), 10)
			l.Allow(string(buf))
			if i%batch == batch-1 {
				require.LessOrEqual(t, l.Len(), maxKeys)
				require.False(t, l.Allow("victim"), "the throttled key stays throttled")
				if (i/batch)%8 == 0 {
					peak = max(peak, heapAlloc())
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		require.LessOrEqual(t, l.Len(), maxKeys)
		require.False(t, l.Allow("victim"))
		end := heapAlloc()
		peak = max(peak, end)
		st := l.Stats()
		t.Logf("flood of %d keys: Len %d (cap %d), live heap above the start: %.1f MiB at the end, %.1f MiB at the highest sample; stats %+v",
			total, st.Keys, maxKeys, float64(end-before)/(1<<20), float64(peak-before)/(1<<20), st)
		assert.Less(t, peak-before, int64(heapBound))
		assert.Positive(t, st.Refused, "inside a batch the limiter was full of throttled keys")
		assert.Positive(t, st.Forgotten)
		assert.Equal(t, uint64(total+2+total/batch), st.Allowed+st.Denied+st.Refused)

		// The flood is over; ordinary traffic on a few keys goes on. The
		// old generations drain and are dropped: the heap shrinks.
		for round := range 3 {
			time.Sleep(2 * time.Second)
			for i := range 100_000 {
				l.Allow("calm-" + strconv.Itoa(round*7+i%1000))
			}
		}
		after := heapAlloc()
		t.Logf("after the flood: Len %d, heap %.1f MiB above the start", l.Len(), float64(after-before)/(1<<20))
		assert.Less(t, after-before, (end-before)/4, "memory is returned after the flood")
		require.False(t, l.Allow("victim"), "still throttled")
		runtime.KeepAlive(l)
	})
}

func TestKeyedShardSweepWalksRetiredEntriesInOrderAndCountsEachOnce(t *testing.T) {
	// Even keys are full buckets (forgotten), odd keys throttled (carried).
	// The sweep must visit slots in order, a few per call, however large
	// the retired map: ranging over a nearly empty big map from a random
	// start scanned the whole table per call at the end of a sweep.
	const n = 1000
	cfg := newLimConfig(1, 1)
	s := &keyedShard[int]{max: n, cur: make(map[int]uint32), curMin: math.MaxInt64}
	const now = int64(time.Hour)
	for k := range n {
		tat := int64(0)
		if k%2 == 1 {
			tat = 2 * now
		}
		s.insert(k, keyedEntry{tat: tat, cfg: &cfg})
	}
	s.rotate(now)

	s.sweep(now, keyedSweep)
	assert.Equal(t, uint64(1), s.forgotten, "key 0 forgotten first")
	assert.Equal(t, []int{1}, s.curK, "key 1 carried next")
	assert.Equal(t, n-2, s.oldLive)

	// A call carries key 7 before the sweep gets there; key 4, forgotten
	// by the sweep below, must not come back through a lookup.
	i, ok := s.carry(7)
	require.True(t, ok)
	assert.Equal(t, 7, s.curK[i])
	s.sweep(now, 4) // slots 2..5
	_, ok = s.carry(4)
	assert.False(t, ok, "a forgotten key is gone from both generations")
	for s.old != nil {
		s.sweep(now, keyedSweep)
	}
	assert.Equal(t, uint64(n/2), s.forgotten, "each full bucket forgotten once")
	assert.Len(t, s.cur, n/2, "each throttled key carried once")
	assert.Zero(t, s.oldLive)
	assert.Nil(t, s.oldE)
}

// MaxKeys(100) split its cap over 64 shards of 100/64 = 1 key each: the
// limiter kept at most 64 keys, and two throttled keys that hashed to the
// same shard were enough to refuse the second (Allow false, Wait
// ErrTooManyKeys) while the limiter held one key of its 100. A small cap
// now gets few enough shards for its share to be meaningful, and the
// shares add up to the cap exactly.
func TestKeyedLimiterSmallMaxKeysHoldsThatManyKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxKeys = 100
		l := NewKeyedLimiter[int](1, 1, MaxKeys(maxKeys))
		for i := range maxKeys {
			require.True(t, l.Allow(i), "key %d of %d refused", i, maxKeys)
		}
		require.Equal(t, maxKeys, l.Len())
		require.False(t, l.Allow(maxKeys), "one more key than the cap")
		st := l.Stats()
		require.Equal(t, KeyedLimiterStats{Keys: maxKeys, Allowed: maxKeys, Refused: 1}, st)
	})
}

func TestKeyedLimiterShardSharesAddUpToMaxKeys(t *testing.T) {
	for _, maxKeys := range []int{1, 3, 100, 1000, 4097, 1<<17 + 5} {
		l := NewKeyedLimiter[int](1, 1, MaxKeys(maxKeys))
		sum := 0
		for i := range l.shards {
			require.Positive(t, l.shards[i].max)
			sum += l.shards[i].max
		}
		require.Equal(t, maxKeys, sum, "MaxKeys(%d) over %d shards", maxKeys, len(l.shards))
	}
}

func TestKeyedLimiterTokensForReportsWithoutTaking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := NewKeyedLimiter[string](10, 5, PerKey(func(key string) (float64, int) {
			if key == "vip" {
				return Inf, 7
			}
			return 10, 5
		}))
		tok, rate, burst := k.TokensFor("a")
		assert.Equal(t, 5.0, tok, "an unknown key has a full bucket")
		assert.Equal(t, 10.0, rate)
		assert.Equal(t, 5, burst)
		require.True(t, k.AllowN("a", 3))
		tok, _, _ = k.TokensFor("a")
		assert.InDelta(t, 2.0, tok, 1e-9)
		tok, _, _ = k.TokensFor("a")
		assert.InDelta(t, 2.0, tok, 1e-9, "TokensFor takes nothing")
		time.Sleep(150 * time.Millisecond)
		tok, _, _ = k.TokensFor("a")
		assert.InDelta(t, 3.5, tok, 1e-9, "refilled at 10/s")
		require.True(t, k.AllowN("a", 3))
		assert.False(t, k.Allow("a"))
		tok, _, _ = k.TokensFor("a")
		assert.InDelta(t, 0.5, tok, 1e-9)

		tok, rate, burst = k.TokensFor("vip")
		assert.Equal(t, 7.0, tok)
		assert.Equal(t, Inf, rate)
		assert.Equal(t, 7, burst)

		var zero KeyedLimiter[string]
		tok, rate, burst = zero.TokensFor("a")
		assert.Zero(t, tok)
		assert.Zero(t, rate)
		assert.Zero(t, burst)
	})
}
