// Package vizdemo is the program behind `make viz` and the browser test: a
// pipeline with a deliberately slow stage, and a few watched primitives, all
// reporting to one conc.Monitor.
package vizdemo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/viz"
)

// Names the browser test looks for.
const (
	Pipeline = "ingest"
	// Hostile is a stage name that would run script if a page put it into
	// HTML unescaped; the page must show it as text.
	Hostile = `<img src=x onerror=alert(1)>`
	Slow    = "enrich (slow)"
	FanOut  = "parse ×4"
	Store   = "store"
)

// Run runs the demo until ctx is done, reporting to m: a generator, a
// stage with the hostile name, a fan-out stage with four workers, a slow
// stage (the bottleneck: about 200 items a second), a Batch with a time
// limit and a store stage, whose output the sink loop drains. The store
// stage calls through a Breaker whose backend fails in bursts, publishes to
// a Broker and hands work to a Pool; a KeyedLimiter and a Limiter pace it.
func Run(ctx context.Context, m *conc.Monitor) error {
	breaker := conc.NewBreaker(conc.ConsecutiveFailures(3), conc.Cooldown(2*time.Second))
	events := conc.NewBroker[int]()
	defer events.Close()
	sub := events.Subscribe("batch.stored", conc.SubBuffer(8), conc.SubPolicy(conc.DropOldest))
	defer sub.Unsubscribe()
	pool := conc.NewPool(2, func(ctx context.Context, n int) (int, error) {
		time.Sleep(time.Duration(n) * 100 * time.Microsecond)
		return n, nil
	}, conc.QueueSize(32), conc.OnResult(func(conc.Result[int, int]) {}))
	defer pool.Stop(context.Background())
	perTenant := conc.NewKeyedLimiter[int](40, 10)
	global := conc.NewLimiter(1000, 100)
	m.Watch("thumbnails", pool)
	m.Watch("payments api", breaker)
	m.Watch("events", events)
	m.Watch("per tenant", perTenant)
	m.Watch("global", global)
	defer func() {
		for _, n := range []string{"thumbnails", "payments api", "events", "per tenant", "global"} {
			m.Unwatch(n)
		}
	}()

	// A slow reader of the events, so the broker has something buffered
	// and drops the oldest now and then.
	go func() {
		for range sub.C() {
			time.Sleep(30 * time.Millisecond)
		}
	}()

	calls := 0
	pipeline := conc.Then(conc.Then(conc.Then(conc.Then(
		conc.Filter(func(_ context.Context, v int) (bool, error) { return v%10 != 9, nil }, conc.Named(Hostile)),
		conc.Map(func(_ context.Context, v int) (int, error) {
			time.Sleep(2 * time.Millisecond)
			return v * 3, nil
		}, conc.Workers(4), conc.Named(FanOut), conc.StageBuffer(256))),
		conc.Map(func(_ context.Context, v int) (int, error) {
			time.Sleep(5 * time.Millisecond) // the bottleneck
			return v + 1, nil
		}, conc.Named(Slow), conc.StageBuffer(64))),
		conc.Batch[int](20, 500*time.Millisecond)),
		conc.Map(func(ctx context.Context, b []int) (int, error) {
			calls++
			fail := calls%40 >= 37 // a burst of three failures every few seconds
			_ = breaker.Execute(ctx, func(context.Context) error {
				if fail {
					return errors.New("backend unavailable")
				}
				return nil
			})
			perTenant.Allow(b[0] % 7)
			global.Allow()
			_ = events.Publish(ctx, "batch.stored", len(b))
			pool.TrySubmit(len(b))
			return len(b), nil
		}, conc.Named(Store)))

	in := make(chan int)
	go func() {
		defer close(in)
		for i := 0; ; i++ {
			select {
			case in <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	out, wait := conc.Monitored(m, Pipeline, pipeline).Run(ctx, in)
	for range out {
	}
	if err := wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Serve starts an HTTP server for m on addr (host:port; port 0 picks one)
// with the page mounted at /debug/conc/ and / redirecting there. It returns
// the page's URL and a function that shuts the server down.
func Serve(addr string, m *conc.Monitor) (url string, stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/conc/", http.StripPrefix("/debug/conc", viz.Handler(m)))
	mux.Handle("/{$}", http.RedirectHandler("/debug/conc/", http.StatusFound))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}
	return fmt.Sprintf("http://%s/debug/conc/", ln.Addr()), stop, nil
}
