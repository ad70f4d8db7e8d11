package conc

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// This file holds the Breaker's state machine: the state word, the
// half-open probe slots and every state change, all of which happen under
// the breaker's mutex. The closed-state fast path in breaker.go never takes
// it.

// State is the state of a Breaker.
type State uint32

const (
	// Closed lets every call through and watches its outcome.
	Closed State = iota
	// Open rejects every call with ErrOpen until the cooldown has passed.
	Open
	// HalfOpen lets a few probe calls through; their outcomes decide
	// between Closed and Open again.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// The breaker's state word packs, from the low bits up: the state (2 bits),
// the consecutive-failure count of the closed state (30 bits) and the
// generation (32 bits). Every state change starts a new generation, so one
// compare-and-swap both checks that a result belongs to the current
// generation and updates the failure count: a result reported for an
// earlier generation can never change the current state.
const (
	wordStateMask = 1<<2 - 1
	wordFailShift = 2
	wordFailMask  = maxThreshold << wordFailShift
	wordGenShift  = 32
)

func packWord(s State, gen uint32) uint64 { return uint64(gen)<<wordGenShift | uint64(s) }
func wordState(w uint64) State            { return State(w & wordStateMask) }
func wordGen(w uint64) uint32             { return uint32(w >> wordGenShift) }
func wordFails(w uint64) int              { return int(w&wordFailMask) >> wordFailShift }

// admitProbe gives a half-open probe slot to the caller, first freeing the
// slots of probes that outlived ProbeTimeout. ok is false, with a nil error,
// when the generation changed under the caller, who must start over.
//
// Half-open takes the mutex: each slot has a deadline, and counting free
// slots, expiring old ones and handing one out must be one step, or 100
// callers arriving together could all see a free slot. Half-open lasts a
// few calls, and the callers it turns away are about to get ErrOpen, so the
// lock costs nothing that matters.
func (b *Breaker) admitProbe(w uint64) (t ticket, ok bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.word.Load() != w {
		return ticket{}, false, nil
	}
	now := b.now()
	b.expireLocked(now)
	if len(b.probes) >= b.cfg.probes {
		b.rejected.Add(1)
		return ticket{}, false, ErrOpen
	}
	b.ticket++
	b.probeStats.Probes++
	b.probes = append(b.probes, probe{ticket: b.ticket, deadline: now + int64(b.cfg.probeTimeout)})
	return ticket{gen: wordGen(w), probe: b.ticket}, true, nil
}

// expireLocked frees the slots of probes whose time is up. Their results,
// if they ever come, find no slot and are ignored.
//
// Expiry is lazy, checked when a caller wants a slot, rather than driven by
// a timer: an expired slot only matters to the next caller, and a timer
// would mean a goroutine or callback the breaker has to clean up after.
func (b *Breaker) expireLocked(now int64) {
	kept := b.probes[:0]
	for _, p := range b.probes {
		if now < p.deadline {
			kept = append(kept, p)
		} else {
			b.probeStats.ProbesAbandoned++
		}
	}
	b.probes = kept
}

// probeDone applies a half-open probe's outcome: a failure reopens the
// breaker, enough successes close it, a neutral outcome just frees the
// slot. A probe whose slot has expired, or whose generation has ended, is
// ignored altogether: its outcome was already written off.
func (b *Breaker) probeDone(t ticket, o outcome) {
	b.mu.Lock()
	w := b.word.Load()
	i := -1
	if wordGen(w) == t.gen && wordState(w) == HalfOpen {
		for j, p := range b.probes {
			if p.ticket == t.probe {
				i = j
				break
			}
		}
	}
	if i < 0 {
		b.mu.Unlock()
		return
	}
	// Slots are few (HalfOpenProbes), so a slice with a linear search beats
	// a map and keeps the order in which probes were admitted.
	b.probes = append(b.probes[:i], b.probes[i+1:]...)
	switch o {
	case neutral:
		b.probeStats.ProbeCanceled++
	case failure:
		b.probeStats.ProbeFailures++
		b.moveLocked(t.gen, HalfOpen, Open)
	case success:
		b.probeStats.ProbeSuccesses++
		if b.probeOK++; b.probeOK >= b.cfg.successes {
			b.moveLocked(t.gen, HalfOpen, Closed)
		}
	}
	b.unlockAndNotify()
}

// trip opens the breaker if it is still in generation gen and state from.
func (b *Breaker) trip(gen uint32, from State) {
	b.mu.Lock()
	b.moveLocked(gen, from, Open)
	b.unlockAndNotify()
}

// toHalfOpen ends the cooldown that w, an open state word, started, if it
// is over. The clock is read again under the lock: the caller's reading may
// predate a new trip that started a new cooldown.
func (b *Breaker) toHalfOpen(w uint64) {
	b.mu.Lock()
	if b.now() >= b.openUntil.Load() {
		b.moveLocked(wordGen(w), Open, HalfOpen)
	}
	b.unlockAndNotify()
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
func (b *Breaker) moveLocked(gen uint32, from, to State) bool {
	if w := b.word.Load(); wordGen(w) != gen || wordState(w) != from {
		return false
	}
	if from == HalfOpen {
		b.probeStats.ProbesAbandoned += uint64(len(b.probes))
		b.probes = b.probes[:0]
	}
	switch to {
	case Open:
		b.tripsInRow++
		b.trips++
		b.openUntil.Store(b.now() + b.cooldownLocked())
	case HalfOpen:
		b.probeOK = 0
	case Closed:
		b.tripsInRow = 0
		b.epoch.Store(b.newEpoch(gen + 1))
	}
	// Retry only because a closed-state failure counter may bump the word
	// concurrently; the new word starts with a zero failure count.
	for {
		w := b.word.Load()
		if b.word.CompareAndSwap(w, packWord(to, gen+1)) {
			break
		}
	}
	if b.cfg.onChange != nil {
		b.pending = append(b.pending, stateChange{from, to})
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
func (b *Breaker) unlockAndNotify() {
	if b.notifying || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	// The flag, not a second mutex, serialises delivery: a mutex held
	// across the callback would deadlock a callback that changes the state.
	b.notifying = true
	defer func() {
		// Also on a panic in the callback, which propagates: the next
		// state change will deliver what is still queued.
		b.notifying = false
		b.mu.Unlock()
	}()
	for len(b.pending) > 0 {
		c := b.pending[0]
		b.pending = append(b.pending[:0], b.pending[1:]...)
		b.mu.Unlock()
		func() {
			defer b.mu.Lock()
			b.cfg.onChange(c.from, c.to)
		}()
	}
}
