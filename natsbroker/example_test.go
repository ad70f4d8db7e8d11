package natsbroker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/natsbroker"
)

// Order is an event of the examples.
type Order struct {
	ID     int    `json:"id"`
	Region string `json:"region"`
}

// A program that used conc.NewBroker changes only its constructor: the
// subscriptions, their options and the wildcards stay as they were.
func ExampleNew() {
	// An embedded server for the example; a real program connects to
	// its NATS cluster.
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	go srv.Start()
	srv.ReadyForConnections(10 * time.Second)
	defer srv.WaitForShutdown()
	defer srv.Shutdown()
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()

	// Was: b := conc.NewBroker[Order]()
	b := natsbroker.New[Order](nc)
	defer b.Close()

	s := b.Subscribe("orders.*.created", conc.SubBuffer(16))
	for i, region := range []string{"eu", "us"} {
		_ = b.Publish(context.Background(), "orders."+region+".created", Order{ID: i, Region: region})
	}
	for range 2 {
		o := <-s.C()
		fmt.Println(o.ID, o.Region)
	}
	// Output:
	// 0 eu
	// 1 us
}
