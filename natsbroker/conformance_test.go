package natsbroker_test

import (
	"context"
	"testing"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/brokertest"
	"github.com/concpatterns/conc/natsbroker"
)

// adapter presents a natsbroker.Broker to the conformance suite.
type adapter struct {
	b *natsbroker.Broker[brokertest.Msg]
}

func (a adapter) Publish(ctx context.Context, topic string, m brokertest.Msg) error {
	return a.b.Publish(ctx, topic, m)
}

func (a adapter) Subscribe(pattern string, opts ...conc.SubOption) brokertest.Subscription {
	return a.b.Subscribe(pattern, opts...)
}

func (a adapter) Close() error { return a.b.Close() }

func (a adapter) Stats() brokertest.Stats {
	st := a.b.Stats()
	return brokertest.Stats{
		Published:     st.Published,
		Deliveries:    st.Deliveries,
		Delivered:     st.Delivered,
		DroppedNewest: st.DroppedNewest,
		DroppedOldest: st.DroppedOldest,
		DroppedBlock:  st.DroppedBlock,
		DroppedOther:  st.DroppedSlow + st.Undecodable,
		Subscribers:   st.Subscribers,
	}
}

// The NATS broker passes the same suite as conc.Broker, with two
// capabilities set differently: delivery is asynchronous (Async), and a
// BlockPublisher subscription holds back NATS's delivery goroutine, not
// the publisher (no BlockEndToEnd).
func TestConformance(t *testing.T) {
	srv := startServer(t, -1, 0)
	brokertest.Run(t, brokertest.Config{
		New: func(t *testing.T) brokertest.Broker {
			return adapter{natsbroker.New[brokertest.Msg](connect(t, srv))}
		},
		Caps: brokertest.Caps{Async: true},
	})
}
