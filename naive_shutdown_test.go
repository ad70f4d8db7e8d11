package conc

import (
	"context"
	"errors"
	"sync"
	"time"
)

// The naive graceful shutdowns BenchmarkShutdown compares against, as
// tutorials write them: phases run in order, each with its own timeout.

type naivePhase struct {
	timeout time.Duration
	fn      func(context.Context) error
}

// runNaivePhases runs each phase with a context cancelled after its
// timeout and joins their errors.
func runNaivePhases(phases []naivePhase) error {
	var errs []error
	for _, p := range phases {
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		if err := p.fn(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}

// mutexShutdown guards its phase list and its started flag with a mutex;
// Run waits on a sync.Cond until Trigger.
type mutexShutdown struct {
	mu        sync.Mutex
	cond      sync.Cond
	phases    []naivePhase
	triggered bool
}

func newMutexShutdown() *mutexShutdown {
	s := &mutexShutdown{}
	s.cond.L = &s.mu
	return s
}

func (s *mutexShutdown) Add(timeout time.Duration, fn func(context.Context) error) {
	s.mu.Lock()
	s.phases = append(s.phases, naivePhase{timeout, fn})
	s.mu.Unlock()
}

func (s *mutexShutdown) Trigger() {
	s.mu.Lock()
	s.triggered = true
	s.mu.Unlock()
	s.cond.Broadcast()
}

func (s *mutexShutdown) Run() error {
	s.mu.Lock()
	for !s.triggered {
		s.cond.Wait()
	}
	phases := s.phases
	s.mu.Unlock()
	return runNaivePhases(phases)
}

// chanShutdown is the "quit channel" shutdown: a goroutine started with it
// waits on an unbuffered quit channel, runs the phases, and reports on an
// unbuffered done channel.
type chanShutdown struct {
	phases []naivePhase
	quit   chan struct{}
	done   chan error
}

func newChanShutdown() *chanShutdown {
	s := &chanShutdown{quit: make(chan struct{}), done: make(chan error)}
	go func() {
		<-s.quit
		s.done <- runNaivePhases(s.phases)
	}()
	return s
}

// Add must be called before TriggerAndWait.
func (s *chanShutdown) Add(timeout time.Duration, fn func(context.Context) error) {
	s.phases = append(s.phases, naivePhase{timeout, fn})
}

func (s *chanShutdown) TriggerAndWait() error {
	s.quit <- struct{}{}
	return <-s.done
}
