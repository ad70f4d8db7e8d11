package brokertest_test

import (
	"context"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/brokertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// conc.Broker is the reference: it passes every check, with every
// capability.
func TestConcBroker(t *testing.T) {
	brokertest.Run(t, brokertest.Config{
		New:  func(*testing.T) brokertest.Broker { return brokertest.Conc(conc.NewBroker[brokertest.Msg]()) },
		Caps: brokertest.Caps{BlockEndToEnd: true},
	})
}

// conc.Broker also passes with the capabilities of a networked broker.
func TestConcBrokerAsAsync(t *testing.T) {
	brokertest.Run(t, brokertest.Config{
		New:  func(*testing.T) brokertest.Broker { return brokertest.Conc(conc.NewBroker[brokertest.Msg]()) },
		Caps: brokertest.Caps{Async: true},
	})
}

// lossy is a broken broker: it silently skips every seventh Publish while
// reporting success.
type lossy struct {
	brokertest.Broker
	n atomic.Int64
}

func (l *lossy) Publish(ctx context.Context, topic string, m brokertest.Msg) error {
	if l.n.Add(1)%7 == 0 {
		return nil
	}
	return l.Broker.Publish(ctx, topic, m)
}

// leaky is a broken broker: every subscription starts a goroutine that
// never ends.
type leaky struct{ brokertest.Broker }

var forever = make(chan struct{})

func (l leaky) Subscribe(pattern string, opts ...conc.SubOption) brokertest.Subscription {
	go func() { <-forever }()
	return l.Broker.Subscribe(pattern, opts...)
}

// TestBrokenHelper runs the suite against a broken broker; it is a child
// process of TestSuiteCatchesBrokenBrokers, and skips otherwise.
func TestBrokenHelper(t *testing.T) {
	kind := os.Getenv("BROKERTEST_BROKEN")
	if kind == "" {
		t.Skip("run by TestSuiteCatchesBrokenBrokers")
	}
	brokertest.Run(t, brokertest.Config{
		New: func(*testing.T) brokertest.Broker {
			b := brokertest.Conc(conc.NewBroker[brokertest.Msg]())
			if kind == "lossy" {
				return &lossy{Broker: b}
			}
			return leaky{b}
		},
		Caps:    brokertest.Caps{BlockEndToEnd: true},
		Timeout: time.Second, // a lost message is waited for in vain

	})
}

// Every check must be able to fail: the suite, run in a child process
// against a broker that loses messages and one that leaks goroutines,
// fails, and says why.
func TestSuiteCatchesBrokenBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	for kind, want := range map[string][]string{
		"lossy": {"--- FAIL: TestBrokenHelper/PerPublisherOrder", "--- FAIL: TestBrokenHelper/DropNewest", "--- FAIL: TestBrokenHelper/Wildcards"},
		"leaky": {"--- FAIL: TestBrokenHelper/NoGoroutineLeak", "found unexpected goroutines"},
	} {
		t.Run(kind, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "BROKERTEST_BROKEN="+kind)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the suite passed a %s broker:\n%s", kind, out)
			for _, w := range want {
				assert.Contains(t, string(out), w)
			}
		})
	}
}
