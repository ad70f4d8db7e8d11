package conc

import (
	"context"
	"errors"
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

// naiveChanRace is the race of the tutorials: every function sends its
// result on an unbuffered channel; the first success wins and cancels the
// others, whose results are still received so that no goroutine is left
// blocked on the send.
func naiveChanRace[T any](ctx context.Context, fns ...func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	results := make(chan result)
	for _, fn := range fns {
		go func() {
			v, err := fn(ctx)
			results <- result{v, err}
		}()
	}
	var (
		won  bool
		v    T
		errs []error
	)
	for range fns {
		r := <-results
		if r.err == nil && !won {
			won, v = true, r.v
			cancel()
		} else if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if won {
		return v, nil
	}
	return v, errors.Join(errs...)
}

// naiveMutexRace lets every function record its result under a mutex; the
// first success is kept and cancels the rest; a WaitGroup waits for all.
func naiveMutexRace[T any](ctx context.Context, fns ...func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		won  bool
		v    T
		errs []error
	)
	for _, fn := range fns {
		wg.Go(func() {
			r, err := fn(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if !won {
				won, v = true, r
				cancel()
			}
		})
	}
	wg.Wait()
	if won {
		return v, nil
	}
	return v, errors.Join(errs...)
}
