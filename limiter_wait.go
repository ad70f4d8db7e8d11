package conc

import (
	"context"
	"fmt"
	"math"
	"time"
)

// A Reservation holds tokens taken from a Limiter for an event that may
// happen after Delay. ReserveN returns it by value, so reserving does not
// allocate. The zero Reservation is not OK.
//
// A Reservation must not be used from several goroutines at once; Cancel
// needs an addressable Reservation (a variable), which is what lets it mark
// the reservation spent and make a second Cancel a no-op.
type Reservation struct {
	lim    *Limiter
	tokens int   // tokens taken; 0 when nothing is left to give back
	act    int64 // when the event may happen, ns since lim.base
	iv     int64 // ns per token at reservation time; 0 if the rate was 0 or Inf
	ok     bool
}

// limInfDuration is what Delay reports for a reservation that is not OK,
// like x/time/rate's InfDuration.
const limInfDuration = time.Duration(math.MaxInt64)

// OK reports whether the limiter granted the reservation. A reservation is
// refused when n exceeds the burst, when a rate of zero means the tokens
// would never come, or (for WaitN) when they would come after the deadline.
func (r Reservation) OK() bool { return r.ok }

// Delay returns how long the holder must wait before acting: zero when it may
// act now, math.MaxInt64 (x/time/rate's InfDuration) when the reservation is
// not OK.
func (r Reservation) Delay() time.Duration {
	if !r.ok {
		return limInfDuration
	}
	if r.iv == 0 {
		return 0 // granted at once: no clock to read
	}
	return max(0, time.Duration(r.act)-time.Since(r.lim.base))
}

// Cancel gives the reservation's tokens back, as far as other reservations
// made after it allow, with the rules of x/time/rate: nothing is returned
// once its time to act has passed, and tokens that later reservations are
// already counting on stay taken (those reservations keep their time to
// act). Calling Cancel again, or on a reservation that is not OK, does
// nothing.
func (r *Reservation) Cancel() {
	if !r.ok || r.tokens == 0 {
		return
	}
	n := r.tokens
	r.tokens = 0
	l := r.lim
	for {
		s, tat := l.load()
		if s.mode == limInf {
			return
		}
		if r.act < int64(time.Since(l.base)) {
			return // the event's time has come: its tokens are spent
		}
		next, ok := s.giveBack(tat, s.now(l.base), n, r.act, r.iv)
		if !ok {
			return
		}
		if s.tat.CompareAndSwap(tat, next) {
			return
		}
	}
}

// Reserve is ReserveN(1).
func (l *Limiter) Reserve() Reservation {
	return l.ReserveN(1)
}

// ReserveN takes n tokens now, however long the bucket needs to earn them,
// and returns a Reservation that says how long to wait before acting. It
// never blocks and does not allocate. The reservation is not OK (and nothing
// is taken) when n exceeds the burst or the rate is zero and the bucket
// lacks n tokens. A holder that will not act must Cancel, or the tokens stay
// spent.
func (l *Limiter) ReserveN(n int) Reservation {
	r, _ := l.reserveN(n, math.MaxInt64)
	l.count(r.ok)
	return r
}

// reserveN takes n tokens if they are available by deadline (ns since
// l.base); why says why not. The burst is checked here, against the state
// the reservation is made from, and not only by the caller: a SetBurst
// between the caller's check and this load would otherwise turn "n exceeds
// the burst" into "never", which WaitN treats as a zero rate and blocks on
// until ctx is done, for ever with context.Background.
func (l *Limiter) reserveN(n int, deadline int64) (r Reservation, why int) {
	n = max(n, 0)
	for {
		s, tat := l.load()
		if s == nil {
			if n == 0 {
				return Reservation{ok: true}, limGranted
			}
			return Reservation{}, limTooMany
		}
		if s.mode == limInf {
			return Reservation{lim: l, ok: true}, limGranted
		}
		// As in Allow, the clock is read after the word is loaded.
		next, act, why := s.reserve(tat, int64(time.Since(l.base)), n, deadline)
		if why != limGranted {
			return Reservation{}, why
		}
		if s.tat.CompareAndSwap(tat, next) {
			iv := s.iv
			if s.mode == limZero {
				iv = 0
			}
			return Reservation{lim: l, tokens: n, act: act, iv: iv, ok: true}, limGranted
		}
	}
}

// Wait is WaitN(ctx, 1).
func (l *Limiter) Wait(ctx context.Context) error {
	return l.WaitN(ctx, 1)
}

// WaitN blocks until n tokens are available, then takes them. It fails at
// once, taking nothing, when n exceeds the burst (unless the rate is Inf),
// when ctx is already done, and when the tokens would arrive after ctx's
// deadline: that error matches context.DeadlineExceeded without waiting for
// the deadline to pass. When ctx is done during the wait, WaitN gives the
// tokens back (see Reservation.Cancel) and returns an error matching
// ctx.Err() that carries context.Cause(ctx).
//
// With a rate of zero and too few tokens, WaitN blocks until ctx is done (a
// deadline makes it fail at once), as x/time/rate does. Waiters are served in
// the order they called WaitN. Each call that has to wait uses one timer.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	checkCtx(ctx)
	err := l.waitN(ctx, n)
	l.count(err == nil)
	return err
}

// waitN is WaitN without the count.
func (l *Limiter) waitN(ctx context.Context, n int) error {
	s := l.st.Load()
	var burst int
	var inf bool
	if s != nil {
		burst, inf = s.burst, s.mode == limInf
	}
	if n > burst && !inf {
		return limiterBurstErr(n, burst)
	}
	if ctx.Err() != nil {
		return ctxErr(ctx)
	}
	// The deadline in the limiter's clock: the reservation then checks
	// "in time?" against its own clock reading, with no second one.
	deadline := int64(math.MaxInt64)
	if d, ok := ctx.Deadline(); ok && s != nil {
		deadline = int64(d.Sub(l.base))
	}
	r, why := l.reserveN(n, deadline)
	switch {
	case why == limTooMany:
		// The burst shrank since s was loaded, or n is within the burst
		// but beyond the 73 years of refill a bucket can hold: an error
		// at once, never a wait on ctx alone.
		return l.tooManyErr(n)
	case why == limNever && deadline == math.MaxInt64:
		// A wait that no deadline could have saved (rate 0) blocks until
		// ctx is done, as in x/time/rate.
		<-ctx.Done()
		return ctxErr(ctx)
	case !r.ok:
		// Any other refusal is the deadline's, reported at once.
		return limiterDeadlineErr(n)
	}
	delay := r.Delay()
	if delay <= 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctxErr(ctx)
	}
}

// limiterBurstErr is WaitN's error for n over the burst, as x/time/rate
// reports it: at once, whatever ctx.
func limiterBurstErr(n, burst int) error {
	return fmt.Errorf("conc: limiter WaitN(n=%d) exceeds the burst %d", n, burst)
}

// tooManyErr is the error for a reservation refused as limTooMany, by the
// current state.
func (l *Limiter) tooManyErr(n int) error {
	if s := l.st.Load(); s != nil {
		return s.tooManyErr(n)
	}
	return limiterBurstErr(n, 0)
}
