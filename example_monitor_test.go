package conc_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/viz"
)

// Monitored reports a run to a Monitor; Snapshot (or WriteText, or the viz
// page) shows each stage's counts, time split, stalls and the bottleneck.
func ExampleMonitored() {
	m := conc.NewMonitor()
	square := conc.Map(func(_ context.Context, n int) (int, error) { return n * n, nil }, conc.Named("square"))
	odd := conc.Filter(func(_ context.Context, n int) (bool, error) { return n%2 == 1, nil }, conc.Named("odd"))
	got, err := conc.Collect(context.Background(), conc.Monitored(m, "numbers", conc.Then(square, odd)), slices.Values([]int{1, 2, 3, 4, 5}))
	fmt.Println(got, err)

	p := m.Snapshot().Pipelines[0]
	for _, n := range p.Nodes {
		fmt.Printf("%s %q in=%d out=%d dropped=%d\n", n.Kind, n.Name, n.In, n.Out, n.Dropped)
	}
	// Output:
	// [1 9 25] <nil>
	// source "source" in=5 out=5 dropped=0
	// stage "square · odd" in=5 out=3 dropped=2
	// sink "collect" in=3 out=3 dropped=0
}

// The page is mounted like net/http/pprof, on an internal address; Watch
// adds a pool (or a Breaker, Limiter, KeyedLimiter, Broker, FanIn) to it.
func ExampleMonitor_Watch() {
	m := conc.NewMonitor()
	pool := conc.NewPool(2, func(_ context.Context, n int) (int, error) { return 2 * n, nil })
	m.Watch("doubler", pool)

	mux := http.NewServeMux()
	mux.Handle("/debug/conc/", http.StripPrefix("/debug/conc", viz.Handler(m)))
	// go http.ListenAndServe("127.0.0.1:6061", mux)

	_ = pool.Submit(context.Background(), 21)
	_ = pool.Close()
	for r := range pool.Results() {
		fmt.Println(r.Value)
	}
	s := m.Snapshot().Pools[0]
	fmt.Println(s.Name, s.Completed)
	// Output:
	// 42
	// doubler 1
}
