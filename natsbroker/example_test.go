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
// subscriptions, their options, the wildcards and the reading loop stay as
// they were.
func ExampleNew() {
	// An embedded server for the example; a real program connects to
	// its NATS server or cluster.
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	go srv.Start()
	srv.ReadyForConnections(10 * time.Second)
	defer srv.WaitForShutdown()
	defer srv.Shutdown()
	url := srv.ClientURL()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Was: b := conc.NewBroker[Order](conc.SubBuffer(256))
	nc, err := nats.Connect(url)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	b := natsbroker.New[Order](nc, natsbroker.Defaults(conc.SubBuffer(256)))
	defer b.Close()

	paid := b.Subscribe("orders.*.paid", conc.SubPolicy(conc.DropOldest))
	for i, region := range []string{"eu", "us"} {
		order := Order{ID: i, Region: region}
		err = b.Publish(ctx, "orders."+region+".paid", order)
	}
	fmt.Println("published:", err)
	n := 0
	for o := range paid.Events(ctx) {
		fmt.Println(o.ID, o.Region)
		if n++; n == 2 {
			break
		}
	}
	// Output:
	// published: <nil>
	// 0 eu
	// 1 us
}
