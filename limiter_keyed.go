package conc

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// A KeyedLimiter keeps one token bucket per key (a client address, a user,
// a tenant) with the meaning of Limiter: every key may do perSecond events a
// second on average and bursts of up to burst, independently of the others.
//
// Keys live in shards, each a mutex and two generations of maps, so calls for
// different keys seldom meet on one lock, and the memory stays bounded:
//
//   - A key whose bucket is full again is indistinguishable from a key never
//     seen, so it may be forgotten; that is the only way a key leaves.
//   - A key whose bucket is not full is never forgotten, whatever else
//     happens: forgetting it would hand it a fresh bucket, and an attacker
//     could reset its own limit by flooding the limiter with new keys.
//   - At most MaxKeys keys are kept (default 131072). When a shard is at its
//     share of the cap and the incremental cleanup finds no full bucket to
//     forget, a new key is refused: Allow returns false, Wait returns
//     ErrTooManyKeys, and Stats counts it under Refused. Under a flood of
//     fresh keys this sheds the newcomers and keeps every throttled key
//     throttled, which is the safe side for a limiter.
//
// There is no sweeper goroutine. Cleanup is incremental, on the call path:
// when a shard is full, or at most once a second when a sample of its keys
// shows a full bucket, a shard retires its current map to "old" and starts
// a new one; every call
// on the shard then moves a few entries out of the old map (forgetting the
// full ones, carrying the throttled ones over), and a key met in the old map
// is carried over too. When the old map is empty it is dropped, which is what
// returns its memory: Go maps never shrink on delete, so only replacing them
// lets the heap shrink after a flood.
//
// Allow never blocks; Wait blocks until the key's tokens come, and waiters
// of one key are served in the order they called. Calls for a key already
// known take one shard lock, do not allocate and read the clock once. A
// busy set of keys that stay throttled is never rotated, so it pays for no
// map rebuilds. The zero value denies every event (as a Limiter with
// rate 0 and burst 0); make one with NewKeyedLimiter. A KeyedLimiter is safe
// for concurrent use and must not be copied after first use.
type KeyedLimiter[K comparable] struct {
	shards []keyedShard[K]
	mask   uint64
	seed   maphash.Seed
	base   time.Time
	def    *limConfig

	// perKey, when set, gives a new key its own rate and burst. It runs
	// outside every shard lock; cfgs caches its distinct answers so that
	// entries share one config each.
	perKey func(K) (float64, int)
	cfgMu  sync.Mutex
	cfgs   map[[2]uint64]*limConfig
}

const (
	keyedDefaultMaxKeys = 1 << 17
	keyedMaxShards      = 64
	// keyedMinShare is the smallest share of MaxKeys a shard is given
	// while there is more than one shard (see NewKeyedLimiter).
	keyedMinShare = 1024
	// keyedRotateEvery is how long a generation lasts before it is retired
	// when the shard is not full; it bounds how long forgotten-to-be keys
	// keep memory, and the allocation of a fresh map per shard each time.
	keyedRotateEvery = int64(time.Second)
	// keyedSweep is how many old entries a call moves out; keyedRoom is how
	// many a new key at the cap may examine before it is refused.
	keyedSweep = 2
	keyedRoom  = 16
)

// A KeyedOption configures a KeyedLimiter.
type KeyedOption interface{ applyKeyed(*keyedOptions) }

type keyedOptions struct {
	maxKeys int
	perKey  any
}

type keyedOptionFunc func(*keyedOptions)

func (f keyedOptionFunc) applyKeyed(o *keyedOptions) { f(o) }

// MaxKeys caps the number of keys a KeyedLimiter remembers (default 131072);
// it panics with a conc: message when n < 1. The cap is split evenly among
// the shards, so a shard may refuse a new key slightly before the whole
// limiter holds n keys; every shard gets at least 1024 of them, so a cap
// below 2048 is kept by a single shard and is exact.
func MaxKeys(n int) KeyedOption {
	checkPositive("MaxKeys", n)
	return keyedOptionFunc(func(o *keyedOptions) { o.maxKeys = n })
}

// PerKey gives each new key the rate and burst that fn returns for it,
// instead of the limiter's own (premium clients, an allow-list with Inf, a
// block-list with rate 0 and burst 0). fn is called whenever a key is not
// remembered: a new key, a key forgotten after its bucket filled up, and on
// every call of a key that is never worth remembering (rate Inf, or a bucket
// still full after the call), so keep it cheap. It runs outside every lock,
// so it may call back into the limiter; a panic in it
// reaches the caller of Allow, and Wait returns it as a *PanicError. Burst 0
// with a finite rate is allowed here: it blocks the key. fn's key type must be
// the limiter's, or NewKeyedLimiter panics.
func PerKey[K comparable](fn func(key K) (perSecond float64, burst int)) KeyedOption {
	checkFunc("PerKey function", fn == nil)
	return keyedOptionFunc(func(o *keyedOptions) { o.perKey = fn })
}

