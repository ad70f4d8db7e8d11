package conc

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// phaseLog records which phases ran, in order, safely from phase goroutines.
type phaseLog struct {
	mu    sync.Mutex
	names []string
}

func (l *phaseLog) phase(name string, err error) func(context.Context) error {
	return func(context.Context) error {
		l.mu.Lock()
		l.names = append(l.names, name)
		l.mu.Unlock()
		return err
	}
}

func (l *phaseLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...)
}

func TestShutdownRunsPhasesInOrderOnTrigger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log phaseLog
		var s Shutdown // the zero value works
		for _, name := range []string{"stop intake", "drain", "cancel workers", "close resources"} {
			require.NoError(t, s.Add(name, time.Second, log.phase(name, nil)))
		}
		errc := make(chan error, 1)
		go func() { errc <- s.Run(t.Context()) }()
		synctest.Wait()
		assert.Empty(t, log.get(), "a phase ran before the shutdown started")

		s.Trigger()
		s.Trigger() // idempotent
		require.NoError(t, <-errc)
		assert.Equal(t, []string{"stop intake", "drain", "cancel workers", "close resources"}, log.get())
	})
}

func TestShutdownStartsWhenCtxEndsAndPhasesOutliveIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s := NewShutdown()
		var phaseErr error
		require.NoError(t, s.Add("drain", time.Second, func(ctx context.Context) error {
			phaseErr = ctx.Err()
			return nil
		}))
		time.AfterFunc(time.Minute, cancel)
		start := time.Now()
		require.NoError(t, s.Run(ctx))
		assert.Equal(t, time.Minute, time.Since(start))
		assert.NoError(t, phaseErr, "the phase's ctx must not inherit the trigger's cancellation")
	})
}

func TestShutdownPhaseDeadlineIsPerPhaseAndNamesThePhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewShutdown()
		var log phaseLog
		var drainTook time.Duration
		require.NoError(t, s.Add("stop intake", time.Second, log.phase("stop intake", nil)))
		require.NoError(t, s.Add("drain", 5*time.Second, func(ctx context.Context) error {
			start := time.Now()
			<-ctx.Done() // a drain that never finishes on its own
			drainTook = time.Since(start)
			return ctx.Err()
		}))
		require.NoError(t, s.Add("close", 2*time.Second, log.phase("close", nil)))
		s.Trigger()

		err := s.Run(t.Context())
		assert.Equal(t, 5*time.Second, drainTook)
		assert.Equal(t, []string{"stop intake", "close"}, log.get(), "a timed-out phase does not stop the next")
		var pe *PhaseError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "drain", pe.Phase)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.EqualError(t, err, `conc: shutdown phase "drain": timed out after 5s: context deadline exceeded`)
	})
}

func TestShutdownReportsEveryFailedPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		var log phaseLog
		s := NewShutdown()
		require.NoError(t, s.Add("a", time.Second, log.phase("a", boom)))
		require.NoError(t, s.Add("b", time.Second, func(context.Context) error { panic("bad phase") }))
		require.NoError(t, s.Add("c", time.Second, func(context.Context) error { runtime.Goexit(); return nil }))
		require.NoError(t, s.Add("d", time.Second, log.phase("d", nil)))
		s.Trigger()
		err := s.Run(t.Context())

		assert.Equal(t, []string{"a", "d"}, log.get())
		assert.ErrorIs(t, err, boom)
		assert.ErrorIs(t, err, errGoexit)
		var pan *PanicError
		require.ErrorAs(t, err, &pan)
		assert.Equal(t, "bad phase", pan.Value)
		assert.Equal(t, `conc: shutdown phase "a": boom`+"\n"+
			`conc: shutdown phase "b": conc: panic: bad phase`+"\n"+
			`conc: shutdown phase "c": `+errGoexit.Error(), err.Error())
	})
}

func TestShutdownForceAbandonsRunningPhaseAndSkipsTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewShutdown()
		var log phaseLog
		var cause error
		stuckDone := make(chan struct{})
		require.NoError(t, s.Add("first", time.Second, log.phase("first", nil)))
		require.NoError(t, s.Add("stuck", time.Hour, func(ctx context.Context) error {
			defer close(stuckDone)
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}))
		require.NoError(t, s.Add("never", time.Second, log.phase("never", nil)))
		s.Trigger()
		time.AfterFunc(time.Minute, s.Force)

		err := s.Run(t.Context())
		<-stuckDone
		assert.Equal(t, []string{"first"}, log.get())
		assert.ErrorIs(t, err, ErrShutdownForced)
		assert.ErrorIs(t, cause, ErrShutdownForced)
		assert.EqualError(t, err, `conc: shutdown phase "stuck": abandoned while running: conc: shutdown forced`+"\n"+
			`conc: shutdown phase "never": skipped: conc: shutdown forced`)
	})
}

func TestShutdownHardDeadlineAbandonsAPhaseThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewShutdown(HardDeadline(10 * time.Second))
		var log phaseLog
		release := make(chan struct{})
		stuckDone := make(chan struct{})
		require.NoError(t, s.Add("first", time.Second, log.phase("first", nil)))
		require.NoError(t, s.Add("stuck", time.Second, func(ctx context.Context) error {
			defer close(stuckDone)
			<-release // ignores ctx: its deadline alone would hang Run
			return nil
		}))
		require.NoError(t, s.Add("never", time.Second, log.phase("never", nil)))
		s.Trigger()

		start := time.Now()
		err := s.Run(t.Context())
		assert.Equal(t, 10*time.Second, time.Since(start), "Run returns at the hard deadline")
		close(release)
		<-stuckDone

		assert.Equal(t, []string{"first"}, log.get())
		assert.ErrorIs(t, err, ErrShutdownForced)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "reported as timed out")
		var pe *PhaseError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "stuck", pe.Phase)
		assert.EqualError(t, err, `conc: shutdown phase "stuck": abandoned while running: hard deadline 10s passed: conc: shutdown forced (context deadline exceeded)`+"\n"+
			`conc: shutdown phase "never": skipped: hard deadline 10s passed: conc: shutdown forced (context deadline exceeded)`)
	})
}

