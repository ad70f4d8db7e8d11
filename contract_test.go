package conc

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A nil context is a programmer error: every function that takes one
// panics with a conc: message when it is passed, even where the context
// would only have been consulted later (a full Block subscriber, a channel
// that is not ready, a limiter that must wait) or not at all.
func TestNilContextPanicsAtTheCall(t *testing.T) {
	var nilCtx context.Context
	ready := make(chan int, 1)
	ready <- 1
	room := make(chan int, 1)
	fn := func(context.Context) error { return nil }
	fnV := func(context.Context) (int, error) { return 1, nil }
	id := Map(func(_ context.Context, v int) (int, error) { return v, nil })
	const want = "conc: context must not be nil"
	cases := map[string]func(){
		"All":               func() { All(nilCtx, id, func(func(int) bool) {}) },
		"Collect":           func() { _, _ = Collect(nilCtx, id, func(func(int) bool) {}) },
		"Stage.Run":         func() { id.Run(nilCtx, ready) },
		"From":              func() { From(nilCtx, 1) },
		"Broker.Publish":    func() { b := NewBroker[int](); defer b.Close(); _ = b.Publish(nilCtx, "t", 1) },
		"Subscription.Next": func() { b := NewBroker[int](); defer b.Close(); _, _ = b.Subscribe("t").Next(nilCtx) },
		"Subscription.NextBatch": func() {
			b := NewBroker[int]()
			defer b.Close()
			_, _ = b.Subscribe("t").NextBatch(nilCtx, make([]int, 1))
		},
		"Subscription.Events": func() { b := NewBroker[int](); defer b.Close(); b.Subscribe("t").Events(nilCtx) },
		"Breaker.Execute":     func() { _ = NewBreaker().Execute(nilCtx, fn) },
		"ExecuteValue":        func() { _, _ = ExecuteValue(nilCtx, NewBreaker(), fnV) },
		"Limiter.Wait":        func() { _ = NewLimiter(Inf, 1).Wait(nilCtx) },
		"KeyedLimiter.Wait":   func() { _ = NewKeyedLimiter[string](Inf, 1).Wait(nilCtx, "k") },
		"Retry":               func() { _ = Retry(nilCtx, fn) },
		"RetryValue":          func() { _, _ = RetryValue(nilCtx, fnV) },
		"RetryPolicy.Do":      func() { _ = NewRetryPolicy().Do(nilCtx, fn) },
		"Send":                func() { _ = Send(nilCtx, room, 1) },
		"Recv":                func() { _, _ = Recv(nilCtx, (<-chan int)(ready)) },
		"Race":                func() { _, _ = Race(nilCtx, fnV) },
		"OrContext":           func() { OrContext(nilCtx, (<-chan int)(ready)) },
		"OrDone":              func() { OrDone(nilCtx, (<-chan int)(ready)) },
		"Shutdown.Run":        func() { _ = NewShutdown().Run(nilCtx) },
		"MapN":                func() { _, _ = MapN(nilCtx, []int{1}, 1, fnVItem) },
		"ForEach":             func() { _ = ForEach(nilCtx, func(func(int) bool) {}, 1, fnItem) },
	}
	for name, call := range cases {
		assert.PanicsWithValue(t, want, call, name)
	}
	// The fan-in and fan-out constructors name themselves in the message.
	assert.PanicsWithValue(t, "conc: Merge: ctx must not be nil", func() { Merge(nilCtx, (<-chan int)(ready)) })
	assert.PanicsWithValue(t, "conc: NewFanIn: ctx must not be nil", func() { NewFanIn[int](nilCtx) })
	// Nothing was consumed from the channels by a call that panicked.
	assert.Len(t, ready, 1)
	assert.Empty(t, room)
}

func fnItem(context.Context, int) error         { return nil }
func fnVItem(context.Context, int) (int, error) { return 0, nil }