// NewKeyedLimiter returns a KeyedLimiter that gives every key perSecond
// events a second and bursts of burst, with NewLimiter's rules: Inf admits
// everything, 0 makes the burst a budget that never refills, and it panics
// with a conc: message on a NaN or negative rate, a negative burst, burst 0
// with a finite non-zero rate, or a nil option.
func NewKeyedLimiter[K comparable](perSecond float64, burst int, opts ...KeyedOption) *KeyedLimiter[K] {
	checkLimiterRate(perSecond)
	checkNonNegative("limiter burst", burst)
	if burst == 0 && perSecond > 0 && perSecond < Inf {
		panic(fmt.Sprintf("conc: limiter burst must be at least 1 with a finite rate, got 0 (rate %v)", perSecond))
	}
	o := keyedOptions{maxKeys: keyedDefaultMaxKeys}
	for i, opt := range opts {
		checkOption("NewKeyedLimiter", i, opt == nil)
		opt.applyKeyed(&o)
	}
	def := newLimConfig(perSecond, burst)
	k := &KeyedLimiter[K]{seed: maphash.MakeSeed(), base: time.Now(), def: &def}
	if o.perKey != nil {
		fn, ok := o.perKey.(func(K) (float64, int))
		if !ok {
			panic(fmt.Sprintf("conc: PerKey function is a %T, the limiter's keys are %T", o.perKey, *new(K)))
		}
		k.perKey, k.cfgs = fn, make(map[[2]uint64]*limConfig)
	}
	// Each shard refuses new keys at its share of the cap, and keys do not
	// spread evenly: with 64 shards for a cap of 100 (a share of 1), two
	// throttled keys in one shard were enough to refuse the second while
	// the limiter held one key. A small cap therefore gets fewer shards,
	// so that every share is large enough for the imbalance between
	// shards to stay slight, and the remainder is spread so that the
	// shares add up to the cap.
	n := keyedMaxShards
	for n > 1 && o.maxKeys/n < keyedMinShare {
		n /= 2
	}
	k.shards = make([]keyedShard[K], n)
	k.mask = uint64(n - 1)
	for i := range k.shards {
		share := o.maxKeys / n
		if i < o.maxKeys%n {
			share++
		}
		k.shards[i].max = min(share, math.MaxInt32) // entry indexes are uint32
		k.shards[i].cur = make(map[K]uint32)
		k.shards[i].curMin, k.shards[i].oldMin = math.MaxInt64, math.MaxInt64
	}
	return k
}

// Allow is AllowN(key, 1).
func (k *KeyedLimiter[K]) Allow(key K) bool {
	return k.AllowN(key, 1)
}

// AllowN reports whether n events may happen now for key, and takes n of its
// tokens if so. It never blocks; for a key already known it does not
// allocate. It returns false when key's bucket lacks n tokens, when n exceeds
// key's burst, and when key is new and the limiter is full of throttled keys
// (see KeyedLimiter). A negative n counts as 0.
func (k *KeyedLimiter[K]) AllowN(key K, n int) bool {
	if len(k.shards) == 0 {
		return n <= 0
	}
	n = max(n, 0)
	s := &k.shards[maphash.Comparable(k.seed, key)&k.mask]
	// The clock is read before the lock, to keep it out of the critical
	// section; s.tick then makes the shard's time monotonic, so a reading
	// that lost the race for the lock is replaced by a later one and no
	// bucket is ever credited twice for the same interval.
	t := int64(time.Since(k.base))
	s.mu.Lock()
	t = s.tick(t)
	i, found := s.cur[key]
	if !found {
		return k.allowSlow(s, key, n, t)
	}
	e := &s.curE[i]
	next, ok := e.cfg.take(e.tat, e.cfg.bucketNow(t), n)
	if ok {
		e.tat = next // in place: no second map operation
		s.allowed++
	} else {
		s.denied++
	}
	s.maintain(t)
	s.mu.Unlock()
	return ok
}

// allowSlow is AllowN for a key not in s.cur: in the old generation, or new.
// s.mu is held on entry and released on return.
func (k *KeyedLimiter[K]) allowSlow(s *keyedShard[K], key K, n int, t int64) bool {
	e, i, found, t, _ := k.lookup(s, key, t, false)
	now := e.cfg.bucketNow(t)
	next, ok := e.cfg.take(e.tat, now, n)
	switch {
	case !ok:
		s.denied++
	case !s.store(key, i, found, e, next, now, t):
		s.refused++
		ok = false
	default:
		s.allowed++
	}
	s.maintain(t)
	s.mu.Unlock()
	return ok
}

