package conc

import (
	"math"
	"sync"
)

// The shards of a KeyedLimiter and their two generations of maps. Everything
// here runs with the shard's mutex held.
//
// Why two generations: a Go map never gives memory back when entries are
// deleted, so a limiter that only deleted forgotten keys would keep the
// footprint of its worst flood forever. Instead the current map is retired
// now and then (rotate) and replaced by an empty one; calls then move the
// retired entries out a few at a time (sweep) — forgetting the full
// buckets, carrying the throttled ones over — and the retired map is dropped
// when every entry has left, which is the moment its memory can be
// collected. Each entry is moved at most once per generation, so the cost
// per call is constant.
//
// The sweep walks the retired entries' slice, not the retired map: ranging
// over a map from a random start to find the few entries left in a large,
// nearly empty map scans about capacity/live slots per entry found, so the
// last calls of a sweep after a flood each scanned the whole table under the
// shard lock (about 230 µs for 2^18 keys in one shard). A slice walked with
// a cursor visits each slot once. Entries that a call carried over first
// are marked moved (cfg nil) instead of deleted from the map, which also
// saves the deletes: the retired map is only read, then dropped whole.

// keyedShard is one lock and the keys that hash to it. It is padded to its
// own cache lines so that two shards never share one.
type keyedShard[K comparable] struct {
	mu      sync.Mutex
	now     int64 // latest clock reading used here: the clock never runs back
	rotated int64 // when cur became the current generation
	max     int   // keys this shard may hold
	// cur and old map a key to its entry's index in curE and oldE. The
	// entries live in a slice rather than in the map so that a call for a
	// known key updates its bucket in place: one map lookup instead of a
	// lookup and an assignment (which hashes the key again). A generation
	// never deletes from its current map, so curE is append-only; old
	// entries leave only from the old generation, whose slice is dropped
	// with its map.
	cur, old   map[K]uint32
	curE, oldE []keyedEntry
	// curK and oldK hold each entry's key at the same index, so that the
	// sweep can walk a slice instead of a map; oldLive counts the entries
	// of old not moved yet, and oldNext is where the sweep goes on.
	curK, oldK []K
	oldLive    int
	oldNext    int
	// curMin and oldMin are lower bounds of the bucket words in cur and
	// old (finite rates only): no key of a generation can be full before
	// its bound, so a shard at its cap refuses a new key without any work
	// until then. Words only grow (Cancel's decrease is noted too), so a
	// bound stays valid until the generation is rebuilt, which refreshes it.
	curMin, oldMin int64

	allowed, denied, refused, forgotten uint64
	_                                   [64]byte
}

// keyedEntry is one key's bucket word (see Limiter) and its configuration.
type keyedEntry struct {
	tat int64
	cfg *limConfig
}

// tick returns the shard's clock: t, or the latest reading already used if
// t is older. s.mu must be held.
func (s *keyedShard[K]) tick(t int64) int64 {
	if t < s.now {
		return s.now
	}
	s.now = t
	return t
}

// carry finds key in either generation, moving it to the current one, and
// returns its index in curE. s.mu must be held.
func (s *keyedShard[K]) carry(key K) (uint32, bool) {
	i, ok := s.cur[key]
	if ok || s.old == nil {
		return i, ok
	}
	if i, ok = s.old[key]; ok && s.oldE[i].cfg != nil {
		e := s.oldE[i]
		s.oldE[i].cfg = nil // moved: the sweep skips it
		s.oldLive--
		return s.insert(key, e), true
	}
	return 0, false
}

// insert puts an entry into the current generation, keeps curMin a lower
// bound of its words and returns its index. s.mu must be held.
func (s *keyedShard[K]) insert(key K, e keyedEntry) uint32 {
	i := uint32(len(s.curE))
	s.cur[key] = i
	s.curE = append(s.curE, e)
	s.curK = append(s.curK, key)
	s.note(e)
	return i
}

// note keeps curMin a lower bound of the current generation's words after
// an entry was added or moved back. s.mu must be held.
func (s *keyedShard[K]) note(e keyedEntry) {
	if e.cfg.mode == limFinite {
		s.curMin = min(s.curMin, e.tat)
	}
}

