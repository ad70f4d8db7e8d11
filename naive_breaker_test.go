package conc

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The two circuit breakers below are the ones the tutorials write: plain,
// obviously correct, and the baseline that Breaker has to beat. Both only
// know consecutive failures unless given a window size, in which case they
// keep the last calls in a ring of booleans, as a tutorial adding a failure
// rate would.

var errNaiveBreakerOpen = errors.New("circuit breaker is open")

// mutexBreaker is the CircuitBreaker of the tutorials: a mutex, a state
// string and a failure counter.
type mutexBreaker struct {
	mu          sync.Mutex
	state       string // "closed", "open" or "half-open"
	failures    int
	threshold   int
	timeout     time.Duration
	lastFailure time.Time

	window []bool // last calls, true = failed (only when windowed)
	pos    int
	calls  int
}

func newMutexBreaker(threshold int, timeout time.Duration, window int) *mutexBreaker {
	cb := &mutexBreaker{state: "closed", threshold: threshold, timeout: timeout}
	if window > 0 {
		cb.window = make([]bool, window)
	}
	return cb
}

func (cb *mutexBreaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	cb.mu.Lock()
	if cb.state == "open" {
		if time.Since(cb.lastFailure) > cb.timeout {
			cb.state = "half-open"
		} else {
			cb.mu.Unlock()
			return errNaiveBreakerOpen
		}
	}
	cb.mu.Unlock()

	err := fn(ctx)

	cb.mu.Lock()
	defer cb.mu.Unlock()
	cb.recordLocked(err != nil)
	if err != nil {
		cb.lastFailure = time.Now()
		if cb.state == "half-open" || cb.failures >= cb.threshold {
			cb.state = "open"
		}
		return err
	}
	if cb.state == "half-open" {
		cb.state = "closed"
		cb.failures = 0
	}
	return nil
}

func (cb *mutexBreaker) recordLocked(failed bool) {
	if cb.window == nil {
		if failed {
			cb.failures++
		} else {
			cb.failures = 0
		}
		return
	}
	// Ring buffer: failures is the number of failures among the last
	// len(window) calls; threshold is the number that trips.
	if cb.calls == len(cb.window) && cb.window[cb.pos] {
		cb.failures--
	}
	cb.window[cb.pos] = failed
	if failed {
		cb.failures++
	}
	cb.pos = (cb.pos + 1) % len(cb.window)
	if cb.calls < len(cb.window) {
		cb.calls++
	}
}

// chanBreaker keeps the breaker's state in a goroutine of its own; callers
// ask it for permission and report outcomes over unbuffered channels.
type chanBreaker struct {
	allow  chan chan bool
	report chan bool // true = failed
	quit   chan struct{}
	done   chan struct{}
}

func newChanBreaker(threshold int, timeout time.Duration, window int) *chanBreaker {
	cb := &chanBreaker{
		allow:  make(chan chan bool),
		report: make(chan bool),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	state := newMutexBreaker(threshold, timeout, window) // used by one goroutine only
	go func() {
		defer close(cb.done)
		for {
			select {
			case reply := <-cb.allow:
				ok := true
				if state.state == "open" {
					if time.Since(state.lastFailure) > state.timeout {
						state.state = "half-open"
					} else {
						ok = false
					}
				}
				reply <- ok
			case failed := <-cb.report:
				state.recordLocked(failed)
				if failed {
					state.lastFailure = time.Now()
					if state.state == "half-open" || state.failures >= state.threshold {
						state.state = "open"
					}
				} else if state.state == "half-open" {
					state.state, state.failures = "closed", 0
				}
			case <-cb.quit:
				return
			}
		}
	}()
	return cb
}

func (cb *chanBreaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	reply := make(chan bool)
	cb.allow <- reply
	if !<-reply {
		return errNaiveBreakerOpen
	}
	err := fn(ctx)
	cb.report <- err != nil
	return err
}

// Close stops the owner goroutine.
func (cb *chanBreaker) Close() {
	close(cb.quit)
	<-cb.done
}
