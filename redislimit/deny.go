package redislimit

import (
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// denyCache remembers, per key, until when Redis said the key has no token.
// Until then a call is refused locally. The bound is safe in both
// directions: a key's bucket word in Redis only moves later (other replicas
// can only spend tokens), so the key cannot become admissible before the
// time Redis gave, and the time is taken from the start of the round trip,
// before the server read its clock, so it is never later than Redis's.
//
// The cache holds at most maxKeys entries in 32 shards; a shard that is
// full first forgets a few expired entries and, if none, does not take the
// new one (the call then simply goes to Redis next time).
type denyCache struct {
	seed   maphash.Seed
	base   time.Time
	shards [denyShards]denyShard
	max    int // per shard
}

const (
	denyShards = 32
	denyScan   = 64 // entries a full shard examines for expired ones
)

type denyShard struct {
	mu sync.Mutex
	m  map[string]denyEntry
	_  [48]byte
}

// denyEntry times are nanoseconds since the cache's base (monotonic).
type denyEntry struct {
	until int64 // the first moment one token may be there
	reset int64 // the moment the bucket is full again
}

func newDenyCache(maxKeys int) *denyCache {
	c := &denyCache{seed: maphash.MakeSeed(), base: time.Now(), max: max(1, maxKeys/denyShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]denyEntry)
	}
	return c
}

func (c *denyCache) shard(key string) *denyShard {
	return &c.shards[maphash.String(c.seed, key)%denyShards]
}

// check returns a refusal for n tokens of key if the cache knows that key
// has no token at now; iv is the emission interval.
func (c *denyCache) check(key string, n int, now time.Time, iv time.Duration) (Decision, bool) {
	t := int64(now.Sub(c.base))
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.m[key]
	if ok && t >= e.until {
		delete(s.m, key)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return Decision{}, false
	}
	return Decision{
		RetryAfter: time.Duration(e.until-t) + time.Duration(n-1)*iv,
		ResetAfter: time.Duration(max(0, e.reset-t)),
		Path:       PathCache,
	}, true
}

// note records a refusal that Redis gave for a call that started at start:
// the bucket is resetUS µs from full, so one token comes in
// resetUS - burst*ivUS + ivUS µs (rounded down, to stay early).
func (c *denyCache) note(key string, start time.Time, r reply, ivUS float64, burst int) {
	oneUS := math.Floor(float64(r.resetUS) - float64(burst)*ivUS + ivUS)
	if oneUS <= 0 {
		return // a smaller call could pass now: nothing to cache
	}
	t := int64(start.Sub(c.base))
	e := denyEntry{until: t + int64(oneUS)*1e3, reset: t + r.resetUS*1e3}
	s := c.shard(key)
	s.mu.Lock()
	if _, ok := s.m[key]; !ok && len(s.m) >= c.max {
		now := int64(time.Since(c.base))
		n := denyScan
		for k, old := range s.m {
			if old.until <= now {
				delete(s.m, k)
			}
			if n--; n == 0 {
				break
			}
		}
		if len(s.m) >= c.max {
			s.mu.Unlock()
			return
		}
	}
	s.m[key] = e
	s.mu.Unlock()
}

func (c *denyCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
