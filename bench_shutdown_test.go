package conc

import (
	"context"
	"testing"
	"time"
)

// BenchmarkShutdown measures one whole shutdown: build it with three phases
// that return at once, trigger it, and run it to the end. One op is one
// shutdown. What it shows is the fixed cost of the sequencing (a context
// with a deadline per phase, the start signal), which a program pays once;
// it is here so that no primitive goes unmeasured, not because it is hot.
//
// mutex keeps the phases in a slice under a mutex and starts on a
// sync.Cond; chan is the tutorial's "quit channel": a goroutine waits on an
// unbuffered channel, runs the phases and closes a done channel.
func BenchmarkShutdown(b *testing.B) {
	const phases = 3
	phase := func(context.Context) error { return nil }
	b.Run("phases=3/conc", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			s := NewShutdown()
			for range phases {
				if err := s.Add("phase", time.Second, phase); err != nil {
					b.Fatal(err)
				}
			}
			s.Trigger()
			if err := s.Run(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("phases=3/mutex", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := newMutexShutdown()
			for range phases {
				s.Add(time.Second, phase)
			}
			s.Trigger()
			if err := s.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("phases=3/chan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := newChanShutdown()
			for range phases {
				s.Add(time.Second, phase)
			}
			if err := s.TriggerAndWait(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
