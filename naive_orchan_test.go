package conc

import (
	"reflect"
	"sync"
)

// The or-channels that tutorials teach, written plainly, as the baselines of
// BenchmarkOr. They wait on channels of struct{}, as a done channel is.

// orRecursive is the recursive or-channel of "Concurrency in Go": each call
// waits on three inputs and on a recursive Or of the rest plus its own done
// channel, so N inputs cost about N/2 goroutines, all of which exit in a
// ripple once one input fires.
func orRecursive(channels ...<-chan struct{}) <-chan struct{} {
	switch len(channels) {
	case 0:
		return nil
	case 1:
		return channels[0]
	}
	orDone := make(chan struct{})
	go func() {
		defer close(orDone)
		switch len(channels) {
		case 2:
			select {
			case <-channels[0]:
			case <-channels[1]:
			}
		default:
			select {
			case <-channels[0]:
			case <-channels[1]:
			case <-channels[2]:
			case <-orRecursive(append(channels[3:], orDone)...):
			}
		}
	}()
	return orDone
}

// orReflect is the reflect.Select or-channel: one goroutine waits on every
// input with one dynamic select.
func orReflect(channels ...<-chan struct{}) <-chan struct{} {
	orDone := make(chan struct{})
	cases := make([]reflect.SelectCase, len(channels))
	for i, ch := range channels {
		cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)}
	}
	go func() {
		defer close(orDone)
		reflect.Select(cases)
	}()
	return orDone
}

// orMutex starts one goroutine per input; the first to see its input fire
// closes the output under a mutex, so that it is closed once, and the
// others return when they see the output closed.
func orMutex(channels ...<-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	var (
		mu     sync.Mutex
		closed bool
	)
	for _, c := range channels {
		go func() {
			select {
			case <-c:
				mu.Lock()
				if !closed {
					closed = true
					close(out)
				}
				mu.Unlock()
			case <-out:
			}
		}()
	}
	return out
}