// lookup returns key's entry in s: its index when s holds it (carried into
// the current generation), else a new entry with a full bucket and the
// key's configuration. s.mu is held on entry and on return, and t is the
// shard's clock reading, ticked again if the lock was let go. A PerKey
// function runs outside the lock, since it is user code, and the key is
// looked up again afterwards, as it may have arrived meanwhile. With
// protected, a panic in it is returned as a *PanicError (WaitN's error);
// without, it reaches the caller with the lock released (Allow has no
// error to report it in).
func (k *KeyedLimiter[K]) lookup(s *keyedShard[K], key K, t int64, protected bool) (e keyedEntry, i uint32, found bool, now int64, err error) {
	if i, found = s.carry(key); found {
		return s.curE[i], i, true, t, nil
	}
	e = keyedEntry{tat: math.MinInt64, cfg: k.def}
	if k.perKey == nil {
		return e, 0, false, t, nil
	}
	s.mu.Unlock()
	if protected {
		err = protect(func() error { e.cfg = k.configFor(key); return nil })
	} else {
		e.cfg = k.configFor(key)
	}
	s.mu.Lock()
	t = s.tick(t)
	if err == nil {
		if i, found = s.carry(key); found {
			e = s.curE[i]
		}
	}
	return e, i, found, t, err
}

// configFor returns the configuration of a new key: the limiter's own, or
// what PerKey's function says, shared through a small cache.
func (k *KeyedLimiter[K]) configFor(key K) *limConfig {
	if k.perKey == nil {
		return k.def
	}
	perSecond, burst := k.perKey(key)
	if math.IsNaN(perSecond) || perSecond < 0 || burst < 0 {
		panic(fmt.Sprintf("conc: PerKey returned rate %v and burst %d for key %v", perSecond, burst, key))
	}
	if perSecond == k.def.limit && burst == k.def.burst {
		return k.def
	}
	id := [2]uint64{math.Float64bits(perSecond), uint64(burst)}
	k.cfgMu.Lock()
	defer k.cfgMu.Unlock()
	c := k.cfgs[id]
	if c == nil {
		cc := newLimConfig(perSecond, burst)
		c = &cc
		if len(k.cfgs) < 1024 { // bounded: a function of the key could be unbounded
			k.cfgs[id] = c
		}
	}
	return c
}

// TokensFor returns how many tokens key's bucket holds now, with the rate
// and burst that apply to key (the limiter's own, or PerKey's answer), and
// takes none. It is what an HTTP layer needs for remaining-quota and
// retry-after headers next to AllowN; the two calls are not one atomic step,
// so under concurrent calls for the same key the count can be stale by the
// time it is read. A key the limiter does not remember has a full bucket. The
// count is negative while waiters hold reservations. It never blocks and does
// not allocate for a remembered key; for another key it calls the PerKey
// function, whose panic reaches the caller.
func (k *KeyedLimiter[K]) TokensFor(key K) (tokens, perSecond float64, burst int) {
	if len(k.shards) == 0 {
		return 0, 0, 0
	}
	s := &k.shards[maphash.Comparable(k.seed, key)&k.mask]
	t := int64(time.Since(k.base))
	s.mu.Lock()
	t = s.tick(t)
	var e keyedEntry
	if i, ok := s.cur[key]; ok {
		e = s.curE[i]
	} else if i, ok := s.old[key]; ok && s.oldE[i].cfg != nil {
		e = s.oldE[i]
	}
	s.mu.Unlock()
	if e.cfg == nil {
		c := k.configFor(key)
		if c.mode == limInf {
			return float64(c.burst), c.limit, c.burst
		}
		return float64(c.maxN), c.limit, c.burst
	}
	return e.cfg.tokens(e.tat, e.cfg.bucketNow(t)), e.cfg.limit, e.cfg.burst
}

// Len returns the number of keys the limiter remembers now: at most MaxKeys.
func (k *KeyedLimiter[K]) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.cur) + s.oldLive
		s.mu.Unlock()
	}
	return n
}

// KeyedLimiterStats is a snapshot of a KeyedLimiter's counters. Every call of
// Allow, AllowN, Wait and WaitN is counted once, when it returns, under
// exactly one of Allowed, Denied and Refused.
type KeyedLimiterStats struct {
	Keys      int    // keys remembered now (Len)
	Allowed   uint64 // calls that got their tokens
	Denied    uint64 // calls refused for lack of tokens, n over the burst, or ctx
	Refused   uint64 // calls for a new key refused because the limiter was full
	Forgotten uint64 // keys forgotten because their bucket was full again
}

// Stats returns a snapshot of the counters, shard by shard (so it is not one
// instant across shards).
func (k *KeyedLimiter[K]) Stats() KeyedLimiterStats {
	var st KeyedLimiterStats
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		st.Keys += len(s.cur) + s.oldLive
		st.Allowed += s.allowed
		st.Denied += s.denied
		st.Refused += s.refused
		st.Forgotten += s.forgotten
		s.mu.Unlock()
	}
	return st
}
