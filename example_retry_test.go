package conc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concpatterns/conc"
)

// errTransient stands for a transient failure, such as an HTTP 503.
var errTransient = errors.New("service unavailable")

// Retry a call that fails twice before it succeeds. JitterNone makes the
// delays exact, so that the example's output is deterministic; real callers
// keep the default full jitter, which spreads clients that failed together.
func ExampleRetry() {
	calls := 0
	err := conc.Retry(context.Background(),
		func(ctx context.Context) error {
			calls++
			if calls < 3 {
				return errTransient
			}
			return nil
		},
		conc.RetryAttempts(5),
		conc.RetryBaseDelay(time.Millisecond),
		conc.RetryJitter(conc.JitterNone),
		conc.OnRetry(func(attempt int, err error, next time.Duration) {
			fmt.Printf("attempt %d: %v; next in %v\n", attempt, err, next)
		}),
	)
	fmt.Println("err:", err, "after", calls, "calls")
	// Output:
	// attempt 1: service unavailable; next in 1ms
	// attempt 2: service unavailable; next in 2ms
	// err: <nil> after 3 calls
}

// When every attempt fails, the error says why retrying stopped and still
// matches the last attempt's error.
func ExampleRetry_exhausted() {
	err := conc.Retry(context.Background(),
		func(ctx context.Context) error { return errTransient },
		conc.RetryAttempts(3), conc.RetryBaseDelay(0))
	fmt.Println(err)
	fmt.Println(errors.Is(err, errTransient))
	var re *conc.RetryError
	if errors.As(err, &re) {
		fmt.Println(re.Reason, re.Attempts)
	}
	// Output:
	// conc: retry: gave up after 3 attempts: service unavailable
	// true
	// attempts exhausted 3
}

// RetryValue returns the value of the first successful attempt.
func ExampleRetryValue() {
	calls := 0
	v, err := conc.RetryValue(context.Background(),
		func(ctx context.Context) (string, error) {
			if calls++; calls == 1 {
				return "", errTransient
			}
			return "hello", nil
		},
		conc.RetryBaseDelay(0))
	fmt.Println(v, err)
	// Output: hello <nil>
}

// A policy is built and validated once and shared by every caller.
func ExampleNewRetryPolicy() {
	policy := conc.NewRetryPolicy(
		conc.RetryAttempts(4),
		conc.RetryBaseDelay(0),
		conc.RetryMaxElapsed(time.Minute),
	)
	for _, failures := range []int{0, 2, 9} {
		calls := 0
		err := policy.Do(context.Background(), func(ctx context.Context) error {
			if calls++; calls <= failures {
				return errTransient
			}
			return nil
		})
		fmt.Printf("%d failures: %d calls, success %t\n", failures, calls, err == nil)
	}
	// Output:
	// 0 failures: 1 calls, success true
	// 2 failures: 3 calls, success true
	// 9 failures: 4 calls, success false
}

// Permanent stops retrying at once; Retry returns the wrapped error itself.
func ExamplePermanent() {
	errBadRequest := errors.New("400 bad request")
	calls := 0
	err := conc.Retry(context.Background(), func(ctx context.Context) error {
		calls++
		return conc.Permanent(errBadRequest)
	})
	fmt.Println(err == errBadRequest, calls)
	// Output: true 1
}

// RetryAfter passes on a delay chosen by the server, such as an HTTP
// Retry-After header, capped by the max delay.
func ExampleRetryAfter() {
	calls := 0
	err := conc.Retry(context.Background(),
		func(ctx context.Context) error {
			if calls++; calls == 1 {
				return conc.RetryAfter(errors.New("429 too many requests"), time.Hour)
			}
			return nil
		},
		conc.RetryMaxDelay(5*time.Millisecond), conc.RetryBaseDelay(time.Millisecond),
		conc.OnRetry(func(attempt int, err error, next time.Duration) {
			fmt.Println("waiting", next, "after:", err)
		}))
	fmt.Println(err)
	// Output:
	// waiting 5ms after: 429 too many requests
	// <nil>
}
