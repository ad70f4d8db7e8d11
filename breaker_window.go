package conc

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// This file holds the two sliding windows of the FailureRate policy. Each window belongs to one closed generation of its
// breaker and is thrown away when the breaker opens, so a window never has
// to be reset while callers write into it: late writers from an earlier
// generation write into a window nobody reads any more.

// breakerPad is the stride that keeps a word written by every call away
// from words that every call only reads. 128 rather than 64 covers the
// adjacent-line prefetcher and the lack of an alignment guarantee for
// fields inside a Go struct.
const breakerPad = 128

// A countWindow is the outcome of the last n calls, one bit per call, with
// a running count of the set (failed) bits.
//
// Calls take consecutive positions from one shared counter; the position
// modulo n names the bit that the call overwrites. The failure count is
// adjusted only by the goroutine whose atomic Or or And actually flipped a
// bit, so it always equals the number of set bits, even when two calls a
// whole window apart race for the same bit.
type countWindow struct {
	_    [breakerPad]byte
	next atomic.Uint64 // calls recorded; the only word written by every call
	_    [breakerPad - 8]byte

	failures atomic.Int64 // set bits in bits
	n        uint32
	magic    uint64 // fastmod reciprocal of n: a multiply instead of a divide
	bits     []atomic.Uint64
}

func newCountWindow(n int) *countWindow {
	return &countWindow{
		n:     uint32(n),
		magic: ^uint64(0)/uint64(n) + 1,
		bits:  make([]atomic.Uint64, (n+63)/64),
	}
}

// record stores one outcome and returns how many calls and failures the
// window now holds.
func (w *countWindow) record(failed bool) (calls, failures int) {
	// A success into a full window without failures changes nothing worth
	// keeping: a zero replaces a zero, and when every slot is zero it does
	// not matter which slot the next failure lands in. Skipping it keeps a
	// healthy breaker's window read-only, so two cores do not fight over
	// the position counter. (A failure racing with this check is simply
	// ordered after the success.)
	if !failed && w.clean() {
		return int(w.n), 0
	}
	i := w.next.Add(1)
	// Lemire's fastmod: (i-1) mod n without a divide instruction. The
	// position is taken modulo 2^32 first; at the wrap, after four billion
	// calls, the sequence of positions jumps once, which only reorders
	// which old outcome is overwritten next.
	hi, _ := bits.Mul64(w.magic*uint64(uint32(i-1)), uint64(w.n))
	word, mask := &w.bits[hi>>6], uint64(1)<<(hi&63)
	// Load before the read-modify-write: in a healthy service the bit is
	// already clear, and a plain load keeps the cache line shared.
	if failed {
		if word.Load()&mask == 0 && word.Or(mask)&mask == 0 {
			w.failures.Add(1)
		}
	} else if word.Load()&mask != 0 && word.And(^mask)&mask != 0 {
		w.failures.Add(-1)
	}
	return int(min(i, uint64(w.n))), int(w.failures.Load())
}

// clean reports whether the window is full and holds no failure, so that a
// success need not be recorded. Two loads of words that only change when
// something fails.
func (w *countWindow) clean() bool {
	return w.failures.Load() == 0 && w.next.Load() >= uint64(w.n)
}

// counts reports the window's calls and failures for Stats.
func (w *countWindow) counts() (calls, failures int) {
	return int(min(w.next.Load(), uint64(w.n))), int(w.failures.Load())
}

// A timeWindow counts the calls of the last span in buckets of span/len
// nanoseconds each. A bucket is stamped with the number of the interval it
// counts (now / width); a call that finds a stale stamp resets the bucket,
// under a mutex so that two goroutines do not both reset it and lose the
// other's counts.
//
// A call that read the stamp just before a reset may add its outcome to the
// new interval instead of the old one. That needs the goroutine to stall
// for a whole bucket width between two instructions, and only moves one
// outcome by one bucket, so the window does not pay a lock per call for it.
type timeWindow struct {
	width   int64 // nanoseconds per bucket
	mu      sync.Mutex
	buckets []timeBucket
}

type timeBucket struct {
	stamp    atomic.Int64 // interval counted, -1 for none yet
	calls    atomic.Int64
	failures atomic.Int64
	_        [breakerPad - 24]byte
}

func newTimeWindow(span int64, n int) *timeWindow {
	w := &timeWindow{width: span / int64(n), buckets: make([]timeBucket, n)}
	for i := range w.buckets {
		w.buckets[i].stamp.Store(-1)
	}
	return w
}

// record stores one outcome at time now (nanoseconds since the breaker's
// base) and, for a failure, returns the window's calls and failures.
func (w *timeWindow) record(now int64, failed bool) (calls, failures int) {
	k := now / w.width
	b := &w.buckets[k%int64(len(w.buckets))]
	if b.stamp.Load() != k {
		w.roll(b, k)
	}
	b.calls.Add(1)
	if !failed {
		return 0, 0
	}
	b.failures.Add(1)
	return w.counts(now)
}

// roll claims bucket b for interval k. A bucket already stamped with a
// later interval is left alone: the caller is a straggler, and its outcome
// is counted in the newer interval.
func (w *timeWindow) roll(b *timeBucket, k int64) {
	w.mu.Lock()
	if b.stamp.Load() < k {
		b.calls.Store(0)
		b.failures.Store(0)
		b.stamp.Store(k) // after the reset, so no one adds to stale counts
	}
	w.mu.Unlock()
}

// counts sums the buckets whose interval lies within the window at now.
func (w *timeWindow) counts(now int64) (calls, failures int) {
	k := now / w.width
	oldest := k - int64(len(w.buckets)) + 1
	for i := range w.buckets {
		b := &w.buckets[i]
		if s := b.stamp.Load(); s >= oldest && s <= k {
			calls += int(b.calls.Load())
			failures += int(b.failures.Load())
		}
	}
	return calls, failures
}
