package conc

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// This file holds the Breaker's state machine: the state word, the
// half-open probe slots and the state changes. Changes happen under the
// breaker's mutex, so that they and their OnStateChange calls are
// serialised; everything else, probes included, is atomic words.

// BreakerState is the state of a Breaker.
type BreakerState uint32

const (
	// BreakerClosed lets every call through and watches its outcome.
	BreakerClosed BreakerState = iota
	// BreakerOpen rejects every call with ErrOpen until the cooldown has passed.
	BreakerOpen
	// BreakerHalfOpen lets a few probe calls through; their outcomes decide
	// between Closed and Open again.
	BreakerHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "BreakerState(" + strconv.Itoa(int(s)) + ")"
}

// The breaker's state word packs, from the low bits up: the state (2 bits),
// a count (30 bits) and the generation (32 bits). The count is the run of
// consecutive failures while closed and the number of successful probes
// while half-open. Every state change starts a new generation with a zero
// count, so one compare-and-swap both checks that a result belongs to the
// current generation and updates the count: a result reported for an
// earlier generation can never change the current state.
const (
	bwStateMask  = 1<<2 - 1
	bwCountShift = 2
	bwCountMask  = maxBreakerThreshold << bwCountShift
	bwGenShift   = 32
)

func bwPack(s BreakerState, gen uint32) uint64 { return uint64(gen)<<bwGenShift | uint64(s) }
func bwState(w uint64) BreakerState            { return BreakerState(w & bwStateMask) }
func bwGen(w uint64) uint32                    { return uint32(w >> bwGenShift) }
func bwCount(w uint64) int                     { return int(w&bwCountMask) >> bwCountShift }

// A probe slot holds 0 when free, or the probe's deadline in milliseconds
// since the breaker's base (39 bits above the sequence: 17 years) and a
// sequence number (lower 24 bits, never 0). The sequence number tells apart
// two probes that got the same slot with the same deadline, so that a late
// probe can never free its successor's slot. Milliseconds, rounded up, keep
// the deadline in one word with the sequence: a probe may hold its slot up
// to 1ms past ProbeTimeout, never less.
//
// The top bit marks a slot held for a moment by a caller that is being
// admitted as a probe (see admitProbe) or by a probe whose result is being
// applied (see probeDone): such a slot never looks expired, since the bit
// makes its deadline later than any real one, and neither Stats nor a
// state change that clears it counts it as a probe in flight.
const (
	slotSeqBits = 24
	slotSeqMask = 1<<slotSeqBits - 1
	// slotMaxDeadline is the largest deadline a slot can hold: about 17
	// years after the breaker was made, which means "never expires".
	slotMaxDeadline = 1<<(63-slotSeqBits) - 1
	// slotTransient is the top bit: the slot's holder is being admitted,
	// or its result is being applied.
	slotTransient = 1 << 63
)

func (b *Breaker) slotValue(now int64) uint64 {
	// The deadline saturates at the largest one the 40 bits hold, and the
	// sum is only formed when it fits: a ProbeTimeout of decades
	// (math.MaxInt64 for "never") must not wrap into the past, which would
	// make every slot look expired and admit any number of probes.
	ms := int64(time.Millisecond)
	deadline := int64(slotMaxDeadline)
	if pt := int64(b.cfg.probeTimeout); pt < deadline*ms-now {
		deadline = min((now+pt+ms-1)/ms, deadline)
	}
	seq := b.probeSeq.Add(1) & slotSeqMask
	for seq == 0 {
		seq = b.probeSeq.Add(1) & slotSeqMask
	}
	return uint64(deadline)<<slotSeqBits | seq
}

// slotExpired reports whether the probe in slot value v has outlived its
// deadline at now.
func slotExpired(v uint64, now int64) bool {
	return now >= int64(v>>slotSeqBits)*int64(time.Millisecond)
}