// maintain is the incremental cleanup every call pays for: a few entries
// out of the old generation while there is one, else a rotation once the
// current generation is old enough and may hold a full bucket (t has passed
// its lower bound). A set of keys that all stay throttled is therefore not
// rotated at all, so their calls never pay for rebuilding a map.
// s.mu must be held.
func (s *keyedShard[K]) maintain(t int64) {
	if s.old != nil {
		s.sweep(t, keyedSweep)
	} else if t >= s.curMin && t-s.rotated >= keyedRotateEvery && len(s.cur) > 0 {
		if s.sampleFull(t) {
			s.rotate(t)
		} else {
			s.rotated = t // nothing to gain yet; look again in a while
		}
	}
}

// sampleFull reports whether a few entries of the current generation, taken
// where map iteration happens to start, include a full bucket. curMin is a
// bound from the time entries were written, so it can be far below every
// word of a set of busy keys; the sample avoids rebuilding a map that
// would forget nothing.
func (s *keyedShard[K]) sampleFull(t int64) bool {
	n := 8
	for _, i := range s.cur {
		if e := &s.curE[i]; e.cfg.mode == limFinite && e.tat <= t {
			return true
		}
		if n--; n == 0 {
			break
		}
	}
	return false
}

// rotate retires the current generation. The new map starts small: sizing
// it like the old one would keep a flood's worth of memory alive.
func (s *keyedShard[K]) rotate(t int64) {
	s.old, s.cur, s.rotated = s.cur, make(map[K]uint32), t
	s.oldE, s.curE = s.curE, nil
	s.oldK, s.curK = s.curK, nil
	s.oldLive, s.oldNext = len(s.old), 0
	s.oldMin, s.curMin = s.curMin, math.MaxInt64
}

// sweep visits up to budget slots of the old generation, in slice order:
// a full bucket is forgotten, any other is carried to the current
// generation, and a slot already carried over by a call is passed. The
// work per call is therefore at most budget slots, whatever the size of
// the old map. The old generation is dropped once no entry is left in it.
// s.mu must be held.
func (s *keyedShard[K]) sweep(t int64, budget int) {
	for ; budget > 0 && s.oldLive > 0 && s.oldNext < len(s.oldE); budget-- {
		i := s.oldNext
		s.oldNext++
		e := s.oldE[i]
		if e.cfg == nil {
			continue // carried over already
		}
		// Marked moved either way, so that carry does not find a
		// forgotten key in the old map and count it out twice.
		s.oldE[i].cfg = nil
		s.oldLive--
		if e.cfg.mode == limInf || e.tat <= e.cfg.bucketNow(t) {
			s.forgotten++
		} else {
			s.insert(s.oldK[i], e)
		}
	}
	if s.oldLive == 0 {
		s.old, s.oldE, s.oldK, s.oldMin = nil, nil, nil, math.MaxInt64
	}
}

// room reports whether the shard can take one more key, forgetting full
// buckets to make room when it is at its cap. The work is bounded: a few map
// moves at most, and none at all while the generations' lower bounds say no
// bucket can be full yet, so under a flood in which every key is throttled a
// refusal costs about as much as an admission. A full bucket that the bounded
// sweep has not reached yet can cost a newcomer a refusal; the sweep reaches
// it within a few calls. s.mu must be held.
func (s *keyedShard[K]) room(t int64) bool {
	if len(s.cur)+s.oldLive < s.max {
		return true
	}
	if t < min(s.curMin, s.oldMin) {
		return false // no bucket here can be full yet
	}
	for range 2 {
		if len(s.cur)+s.oldLive < s.max {
			return true
		}
		if s.old == nil {
			s.rotate(t)
		}
		s.sweep(t, keyedRoom)
	}
	return len(s.cur)+s.oldLive < s.max
}

// store records next, the bucket word of key's entry e after an admitted
// event (i and found as lookup returned them), with the rules for a new
// key: nothing is stored while its bucket is still full after the event,
// and a shard without room refuses it (false, ErrTooManyKeys) rather than
// evicting a throttled key. s.mu must be held.
func (s *keyedShard[K]) store(key K, i uint32, found bool, e keyedEntry, next, now, t int64) bool {
	switch {
	case found:
		s.curE[i].tat = next
	case e.cfg.mode == limInf || next <= now:
		// Still full after the event: nothing worth remembering.
	case !s.room(t):
		return false
	default:
		s.insert(key, keyedEntry{tat: next, cfg: e.cfg})
	}
	return true
}
