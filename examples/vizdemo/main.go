// Command vizdemo runs a small pipeline with a deliberately slow stage and
// serves the conc monitor page for it, the seed's pipeline visualizer but of
// real running code:
//
//	go run ./examples/vizdemo            # or: make viz
//
// Open the printed URL: the slow stage is marked as the bottleneck, the
// stage before it is backpressured, and the panels show a pool, a breaker
// tripping now and then, limiters and a broker. Ctrl-C stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/concpatterns/conc"
	"github.com/concpatterns/conc/internal/vizdemo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6061", "address to serve the page on (keep it internal, as for pprof)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m := conc.NewMonitor()
	url, shutdown, err := vizdemo.Serve(*addr, m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vizdemo:", err)
		os.Exit(1)
	}
	fmt.Printf("conc monitor: %s   (Ctrl-C to stop)\n", url)
	runErr := vizdemo.Run(ctx, m)
	if err := shutdown(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "vizdemo:", runErr)
		os.Exit(1)
	}
}
