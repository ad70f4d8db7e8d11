package conc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concpatterns/conc"
)

// Or waits for the first of many signals with one goroutine, whatever their
// number.
func ExampleOr() {
	signals := make([]chan struct{}, 100)
	inputs := make([]<-chan struct{}, len(signals))
	for i := range signals {
		signals[i] = make(chan struct{})
		inputs[i] = signals[i]
	}

	done := conc.Or(inputs...)
	close(signals[57])
	<-done
	fmt.Println("one of 100 fired")
	// Output: one of 100 fired
}

// OrContext gives the wait an owner: when ctx ends, so does its goroutine,
// even if no input ever fires.
func ExampleOrContext() {
	ctx, cancel := context.WithCancel(context.Background())
	never := make(chan int)
	done := conc.OrContext(ctx, never, never)
	cancel()
	<-done
	fmt.Println(ctx.Err())
	// Output: context canceled
}

// OrDone lets a consumer range over a channel it does not own and stop when
// its own context ends, even if the producer never closes the channel.
func ExampleOrDone() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := make(chan int)
	go func() {
		for i := 1; ; i++ { // never closes in
			if conc.Send(ctx, in, i) != nil {
				return
			}
		}
	}()
	sum := 0
	for v := range conc.OrDone(ctx, in) {
		sum += v
		if v == 4 {
			cancel()
		}
	}
	fmt.Println(sum >= 10)
	// Output: true
}

// Race hedges a request: the first replica to answer wins, and the others
// are cancelled and waited for before Race returns.
func ExampleRace() {
	replica := func(name string, delay time.Duration) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
				return name, nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
	}
	down := func(context.Context) (string, error) { return "", errors.New("connection refused") }

	v, err := conc.Race(context.Background(), down, replica("slow", time.Hour), replica("fast", time.Millisecond))
	fmt.Println(v, err)
	// Output: fast <nil>
}
