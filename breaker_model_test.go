package conc

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// modelBreaker is the reference for the model-based test: the breaker's
// specification written as plainly as possible, one mutex around
// everything, no generations packed into words, no epochs. Breaker must make
// the same decision as this model at every step.
type modelBreaker struct {
	mu sync.Mutex
	modelConfig

	state                  BreakerState
	gen                    int
	fails                  int    // consecutive failures
	ring                   []bool // count window, true = failed
	recorded               int
	timed                  []modelCall // time window: every call of this closed generation
	base                   time.Time
	openUntil              time.Time
	tripsInRow, trips      int
	rejected               int
	slots                  []modelSlot // probe slots, claimed in order like Breaker's
	probeOK, ticket        int
	probeResults, abandons int
}

// modelConfig is the configuration shared by the model and the Breaker
// under test.
type modelConfig struct {
	threshold             int // consecutive policy when window == 0 and span == 0
	window, minCalls      int
	span                  time.Duration // time window of buckets buckets
	buckets               int
	rate                  float64
	cooldown, maxCooldown time.Duration
	growth                float64
	probes, successes     int
	probeTimeout          time.Duration
}

// modelCall is a call recorded in the model's time window.
type modelCall struct {
	bucket int64
	failed bool
}

// modelSlot is a half-open probe slot of the model: the ticket of the probe
// holding it (0 when free) and that probe's deadline.
type modelSlot struct {
	ticket   int
	deadline time.Time
}

// modelToken is an admitted call of the model.
type modelToken struct {
	gen    int
	ticket int // 0 for a call admitted while closed
}

func (m *modelBreaker) advance(now time.Time) {
	if m.state == BreakerOpen && !now.Before(m.openUntil) {
		m.move(BreakerHalfOpen, now)
	}
}

func (m *modelBreaker) move(to BreakerState, now time.Time) {
	if m.state == BreakerHalfOpen {
		for i := range m.slots {
			if m.slots[i].ticket != 0 {
				m.abandons++
			}
		}
		clear(m.slots)
	}
	m.state = to
	m.gen++
	switch to {
	case BreakerOpen:
		m.tripsInRow++
		m.trips++
		c := float64(m.cooldown)
		if m.growth > 1 && m.tripsInRow > 1 {
			c = min(c*math.Pow(m.growth, float64(m.tripsInRow-1)), float64(m.maxCooldown))
		}
		m.openUntil = now.Add(time.Duration(c))
	case BreakerHalfOpen:
		m.probeOK = 0
	case BreakerClosed:
		m.tripsInRow, m.fails = 0, 0
		m.ring, m.recorded, m.timed = make([]bool, m.window), 0, nil
	}
}

func (m *modelBreaker) allow(now time.Time) (modelToken, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(now)
	switch m.state {
	case BreakerClosed:
		return modelToken{gen: m.gen}, true
	case BreakerHalfOpen:
		// The first slot that is free, or whose probe outlived its
		// deadline (that probe is abandoned), goes to the caller.
		for i := range m.slots {
			sl := &m.slots[i]
			if sl.ticket != 0 && now.Before(sl.deadline) {
				continue
			}
			if sl.ticket != 0 {
				m.abandons++
			}
			m.ticket++
			*sl = modelSlot{m.ticket, now.Add(m.probeTimeout)}
			return modelToken{gen: m.gen, ticket: m.ticket}, true
		}
	}
	m.rejected++
	return modelToken{}, false
}

func (m *modelBreaker) report(t modelToken, o breakerOutcome, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.gen != m.gen {
		return // an earlier generation: ignored
	}
	if t.ticket != 0 {
		i := slices.IndexFunc(m.slots, func(sl modelSlot) bool { return sl.ticket == t.ticket })
		if i < 0 {
			return // expired, and its slot given to another probe
		}
		// Past its deadline or not, a probe still holding its slot counts.
		m.slots[i] = modelSlot{}
		m.probeResults++
		switch o {
		case outcomeFailure:
			m.move(BreakerOpen, now)
		case outcomeSuccess:
			if m.probeOK++; m.probeOK >= m.successes {
				m.move(BreakerClosed, now)
			}
		}
		return
	}
	if o == outcomeNeutral {
		return
	}
	if m.span > 0 {
		// A call belongs to bucket elapsed/width; the window is the
		// buckets-many most recent buckets, the current one included.
		width := m.span / time.Duration(m.buckets)
		k := int64(now.Sub(m.base) / width)
		m.timed = append(m.timed, modelCall{k, o == outcomeFailure})
		calls, fails := 0, 0
		for _, c := range m.timed {
			if c.bucket > k-int64(m.buckets) {
				calls++
				if c.failed {
					fails++
				}
			}
		}
		if o == outcomeFailure && calls >= m.minCalls && float64(fails) >= m.rate*float64(calls) {
			m.move(BreakerOpen, now)
		}
		return
	}
	if m.window == 0 {
		if o == outcomeSuccess {
			m.fails = 0
		} else if m.fails++; m.fails >= m.threshold {
			m.move(BreakerOpen, now)
		}
		return
	}
	m.ring[m.recorded%m.window] = o == outcomeFailure
	m.recorded++
	calls, fails := min(m.recorded, m.window), 0
	for _, f := range m.ring {
		if f {
			fails++
		}
	}
	if o == outcomeFailure && calls >= m.minCalls && float64(fails) >= m.rate*float64(calls) {
		m.move(BreakerOpen, now)
	}
}

