package conc

import (
	"context"
	"time"
)

// The naive retry loops the Retry benchmarks compare against, written the
// way tutorials write them. Neither is wrong for a quick script; each shows
// what Retry does differently.

// naiveRetry is the loop of most tutorials: a fixed number of attempts and a
// doubling time.Sleep between them (impl "loop").
//
// What it lacks: time.Sleep cannot be interrupted, so a cancelled caller
// waits out the whole delay; there is no jitter, so clients that failed
// together retry together, in lockstep, against a recovering server; every
// error is retried, a 400 as much as a 503; a panic unwinds through it; and
// only the last error survives, with no word on why it gave up.
func naiveRetry(ctx context.Context, attempts int, delay time.Duration, fn func(context.Context) error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(ctx); err == nil {
			break
		}
		if i < attempts-1 {
			time.Sleep(delay)
			delay *= 2
		}
	}
	return err
}

// naiveRetrySelect is the "context-aware" loop of the better tutorials
// (impl "select"): it waits in a select on time.After and ctx.Done, so
// cancellation is prompt.
//
// What it still lacks, beyond the jitter and error classification above:
// time.After makes a new timer (and channel) for every attempt; it sleeps
// even when the deadline will pass before the delay ends, only to fail
// afterwards; and the error it returns on cancellation is ctx.Err() alone,
// losing the attempt's error that explained the retries.
func naiveRetrySelect(ctx context.Context, attempts int, delay time.Duration, fn func(context.Context) error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(ctx); err == nil {
			return nil
		}
		if i == attempts-1 {
			break
		}
		select {
		case <-time.After(delay):
			delay *= 2
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}
