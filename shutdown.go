package conc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ErrShutdownForced is wrapped by the PhaseError of every phase that a forced
// shutdown (a signal after the start, or Force) skipped or abandoned while
// it ran.
var ErrShutdownForced = errors.New("conc: shutdown forced")

// A Shutdown runs a service's shutdown as a sequence of named phases, each
// with its own deadline: typically stop intake, drain, cancel workers, close
// resources. Phases run one at a time, in the order they were added, each
// on a context of its own that is cancelled at its deadline.
//
// Run waits for the shutdown to start: ctx done, Trigger called, or, only if
// the Shutdown was made with WithSignals, one of those signals. Once it has
// started, however it started, a signal (the operator's second Ctrl-C) or
// Force skips the remaining phases and abandons the running one, and so
// does the HardDeadline, if one was set, when it passes.
// The package never installs a signal handler by itself and never exits the
// process: Run returns, and the caller decides what happens next.
//
// The zero value is ready to use, without signal handling. A Shutdown is
// safe for concurrent use; it runs once, and must not be copied after first
// use.
type Shutdown struct {
	mu      sync.Mutex
	phases  []shutdownPhase
	signals []os.Signal
	running bool          // Run has been called: Add is refused
	trigger chan struct{} // closed by Trigger; made lazily, see chans
	force   chan struct{} // closed by Force
	hard    time.Duration // HardDeadline; 0 for none
	hardHit bool          // the hard deadline forced the shutdown (Run's goroutine only)
}

// shutdownPhase is one registered phase.
type shutdownPhase struct {
	name    string
	timeout time.Duration
	fn      func(context.Context) error
}

// A ShutdownOption configures a Shutdown made by NewShutdown.
type ShutdownOption interface {
	applyShutdown(*Shutdown)
}

// shutdownOptionFunc adapts a function to ShutdownOption.
type shutdownOptionFunc func(*Shutdown)

func (f shutdownOptionFunc) applyShutdown(s *Shutdown) { f(s) }

// WithSignals makes Run start the shutdown when the process receives one of
// sigs, and force it when one arrives after the start. With no sigs it means
// os.Interrupt and syscall.SIGTERM. Run installs the handler (signal.Notify)
// only while it runs and removes it (signal.Stop) before returning, so the
// default behaviour of those signals (exiting) is back once Run is done.
func WithSignals(sigs ...os.Signal) ShutdownOption {
	if len(sigs) == 0 {
		sigs = []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	sigs = append([]os.Signal(nil), sigs...)
	return shutdownOptionFunc(func(s *Shutdown) { s.signals = sigs })
}

// HardDeadline bounds the whole shutdown: d after it starts, Run forces it
// as Force does (the running phase is abandoned, the rest are skipped) and
// returns. It is the answer to a phase that ignores its context: a phase's
// own deadline only cancels that context, and Run then waits for the phase
// to return, because phases that share resources must not overlap; without
// HardDeadline (or Force, or a second signal) such a phase keeps Run waiting
// for ever. The PhaseErrors of the phases it abandons or skips match both
// ErrShutdownForced and context.DeadlineExceeded. Choose d above the sum of
// the phases' timeouts, with some grace, so that it only ever cuts a phase
// that overran. It panics with a conc: message when d is not positive.
func HardDeadline(d time.Duration) ShutdownOption {
	if d <= 0 {
		panic(fmt.Sprintf("conc: shutdown hard deadline must be positive, got %v", d))
	}
	return shutdownOptionFunc(func(s *Shutdown) { s.hard = d })
}

// NewShutdown returns a Shutdown with no phases. It panics with a conc:
// message when an option is nil.
func NewShutdown(opts ...ShutdownOption) *Shutdown {
	s := new(Shutdown)
	for i, o := range opts {
		checkOption("NewShutdown", i, o == nil)
		o.applyShutdown(s)
	}
	return s
}

// Add appends a phase named name that runs fn with a context cancelled
// after timeout. The phase function's signature fits http.Server.Shutdown
// and Pool.Stop directly; a function without a context (Broker.Close) needs
// a one-line wrapper. Add returns ErrClosed once Run has been called: the
// list of phases is fixed when the shutdown may start. Add panics if fn is
// nil or timeout is not positive: a phase without a deadline is the hang a
// shutdown sequence exists to prevent.
func (s *Shutdown) Add(name string, timeout time.Duration, fn func(context.Context) error) error {
	checkFunc(fmt.Sprintf("shutdown phase %q fn", name), fn == nil)
	if timeout <= 0 {
		panic(fmt.Sprintf("conc: shutdown phase %q timeout must be positive, got %v", name, timeout))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return ErrClosed
	}
	s.phases = append(s.phases, shutdownPhase{name: name, timeout: timeout, fn: fn})
	return nil
}

// chans returns the trigger and force channels, making them on first use so
// that the zero value works. Callers hold s.mu.
func (s *Shutdown) chans() (trigger, force chan struct{}) {
	if s.trigger == nil {
		s.trigger = make(chan struct{})
		s.force = make(chan struct{})
	}
	return s.trigger, s.force
}

// Trigger starts the shutdown now, as a first signal would. It does not
// wait for the phases; Run does. Calling it again, or before Run, is fine:
// a Run that starts later begins at once.
func (s *Shutdown) Trigger() {
	s.mu.Lock()
	defer s.mu.Unlock()
	trigger, _ := s.chans()
	select {
	case <-trigger:
	default:
		close(trigger)
	}
}

// Force skips every phase that has not started and abandons the running
// one, as a second signal does: its context is cancelled with cause
// ErrShutdownForced and Run returns without waiting for it. Force also
// starts the shutdown if it had not started, with every phase skipped. It
// is idempotent.
func (s *Shutdown) Force() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, force := s.chans()
	select {
	case <-force:
	default:
		close(force)
	}
}