func TestShutdownHardDeadlineDoesNotCutAShutdownThatEndsInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewShutdown(HardDeadline(time.Minute))
		// A phase that overruns its own deadline but returns nil has done
		// its work, late: not an error (see Run).
		require.NoError(t, s.Add("late", time.Second, func(context.Context) error {
			time.Sleep(2 * time.Second)
			return nil
		}))
		s.Trigger()
		require.NoError(t, s.Run(t.Context()))
		assert.PanicsWithValue(t, "conc: shutdown hard deadline must be positive, got 0s", func() { HardDeadline(0) })
	})
}

func TestShutdownForceBeforeRunSkipsEveryPhase(t *testing.T) {
	var log phaseLog
	s := NewShutdown()
	require.NoError(t, s.Add("a", time.Second, log.phase("a", nil)))
	require.NoError(t, s.Add("b", time.Second, log.phase("b", nil)))
	s.Force()
	s.Force()
	err := s.Run(context.Background())
	assert.Empty(t, log.get())
	var pe *PhaseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "a", pe.Phase)
	assert.Contains(t, err.Error(), `"b": skipped`)
}

func TestShutdownRunOnceAndAddAfterRunReturnErrClosed(t *testing.T) {
	s := NewShutdown()
	s.Trigger()
	require.NoError(t, s.Run(context.Background()))
	assert.ErrorIs(t, s.Run(context.Background()), ErrClosed)
	assert.ErrorIs(t, s.Add("late", time.Second, func(context.Context) error { return nil }), ErrClosed)
}

func TestShutdownAddRejectsBadPhases(t *testing.T) {
	s := NewShutdown()
	assert.PanicsWithValue(t, `conc: shutdown phase "x" fn must not be nil`, func() { _ = s.Add("x", time.Second, nil) })
	assert.PanicsWithValue(t, `conc: shutdown phase "y" timeout must be positive, got 0s`, func() {
		_ = s.Add("y", 0, func(context.Context) error { return nil })
	})
	assert.PanicsWithValue(t, "conc: NewShutdown option 0 must not be nil", func() { NewShutdown(nil) })
}

// TestShutdownWithSignalsStartsOnFirstAndForcesOnSecond delivers real
// signals to the test process, so it runs outside synctest and is bounded
// by a real timer. SIGUSR1 is used rather than SIGTERM so that a mistake
// cannot look like the test runner being told to stop; it would kill the
// process if no handler were installed, which is why the first signal is
// sent only once Add refuses a phase: Run installs its handler before it
// closes the list of phases.
func TestShutdownWithSignalsStartsOnFirstAndForcesOnSecond(t *testing.T) {
	s := NewShutdown(WithSignals(syscall.SIGUSR1))
	var log phaseLog
	running := make(chan struct{})
	stuckDone := make(chan struct{})
	require.NoError(t, s.Add("first", time.Minute, log.phase("first", nil)))
	require.NoError(t, s.Add("stuck", time.Hour, func(ctx context.Context) error {
		defer close(stuckDone)
		close(running)
		<-ctx.Done()
		return ctx.Err()
	}))
	require.NoError(t, s.Add("never", time.Minute, log.phase("never", nil)))

	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	guard := time.NewTimer(30 * time.Second)
	defer guard.Stop()
	step := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-guard.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	// Until Run has started, every probe is one more phase, skipped with
	// the rest when the shutdown is forced.
	probe := func(context.Context) error { return nil }
	for s.Add("probe", time.Minute, probe) == nil {
		runtime.Gosched()
	}
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	step(running, "the first signal to start the shutdown")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	var runErr error
	select {
	case runErr = <-errc:
	case <-guard.C:
		t.Fatal("the second signal did not force the shutdown")
	}
	step(stuckDone, "the abandoned phase to see its ctx cancelled")
	assert.Equal(t, []string{"first"}, log.get())
	assert.ErrorIs(t, runErr, ErrShutdownForced)
	assert.Contains(t, runErr.Error(), `"stuck": abandoned while running`)
	assert.Contains(t, runErr.Error(), `"never": skipped`)
}

// Run's doc: "A phase that fails after its deadline is reported as timed
// out (its error matches context.DeadlineExceeded too)". Only the phase's
// own error was wrapped, so a phase that failed late with an error of its
// own (not ctx.Err()) did not match context.DeadlineExceeded.
func TestShutdownPhaseFailingLateMatchesDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errFlush := errors.New("flush failed")
		s := NewShutdown()
		require.NoError(t, s.Add("flush", time.Second, func(ctx context.Context) error {
			<-ctx.Done()
			return errFlush // its own error, not ctx.Err()
		}))
		s.Trigger()
		err := s.Run(t.Context())
		require.ErrorIs(t, err, errFlush)
		require.ErrorIs(t, err, context.DeadlineExceeded, "reported as timed out")
		var pe *PhaseError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, "flush", pe.Phase)
	})
}