func (m *modelBreaker) currentState(now time.Time) BreakerState {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(now)
	return m.state
}

// TestBreakerMatchesModel drives a Breaker and the model with the same
// random calls, outcomes, late reports and time steps, inside a synctest
// bubble so that both see exactly the same clock, and compares every
// admission decision and every state.
func TestBreakerMatchesModel(t *testing.T) {
	configs := []struct {
		name string
		m    modelConfig
	}{
		{"consecutive", modelConfig{threshold: 3, cooldown: time.Second, probes: 1, successes: 1, probeTimeout: 3 * time.Second}},
		{"threshold-1-probes-3", modelConfig{threshold: 1, cooldown: 2 * time.Second, probes: 3, successes: 2, probeTimeout: time.Second}},
		{"growth", modelConfig{threshold: 2, cooldown: time.Second, growth: 2, maxCooldown: 8 * time.Second, probes: 2, successes: 3, probeTimeout: 4 * time.Second}},
		{"window", modelConfig{window: 8, minCalls: 4, rate: 0.5, cooldown: time.Second, probes: 2, successes: 2, probeTimeout: 2 * time.Second}},
		{"time-window", modelConfig{span: 2 * time.Second, buckets: 4, minCalls: 4, rate: 0.75, cooldown: time.Second, probes: 1, successes: 2, probeTimeout: time.Second}},
		{"window-rate-1", modelConfig{window: 3, minCalls: 3, rate: 1, cooldown: 3 * time.Second, probes: 1, successes: 1, probeTimeout: time.Second}},
	}
	for _, cfg := range configs {
		for seed := range uint64(8) {
			t.Run(fmt.Sprintf("%s/seed=%d", cfg.name, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					runBreakerModel(t, cfg.m, rand.New(rand.NewPCG(seed, 42)))
				})
			})
		}
	}
}

func runBreakerModel(t *testing.T, cfg modelConfig, rng *rand.Rand) {
	m := &modelBreaker{modelConfig: cfg}
	opts := []BreakerOption{
		Cooldown(m.cooldown), HalfOpenProbes(m.probes), SuccessesToClose(m.successes), ProbeTimeout(m.probeTimeout),
	}
	switch {
	case m.span > 0:
		opts = append(opts, FailureRate(m.rate, m.minCalls, LastDuration(m.span, m.buckets)))
	case m.window > 0:
		opts = append(opts, FailureRate(m.rate, m.minCalls, LastCalls(m.window)))
	default:
		opts = append(opts, ConsecutiveFailures(m.threshold))
	}
	if m.growth > 1 {
		opts = append(opts, CooldownGrowth(m.growth, m.maxCooldown))
	}
	b := NewBreaker(opts...)
	m.slots = make([]modelSlot, m.probes)
	m.ring = make([]bool, m.window)
	m.base = time.Now()

	canceledCtx, cancel := context.WithCancel(context.Background())
	cancel()
	type pendingCall struct {
		done  func(error)
		token modelToken
	}
	var pending []pendingCall
	errOf := func(o breakerOutcome) error {
		switch o {
		case outcomeFailure:
			return errBreakerBoom
		case outcomeNeutral:
			return context.Canceled
		}
		return nil
	}
	randomOutcome := func() breakerOutcome {
		switch r := rng.IntN(10); {
		case r < 4:
			return outcomeFailure
		case r < 5:
			return outcomeNeutral
		}
		return outcomeSuccess
	}

	for step := range 600 {
		switch op := rng.IntN(10); {
		case op < 4: // a call that reports at once, through Execute
			o := randomOutcome()
			tok, ok := m.allow(time.Now())
			ctx := context.Background()
			if o == outcomeNeutral {
				ctx = canceledCtx
			}
			called := false
			err := b.Execute(ctx, func(context.Context) error { called = true; return errOf(o) })
			require.Equal(t, ok, called, "step %d: admission", step)
			if !ok {
				require.ErrorIs(t, err, ErrOpen, "step %d", step)
				break
			}
			m.report(tok, o, time.Now())
		case op < 6: // a call that will report later, through Allow
			tok, ok := m.allow(time.Now())
			done, err := b.Allow()
			require.Equal(t, ok, err == nil, "step %d: admission", step)
			if ok {
				pending = append(pending, pendingCall{done, tok})
			}
		case op < 8 && len(pending) > 0: // a late report, perhaps of an older generation
			i := rng.IntN(len(pending))
			p := pending[i]
			pending = append(pending[:i], pending[i+1:]...)
			o := randomOutcome()
			m.report(p.token, o, time.Now())
			p.done(errOf(o))
		default: // time passes
			// Quarter seconds, so that steps often land exactly on a
			// cooldown or probe deadline, where off-by-one bugs live.
			time.Sleep(time.Duration(rng.IntN(7)) * 250 * time.Millisecond)
		}
		require.Equal(t, m.currentState(time.Now()), b.State(), "step %d: state", step)
	}
	s := b.Stats()
	require.Equal(t, uint64(m.trips), s.Trips)
	require.Equal(t, uint64(m.rejected), s.Rejected)
	require.Equal(t, uint64(m.ticket), s.Probes)
	require.Equal(t, uint64(m.probeResults), s.ProbeSuccesses+s.ProbeFailures+s.ProbeCanceled)
	require.Equal(t, s.Probes, s.ProbeSuccesses+s.ProbeFailures+s.ProbeCanceled+s.ProbesAbandoned+uint64(s.ProbesInFlight))
}