// Run waits until the shutdown starts (ctx done, Trigger, Force, or a
// signal chosen with WithSignals), then runs the phases in order and
// returns once the last one has returned or the shutdown was forced. Run
// does not return when ctx ends: that is its cue to begin. Each phase's
// context carries ctx's values but not its cancellation.
//
// Run returns nil if every phase returned nil, and otherwise the join of one
// *PhaseError per phase that failed, timed out, panicked (a *PanicError),
// was abandoned or was skipped, in phase order. A phase that overruns its
// deadline is cancelled and then waited for: phases that share resources
// must not overlap, so only Force, a second signal or the HardDeadline
// moves on without it. The goroutine of an abandoned phase is left running;
// it ends when the phase returns, which a phase that honours its context
// does at once.
//
// A phase that fails after its deadline is reported as timed out (its
// error matches context.DeadlineExceeded too). One that returns nil after
// its deadline is not an error: it finished its work, late, and a phase
// that honours its context says otherwise itself (http.Server.Shutdown
// returns ctx.Err()). The HardDeadline is what bounds the whole.
//
// Run may be called once; later calls return ErrClosed. The signals of
// WithSignals are caught from the moment Add starts returning ErrClosed.
func (s *Shutdown) Run(ctx context.Context) error {
	checkCtx(ctx)
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrClosed
	}
	// A nil channel when signals were not asked for: the selects below then
	// never pick it. Room for two, so that a second signal that arrives
	// while the first is still unread is not dropped by the signal package.
	// The handler is in place before running is set, which is what Add's
	// ErrClosed tells the caller.
	var sigc chan os.Signal
	if len(s.signals) > 0 {
		sigc = make(chan os.Signal, 2)
		signal.Notify(sigc, s.signals...)
		defer signal.Stop(sigc)
	}
	s.running = true
	trigger, force := s.chans()
	phases := s.phases
	s.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-trigger:
	case <-force:
	case <-sigc:
	}

	// From here on a signal means "force", and so does the hard deadline
	// when it passes: one timer for the whole shutdown, a nil channel
	// (never ready) without one.
	var hard <-chan time.Time
	if s.hard > 0 {
		t := time.NewTimer(s.hard)
		defer t.Stop()
		hard = t.C
	}
	base := context.WithoutCancel(ctx)
	var errs []error
	forced := false
	for _, p := range phases {
		if !forced {
			select {
			case <-force:
				forced = true
			case <-sigc:
				s.Force()
				forced = true
			case <-hard:
				s.hardForce()
				forced = true
			default:
			}
		}
		if forced {
			errs = append(errs, &PhaseError{Phase: p.name, Err: s.forcedErr("skipped")})
			continue
		}
		var err error
		forced, err = s.runPhase(base, p, force, sigc, hard)
		if err != nil {
			errs = append(errs, &PhaseError{Phase: p.name, Err: err})
		}
	}
	return errors.Join(errs...)
}

// runPhase runs one phase on a goroutine of its own, so that a forced
// shutdown can stop waiting for it, and reports its outcome and whether the
// shutdown was forced while it ran.
func (s *Shutdown) runPhase(base context.Context, p shutdownPhase, force <-chan struct{}, sigc <-chan os.Signal, hard <-chan time.Time) (forced bool, err error) {
	pctx, cancelDeadline := context.WithTimeout(base, p.timeout)
	defer cancelDeadline()
	pctx, cancel := context.WithCancelCause(pctx)
	defer cancel(nil)

	// Buffered, so that an abandoned phase can still deliver its result and
	// end without anyone reading it.
	done := make(chan error, 1)
	go func() {
		// errGoexit stays if fn ends with runtime.Goexit, which neither
		// returns nor panics; without it Run would wait forever.
		perr := errGoexit
		defer func() { done <- perr }()
		perr = protect(func() error { return p.fn(pctx) })
	}()

	select {
	case err = <-done:
		if err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded) {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("timed out after %v: %w", p.timeout, err)
			} else {
				// An error of the phase's own, after its deadline: it
				// must match DeadlineExceeded too, as Run promises.
				err = fmt.Errorf("timed out after %v: %w (%w)", p.timeout, err, context.DeadlineExceeded)
			}
		}
		return false, err
	case <-force:
	case <-sigc:
		s.Force()
	case <-hard:
		s.hardForce()
	}
	cancel(ErrShutdownForced)
	return true, s.forcedErr("abandoned while running")
}

// hardForce is Force, noting that the hard deadline caused it. Only Run's
// goroutine calls it, once; forcedErr reads the note on that goroutine.
func (s *Shutdown) hardForce() {
	s.hardHit = true
	s.Force()
}

// forcedErr is the error of a phase that a forced shutdown skipped or
// abandoned (what says which): it wraps ErrShutdownForced and, when the
// hard deadline forced it, context.DeadlineExceeded too.
func (s *Shutdown) forcedErr(what string) error {
	if s.hardHit {
		return fmt.Errorf("%s: hard deadline %v passed: %w (%w)", what, s.hard, ErrShutdownForced, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %w", what, ErrShutdownForced)
}

// A PhaseError reports a shutdown phase that did not finish cleanly: it
// failed, timed out, panicked, or was skipped or abandoned by a forced
// shutdown. Err says which; errors.Is and errors.As see through it.
type PhaseError struct {
	Phase string // the name given to Add
	Err   error
}

// Error names the phase and what went wrong.
func (e *PhaseError) Error() string {
	return fmt.Sprintf("conc: shutdown phase %q: %v", e.Phase, e.Err)
}

// Unwrap returns Err.
func (e *PhaseError) Unwrap() error { return e.Err }
