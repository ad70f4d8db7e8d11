package conc

import (
	"context"
	"time"
)

// naiveRetry is the retry loop every tutorial shows: a fixed number of
// attempts, a doubling sleep between them, and nothing else. It ignores the
// context while sleeping (time.Sleep cannot be interrupted), has no jitter,
// so clients that failed together retry together, sleeps even after the last
// attempt's failure is known to be final only if written carelessly (this
// one does not), and loses every error but the last. It is the baseline the
// Retry benchmarks compare against, written plainly on purpose.
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
