package conc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concpatterns/conc"
)

var errUnavailable = errors.New("503 service unavailable")

// A breaker in front of a flaky dependency: after two failures in a row it
// stops calling it and fails fast with ErrOpen.
func ExampleBreaker() {
	b := conc.NewBreaker(conc.ConsecutiveFailures(2), conc.Cooldown(time.Minute))
	ctx := context.Background()

	fetch := func(context.Context) error { return errUnavailable }
	for i := range 3 {
		err := b.Execute(ctx, fetch)
		fmt.Printf("call %d: %v (open: %t)\n", i+1, err, errors.Is(err, conc.ErrOpen))
	}
	fmt.Println("state:", b.State())
	// Output:
	// call 1: 503 service unavailable (open: false)
	// call 2: 503 service unavailable (open: false)
	// call 3: conc: circuit breaker is open (open: true)
	// state: open
}

// ExecuteValue protects a call that returns a value.
func ExampleExecuteValue() {
	b := conc.NewBreaker()
	price, err := conc.ExecuteValue(context.Background(), b, func(context.Context) (float64, error) {
		return 9.99, nil
	})
	fmt.Println(price, err)
	// Output: 9.99 <nil>
}

// Allow is for calls that cannot be wrapped in a function, such as a
// request whose outcome is only known in a callback.
func ExampleBreaker_Allow() {
	b := conc.NewBreaker()
	done, err := b.Allow()
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	// ... send the request; when its outcome is known:
	done(nil)
	fmt.Println(b.State())
	// Output: closed
}

// OnStateChange sees every change, in order. It runs with no lock held, so
// it may look at the breaker.
func ExampleOnStateChange() {
	var b *conc.Breaker
	b = conc.NewBreaker(
		conc.ConsecutiveFailures(1),
		conc.Cooldown(0), // probe again at once (for the example)
		conc.OnStateChange(func(from, to conc.BreakerState) {
			fmt.Printf("%v -> %v (trips so far: %d)\n", from, to, b.Stats().Trips)
		}),
	)
	ctx := context.Background()
	_ = b.Execute(ctx, func(context.Context) error { return errUnavailable })
	_ = b.Execute(ctx, func(context.Context) error { return nil }) // the probe succeeds
	// Output:
	// closed -> open (trips so far: 1)
	// open -> half-open (trips so far: 1)
	// half-open -> closed (trips so far: 1)
}

// FailureRate trips on the share of failures among recent calls rather
// than on a run of them, which suits a dependency that fails some requests
// all the time.
func ExampleFailureRate() {
	b := conc.NewBreaker(conc.FailureRate(0.5, 4, conc.LastCalls(10)))
	ctx := context.Background()
	outcomes := []error{nil, errUnavailable, nil, errUnavailable, errUnavailable}
	for i, want := range outcomes {
		err := b.Execute(ctx, func(context.Context) error { return want })
		fmt.Printf("call %d: %v, breaker %v\n", i+1, err, b.State())
	}
	// Output:
	// call 1: <nil>, breaker closed
	// call 2: 503 service unavailable, breaker closed
	// call 3: <nil>, breaker closed
	// call 4: 503 service unavailable, breaker open
	// call 5: conc: circuit breaker is open, breaker open
}
