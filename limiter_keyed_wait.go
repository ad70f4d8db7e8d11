package conc

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"time"
)

// ErrTooManyKeys is returned by KeyedLimiter.Wait and WaitN for a key the
// limiter cannot take on: it is at its MaxKeys cap and every key it holds is
// still throttled (see KeyedLimiter). Allow reports the same case as false.
var ErrTooManyKeys = errors.New("conc: keyed limiter is full of throttled keys")

// Wait is WaitN(ctx, key, 1).
func (k *KeyedLimiter[K]) Wait(ctx context.Context, key K) error {
	return k.WaitN(ctx, key, 1)
}

// WaitN blocks until n of key's tokens are available, then takes them, with
// Limiter.WaitN's rules: it fails at once when ctx is already done, when n
// exceeds key's burst (unless its rate is Inf), and when the tokens would
// arrive after ctx's deadline (an error matching context.DeadlineExceeded);
// when ctx is done during the wait the tokens are given back and the error
// matches ctx.Err() and carries context.Cause(ctx). A new key that the full
// limiter cannot take gives ErrTooManyKeys; a panic in the PerKey function
// gives a *PanicError. Each call that has to wait uses one timer; no lock is
// held while waiting.
func (k *KeyedLimiter[K]) WaitN(ctx context.Context, key K, n int) error {
	checkCtx(ctx)
	if len(k.shards) == 0 {
		if n > 0 {
			return limiterBurstErr(n, 0)
		}
		return ctxErr(ctx)
	}
	n = max(n, 0)
	s := &k.shards[maphash.Comparable(k.seed, key)&k.mask]
	// The order of the checks follows Limiter.WaitN, except that a done
	// context is noticed before the burst: the burst of a new key is only
	// known after the PerKey function ran, and there is no point running
	// it for a caller that has already gone.
	if ctx.Err() != nil {
		s.count(&s.denied)
		return ctxErr(ctx)
	}
	// The deadline in the limiter's own clock, so that "would the tokens
	// come in time" is one comparison under the lock, with no second clock
	// reading.
	deadline := int64(math.MaxInt64)
	if d, ok := ctx.Deadline(); ok {
		deadline = int64(d.Sub(k.base))
	}
	t, act, why, err := k.reserve(s, key, n, deadline)
	switch {
	case err != nil:
		return err
	case why == limNever && deadline == math.MaxInt64:
		// The tokens never come (rate 0): block until ctx is done, as
		// x/time/rate does.
		<-ctx.Done()
		s.count(&s.denied)
		return ctxErr(ctx)
	case why != limGranted:
		return limiterDeadlineErr(n)
	case act <= t:
		return nil
	}
	// The tokens are reserved; wait for their time without any lock. The
	// call is counted when it ends, so that a cancelled wait is counted
	// once, as denied.
	timer := time.NewTimer(time.Duration(act - t))
	defer timer.Stop()
	select {
	case <-timer.C:
		s.count(&s.allowed)
		return nil
	case <-ctx.Done():
		k.cancel(s, key, n, act)
		return ctxErr(ctx)
	}
}

// reserve is WaitN's reservation of n of key's tokens, by deadline, under
// the shard lock: the GCRA step of limConfig.reserve on the key's word,
// where a Limiter publishes it with a CAS. It returns the clock reading t,
// the time to act, and why not; err when the call fails whatever the
// context (a panic in PerKey, n beyond what key's bucket holds,
// ErrTooManyKeys). It counts the call in Stats unless WaitN still has to
// wait: for the time to act, or for ctx when the tokens never come.
func (k *KeyedLimiter[K]) reserve(s *keyedShard[K], key K, n int, deadline int64) (t, act int64, why int, err error) {
	t = int64(time.Since(k.base))
	s.mu.Lock()
	defer s.mu.Unlock()
	t = s.tick(t)
	var e keyedEntry
	var i uint32
	var found bool
	if e, i, found, t, err = k.lookup(s, key, t, true); err != nil {
		s.denied++
		return t, 0, limGranted, err
	}
	// From here on the key's own configuration decides: a PerKey rate of
	// Inf admits at once and remembers nothing, and the burst that bounds n
	// is the key's, not the limiter's.
	c := e.cfg
	if c.mode == limInf {
		s.allowed++
		return t, t, limGranted, nil
	}
	next, act, why := c.reserve(e.tat, t, n, deadline)
	switch {
	case why == limTooMany:
		s.denied++
		return t, 0, why, c.tooManyErr(n)
	case why == limNever && deadline == math.MaxInt64:
		return t, 0, why, nil // counted once ctx is done
	case why != limGranted:
		s.denied++
		return t, 0, why, nil
	}
	// Commit, with AllowN's rules for a new key.
	if !s.store(key, i, found, e, next, c.bucketNow(t), t) {
		s.refused++
		return t, 0, limGranted, ErrTooManyKeys
	}
	s.maintain(t)
	if act <= t {
		s.allowed++
	}
	return t, act, limGranted, nil
}

// cancel gives back the n tokens of a wait for key that would have acted at
// act, with Reservation.Cancel's rules, and counts the call as denied.
func (k *KeyedLimiter[K]) cancel(s *keyedShard[K], key K, n int, act int64) {
	t := int64(time.Since(k.base))
	s.mu.Lock()
	defer s.mu.Unlock()
	t = s.tick(t)
	s.denied++
	// A throttled key is never forgotten, so the entry is still here while
	// its reservation is in the future; if its time has come, the tokens
	// are spent, exactly as for Reservation.Cancel. The entry may have moved
	// to the current generation meanwhile: carry finds it either way.
	i, found := s.carry(key)
	if !found || act < t {
		return
	}
	e := &s.curE[i]
	iv := e.cfg.iv
	if e.cfg.mode != limFinite {
		iv = 0
	}
	if next, ok := e.cfg.giveBack(e.tat, e.cfg.bucketNow(t), n, act, iv); ok {
		e.tat = next
		s.note(*e) // the word moved back: keep curMin a lower bound
	}
}

// count adds one to a counter of s under its lock. The counters are plain
// integers guarded by the shard mutex that the hot path holds anyway, so
// counting costs AllowN nothing; the paths that count outside the hot path
// take the lock just for it.
func (s *keyedShard[K]) count(c *uint64) {
	s.mu.Lock()
	*c++
	s.mu.Unlock()
}

// limiterDeadlineErr is the error of a wait refused because its tokens would
// come after the context's deadline. It matches context.DeadlineExceeded, as
// the deadline passing would, without making the caller wait for it (where
// x/time/rate returns an error that matches nothing).
func limiterDeadlineErr(n int) error {
	return fmt.Errorf("conc: limiter WaitN(n=%d) would pass the context deadline: %w", n, context.DeadlineExceeded)
}
