package conc_test

import (
	"context"
	"fmt"

	"github.com/concpatterns/conc"
)

// A subscriber receives what is published to the topics its pattern
// matches, in the order each publisher published it.
func ExampleBroker() {
	b := conc.NewBroker[string]()
	defer b.Close()

	all := b.Subscribe("orders.>")
	created := b.Subscribe("orders.*.created")

	ctx := context.Background()
	_ = b.Publish(ctx, "orders.eu.created", "order 1")
	_ = b.Publish(ctx, "orders.eu.shipped", "order 1 shipped")
	_ = b.Publish(ctx, "orders.us.created", "order 2")

	fmt.Println(<-created.C(), "|", <-created.C())
	fmt.Println(<-all.C(), "|", <-all.C(), "|", <-all.C())
	// Output:
	// order 1 | order 2
	// order 1 | order 1 shipped | order 2
}

// DropOldest suits a subscriber that only cares about the latest values,
// such as a dashboard: a full buffer makes room by evicting its oldest
// message, so the newest are kept.
func ExampleSubPolicy() {
	b := conc.NewBroker[int]()
	defer b.Close()
	latest := b.Subscribe("price", conc.SubBuffer(3), conc.SubPolicy(conc.DropOldest))

	for price := 100; price < 110; price++ {
		_ = b.Publish(context.Background(), "price", price)
	}
	fmt.Println(<-latest.C(), <-latest.C(), <-latest.C(), "dropped:", latest.Dropped())
	// Output: 107 108 109 dropped: 7
}

// Unsubscribe may be called from the consumer's own loop; the loop ends when
// the channel closes, with nothing left to drain.
func ExampleSubscription_Unsubscribe() {
	b := conc.NewBroker[int]()
	defer b.Close()
	s := b.Subscribe("ticks")
	for i := range 5 {
		_ = b.Publish(context.Background(), "ticks", i)
	}
	for v := range s.C() {
		fmt.Print(v, " ")
		if v == 2 {
			s.Unsubscribe() // what is already buffered can still be read
		}
	}
	fmt.Println()
	// Output: 0 1 2 3 4
}

// A Block subscription makes the publisher wait for room, but never longer
// than the publisher's context allows.
func ExampleBlockPublisher() {
	b := conc.NewBroker[string]()
	defer b.Close()
	b.Subscribe("jobs", conc.SubBuffer(1), conc.SubPolicy(conc.BlockPublisher))

	ctx, cancel := context.WithCancel(context.Background())
	_ = b.Publish(ctx, "jobs", "first") // fills the buffer
	cancel()
	err := b.Publish(ctx, "jobs", "second") // nobody reads: gives up
	fmt.Println(err)
	st := b.Stats()
	fmt.Println("delivered:", st.Delivered, "dropped:", st.DroppedBlock)
	// Output:
	// context canceled
	// delivered: 1 dropped: 1
}

// Next reads one event at a time, straight from the ring, and returns
// ErrClosed once the subscription has ended and everything it held has
// been read.
func ExampleSubscription_Next() {
	b := conc.NewBroker[string]()
	s := b.Subscribe("jobs.*")
	ctx := context.Background()
	_ = b.Publish(ctx, "jobs.build", "build")
	_ = b.Publish(ctx, "jobs.test", "test")
	_ = b.Close() // what s holds stays readable

	for {
		job, err := s.Next(ctx)
		if err != nil {
			fmt.Println(err, "|", s.Stats().Delivered, "delivered")
			return
		}
		fmt.Println(job)
	}
	// Output:
	// build
	// test
	// conc: closed | 2 delivered
}

// Events ranges over a subscription, copying events out of the ring in
// batches; the loop ends when the subscription ends or ctx does.
func ExampleSubscription_Events() {
	b := conc.NewBroker[int](conc.SubBuffer(16))
	s := b.Subscribe("ticks")
	for i := range 5 {
		_ = b.Publish(context.Background(), "ticks", i)
	}
	sum := 0
	for v := range s.Events(context.Background()) {
		sum += v
		if v == 2 {
			s.Unsubscribe() // what is already held is still yielded
		}
	}
	fmt.Println("sum:", sum, "dropped:", s.Dropped())
	_ = b.Close()
	// Output: sum: 10 dropped: 0
}