// admitProbe gives a half-open probe slot to the caller: a free one, or one
// whose probe outlived ProbeTimeout (that probe is abandoned; its result,
// if it ever comes, finds its slot taken and is ignored). ok is false, with
// a nil error, when the half-open generation of w ended under the caller,
// who must start over.
//
// Slots are claimed with compare-and-swap, so N slots admit exactly N
// probes however many callers arrive together, and no lock is taken.
// Expiry is lazy, checked when a caller wants a slot, rather than driven by
// a timer: an expired slot only matters to the next caller, and a timer
// would mean a goroutine or callback the breaker has to clean up after.
func (b *Breaker) admitProbe(w uint64) (t breakerTicket, ok bool, err error) {
	now := b.now()
	for i := range b.slots {
		slot := &b.slots[i]
		for {
			old := slot.Load()
			if old != 0 && !slotExpired(old, now) {
				break // busy: try the next slot
			}
			v := b.slotValue(now)
			if !slot.CompareAndSwap(old, v|slotTransient) {
				continue // released or claimed meanwhile: look again
			}
			if old != 0 {
				b.probes.abandoned.Add(1)
			}
			// The slot was claimed after the check of w; if half-open
			// ended in between, the state change may have cleared the
			// slots before this claim, so give it back. The claim is
			// transient until then, so that the caller, who was never a
			// probe, is not counted as one abandoned by that change.
			if cur := b.word.Load(); bwGen(cur) != bwGen(w) || bwState(cur) != BreakerHalfOpen {
				slot.CompareAndSwap(v|slotTransient, 0)
				return breakerTicket{}, false, nil
			}
			// Half-open had not ended at the check above, so a state
			// change that ends it sweeps the slots after this point: it
			// either clears the transient claim first (the caller starts
			// over) or finds the probe and counts it abandoned.
			if !slot.CompareAndSwap(v|slotTransient, v) {
				return breakerTicket{}, false, nil
			}
			b.probes.admitted.Add(1)
			return breakerTicket{gen: bwGen(w), slot: i, probe: v}, true, nil
		}
	}
	b.rejected.Add(1)
	return breakerTicket{}, false, ErrOpen
}

// probeDone applies a half-open probe's outcome: a failure reopens the
// breaker, enough successes close it, a neutral outcome just frees the
// slot. A probe that no longer holds its slot was abandoned, and counted so
// by whoever took the slot (or by the state change that swept it).
//
// The probe keeps its slot, marked as reporting, until its result has been
// applied. Freed first, the slot could go to a caller arriving just then,
// who would be admitted as a probe only to be abandoned at once by the
// state change this result makes; holding it, that caller is rejected, as
// it would be a moment later by the new state.
//
// A probe that reports after its deadline but still holds its slot (no
// caller needed it, and half-open has not ended, since leaving half-open
// sweeps every slot) counts like a punctual one. The deadline exists to
// free the slot of a probe that may never report, not to judge a slow one:
// ignoring a late result that nobody replaced would mean that a dependency
// whose calls take longer than ProbeTimeout could never close the breaker,
// however healthy it is.
//
// It returns the *PanicError of an OnStateChange callback that panicked
// while this goroutine delivered state changes, as do all the functions
// below that may change the state.
func (b *Breaker) probeDone(t breakerTicket, o breakerOutcome) error {
	slot := &b.slots[t.slot]
	held := t.probe | slotTransient
	if !slot.CompareAndSwap(t.probe, held) {
		return nil
	}
	var err error
	switch o {
	case outcomeNeutral:
		b.probes.canceled.Add(1)
	case outcomeFailure:
		b.probes.failures.Add(1)
		err = b.trip(t.gen, BreakerHalfOpen)
	case outcomeSuccess:
		b.probes.successes.Add(1)
		err = b.probeSucceeded(t.gen)
	}
	// A state change has already swept the slot; a new probe may even
	// hold it now, which the compare-and-swap leaves alone.
	slot.CompareAndSwap(held, 0)
	return err
}

// probeSucceeded counts a successful probe of half-open generation gen in
// the state word, and closes the breaker at the SuccessesToClose-th. As
// with failures while closed, the deciding success does not store its
// count, so two probes succeeding together cannot skip the threshold.
func (b *Breaker) probeSucceeded(gen uint32) error {
	for {
		w := b.word.Load()
		if bwGen(w) != gen || bwState(w) != BreakerHalfOpen {
			return nil
		}
		if bwCount(w)+1 >= b.cfg.successes {
			b.mu.Lock()
			b.moveLocked(gen, BreakerHalfOpen, BreakerClosed)
			return b.unlockAndNotify()
		}
		if b.word.CompareAndSwap(w, w+1<<bwCountShift) {
			return nil
		}
	}
}

// trip opens the breaker if it is still in generation gen and state from.
func (b *Breaker) trip(gen uint32, from BreakerState) error {
	b.mu.Lock()
	b.moveLocked(gen, from, BreakerOpen)
	return b.unlockAndNotify()
}

