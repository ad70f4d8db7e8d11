package conc

import "sync/atomic"

// This file holds Breaker's Stats. The counters it reads are written on the
// exceptional paths only (failures, rejections, state changes, probes), so
// that a healthy closed breaker writes nothing shared. Counting closed-state
// successes would put an atomic read-modify-write (about 5 ns, half the
// price of the whole call) on every healthy call.

// BreakerStats is a snapshot of a Breaker's counters, taken by Stats.
//
// Every admitted call is counted once its outcome is reported, except the
// successes of a closed breaker, which are not counted so that a healthy
// call writes nothing shared (the caller sees each of them anyway). So,
// for the closed state, Failures and Canceled are counted; for the
// half-open state, the probes add up:
//
//	Probes = ProbeSuccesses + ProbeFailures + ProbeCanceled + ProbesAbandoned + ProbesInFlight
//
// The atomic counters are read one at a time while calls go on, so they
// need not describe the same instant.
type BreakerStats struct {
	State BreakerState
	// Failures and Canceled count closed-state calls that failed or that
	// the caller canceled (neither success nor failure), in every closed
	// generation, including results that came in after the breaker opened.
	Failures, Canceled uint64
	Rejected           uint64 // calls refused with ErrOpen, open or half-open
	Trips              uint64 // changes to Open
	// ConsecutiveFailures is the current run of failures while closed
	// (consecutive-failure policy). The threshold-th failure trips the
	// breaker without being stored, so this stays below the threshold.
	ConsecutiveFailures int
	// WindowCalls and WindowFailures are what the FailureRate window of
	// the current closed generation holds (zero when not closed).
	WindowCalls, WindowFailures int
	Probes                      uint64 // probes admitted
	ProbeSuccesses              uint64
	ProbeFailures               uint64
	ProbeCanceled               uint64 // neutral: canceled by the caller
	// ProbesAbandoned are probes whose result stopped mattering before it
	// came: they outlived ProbeTimeout and another caller took their slot,
	// or another probe's result ended the half-open state first. Their
	// results are ignored when they come.
	ProbesAbandoned uint64
	// ProbesInFlight are the probes holding a slot now, including any past
	// their deadline that no caller has needed the slot of yet.
	ProbesInFlight int
	// CallbackPanics counts OnStateChange calls that panicked. Each panic
	// was recovered; see OnStateChange for where it went.
	CallbackPanics uint64
}

// probeCounters counts half-open probes for BreakerStats.
type probeCounters struct {
	admitted, successes, failures, canceled, abandoned atomic.Uint64
}

// Stats returns a snapshot of the breaker's counters. Like State, it
// re-evaluates the clock. It takes the breaker's mutex briefly, never while
// OnStateChange runs, so it is safe to call from there.
func (b *Breaker) Stats() BreakerStats {
	s := BreakerStats{
		State:    b.State(),
		Failures: b.failures.Load(),
		Canceled: b.canceled.Load(),
		Rejected: b.rejected.Load(),
	}
	b.mu.Lock()
	s.Trips = b.trips
	b.mu.Unlock()
	s.Probes = b.probes.admitted.Load()
	s.ProbeSuccesses = b.probes.successes.Load()
	s.ProbeFailures = b.probes.failures.Load()
	s.ProbeCanceled = b.probes.canceled.Load()
	s.ProbesAbandoned = b.probes.abandoned.Load()
	s.CallbackPanics = b.callbackPanics.Load()
	w := b.word.Load()
	if bwState(w) == BreakerHalfOpen {
		for i := range b.slots {
			// A transient holder is either not admitted yet or already
			// counted by its outcome.
			if v := b.slots[i].Load(); v != 0 && v&slotTransient == 0 {
				s.ProbesInFlight++
			}
		}
	}
	if bwState(w) != BreakerClosed {
		return s
	}
	s.ConsecutiveFailures = bwCount(w)
	if e := b.epoch.Load(); e.gen == bwGen(w) {
		switch {
		case e.count != nil:
			s.WindowCalls, s.WindowFailures = e.count.counts()
		case e.timed != nil:
			s.WindowCalls, s.WindowFailures = e.timed.counts(b.now())
		}
	}
	return s
}