// toHalfOpen ends the cooldown that w, an open state word, started, if it
// is over. The clock is read again under the lock: the caller's reading may
// predate a new trip that started a new cooldown.
func (b *Breaker) toHalfOpen(w uint64) error {
	b.mu.Lock()
	if b.now() >= b.openUntil.Load() {
		b.moveLocked(bwGen(w), BreakerOpen, BreakerHalfOpen)
	}
	return b.unlockAndNotify()
}

// moveLocked changes the state from (gen, from) to to, starting generation
// gen+1, and queues the change for OnStateChange. It reports false if the
// breaker has already left (gen, from). The caller holds b.mu.
//
// Every state change happens here, under b.mu, so the only concurrent
// writers of the word are closed-state failure counters. That is why the
// side effects can be prepared before the compare-and-swap that publishes
// the change: nobody reads openUntil or a new epoch before the word says
// Open or Closed.
func (b *Breaker) moveLocked(gen uint32, from, to BreakerState) bool {
	if w := b.word.Load(); bwGen(w) != gen || bwState(w) != from {
		return false
	}
	switch to {
	case BreakerOpen:
		b.tripsInRow++
		b.trips++
		b.openUntil.Store(b.now() + b.cooldownLocked())
	case BreakerClosed:
		b.tripsInRow = 0
		b.epoch.Store(b.newEpoch(gen + 1))
	}
	// Retry only because the count (failures while closed, successful
	// probes while half-open) may be bumped concurrently; the new word
	// starts with a zero count.
	for {
		w := b.word.Load()
		if b.word.CompareAndSwap(w, bwPack(to, gen+1)) {
			break
		}
	}
	// Probes still in flight are abandoned. This must come after the word
	// has changed: a probe claiming a slot checks the word afterwards, so
	// either this sweep sees its claim or it sees the new word.
	if from == BreakerHalfOpen {
		for i := range b.slots {
			if v := b.slots[i].Swap(0); v != 0 && v&slotTransient == 0 {
				b.probes.abandoned.Add(1)
			}
		}
	}
	if b.cfg.onChange != nil {
		b.pending = append(b.pending, breakerChange{from, to})
	}
	return true
}

// cooldownLocked returns the length of the cooldown that starts now: the
// configured one, grown for trips in a row and capped, then jittered.
// Jitter only lengthens it, so the configured cooldown stays a promise to
// the dependency: no probe comes sooner. The growth is computed in floating
// point and capped before the conversion, so a long run of trips cannot
// overflow.
func (b *Breaker) cooldownLocked() int64 {
	c := float64(b.cfg.cooldown)
	if b.cfg.growth > 1 && b.tripsInRow > 1 {
		c = min(c*math.Pow(b.cfg.growth, float64(b.tripsInRow-1)), float64(b.cfg.maxCooldown))
	}
	if b.cfg.jitter > 0 {
		c += c * b.cfg.jitter * rand.Float64()
	}
	return int64(min(c, 1<<62))
}

// unlockAndNotify releases b.mu and delivers queued state changes to
// OnStateChange, in order, with b.mu released around each call, so the
// callback may use the breaker. A goroutine that finds another already
// delivering leaves its changes to it: that keeps the calls serialised and
// in order, and lets a callback that changes the state return before its
// own change is reported.
//
// A panic in the callback is recovered, counted in Stats, and the delivery
// goes on with the next change: a bug in the callback must neither crash
// the call that happened to deliver the change nor stop later changes from
// being reported. The first such panic is returned, as a *PanicError, for
// the caller to surface if it has an error to return (see Execute).
func (b *Breaker) unlockAndNotify() (perr error) {
	if b.notifying || len(b.pending) == 0 {
		b.mu.Unlock()
		return nil
	}
	// The flag, not a second mutex, serialises delivery: a mutex held
	// across the callback would deadlock a callback that changes the state.
	b.notifying = true
	finished := false
	defer func() {
		// Only when the callback called runtime.Goexit, which no recover
		// stops: b.mu is not held then. Clearing the flag lets the next
		// state change deliver what is still queued.
		if !finished {
			b.mu.Lock()
			b.notifying = false
			b.mu.Unlock()
		}
	}()
	for len(b.pending) > 0 {
		c := b.pending[0]
		b.pending = append(b.pending[:0], b.pending[1:]...)
		b.mu.Unlock()
		if err := protect(func() error { b.cfg.onChange(c.from, c.to); return nil }); err != nil {
			b.callbackPanics.Add(1)
			if perr == nil {
				perr = err
			}
		}
		b.mu.Lock()
	}
	b.notifying = false
	finished = true
	b.mu.Unlock()
	return perr
}
